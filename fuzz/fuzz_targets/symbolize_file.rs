//! Symbolization of an arbitrary file through the public API: ELF symbol
//! tables, DWARF (blazesym), PLT stubs, compressed sections.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

/// One file per fuzzing process, rewritten for each input (in memory).
fn path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| PathBuf::from(format!("/dev/shm/flameprof-fuzz-{}.elf", std::process::id())))
}

libfuzzer_sys::fuzz_target!(
    init: {
        // flameprof catches a panic of blazesym and counts the file as
        // malformed; libfuzzer-sys's hook would abort on it first. The
        // default hook restores that behaviour: a panic that escapes
        // still aborts (in the harness).
        let _ = std::panic::take_hook();
    },
    |elf: &[u8]| {
        if std::fs::write(path(), elf).is_err() {
            return;
        }
        let len = elf.len() as u64;
        // Offsets in the headers, in the middle, at the end, and named by the input.
        let mut offsets = vec![0, 0x40, len / 2, len.saturating_sub(1), len];
        offsets.extend(elf.chunks_exact(8).take(4).map(|w| u64::from_le_bytes(w.try_into().unwrap()) % (len + 1)));
        // A new symbolizer each time: its caches key files by identity.
        let mut symbolizer = symbolize::Symbolizer::new();
        let _ = symbolizer.symbolize_file(path(), &offsets);
    }
);
