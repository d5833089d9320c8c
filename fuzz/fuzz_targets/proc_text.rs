//! Every /proc text flameprof reads itself (stat, schedstat, status, stack,
//! syscall, maps), each reader on the same input.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| flameprof::fuzzing::proc_text(text));
