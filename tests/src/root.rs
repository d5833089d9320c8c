//! Root check: the tests need root for BPF.

/// True when the test may go on. Not root: with `CI` set the test fails,
/// otherwise a loud SKIPPED line is printed and the caller returns.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    // libtest names each test's thread after the test.
    let test = match std::thread::current().name() {
        Some(name) if name != "main" => format!("{test}::{name}"),
        _ => test.to_string(),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs root (BPF) and CI is set: failing instead of skipping");
    }
    let line = format!("!!!!! SKIPPED (needs root): {test} !!!!!");
    println!("{line}");
    eprintln!("{line}");
    false
}

/// `root_or_skip!()` at the top of a test: returns early (loudly) when not root.
#[macro_export]
macro_rules! root_or_skip {
    () => {
        if !$crate::root::require_root(module_path!()) {
            return;
        }
    };
}
