//! Workloads written in C (`examples/c/*.c`), compiled by the tests with
//! Debian's gcc and the flags a test needs (for example without frame
//! pointers, as distributions build their packages).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::binaries::release_dir;

/// Compiles `examples/c/NAME.c` with `flags` (once per set of flags) into
/// `target/release/c/`, and returns the binary's path.
pub fn c_program(name: &str, flags: &[&str]) -> PathBuf {
    let tag: String = flags.join("").chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    compile(name, &format!("{name}-{tag}"), flags, &["-lpthread", "-ldl"])
}

/// Compiles `examples/c/NAME.c` into the shared library `OUTPUT.so` with
/// `flags` (position-independent, with its DWARF), and returns its path.
pub fn c_library(name: &str, output: &str, flags: &[&str]) -> PathBuf {
    let flags: Vec<&str> = ["-shared", "-fPIC"].into_iter().chain(flags.iter().copied()).collect();
    compile(name, &format!("{output}.so"), &flags, &[])
}

/// Runs gcc on `examples/c/NAME.c` into `target/release/c/OUTPUT` unless
/// that is newer than the source.
fn compile(name: &str, output: &str, flags: &[&str], libraries: &[&str]) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/c").join(format!("{name}.c"));
    let dir = release_dir().join("c");
    std::fs::create_dir_all(&dir).expect("create target/release/c");
    let binary = dir.join(output);
    let fresh = |b: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(b), modified(&source)), (Some(b), Some(s)) if b >= s)
    };
    if !fresh(&binary) {
        // Built under another name, then renamed: tests running at once
        // never see half a binary.
        let partial = dir.join(format!("{output}.{}.partial", std::process::id()));
        let status = Command::new("gcc")
            .args(flags)
            .arg("-g")
            .arg("-o")
            .arg(&partial)
            .arg(&source)
            .args(libraries)
            .status()
            .unwrap_or_else(|e| panic!("cannot run gcc (Debian package gcc): {e}"));
        assert!(status.success(), "gcc {flags:?} {} failed", source.display());
        std::fs::rename(&partial, &binary).expect("rename the compiled program");
    }
    binary
}
