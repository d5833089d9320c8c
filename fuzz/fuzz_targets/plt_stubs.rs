//! An ELF file's PLT sections and dynamic relocations, decoded into stub names.
#![no_main]
libfuzzer_sys::fuzz_target!(|elf: &[u8]| symbolize::fuzzing::plt_stubs(elf));
