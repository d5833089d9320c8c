//! Symbolizing the test binary itself: Rust demangling, DWARF of a Rust
//! function, special mappings, kernel symbols.

use symbolize::{Resolution, Symbolizer, UnresolvedReason};

pub mod marker_mod {
    #[inline(never)]
    pub fn marker_function_for_self_test(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(31) // MARKER_LINE
    }
}

fn marker_addr() -> u64 {
    let f: fn(u64) -> u64 = marker_mod::marker_function_for_self_test;
    std::hint::black_box(f(3));
    f as usize as u64
}

#[test]
fn rust_function_of_this_binary_is_demangled_with_location() {
    let mut sym = Symbolizer::new();
    let addr = marker_addr();
    let out = sym.symbolize_user(std::process::id(), &[addr]);
    let f = &out[0].frames[0];
    assert_eq!(f.function, "self_process::marker_mod::marker_function_for_self_test");
    assert_eq!(f.resolved, Resolution::Resolved);
    let exe = std::env::current_exe().unwrap();
    assert_eq!(f.module.as_deref(), exe.file_name().and_then(|n| n.to_str()));
    assert!(f.file.as_deref().unwrap().ends_with("tests/self_process.rs"), "{f:?}");
    // The entry is on the `fn` line, one above the marker.
    let src = include_str!("self_process.rs");
    let marker = src.lines().position(|l| l.ends_with("// MARKER_LINE")).unwrap() as u32 + 1;
    assert_eq!(f.line, Some(marker - 1));
}

#[test]
fn stack_and_unmapped_addresses() {
    let mut sym = Symbolizer::new();
    let local = 5u64;
    let stack_addr = std::hint::black_box(&local) as *const u64 as u64;
    let out = sym.symbolize_user(std::process::id(), &[stack_addr, 0x10]);
    let f = &out[0].frames[0];
    // Test threads run on mmap'ed stacks; the main thread on [stack].
    assert!(f.function.starts_with("[anon]+0x") || f.function.starts_with("[stack]+0x"), "{f:?}");
    assert_eq!(f.resolved, Resolution::Unresolved(UnresolvedReason::AnonymousMapping));
    assert_eq!(out[1].frames[0].function, "[unknown]");
    assert_eq!(out[1].frames[0].module, None);
    assert_eq!(out[1].frames[0].resolved, Resolution::Unresolved(UnresolvedReason::NoMapping));
}

#[test]
fn libc_function_resolves_and_many_addresses_are_fast() {
    let mut sym = Symbolizer::new();
    let getpid = marker_getpid_addr();
    let marker = marker_addr();
    let mut addrs: Vec<u64> =
        (0..50_000u64).map(|i| if i % 2 == 0 { getpid + i % 7 } else { marker + i % 5 }).collect();
    addrs.push(getpid);
    let start = std::time::Instant::now();
    let out = sym.symbolize_user(std::process::id(), &addrs);
    let elapsed = start.elapsed();
    let last = &out.last().unwrap().frames[0];
    // glibc has aliases (getpid, __getpid, __GI_getpid): any of them will do.
    assert!(last.function.ends_with("getpid"), "{last:?}");
    assert_eq!(last.module.as_deref(), Some("libc.so.6"));
    assert!(out.iter().all(|s| s.is_resolved()));
    assert_eq!(sym.stats().resolved, addrs.len() as u64);
    assert!(elapsed.as_secs() < 5, "50k addresses took {elapsed:?}");
}

/// Address of libc's getpid, found through the dynamic linker.
fn marker_getpid_addr() -> u64 {
    unsafe extern "C" {
        fn dlsym(handle: *mut std::ffi::c_void, name: *const std::ffi::c_char) -> *mut std::ffi::c_void;
    }
    // RTLD_DEFAULT is a null handle on glibc.
    // SAFETY: dlsym with RTLD_DEFAULT (null) and a NUL-terminated name only looks a symbol up.
    let p = unsafe { dlsym(std::ptr::null_mut(), c"getpid".as_ptr()) };
    assert!(!p.is_null());
    p as u64
}

