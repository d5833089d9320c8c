//! An ELF file's `.eh_frame`, `.eh_frame_hdr` and `.debug_frame`: loaded,
//! compiled into the in-kernel unwind table, rules evaluated.
#![no_main]
libfuzzer_sys::fuzz_target!(|elf: &[u8]| symbolize::fuzzing::call_frame_information(elf));
