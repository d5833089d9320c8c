//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): each hands
//! arbitrary bytes to one of this crate's parsers of outside data. Not part
//! of the crate's interface (hidden from its documentation). Whatever the
//! input, the parsers return (an error or a value) and never panic.
//!
//! Symbolization of a whole file goes through the public
//! [`crate::Symbolizer::symbolize_file`] instead.

use gimli::UnwindContext;

use crate::kernel::KernelSymbols;
use crate::perf_map::{self, PerfMap, PerfMapStats};
use crate::plt::PltStubs;
use crate::{jitdump, maps, unwind};

/// Rules looked up in a compiled table: enough to reach `.eh_frame_hdr`'s
/// search and the FDEs' instructions, few enough to keep each input fast.
const LOOKUPS: usize = 64;

/// An ELF file's call-frame information, as the unwinders read it: loaded,
/// compiled into the in-kernel table, and evaluated at the table's rows.
pub fn call_frame_information(elf: &[u8]) {
    let Ok(cfi) = unwind::CallFrameInfo::parse(elf) else { return };
    let mut context = UnwindContext::new();
    let Ok(table) = unwind::compile(&cfi) else { return };
    for row in table.rows.iter().take(LOOKUPS) {
        let _ = cfi.rule_at(row.pc, &mut context);
        let _ = table.lookup(row.pc);
    }
    let _ = cfi.address_of(0);
}

/// An ELF file's PLT stubs, named from its dynamic relocations.
pub fn plt_stubs(elf: &[u8]) {
    let Some(stubs) = PltStubs::parse(elf) else { return };
    for offset in (0..elf.len() as u64).step_by(16).take(LOOKUPS) {
        let _ = stubs.name_at(offset);
    }
}

/// A process's `/proc/PID/maps`.
pub fn proc_maps(text: &str) {
    if let Ok(entries) = maps::parse(1, text) {
        for entry in entries.iter().take(LOOKUPS) {
            let _ = maps::find(&entries, entry.start);
            let _ = maps::find(&entries, entry.end.wrapping_sub(1));
            let _ = entry.module_name();
        }
    }
}

/// A JIT perf map (`/tmp/perf-PID.map`), and the `status` text read to
/// find it.
pub fn perf_map(bytes: &[u8]) {
    let mut map = PerfMap::default();
    let mut stats = PerfMapStats::default();
    let taken = map.ingest(bytes, false, &mut stats);
    map.ingest(&bytes[taken..], true, &mut stats);
    for &byte in bytes.iter().take(LOOKUPS) {
        let _ = map.name(u64::from(byte) << 4);
    }
    let _ = perf_map::parse_status(&String::from_utf8_lossy(bytes), 1);
}

/// A jitdump file (`jit-PID.dump`): read whole, then as a file that grows
/// is, in two reads split where the first byte says.
pub fn jitdump(bytes: &[u8]) {
    let mut names = 0usize;
    let mut count = |_: jitdump::Event<'_>| names += 1;
    let _ = jitdump::parse(bytes, 0, &mut count);
    let split = bytes.first().map_or(0, |&b| usize::from(b) * bytes.len() / 256);
    let (taken, _) = jitdump::parse(&bytes[..split], 0, &mut count);
    let _ = jitdump::parse(&bytes[taken..], taken as u64, &mut count);
}

/// `/proc/kallsyms` and `/proc/modules` (the input split at its first NUL
/// byte), then lookups by address and by name.
pub fn kernel_symbols(text: &str) {
    let (kallsyms, modules) = text.split_once('\0').unwrap_or((text, ""));
    let Ok(symbols) = KernelSymbols::parse(kallsyms, modules) else { return };
    for line in kallsyms.lines().take(LOOKUPS) {
        let mut fields = line.split_whitespace();
        if let Some(address) = fields.next().and_then(|a| u64::from_str_radix(a, 16).ok()) {
            let _ = symbols.symbolize(address);
            let _ = symbols.symbolize(address.wrapping_add(1));
        }
        if let Some(name) = fields.nth(1) {
            let _ = symbols.address_of(name, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Inputs that made a fuzz target fail once (its `fuzz/artifacts/`),
    /// kept under `testdata/fuzz/TARGET/`: a panic with overflow checks on
    /// (found again in debug builds only), a compressed `.debug_str` that
    /// blazesym would allocate 120 GiB for (an abort in any build).
    #[test]
    fn inputs_that_failed_a_fuzz_target_pass() {
        type Target = (&'static str, fn(&[u8]));
        let targets: [Target; 3] = [
            ("call_frame_information", super::call_frame_information),
            ("plt_stubs", super::plt_stubs),
            ("symbolize_file", symbolize_file),
        ];
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/fuzz");
        let mut found = 0;
        for (target, run) in targets {
            for entry in std::fs::read_dir(root.join(target)).into_iter().flatten() {
                run(&std::fs::read(entry.unwrap().path()).unwrap());
                found += 1;
            }
        }
        assert!(found >= 2, "no inputs under {}", root.display());
    }

    /// What the `symbolize_file` target does: the public API on a file of
    /// the input's bytes.
    fn symbolize_file(bytes: &[u8]) {
        let path = std::env::temp_dir().join(format!("symbolize-fuzz-input-{}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        let len = bytes.len() as u64;
        let _ = crate::Symbolizer::new().symbolize_file(&path, &[0, 0x40, len / 2, len.saturating_sub(1), len]);
        let _ = std::fs::remove_file(&path);
    }
}
