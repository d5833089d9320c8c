//! Where the release binaries are: flameprof and the example workloads.

use std::path::{Path, PathBuf};

/// `target/release/` of this workspace.
pub fn release_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| manifest.join("..").join("target"));
    target.join("release")
}

/// Path of a release binary (flameprof or an example workload); panics with
/// the command to build it when it is missing.
pub fn bin(name: &str) -> PathBuf {
    let path = release_dir().join(name);
    if !path.is_file() {
        panic!(
            "binary {} is missing: build it first with \
             `cargo build --release -p flameprof -p flameprof-examples`",
            path.display()
        );
    }
    path
}

pub fn flameprof_bin() -> PathBuf {
    bin("flameprof")
}

/// Path of an example as a string (for `-- CMD` argument lists).
pub fn example(name: &str) -> String {
    bin(name).to_string_lossy().into_owned()
}
