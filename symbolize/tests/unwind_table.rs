//! Unwind tables for the in-kernel unwinder (`compile_unwind_table`): hand
//! written CFI with every kind of rule, Debian's libc and executables,
//! corrupt copies of libc. (The row-by-row comparison with the user-space
//! unwinder's `rule_at` is a unit test in `src/unwind/table.rs`: that type
//! is private to the crate.)

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol};
use symbolize::{
    CfaRule, Error, KERNEL_ROW_BYTES, RbpRule, RbxRule, RowKinds, UnsupportedRules, UnwindRow, UnwindTable,
    compile_unwind_table,
};

const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

/// The invariants every table keeps, whatever its input.
fn check_well_formed(table: &UnwindTable) {
    let rows = &table.rows;
    for pair in rows.windows(2) {
        assert!(pair[0].pc < pair[1].pc, "rows not sorted and unique: {pair:?}");
        let rule = |row: &UnwindRow| (row.cfa, row.rbp, row.rbx);
        assert!(rule(&pair[0]) != rule(&pair[1]), "equal neighbours not merged: {pair:?}");
    }
    if let Some(first) = rows.first() {
        assert_ne!(first.cfa, CfaRule::None, "a table does not start with a gap");
    }
    if let Some(last) = rows.last() {
        assert_eq!(last.cfa, CfaRule::None, "the last row ends the last range");
    }
    for row in rows {
        if matches!(row.cfa, CfaRule::None | CfaRule::Signal | CfaRule::Outermost | CfaRule::Unsupported) {
            assert_eq!((row.rbp, row.rbx), (RbpRule::Unchanged, RbxRule::Unchanged), "{row:?}");
        }
    }
    let stats = &table.stats;
    assert_eq!(stats.rows, rows.len());
    assert_eq!(stats.kernel_bytes, rows.len() * KERNEL_ROW_BYTES);
    let k = stats.rows_by_kind;
    assert_eq!(
        k.none + k.rsp + k.rbp + k.register + k.plt11 + k.plt10 + k.signal + k.outermost + k.unsupported,
        rows.len()
    );
    assert!(stats.debug_frame_fdes <= stats.fdes);
}

/// Addresses of the symbols of `path` (static and dynamic symbol tables).
fn symbols(path: &Path) -> HashMap<String, u64> {
    let data = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    elf.symbols()
        .chain(elf.dynamic_symbols())
        .filter_map(|s| Some((s.name().ok()?.split('@').next()?.to_string(), s.address())))
        .collect()
}

fn row(pc: u64, cfa: CfaRule, rbp: RbpRule) -> UnwindRow {
    UnwindRow { pc, cfa, rbp, rbx: RbxRule::Unchanged }
}

fn row_with_rbx(pc: u64, cfa: CfaRule, rbx: RbxRule) -> UnwindRow {
    UnwindRow { pc, cfa, rbp: RbpRule::Unchanged, rbx }
}

