//! The profile files `diff` and `report` read: folded text, pprof, gzipped or not.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| flameprof::fuzzing::profile_file(bytes));
