//! Addresses in PLT stubs are named `NAME@plt` (as perf and objdump name
//! them), not after the nearest preceding symbol (`_init`). objdump's own
//! synthetic `@plt` labels are the reference: binutils finds them its own
//! way (BFD's `get_synthetic_symtab`).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use object::{Object, ObjectSection, ObjectSymbol};
use symbolize::{Frame, Resolution, Symbolizer};

const PLT_SECTIONS: [&str; 3] = [".plt", ".plt.sec", ".plt.got"];
const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

/// A PLT section of a file: address, file offset and size.
#[derive(Clone, Copy, Debug)]
struct Section {
    address: u64,
    file_offset: u64,
    size: u64,
}

fn plt_sections(path: &Path) -> HashMap<&'static str, Section> {
    let data = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    PLT_SECTIONS
        .iter()
        .filter_map(|&name| {
            let s = elf.section_by_name(name)?;
            let (file_offset, size) = s.file_range()?;
            Some((name, Section { address: s.address(), file_offset, size }))
        })
        .collect()
}

/// File offsets of addresses `addrs` of `path` (each inside one of its sections).
fn file_offsets(path: &Path, addrs: &[u64]) -> Vec<u64> {
    let data = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let sections: Vec<(u64, u64, u64)> = elf
        .sections()
        .filter_map(|s| Some((s.address(), s.size(), s.file_range()?.0)))
        .filter(|&(address, _, _)| address != 0)
        .collect();
    addrs
        .iter()
        .map(|&addr| {
            let &(address, _, offset) = sections
                .iter()
                .find(|&&(address, size, _)| address <= addr && addr < address + size)
                .unwrap_or_else(|| panic!("{addr:#x} in no section of {}", path.display()));
            offset + (addr - address)
        })
        .collect()
}

/// objdump's labels in the PLT sections: (address, label), sorted.
fn objdump_labels(path: &Path) -> Vec<(u64, String)> {
    let mut cmd = Command::new("objdump");
    cmd.arg("-d");
    for name in plt_sections(path).keys() {
        cmd.args(["-j", name]);
    }
    let out = cmd.arg(path).output().expect("objdump (binutils) installed");
    assert!(out.status.success(), "objdump failed on {}", path.display());
    let mut labels: Vec<(u64, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (addr, rest) = l.split_once(" <")?;
            let label = rest.strip_suffix(">:")?;
            Some((u64::from_str_radix(addr, 16).ok()?, label.to_owned()))
        })
        .collect();
    labels.sort();
    labels
}

/// Names of the defined symbols at each address (static and dynamic tables).
fn symbols_by_address(path: &Path) -> HashMap<u64, HashSet<String>> {
    let data = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let mut by_address: HashMap<u64, HashSet<String>> = HashMap::new();
    for s in elf.symbols().chain(elf.dynamic_symbols()).filter(|s| !s.is_undefined()) {
        if let Ok(name) = s.name() {
            by_address.entry(s.address()).or_default().insert(name.to_owned());
        }
    }
    by_address
}

/// Function names `symbolize_file` gives for the file offsets of `addrs`.
fn names_at(sym: &mut Symbolizer, path: &Path, addrs: &[u64]) -> Vec<String> {
    let offsets = file_offsets(path, addrs);
    let out = sym.symbolize_file(path, &offsets);
    let module = path.file_name().unwrap().to_str().unwrap();
    out.iter()
        .zip(addrs)
        .map(|(s, a)| {
            let f = &s.frames[0];
            if f.function.ends_with("@plt") || f.function == "[plt]" {
                assert_eq!(s.frames.len(), 1, "{a:#x}");
                assert_eq!((f.file.as_deref(), f.line, f.inlined), (None, None, false), "{a:#x}");
                assert_eq!(f.resolved, Resolution::Resolved, "{a:#x}");
                assert_eq!(f.module.as_deref(), Some(module), "{a:#x}");
            }
            f.function.clone()
        })
        .collect()
}