/// Every kind of rule, from CFI written by hand (tests/fixtures/unwind_rules.S).
#[test]
fn hand_written_rules_compile_to_the_expected_rows() {
    let dir = common::temp_dir("unwind-rules");
    let so = common::gcc("unwind_rules.S", &dir, "rules.so", &["-shared", "-nostdlib"]);
    let at = symbols(&so);
    let a = |name: &str| *at.get(name).unwrap_or_else(|| panic!("no symbol {name}"));
    let table = compile_unwind_table(&so).unwrap();
    check_well_formed(&table);
    use CfaRule::*;
    use RbpRule::{SavedAt, Unchanged, Unknown};
    let expected = [
        row(a("frame"), Rsp(8), Unchanged),
        row(a("frame_pushed"), Rsp(16), SavedAt(-16)),
        // The second `.cfi_def_cfa %rbp, 16` repeats the rule: one row.
        row(a("frame_based"), Rbp(16), SavedAt(-16)),
        row(a("frame_popped"), Rsp(8), Unchanged),
        // Padding between the functions: no rule.
        row(a("frame_end"), None, Unchanged),
        row(a("outermost"), Outermost, Unchanged),
        row(a("signal"), Signal, Unchanged),
        row(a("plt11"), Plt11, Unchanged),
        row(a("plt10"), Plt10, Unchanged),
        // plt12 and deref_expression: one run of unsupported rows.
        row(a("plt12"), Unsupported, Unchanged),
        row(a("r12_based"), Register { register: 12, offset: 8 }, Unchanged),
        // huge_offset, return_address_elsewhere.
        row(a("huge_offset"), Unsupported, Unchanged),
        // rbp_val_offset and rbp_in_register.
        row(a("rbp_val_offset"), Rsp(8), Unknown),
        // rbp saved at CFA - 40000: beyond i16.
        row(a("rbp_far"), Rsp(40016), Unknown),
        row(a("rbx_saved"), Rsp(8), Unchanged),
        row_with_rbx(a("rbx_pushed"), Rsp(16), RbxRule::SavedAt(-16)),
        row(a("rbx_based"), Rsp(8), Unchanged),
        row_with_rbx(a("rbx_based_pushed"), Rsp(16), RbxRule::SavedAt(-16)),
        row_with_rbx(a("rbx_based_set"), Register { register: 3, offset: 16 }, RbxRule::SavedAt(-16)),
        row_with_rbx(a("rbx_in_register"), Rsp(8), RbxRule::Unknown),
        row(a("xmm_based"), Unsupported, Unchanged),
        row(a("last"), Rsp(8), Unchanged),
        row(a("last_end"), None, Unchanged),
    ];
    assert_eq!(table.rows, expected);
    let stats = table.stats;
    assert_eq!(stats.fdes, 18);
    assert_eq!(stats.debug_frame_fdes, 0);
    assert_eq!((stats.overlapping_fdes, stats.fdes_outside_code, stats.malformed_fdes), (0, 0, 0));
    assert_eq!(
        stats.unsupported,
        UnsupportedRules { cfa_expression: 2, cfa_register: 1, cfa_offset: 1, return_address: 1 }
    );
    assert_eq!(
        stats.rows_by_kind,
        RowKinds { none: 2, rsp: 11, rbp: 1, register: 2, plt11: 1, plt10: 1, signal: 1, outermost: 1, unsupported: 3 }
    );
    assert!(table.fits_u32());
    // Lookups: inside a range, at its last byte, in the gap, out of range.
    assert_eq!(table.lookup(a("frame_pushed") + 2).unwrap().cfa, Rsp(16));
    assert_eq!(table.lookup(a("frame_end") - 1).unwrap().cfa, Rsp(8));
    assert_eq!(table.lookup(a("frame_end") + 3).unwrap().cfa, None);
    assert_eq!(table.lookup(a("frame") - 1), Option::None);
    assert_eq!(table.lookup(u64::MAX).unwrap().cfa, None);
}

/// C built with `-fno-asynchronous-unwind-tables -g`: its own functions
/// have only `.debug_frame`, the C runtime's objects bring `.eh_frame`; the
/// table has both.
#[test]
fn debug_frame_fills_what_eh_frame_leaves_out() {
    let dir = common::temp_dir("unwind-debug-frame");
    let exe = common::gcc("basic.c", &dir, "basic", &["-O0", "-g", "-fno-asynchronous-unwind-tables"]);
    let sections: Vec<String> = {
        let data = std::fs::read(&exe).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        elf.sections().filter_map(|s| s.name().ok().map(str::to_string)).collect()
    };
    assert!(sections.iter().any(|s| s == ".debug_frame"), "{sections:?}");
    let table = compile_unwind_table(&exe).unwrap();
    check_well_formed(&table);
    assert!(table.stats.debug_frame_fdes > 0, "{:?}", table.stats);
    let leaf = symbols(&exe)["leaf_function"];
    // At entry CFA = rsp + 8; after `push rbp; mov rbp, rsp`, rbp + 16.
    assert_eq!(table.lookup(leaf).unwrap(), &row(leaf, CfaRule::Rsp(8), RbpRule::Unchanged));
    assert_eq!(table.lookup(leaf + 4).unwrap().cfa, CfaRule::Rbp(16));
    assert_eq!(table.lookup(leaf + 4).unwrap().rbp, RbpRule::SavedAt(-16));
    // _start comes from crt1.o's .eh_frame.
    let start = symbols(&exe)["_start"];
    assert_eq!(table.lookup(start).unwrap().cfa, CfaRule::Outermost);
}

/// Where `__restore_rt` is: libc's symbol tables, else (Debian strips
/// `.symtab`, and the symbol is not dynamic) its unique instruction bytes
/// `mov $15, %rax; syscall` (rt_sigreturn) in an executable segment.
fn restore_rt(path: &Path) -> u64 {
    if let Some(&address) = symbols(path).get("__restore_rt") {
        return address;
    }
    let data = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let pattern = [0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05];
    let hits: Vec<u64> = elf
        .segments()
        .filter(|s| matches!(s.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0))
        .flat_map(|s| {
            let bytes = s.data().unwrap();
            let base = s.address();
            bytes.windows(pattern.len()).enumerate().filter(|(_, w)| *w == pattern).map(move |(i, _)| base + i as u64)
        })
        .collect();
    assert_eq!(hits.len(), 1, "rt_sigreturn sequences in {path:?}: {hits:x?}");
    hits[0]
}

