//! Picks the BPF object the flameprof binary embeds (`include_bytes!` of
//! FLAMEPROF_BPF_OBJECT):
//! - in the workspace, with nightly's rust-src and bpf-linker: a fresh build
//!   of profiler-ebpf (by scripts/bpf-object.sh, the one place that knows how
//!   to build it reproducibly). A committed object that differs from it gets
//!   a warning, not an overwrite: a build never edits the source tree, and
//!   scripts/test.sh fails on the difference (`bpf-object.sh --check`);
//! - otherwise (only stable Rust, or the published crate, which has no
//!   profiler-ebpf source next to it): the committed bpf/flameprof.bpf.o.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

/// scripts/bpf-object.sh's exit status when this machine cannot build BPF.
const CANNOT_BUILD: i32 = 3;

fn main() {
    // The programs read x86-64 registers (pt_regs): the object is x86-64's.
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        panic!("flameprof's BPF programs read x86-64 registers: it builds for x86-64 Linux only");
    }
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let committed = manifest_dir.join("bpf/flameprof.bpf.o");
    println!("cargo:rerun-if-changed={}", committed.display());
    let object = match manifest_dir.parent().map(|workspace| workspace.join("scripts/bpf-object.sh")) {
        Some(script) if script.exists() => from_source(&script, &committed),
        _ => committed,
    };
    println!("cargo:rustc-env=FLAMEPROF_BPF_OBJECT={}", object.display());
}

/// The object built from source, or the committed one when this machine
/// cannot build BPF.
fn from_source(script: &Path, committed: &Path) -> PathBuf {
    let workspace = script.parent().and_then(Path::parent).unwrap();
    for path in ["profiler-ebpf/src", "profiler-ebpf/Cargo.toml", "Cargo.lock", "scripts/bpf-object.sh"] {
        println!("cargo:rerun-if-changed={}", workspace.join(path).display());
    }
    let fresh = PathBuf::from(env::var("OUT_DIR").unwrap()).join("flameprof.bpf.o");
    let status = Command::new(script)
        .arg("--build")
        .arg(&fresh)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {} ({e})", script.display()));
    match status.code() {
        Some(0) => {}
        Some(CANNOT_BUILD) => {
            println!(
                "cargo:warning=using the committed BPF object profiler/bpf/flameprof.bpf.o \
                 (to rebuild it from profiler-ebpf, run scripts/setup.sh)"
            );
            return committed.to_path_buf();
        }
        _ => panic!("building the BPF programs failed (see above)"),
    }
    if std::fs::read(&fresh).ok() != std::fs::read(committed).ok() {
        println!(
            "cargo:warning=profiler/bpf/flameprof.bpf.o differs from profiler-ebpf's source \
             (this build uses the source): run scripts/bpf-object.sh --update and commit it"
        );
    }
    fresh
}
