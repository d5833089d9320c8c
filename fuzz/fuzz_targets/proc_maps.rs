//! `/proc/PID/maps` as symbolization reads it (flameprof's own readers of
//! it are in `proc_text`).
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| symbolize::fuzzing::proc_maps(text));