#[test]
fn libc_has_plt_rows_and_one_signal_frame_at_restore_rt() {
    let table = compile_unwind_table(Path::new(LIBC)).unwrap();
    check_well_formed(&table);
    let stats = table.stats;
    println!("libc: {stats:#?}");
    for pair in table.rows.windows(2).filter(|p| matches!(p[0].cfa, CfaRule::Unsupported | CfaRule::Outermost)) {
        println!("{:?} at {:#x}..{:#x}", pair[0].cfa, pair[0].pc, pair[1].pc);
    }
    assert!(stats.rows_by_kind.plt11 > 0, "{stats:?}");
    assert!(stats.rows > 10_000 && stats.fdes > 1_000, "{stats:?}");
    // libc's only CFA expressions are the PLT's and __restore_rt's. What the
    // kernel-side walker cannot follow is a handful of rows: the longjmp
    // family and setcontext once they switch to the saved context (CFA =
    // rdi or rdx + 0), and vfork, which keeps its return address in rdi.
    assert_eq!(stats.unsupported.cfa_expression, 0, "{stats:?}");
    assert!(stats.rows_by_kind.unsupported <= 8, "{stats:?}");
    // clone's and clone3's child side mark the return address undefined.
    assert!(stats.rows_by_kind.outermost >= 1, "{stats:?}");
    assert_eq!((stats.malformed_fdes, stats.truncated_sections), (0, 0), "{stats:?}");
    assert!(table.fits_u32());

    // Signal ranges: maximal runs of Signal rows (merging makes each one row).
    let signal: Vec<(u64, u64)> = table
        .rows
        .windows(2)
        .filter(|pair| pair[0].cfa == CfaRule::Signal)
        .map(|pair| (pair[0].pc, pair[1].pc))
        .collect();
    assert_eq!(signal.len(), 1, "{signal:x?}");
    let restore = restore_rt(Path::new(LIBC));
    let (start, end) = signal[0];
    assert!(start <= restore && restore < end, "__restore_rt at {restore:#x}, signal range {start:#x}..{end:#x}");
    // The unwinder looks return addresses up at address - 1: the FDE starts
    // before the symbol (glibc puts a nop there) so that works for a handler
    // returning to __restore_rt.
    assert_eq!(table.lookup(restore - 1).unwrap().cfa, CfaRule::Signal);

    // The PLT: libc's `.plt` section is covered by PLT rows past its first
    // entry (the first 16 bytes push and jump: ordinary rsp rules).
    let data = std::fs::read(LIBC).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let plt = elf.section_by_name(".plt").unwrap();
    let (plt_start, plt_end) = (plt.address(), plt.address() + plt.size());
    for address in (plt_start + 16..plt_end).step_by(5) {
        assert_eq!(table.lookup(address).unwrap().cfa, CfaRule::Plt11, "at {address:#x}");
    }
}

/// The executables' entry point is glibc's `_start`: its CFI marks the
/// return address undefined.
#[test]
fn start_of_executables_is_outermost() {
    for exe in ["/usr/bin/python3", "/bin/ls"] {
        let path = std::fs::canonicalize(exe).unwrap();
        let data = std::fs::read(&path).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        let start = symbols(&path).get("_start").copied().unwrap_or_else(|| elf.entry());
        assert_eq!(start, elf.entry(), "{exe}: _start is the entry point");
        let table = compile_unwind_table(&path).unwrap();
        check_well_formed(&table);
        let found = table.lookup(start).unwrap();
        assert_eq!(found.cfa, CfaRule::Outermost, "{exe} at {start:#x}: {found:?}");
    }
}

#[test]
fn files_without_call_frame_information_are_errors() {
    let dir = common::temp_dir("unwind-errors");
    let not_elf = dir.join("not-elf");
    std::fs::write(&not_elf, b"plain text, not ELF").unwrap();
    assert!(matches!(compile_unwind_table(&not_elf), Err(Error::CallFrameInfo { .. })));
    assert!(matches!(compile_unwind_table(&dir.join("missing")), Err(Error::OpenFile { .. })));
    // An ELF file with no CFI sections at all.
    let bare = dir.join("bare");
    common::run(
        "objcopy",
        &["--remove-section=.eh_frame", "--remove-section=.eh_frame_hdr", LIBC, bare.to_str().unwrap()],
    );
    assert!(matches!(compile_unwind_table(&bare), Err(Error::CallFrameInfo { .. })));
}