/// Checks every byte of every PLT section of `path` against objdump's
/// labels: a stub labelled `X@plt` is `X@plt` throughout (`*ABS*+0xA@plt`,
/// an ifunc called inside its file, is named after a symbol at A); the
/// lazy-binding header is `[plt]`; with `.plt.sec`, the `.plt` entries after
/// the header are lazy-binding trampolines, named after the `.plt.sec` stub
/// of the same symbol. Returns the names of the stubs by address.
fn check_against_objdump(sym: &mut Symbolizer, path: &Path) -> HashMap<u64, String> {
    let sections = plt_sections(path);
    assert!(sections.contains_key(".plt"), "{} has a .plt", path.display());
    let labels = objdump_labels(path);
    let symbols = symbols_by_address(path);
    let ibt = sections.contains_key(".plt.sec");
    let mut stubs = HashMap::new();
    let mut trampolines = Vec::new();
    for (&name, s) in &sections {
        let addrs: Vec<u64> = (s.address..s.address + s.size).collect();
        let got = names_at(sym, path, &addrs);
        // Labels in this section: each holds from its address to the next.
        let inside: Vec<&(u64, String)> =
            labels.iter().filter(|(a, _)| (s.address..s.address + s.size).contains(a)).collect();
        for (addr, name_here) in addrs.iter().zip(&got) {
            assert_ne!(name_here, "_init", "{addr:#x} of {}", path.display());
            let label = inside.iter().rev().find(|(a, _)| a <= addr).map(|(_, l)| l.as_str());
            let header = name == ".plt" && addr - s.address < 16;
            let expected = match label {
                _ if header => "[plt]".to_owned(),
                Some(label) if label.ends_with("@plt") => match label.strip_prefix("*ABS*+0x") {
                    Some(resolver) => {
                        let resolver = u64::from_str_radix(resolver.trim_end_matches("@plt"), 16).unwrap();
                        let base = name_here.trim_end_matches("@plt");
                        let known = symbols.get(&resolver).is_some_and(|names| names.contains(base));
                        assert!(known || base == &label[..label.len() - 4], "{label} named {name_here}");
                        name_here.clone()
                    }
                    None => label.to_owned(),
                },
                // IBT: .plt entries after the header have no objdump label.
                _ if ibt && name == ".plt" => {
                    assert!(name_here.ends_with("@plt"), "trampoline at {addr:#x}: {name_here}");
                    if (addr - s.address) % 16 == 0 {
                        trampolines.push(name_here.clone());
                    }
                    name_here.clone()
                }
                other => panic!("{addr:#x} of {} in {name}: unexpected label {other:?}", path.display()),
            };
            assert_eq!(name_here, &expected, "{addr:#x} in {name} of {}", path.display());
            let trampoline = ibt && name == ".plt";
            if !(header || trampoline) && inside.iter().any(|(a, _)| a == addr) {
                stubs.insert(*addr, expected);
            }
        }
    }
    if ibt {
        let sec = sections[".plt.sec"];
        let mut from_sec: Vec<String> = stubs
            .iter()
            .filter(|(a, _)| (sec.address..sec.address + sec.size).contains(a))
            .map(|(_, n)| n.clone())
            .collect();
        from_sec.sort();
        trampolines.sort();
        assert_eq!(trampolines, from_sec, "one trampoline per .plt.sec stub");
    }
    stubs
}

/// Call targets in `main` of `bin`, as objdump shows them: (address, label).
fn calls_in_main(bin: &Path) -> Vec<(u64, String)> {
    let out =
        Command::new("objdump").args(["-d", "--no-show-raw-insn", "--disassemble=main"]).arg(bin).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let call = l.split_once("\tcall ")?.1.trim();
            let (addr, label) = call.split_once(" <")?;
            Some((u64::from_str_radix(addr.trim(), 16).ok()?, label.trim_end_matches('>').to_owned()))
        })
        .collect()
}

/// The fixture built with the flags that give each PLT layout.
const VARIANTS: [(&str, &[&str]); 6] = [
    ("plt-default", &["-O1"]),
    ("plt-lazy", &["-O1", "-fcf-protection=none", "-Wl,-z,lazy"]),
    ("plt-now", &["-O1", "-Wl,-z,now"]),
    // IBT PLT: .plt.sec stubs, .plt holds lazy-binding trampolines.
    ("plt-ibt", &["-O1", "-fcf-protection=full", "-Wl,-z,ibtplt"]),
    ("plt-ibt-now", &["-O1", "-fcf-protection=full", "-Wl,-z,ibtplt", "-Wl,-z,now"]),
    // Not PIE: file offsets differ from addresses.
    ("plt-nopie", &["-O1", "-no-pie"]),
];

#[test]
fn fixture_stubs_are_named_after_their_targets() {
    let dir = common::temp_dir("plt-fixture");
    let mut sym = Symbolizer::new();
    for (out, flags) in VARIANTS {
        let bin = common::gcc("plt.c", &dir, out, flags);
        let sections = plt_sections(&bin);
        assert_eq!(sections.contains_key(".plt.sec"), out.starts_with("plt-ibt"), "{out}: {sections:?}");
        let stubs = check_against_objdump(&mut sym, &bin);

        // The calls of main go to the stubs of puts and getpid.
        let calls = calls_in_main(&bin);
        for wanted in ["puts@plt", "getpid@plt"] {
            let &(target, ref label) = calls.iter().find(|(_, l)| l == wanted).expect("main calls it");
            assert_eq!(stubs.get(&target), Some(label), "{out}");
            let names = names_at(&mut sym, &bin, &[target, target + 1, target + 6, target + 15]);
            assert_eq!(names, [wanted; 4], "{out}");
        }
        // A PIE's __cxa_finalize (called from crtbeginS.o) goes through .plt.got.
        if !out.ends_with("nopie") {
            let got = sections[".plt.got"];
            assert_eq!(names_at(&mut sym, &bin, &[got.address, got.address + 7]), ["__cxa_finalize@plt"; 2], "{out}");
        }
        // Everything else resolves as before.
        let main = symbols_by_address(&bin).into_iter().find(|(_, n)| n.contains("main")).unwrap().0;
        assert_eq!(names_at(&mut sym, &bin, &[main, main + 4]), ["main"; 2], "{out}");
    }
}

