//! End-to-end tests on live fixture processes.

mod common;

use symbolize::{Frame, Resolution, Symbolizer, UnresolvedReason};

fn resolved(function: &str, module: &str, file: Option<&str>, line: Option<u32>, inlined: bool) -> Frame {
    Frame {
        function: function.to_owned(),
        module: Some(module.to_owned()),
        file: file.map(str::to_owned),
        line,
        inlined,
        jit: false,
        resolved: Resolution::Resolved,
    }
}

#[test]
fn dwarf_binary_gives_name_file_and_line() {
    let dir = common::temp_dir("dwarf");
    let bin = common::gcc("basic.c", &dir, "basic-dwarf", &["-g", "-O0"]);
    let proc_ = common::spawn(&bin, 2);
    let mut sym = Symbolizer::new();
    let leaf = proc_.addrs["leaf_function"];
    let out = sym.symbolize_user(proc_.pid(), &[leaf, proc_.addrs["local_helper"]]);
    let src = common::src_path("basic.c");
    let open = common::marker_line("basic.c", "LEAF_OPEN");
    assert_eq!(out[0].frames, vec![resolved("leaf_function", "basic-dwarf", Some(&src), Some(open), false)]);
    assert_eq!(out[1].frames[0].function, "local_helper");
    assert_eq!(out[1].frames[0].file.as_deref(), Some(src.as_str()));
    assert_eq!(sym.stats().resolved, 2);
    assert_eq!(sym.stats().unresolved, 0);
}

#[test]
fn symtab_only_binary_gives_names_without_lines() {
    let dir = common::temp_dir("symtab");
    let bin = common::gcc("basic.c", &dir, "basic-nodwarf", &["-O1"]);
    let proc_ = common::spawn(&bin, 2);
    let mut sym = Symbolizer::new();
    let out = sym.symbolize_user(proc_.pid(), &[proc_.addrs["leaf_function"] + 1, proc_.addrs["local_helper"]]);
    assert_eq!(out[0].frames, vec![resolved("leaf_function", "basic-nodwarf", None, None, false)]);
    assert_eq!(out[1].frames, vec![resolved("local_helper", "basic-nodwarf", None, None, false)]);
}

#[test]
fn stripped_binary_is_unresolved_with_file_offset() {
    let dir = common::temp_dir("stripped");
    let bin = common::gcc("basic.c", &dir, "basic-stripped", &["-O1"]);
    common::run("strip", &["--strip-all", bin.to_str().unwrap()]);
    let proc_ = common::spawn(&bin, 2);
    let mut sym = Symbolizer::new();
    sym.snapshot_process(proc_.pid()).unwrap();
    let addr = proc_.addrs["leaf_function"];
    let map = sym
        .mappings(proc_.pid())
        .into_iter()
        .find(|m| m.start <= addr && addr < m.end)
        .expect("mapping of the fixture");
    assert!(map.path.ends_with("/basic-stripped"));
    let file_offset = addr - map.start + map.file_offset;
    let out = sym.symbolize_user(proc_.pid(), &[addr]);
    let f = &out[0].frames[0];
    assert_eq!(f.function, format!("basic-stripped+{file_offset:#x}"));
    assert_eq!(f.module.as_deref(), Some("basic-stripped"));
    // Stripped, and no debug file anywhere (debuginfod is off by default).
    assert_eq!(f.resolved, Resolution::Unresolved(UnresolvedReason::NoDebugInfo));
    assert_eq!(sym.stats().unresolved_by_reason[&UnresolvedReason::NoDebugInfo], 1);
    assert_eq!(sym.debug_info_stats().without_debug_info, vec!["basic-stripped".to_string()]);
}

#[test]
fn inlined_frames_come_outermost_first_with_lines() {
    let dir = common::temp_dir("inline");
    let bin = common::gcc("inline.c", &dir, "inline-O2", &["-g", "-O2"]);
    let proc_ = common::spawn(&bin, 2);
    let mut sym = Symbolizer::new();
    let out = sym.symbolize_user(proc_.pid(), &[proc_.addrs["inlined_call"]]);
    let src = common::src_path("inline.c");
    let line = |m| Some(common::marker_line("inline.c", m));
    assert_eq!(
        out[0].frames,
        vec![
            resolved("outer", "inline-O2", Some(&src), line("LINE_OUTER"), false),
            resolved("middle", "inline-O2", Some(&src), line("LINE_MIDDLE"), true),
            resolved("innermost", "inline-O2", Some(&src), line("LINE_INNER"), true),
        ]
    );
}

