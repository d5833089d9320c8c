//! `/proc/kallsyms`, then a NUL byte, then `/proc/modules`.
#![no_main]
libfuzzer_sys::fuzz_target!(|text: &str| symbolize::fuzzing::kernel_symbols(text));