#[test]
fn live_process_stubs_are_named_after_their_targets() {
    let dir = common::temp_dir("plt-live");
    for (out, flags) in [VARIANTS[0], VARIANTS[3], VARIANTS[5]] {
        let bin = common::gcc("plt.c", &dir, out, flags);
        let calls = calls_in_main(&bin);
        let stub = |name: &str| calls.iter().find(|(_, l)| l == name).expect("main calls it").0;
        let main = symbols_by_address(&bin).into_iter().find(|(_, n)| n.contains("main")).unwrap().0;
        let proc_ = common::spawn(&bin, 1);
        let base = proc_.addrs["main"] - main;
        let mut sym = Symbolizer::new();
        let addrs = [base + stub("puts@plt") + 4, proc_.addrs["main"], base + stub("getpid@plt")];
        let out_frames = sym.symbolize_user(proc_.pid(), &addrs);
        let frame = |function: &str| Frame {
            function: function.to_owned(),
            module: Some(out.to_owned()),
            file: None,
            line: None,
            inlined: false,
            jit: false,
            resolved: Resolution::Resolved,
        };
        assert_eq!(out_frames[0].frames, [frame("puts@plt")], "{out}");
        assert_eq!(out_frames[1].frames, [frame("main")], "{out}");
        assert_eq!(out_frames[2].frames, [frame("getpid@plt")], "{out}");
        assert_eq!(sym.stats().resolved, 3);
    }
}

/// Debian's python3 (no .plt.sec, 490-odd stubs) and libc (.plt out of
/// `.rela.plt` order, ifunc slots, .plt.got): every address of their PLT
/// sections is named as objdump names it, none `_init`.
#[test]
fn debian_python3_and_libc_stubs() {
    let mut sym = Symbolizer::new();
    let mut checked = 0;
    for path in ["/usr/bin/python3", LIBC] {
        let path = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(_) => {
                eprintln!("{path} missing; skipping it");
                continue;
            }
        };
        let stubs = check_against_objdump(&mut sym, &path);
        assert!(stubs.len() > 20, "{}: {} stubs", path.display(), stubs.len());
        assert!(stubs.values().all(|n| n.ends_with("@plt")));
        checked += 1;
    }
    assert!(checked > 0, "neither python3 nor libc found");
}

/// Threads (tests) on which a panic happened, even one caught inside the crate.
static PANICKED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A deterministic generator (xorshift64*).
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Bit flips in `.rela.plt`, `.plt`, `.plt.sec`, `.plt.got`, `.rela.dyn` and
/// `.dynsym` of the fixture and of libc: no panic (not even one caught
/// inside the crate), and one result per address.
#[test]
fn corrupt_plt_and_relocations_never_panic() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(name) = std::thread::current().name() {
            PANICKED.lock().unwrap().push(name.to_owned());
        }
        previous(info);
    }));
    let dir = common::temp_dir("plt-corrupt");
    let fixture = common::gcc("plt.c", &dir, "plt-ibt", VARIANTS[3].1);
    let mut state = 0x1234_5678_9abc_def1_u64;
    let mut sym = Symbolizer::new();
    for original in [fixture.as_path(), Path::new(LIBC)] {
        let bytes = std::fs::read(original).unwrap();
        let elf = object::File::parse(&*bytes).unwrap();
        let ranges: Vec<(usize, usize)> = [".rela.plt", ".plt", ".plt.sec", ".plt.got", ".rela.dyn", ".dynsym"]
            .iter()
            .filter_map(|n| elf.section_by_name(n)?.file_range())
            .map(|(o, s)| (o as usize, s as usize))
            .collect();
        let sections = plt_sections(original);
        let offsets: Vec<u64> =
            sections.values().flat_map(|s| (s.file_offset..s.file_offset + s.size).step_by(3)).collect();
        for round in 0..40 {
            let mut copy = bytes.clone();
            for _ in 0..1 + next(&mut state) % 32 {
                let (offset, size) = ranges[(next(&mut state) % ranges.len() as u64) as usize];
                copy[offset + (next(&mut state) % size as u64) as usize] ^= 1 << (next(&mut state) % 8);
            }
            // Each copy its own file (a new identity, not a cached table).
            let path = dir.join(format!("corrupt-{}-{round}", original.file_name().unwrap().to_str().unwrap()));
            std::fs::write(&path, &copy).unwrap();
            let out = sym.symbolize_file(&path, &offsets);
            assert_eq!(out.len(), offsets.len());
            assert!(out.iter().all(|s| !s.frames.is_empty()));
        }
    }
    let panicked = PANICKED.lock().unwrap();
    assert!(!panicked.iter().any(|t| t.contains("corrupt_plt")), "a panic happened: {panicked:?}");
}