/// Reproducible pseudo-random numbers (xorshift64).
fn pseudo_random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Truncated, bit-flipped and overwritten copies of libc: an error or a
/// well-formed (partial) table, never a panic, and quickly.
#[test]
fn corrupt_copies_of_libc_never_panic() {
    let good = std::fs::read(LIBC).unwrap();
    let (eh_frame, eh_frame_hdr) = {
        let elf = object::File::parse(&*good).unwrap();
        let range = |name: &str| {
            let (offset, size) = elf.section_by_name(name).unwrap().file_range().unwrap();
            (offset as usize, size as usize)
        };
        (range(".eh_frame"), range(".eh_frame_hdr"))
    };
    let dir = common::temp_dir("unwind-corrupt");
    let path = dir.join("libc.so.6");
    let mut next = pseudo_random(0x5851_f42d_4c95_7f2d);
    let mut outcomes = [0usize; 2];
    let started = Instant::now();
    for round in 0..400 {
        let mut bytes = good.clone();
        let within = |(offset, size): (usize, usize), r: u64| offset + (r % size as u64) as usize;
        let kind = round % 5;
        match kind {
            // A few bit flips in .eh_frame.
            0 | 1 => {
                for _ in 0..1 + next() % 8 {
                    let i = within(eh_frame, next());
                    bytes[i] ^= 1 << (next() % 8);
                }
            }
            // A run of random bytes in .eh_frame (lengths, CIE pointers,
            // instructions all at once).
            2 => {
                let i = within(eh_frame, next());
                let end = (i + 1 + (next() % 64) as usize).min(bytes.len());
                bytes[i..end].iter_mut().for_each(|b| *b = next() as u8);
            }
            // Flips in the ELF and program headers, the section headers and
            // .eh_frame_hdr.
            3 => {
                let shoff = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
                for _ in 0..1 + next() % 4 {
                    let i = match next() % 3 {
                        0 => (next() % 0x400) as usize,
                        1 => shoff + (next() % (good.len() - shoff) as u64) as usize,
                        _ => within(eh_frame_hdr, next()),
                    };
                    bytes[i] ^= 1 << (next() % 8);
                }
            }
            // Truncated anywhere, mostly inside the CFI.
            _ => {
                let cut =
                    if next() & 1 == 0 { within(eh_frame, next()) } else { (next() % good.len() as u64) as usize };
                bytes.truncate(cut);
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let result = std::panic::catch_unwind(|| compile_unwind_table(&path));
        match result {
            Err(_) => panic!("round {round} (corruption kind {kind}) panicked"),
            Ok(Ok(table)) => {
                check_well_formed(&table);
                outcomes[0] += 1;
            }
            Ok(Err(_)) => outcomes[1] += 1,
        }
    }
    println!("corrupt libc: {} tables, {} errors in {:?}", outcomes[0], outcomes[1], started.elapsed());
}

/// Compile times and sizes of real files (`cargo test --release -p
/// symbolize --test unwind_table -- --ignored --nocapture`).
#[test]
#[ignore = "measures; prints figures"]
fn compile_times() {
    let mut files: Vec<PathBuf> =
        [LIBC, "/lib64/ld-linux-x86-64.so.2", "/usr/bin/python3", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"]
            .iter()
            .map(PathBuf::from)
            .collect();
    if let Some(home) = std::env::var_os("HOME")
        && let Ok(toolchains) = std::fs::read_dir(Path::new(&home).join(".rustup/toolchains"))
    {
        for toolchain in toolchains.flatten() {
            for file in std::fs::read_dir(toolchain.path().join("lib")).into_iter().flatten().flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if name.starts_with("librustc_driver-") || name.starts_with("libLLVM") && name.ends_with(".so") {
                    files.push(file.path());
                }
            }
        }
    }
    files.push(std::env::current_exe().unwrap());
    // Canonical, once each (toolchain directories are often symlinked), ELF
    // only (some libLLVM*.so are linker scripts).
    let mut files: Vec<PathBuf> = files.iter().filter_map(|p| std::fs::canonicalize(p).ok()).collect();
    files.sort();
    files.dedup();
    let is_elf = |p: &Path| {
        let mut magic = [0u8; 4];
        std::fs::File::open(p).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic)).is_ok()
            && &magic == b"\x7fELF"
    };
    for path in files.into_iter().filter(|p| is_elf(p)) {
        let size = std::fs::metadata(&path).unwrap().len();
        let started = Instant::now();
        let table = match compile_unwind_table(&path) {
            Ok(table) => table,
            Err(e) => {
                println!("{}: {e}", path.display());
                continue;
            }
        };
        let elapsed = started.elapsed();
        check_well_formed(&table);
        let s = table.stats;
        println!(
            "{} ({:.1} MB): {} FDEs ({} .debug_frame), {} rows ({:.2} MiB in the kernel) in {:.1} ms; \
             kinds {:?}; unsupported {:?}; overlapping {}, outside code {}, malformed {}, fits u32 {}",
            path.display(),
            size as f64 / 1e6,
            s.fdes,
            s.debug_frame_fdes,
            s.rows,
            s.kernel_bytes as f64 / (1 << 20) as f64,
            elapsed.as_secs_f64() * 1e3,
            s.rows_by_kind,
            s.unsupported,
            s.overlapping_fdes,
            s.fdes_outside_code,
            s.malformed_fdes,
            table.fits_u32(),
        );
    }
}
