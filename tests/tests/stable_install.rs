//! `cargo install --path profiler` with stable Rust alone (no nightly, no
//! bpf-linker: scripts/stable-install.sh sets that up) builds a flameprof
//! that embeds the committed BPF object and profiles correctly.

use flameprof_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Only flameprof itself compiles (from a copy of this workspace's release
/// build); a loaded 2-CPU machine takes a few minutes.
const INSTALL: Duration = Duration::from_secs(20 * 60);
const T: Duration = Duration::from_secs(40);

#[test]
fn a_stable_only_install_profiles_a_3_to_1_split() {
    root_or_skip!();
    let dir = TempDir::new("stable-install");
    let root = dir.join("root");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = release_dir().parent().expect("the release directory has a parent").to_path_buf();
    let mut install = Command::new(workspace.join("scripts/stable-install.sh"));
    install.arg(&root).arg("--reuse").arg(&target);
    let run = run_command(install, INSTALL);
    run.assert_success("scripts/stable-install.sh");
    let installed = root.join("bin/flameprof");

    let out = dir.join("split.folded");
    let json = dir.join("summary.json");
    let mut profile = Command::new(&installed);
    profile.args(["-F", "999", "-o"]).arg(&out).arg("--summary-json").arg(&json);
    profile.args(["--", &example("cpu_split"), "3", "3"]);
    let run = run_command(profile, T);
    run.assert_success("the stable-only flameprof -- cpu_split 2 3");
    let summary = Summary::read(&json);
    assert_eq!(summary.value("event"), "cpu-clock", "the summary's event:\n{summary}");
    let folded = Folded::read(&out);
    let hot = folded.with_frame("cpu_split::hot_three_quarters");
    let cold = folded.with_frame("cpu_split::cold_one_quarter");
    let n = hot + cold;
    assert!(n >= 300, "only {n} samples in hot/cold:\n{}", folded.describe_top(8));
    let hot = share(hot, cold);
    assert!((hot - 0.75).abs() <= 0.07, "hot share {hot:.3} of {n} samples, expected 0.75 ± 0.07");
}
