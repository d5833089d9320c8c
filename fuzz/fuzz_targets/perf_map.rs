//! A JIT perf map (`/tmp/perf-PID.map`) and the `status` text that locates it.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| symbolize::fuzzing::perf_map(bytes));
