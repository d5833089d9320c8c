//! Builds the BPF programs (profiler-ebpf's binary) for bpfel-unknown-none
//! with nightly and bpf-linker, and leaves the object in OUT_DIR for
//! `include_bytes!`: the flameprof binary carries its BPF code with it.
use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().unwrap().to_path_buf();
    let ebpf_dir = workspace.join("profiler-ebpf");
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    // A target dir of its own: the nightly build must not fight the outer
    // build for its lock, and stays cached across builds.
    let target_dir = workspace.join("target").join("bpf");

    for path in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", ebpf_dir.join(path).display());
    }

    let mut cargo = Command::new("rustup");
    cargo
        .args(["run", "nightly", "cargo", "build", "--release"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .args(["--bin", "flameprof-bpf", "--target-dir"])
        .arg(&target_dir)
        .current_dir(&ebpf_dir)
        // BTF in the object lets the kernel check and describe the maps.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Cdebuginfo=2\x1f-Clink-arg=--btf");
    // The outer (stable) cargo's settings must not leak into the nightly build.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let leaks = key.starts_with("CARGO_")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
            || key == "RUSTUP_TOOLCHAIN";
        if leaks && key != "CARGO_ENCODED_RUSTFLAGS" && key != "CARGO_HOME" {
            cargo.env_remove(&key);
        }
    }
    let status = cargo
        .status()
        .unwrap_or_else(|e| panic!("cannot run rustup to build the BPF programs ({e}); run scripts/setup.sh first"));
    if !status.success() {
        panic!(
            "building the BPF programs failed (see above); \
             run scripts/setup.sh to install nightly's rust-src and bpf-linker"
        );
    }
    let object = target_dir.join("bpfel-unknown-none/release/flameprof-bpf");
    std::fs::copy(&object, out_dir.join("flameprof.bpf.o"))
        .unwrap_or_else(|e| panic!("cannot copy {}: {e}", object.display()));
}