#[test]
fn cpp_names_are_demangled() {
    if std::process::Command::new("g++").arg("--version").output().is_err() {
        eprintln!("g++ not installed; skipping");
        return;
    }
    let dir = common::temp_dir("cpp");
    for (out, flags) in [("cpp-nodwarf", &["-O1"][..]), ("cpp-dwarf", &["-O1", "-g"][..])] {
        let bin = common::compile("g++", "cpp.cc", &dir, out, flags);
        let proc_ = common::spawn(&bin, 1);
        let mut sym = Symbolizer::new();
        let out = sym.symbolize_user(proc_.pid(), &[proc_.addrs["compute"]]);
        assert_eq!(out[0].frames[0].function, "flame::compute(int, double)", "{flags:?}");
        assert!(out[0].is_resolved());
    }
}

#[test]
fn deleted_binary_of_exited_process_still_resolves() {
    let dir = common::temp_dir("deleted");
    let bin = common::gcc("basic.c", &dir, "basic-deleted", &["-g", "-O0"]);
    let mut proc_ = common::spawn(&bin, 2);
    let pid = proc_.pid();
    let mut sym = Symbolizer::new();
    sym.snapshot_process(pid).unwrap();
    sym.snapshot_process(pid).unwrap(); // idempotent
    let build_id = sym.build_id(pid, "basic-deleted").expect("gcc emits a build-id");
    assert_eq!(build_id.len(), 20);

    proc_.kill();
    std::fs::remove_file(&bin).unwrap();
    // Replace it with something else under the same name: must not be used.
    std::fs::write(&bin, b"not an elf").unwrap();

    let out = sym.symbolize_user(pid, &[proc_.addrs["leaf_function"], proc_.addrs["local_helper"]]);
    assert_eq!(out[0].frames[0].function, "leaf_function");
    assert_eq!(out[0].frames[0].module.as_deref(), Some("basic-deleted"));
    assert_eq!(out[0].frames[0].file.as_deref(), Some(common::src_path("basic.c").as_str()));
    assert_eq!(out[1].frames[0].function, "local_helper");
    assert_eq!(sym.build_id(pid, "basic-deleted"), Some(build_id));
}

#[test]
fn gone_process_is_unresolved() {
    let dir = common::temp_dir("gone");
    let bin = common::gcc("basic.c", &dir, "basic-gone", &["-O0"]);
    let mut proc_ = common::spawn(&bin, 2);
    let pid = proc_.pid();
    proc_.kill();
    let mut sym = Symbolizer::new();
    assert!(matches!(sym.snapshot_process(pid), Err(symbolize::Error::ProcessGone { .. })));
    let out = sym.symbolize_user(pid, &[proc_.addrs["leaf_function"], 0x1234]);
    for s in &out {
        assert_eq!(s.frames.len(), 1);
        assert_eq!(s.frames[0].function, "[unknown]");
        assert_eq!(s.frames[0].resolved, Resolution::Unresolved(UnresolvedReason::ProcessGone));
    }
    assert_eq!(sym.stats().unresolved_by_reason[&UnresolvedReason::ProcessGone], 2);
}

#[test]
fn shared_library_with_dynsym_only() {
    let dir = common::temp_dir("dynsym");
    let lib = common::gcc("lib.c", &dir, "libfixture.so", &["-O1", "-shared", "-fPIC"]);
    common::run("strip", &["--strip-all", lib.to_str().unwrap()]);
    let mut sym = Symbolizer::new();
    // The library is not loaded anywhere: use its file offsets directly. For a
    // gcc shared object the text segment's file offset equals its vaddr.
    let nm = std::process::Command::new("nm").args(["-D", "--defined-only"]).arg(&lib).output().unwrap();
    let nm = String::from_utf8(nm.stdout).unwrap();
    let exported = nm
        .lines()
        .find(|l| l.ends_with(" exported_function"))
        .map(|l| u64::from_str_radix(l.split(' ').next().unwrap(), 16).unwrap())
        .expect("exported_function in .dynsym");
    assert!(!nm.contains("hidden_function"));
    let out = sym.symbolize_file(&lib, &[exported + 2, exported]);
    assert_eq!(out[0].frames, vec![resolved("exported_function", "libfixture.so", None, None, false)]);
    assert_eq!(out[0], out[1]);
}
