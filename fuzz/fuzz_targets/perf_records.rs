//! The side-band's perf record parser and ring reader (MMAP2, COMM, FORK,
//! EXIT, LOST records; wrapped records; sizes that make no sense).
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| flameprof::fuzzing::perf_records(bytes));
