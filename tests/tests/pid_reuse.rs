//! Issue 8: a process whose pid is reused during a recording is not mixed
//! with its successor. `pid_reuse` runs `pid_reuse first 1` (1 s of CPU in
//! `pid_reuse::first_process`), then, once it is reaped, creates a process
//! with the very same pid (clone3 `set_tid`, as root) that runs `pid_reuse
//! second 1` (`pid_reuse::second_process`): same program and name, another
//! command line, other addresses (ASLR). Each must keep its own samples,
//! symbolized with its own mappings, under a root frame of its own.

use flameprof_tests::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn a_reused_pid_keeps_its_processes_apart() {
    root_or_skip!();
    let dir = TempDir::new("pid-reuse");
    let out = s(&dir.join("reuse.folded"));
    let workload = example("pid_reuse");
    let (run, summary) =
        flameprof_with_summary(&["-F", "999", "-o", &out, "--", &workload, "1"], T, "flameprof -- pid_reuse");
    let pid: u32 = run
        .stderr
        .lines()
        .find_map(|line| line.strip_prefix("pid_reuse: pid ")?.strip_suffix(" reused")?.parse().ok())
        .unwrap_or_else(|| panic!("the workload did not reuse a pid:\n{}", run.stderr));
    let folded = Folded::read(Path::new(&out));
    let roots_of = |function: &str| -> BTreeSet<String> {
        folded.stacks.iter().filter(|stack| stack.contains(function)).map(|stack| stack.root().to_string()).collect()
    };
    let (first, second) = ("pid_reuse::first_process", "pid_reuse::second_process");
    let (first_samples, second_samples) = (folded.with_frame(first), folded.with_frame(second));
    // 1 s of CPU each at 999 Hz.
    assert!(
        first_samples >= 700 && second_samples >= 700,
        "first {first_samples}, second {second_samples} samples; expected about 999 each:\n{}",
        folded.describe_top(8)
    );
    let (first_roots, second_roots) = (roots_of(first), roots_of(second));
    assert!(
        first_roots.len() == 1 && second_roots.len() == 1 && first_roots != second_roots,
        "first under {first_roots:?}, second under {second_roots:?}: each should have a root of its own"
    );
    for root in first_roots.iter().chain(&second_roots) {
        assert!(root.contains(&pid.to_string()), "root {root:?} does not name pid {pid}");
        let mixed = folded.sum_where(|stack| stack.root() == root && stack.contains(first) && stack.contains(second));
        assert_eq!(mixed, 0, "stacks under {root} hold both functions");
    }
    // Each process's own addresses resolve against its own mappings: were
    // the first symbolized with the second's (other addresses), its frames
    // would be unresolved.
    let unresolved = summary.get("frames.unresolved_percent");
    assert!(unresolved < 5.0, "{unresolved}% of frames unresolved:\n{}", folded.describe_top(8));
}
