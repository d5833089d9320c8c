//! Helpers shared by the integration tests: build fixtures with gcc/g++ into a
//! private temp dir, run them, read the addresses they print.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn fixture_src(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fresh directory per test, so parallel tests do not step on each other;
/// removed when dropped.
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn temp_dir(test: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("symbolize-tests-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// Compiles fixture `src` into `dir/out` with `compiler` and `flags`.
pub fn compile(compiler: &str, src: &str, dir: &Path, out: &str, flags: &[&str]) -> PathBuf {
    let out = dir.join(out);
    let status = Command::new(compiler)
        .args(flags)
        .arg(fixture_src(src))
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(status.success(), "{compiler} failed on {src}");
    out
}

pub fn gcc(src: &str, dir: &Path, out: &str, flags: &[&str]) -> PathBuf {
    compile("gcc", src, dir, out, flags)
}

pub fn run(cmd: &str, args: &[&str]) {
    let status = Command::new(cmd).args(args).status().unwrap();
    assert!(status.success(), "{cmd} {args:?} failed");
}

/// A running fixture and the `name=0xADDR` lines it printed; killed on drop.
pub struct Running {
    pub child: Child,
    pub addrs: HashMap<String, u64>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `bin sleep` and reads `expected` address lines from it.
pub fn spawn(bin: &Path, expected: usize) -> Running {
    let mut child = Command::new(bin)
        .arg("sleep")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut addrs = HashMap::new();
    for _ in 0..expected {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let (name, value) = line.trim().split_once('=').expect("name=0xADDR line");
        let value = u64::from_str_radix(value.trim_start_matches("0x"), 16).unwrap();
        addrs.insert(name.to_owned(), value);
    }
    Running { child, addrs }
}

/// Line number of the line of `src` containing `marker`.
pub fn marker_line(src: &str, marker: &str) -> u32 {
    let text = std::fs::read_to_string(fixture_src(src)).unwrap();
    let i = text.lines().position(|l| l.contains(marker)).expect("marker present");
    i as u32 + 1
}

/// Canonical path of the fixture source as gcc records it in DWARF.
pub fn src_path(src: &str) -> String {
    fixture_src(src).to_string_lossy().into_owned()
}