#[test]
fn kernel_symbols_from_kallsyms() {
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let Some(addr) = kallsyms.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (addr, kind, name) = (f.next()?, f.next()?, f.next()?);
        (kind == "T" && name == "schedule" && f.next().is_none()).then(|| u64::from_str_radix(addr, 16).ok())?
    }) else {
        eprintln!("no usable /proc/kallsyms; skipping");
        return;
    };
    if addr == 0 {
        eprintln!("kallsyms addresses hidden; skipping");
        return;
    }
    let mut sym = Symbolizer::new();
    sym.load_kernel_symbols().unwrap();
    let out = sym.symbolize_kernel(&[addr + 1, addr, 0x1000]);
    assert_eq!(out[0].frames[0].function, "schedule");
    assert_eq!(out[0].frames[0].module.as_deref(), Some("[kernel]"));
    assert_eq!(out[0], out[1]);
    assert!(out[2].frames[0].function.starts_with("[kernel]+0x"));
    assert_eq!(out[2].frames[0].resolved, Resolution::Unresolved(UnresolvedReason::NoSymbol));
}

#[test]
fn vdso_functions_resolve() {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let Some((start, end)) = maps.lines().find(|l| l.ends_with("[vdso]")).map(|l| {
        let (s, e) = l.split_whitespace().next().unwrap().split_once('-').unwrap();
        (u64::from_str_radix(s, 16).unwrap(), u64::from_str_radix(e, 16).unwrap())
    }) else {
        eprintln!("no vDSO; skipping");
        return;
    };
    let addrs: Vec<u64> = (start..end).step_by(4).collect();
    let mut sym = Symbolizer::new();
    let out = sym.symbolize_user(std::process::id(), &addrs);
    assert!(out.iter().all(|s| s.frames[0].module.as_deref() == Some("[vdso]")));
    let names: std::collections::BTreeSet<&str> =
        out.iter().filter(|s| s.is_resolved()).map(|s| s.frames[0].function.as_str()).collect();
    assert!(names.iter().any(|n| n.contains("clock_gettime")), "{names:?}");
}

#[test]
fn code_loaded_after_the_snapshot_is_found() {
    unsafe extern "C" {
        fn dlopen(path: *const std::ffi::c_char, flags: i32) -> *mut std::ffi::c_void;
        fn dlsym(handle: *mut std::ffi::c_void, name: *const std::ffi::c_char) -> *mut std::ffi::c_void;
    }
    let dir = std::env::temp_dir().join(format!("symbolize-tests-{}-dlopen", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lib = dir.join("libdlopened.so");
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/lib.c");
    let ok = std::process::Command::new("gcc")
        .args(["-O1", "-g", "-shared", "-fPIC", src, "-o"])
        .arg(&lib)
        .status()
        .unwrap()
        .success();
    assert!(ok);

    let mut sym = Symbolizer::new();
    sym.snapshot_process(std::process::id()).unwrap();
    let path = std::ffi::CString::new(lib.to_str().unwrap()).unwrap();
    const RTLD_NOW: i32 = 2;
    // SAFETY: a NUL-terminated path; dlopen loads a library built by this test, whose initialisers are
    // trivial.
    let handle = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
    assert!(!handle.is_null());
    // SAFETY: `handle` came from dlopen above and the name is NUL-terminated; the address is only read as a
    // number.
    let f = unsafe { dlsym(handle, c"exported_function".as_ptr()) } as u64;
    assert_ne!(f, 0);
    let out = sym.symbolize_user(std::process::id(), &[f]);
    assert_eq!(out[0].frames[0].function, "exported_function");
    assert_eq!(out[0].frames[0].module.as_deref(), Some("libdlopened.so"));
    assert_eq!(out[0].frames[0].file.as_deref(), Some(src));
    assert!(sym.build_id(std::process::id(), "libdlopened.so").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Addresses of two files looked up ahead, file by file, for two views of
/// this process: the lookups that follow are all answered from memory and
/// give what a lookup without it gives.
#[test]
fn prefetched_addresses_are_answered_from_memory_with_the_same_frames() {
    let pid = std::process::id();
    let addrs = [marker_getpid_addr(), marker_addr()];
    let expected = Symbolizer::new().symbolize_user(pid, &addrs);

    let mut sym = Symbolizer::new();
    // Not snapshotted yet: left to the lookups themselves.
    sym.prefetch_user(&[(pid, None, &addrs)]);
    assert_eq!(sym.lookup_stats().read_from_files, 0);
    sym.snapshot_process(pid).unwrap();
    sym.prefetch_user(&[(pid, None, &addrs[..1]), (pid, Some(u64::MAX), &addrs)]);
    let ahead = sym.lookup_stats();
    assert_eq!((ahead.looked_up, ahead.read_from_files), (0, 2), "each offset read once, ahead");
    let got = sym.symbolize_user(pid, &addrs);
    assert_eq!(got, expected);
    let after = sym.lookup_stats();
    assert_eq!((after.looked_up, after.read_from_files), (2, 2), "nothing read again: {after:?}");
}
