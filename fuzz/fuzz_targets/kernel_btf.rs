//! The kernel's BTF, as the table walker's struct offsets are read from it.
#![no_main]
libfuzzer_sys::fuzz_target!(|bytes: &[u8]| flameprof::fuzzing::kernel_btf(bytes));
