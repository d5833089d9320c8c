//! Tests on ELF files without a process: malformed input, corrupt DWARF.

mod common;

use std::path::Path;

use symbolize::{Resolution, Symbolizer, UnresolvedReason};

/// Address of `name` in the symbol table of `bin` (for gcc PIE executables the
/// text segment's file offset equals its virtual address).
fn nm_addr(bin: &Path, name: &str) -> u64 {
    let out = std::process::Command::new("nm").arg(bin).output().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    let line = out.lines().find(|l| l.ends_with(&format!(" {name}"))).expect("symbol in nm output");
    u64::from_str_radix(line.split(' ').next().unwrap(), 16).unwrap()
}

fn reason(s: &symbolize::Symbolized) -> Resolution {
    s.frames[0].resolved
}

#[test]
fn garbage_and_truncated_files_are_unresolved_not_panics() {
    let dir = common::temp_dir("malformed");
    let good = common::gcc("basic.c", &dir, "good", &["-g", "-O0"]);
    let leaf = nm_addr(&good, "leaf_function");
    let bytes = std::fs::read(&good).unwrap();

    let garbage = dir.join("garbage.bin");
    std::fs::write(&garbage, (0..8192u32).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>()).unwrap();
    let mut elf_magic_garbage = bytes[..16].to_vec();
    elf_magic_garbage.extend((0..4096u32).map(|i| (i * 13) as u8));
    let bad_header = dir.join("bad-header.bin");
    std::fs::write(&bad_header, elf_magic_garbage).unwrap();

    let mut sym = Symbolizer::new();
    for (path, name) in [(&garbage, "garbage.bin"), (&bad_header, "bad-header.bin")] {
        let out = sym.symbolize_file(path, &[leaf]);
        assert_eq!(out[0].frames.len(), 1);
        assert_eq!(out[0].frames[0].function, format!("{name}+{leaf:#x}"));
        assert_eq!(out[0].frames[0].module.as_deref(), Some(name));
        assert_eq!(reason(&out[0]), Resolution::Unresolved(UnresolvedReason::Malformed), "{name}");
    }
    // Truncated at many points: must never panic, and never invent a symbol
    // outside what survives.
    for cut in [0, 1, 16, 63, 64, 200, 1000, 4096, bytes.len() / 2, bytes.len() - 100] {
        let path = dir.join(format!("truncated-{cut}"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let out = sym.symbolize_file(&path, &[leaf, leaf + 4]);
        assert_eq!(out.len(), 2);
        for s in &out {
            assert!(!s.frames.is_empty());
            if let Resolution::Unresolved(_) = reason(s) {
                assert!(s.frames[0].function.starts_with(&format!("truncated-{cut}+0x")));
            } else {
                assert_eq!(s.frames[0].function, "leaf_function", "cut at {cut}");
            }
        }
    }
    // Tiny files are unreadable as ELF, whatever else happens.
    let out = sym.symbolize_file(dir.join("truncated-16"), &[leaf]);
    assert_eq!(reason(&out[0]), Resolution::Unresolved(UnresolvedReason::Malformed));
    assert!(sym.stats().unresolved_by_reason[&UnresolvedReason::Malformed] >= 3);
}

#[test]
fn missing_file_is_unreadable() {
    let mut sym = Symbolizer::new();
    let out = sym.symbolize_file("/nonexistent/dir/libnope.so", &[0x1000]);
    assert_eq!(out[0].frames[0].function, "libnope.so+0x1000");
    assert_eq!(reason(&out[0]), Resolution::Unresolved(UnresolvedReason::FileUnreadable));
}

/// Overwrites the contents of section `name` of `path` with garbage.
fn corrupt_section(path: &Path, name: &str) {
    let out = std::process::Command::new("readelf").args(["-SW"]).arg(path).output().unwrap();
    let out = String::from_utf8(out.stdout).unwrap();
    let line = out.lines().find(|l| l.contains(&format!(" {name} "))).expect("section present");
    // [Nr] Name Type Address Off Size ...: fields after the name.
    let fields: Vec<&str> = line.split(']').nth(1).unwrap().split_whitespace().collect();
    let off = usize::from_str_radix(fields[3], 16).unwrap();
    let size = usize::from_str_radix(fields[4], 16).unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    for (i, b) in bytes[off..off + size].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(151).wrapping_add(17);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_dwarf_falls_back_to_symbol_table() {
    let dir = common::temp_dir("corrupt-dwarf");
    let bin = common::gcc("basic.c", &dir, "corrupt", &["-g", "-O0"]);
    let leaf = nm_addr(&bin, "leaf_function");
    corrupt_section(&bin, ".debug_info");
    corrupt_section(&bin, ".debug_line");
    let mut sym = Symbolizer::new();
    let out = sym.symbolize_file(&bin, &[leaf, leaf + 3]);
    for s in &out {
        assert_eq!(s.frames.len(), 1);
        assert_eq!(s.frames[0].function, "leaf_function");
        assert_eq!(s.frames[0].resolved, Resolution::Resolved);
    }
}

#[test]
fn batch_results_follow_input_order_with_duplicates() {
    let dir = common::temp_dir("batch");
    let bin = common::gcc("basic.c", &dir, "batch", &["-O0"]);
    let leaf = nm_addr(&bin, "leaf_function");
    let helper = nm_addr(&bin, "local_helper");
    let mut sym = Symbolizer::new();
    let input = [helper, leaf, helper, 0x0fff_ffff, leaf];
    let out = sym.symbolize_file(&bin, &input);
    let names: Vec<&str> = out.iter().map(|s| s.frames[0].function.as_str()).collect();
    assert_eq!(names, ["local_helper", "leaf_function", "local_helper", "batch+0xfffffff", "leaf_function"]);
    assert_eq!(reason(&out[3]), Resolution::Unresolved(UnresolvedReason::NoMapping));
    assert_eq!(sym.stats().resolved, 4);
    assert_eq!(sym.stats().unresolved, 1);
}
