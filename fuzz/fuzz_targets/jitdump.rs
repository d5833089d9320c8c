//! A jitdump file (`jit-PID.dump`), whole and as a file that grows.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| symbolize::fuzzing::jitdump(bytes));
