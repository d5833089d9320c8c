//! Issue 8: the counts of processes that end during a recording are drained
//! from the kernel while it runs, symbolized at once (before their
//! snapshots are forgotten) and kept by symbolized stack. `churn` starts
//! short-lived children (each burns about 0.2 ms in `churn::child_a`, `_b`
//! or `_c`, then exits) for 6 s: their counts are drained pass by pass,
//! every 2 s, and every one of their samples must reach the output, named.

use flameprof_tests::*;
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

#[test]
fn every_sample_of_processes_drained_while_recording_is_in_the_output() {
    root_or_skip!();
    let dir = TempDir::new("drained");
    let out = s(&dir.join("churn.folded"));
    let churn = example("churn");
    // Frame pointers: every sample goes to the kernel's count maps. With
    // `table` most of a 0.2 ms child's samples come before its tables and
    // arrive as stack copies instead, which are not drained from the maps.
    let args = ["-F", "999", "--call-graph", "fp", "-o", &out, "--", &churn, "6", "300"];
    let (_, summary) = flameprof_with_summary(&args, T, "flameprof -- churn 6 300");
    let folded = Folded::read(Path::new(&out));
    let (taken, recorded, lost) =
        (summary.get("samples.taken"), summary.get("samples.recorded"), summary.get("samples.lost"));
    assert_eq!(recorded + lost, taken, "recorded + lost != taken:\n{summary}");
    assert_eq!(folded.total() as f64, recorded, "the folded output does not hold the recorded samples:\n{summary}");
    // The children ended during the recording: their counts were drained
    // and their snapshots forgotten while it ran.
    let passes = summary.get("symbolization.drain_passes");
    let drained = summary.get("symbolization.drained_entries");
    let forgotten = summary.get("symbolization.snapshots_forgotten");
    assert!(passes >= 2.0 && drained >= 100.0 && forgotten >= 100.0, "too little drained:\n{summary}");
    // Drained samples keep their names: the children's functions, under
    // roots of their own (`churn-PID`). A child burns 0.2 ms, so most get
    // no sample or one in the kernel's fork or exit path: 1800 children
    // gave 33 to 59 such roots here, before and after this change.
    let in_children = |stack: &Stack| stack.frames.iter().any(|frame| frame.starts_with("churn::child_"));
    let children: HashSet<&str> = folded.stacks.iter().filter(|stack| in_children(stack)).map(Stack::root).collect();
    assert!(
        children.len() >= 20,
        "only {} processes show churn::child_* frames; drained {drained} entries:\n{}",
        children.len(),
        folded.describe_top(8)
    );
}
