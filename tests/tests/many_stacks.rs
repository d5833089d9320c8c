//! Issue 8: 100 000 distinct stacks in one recording. `many_stacks` visits a
//! new stack every few microseconds by construction; sampled at 10 kHz
//! nearly every sample has a stack of its own. The maps of counts hold them
//! all (loss under 0.1 %), and when a map is too small every sample it
//! drops is counted exactly: recorded + lost = taken, and the folded
//! output holds exactly the recorded ones.

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(300);

/// Records `-F 10000 -- many_stacks 6 2` (12 s of CPU: about 120 000
/// samples) with `extra` flags; returns the folded profile and the summary.
fn record(extra: &[&str]) -> (Folded, Summary) {
    let dir = TempDir::new("many-stacks");
    let out = s(&dir.join("many.folded"));
    let workload = example("many_stacks");
    let mut args = vec!["-F", "10000", "-o", &out];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", &workload, "6", "2"]);
    let (_, summary) = flameprof_with_summary(&args, T, "flameprof -- many_stacks");
    (Folded::read(Path::new(&out)), summary)
}

/// Every sample taken is recorded or lost, the losses are the sum of their
/// causes, and the folded file holds exactly the recorded samples.
fn assert_accounted(folded: &Folded, summary: &Summary) {
    let (taken, recorded, lost) =
        (summary.get("samples.taken"), summary.get("samples.recorded"), summary.get("samples.lost"));
    assert_eq!(recorded + lost, taken, "recorded + lost != taken:\n{summary}");
    let causes = summary.get("samples.lost_by_cause.counts_map_full")
        + summary.get("samples.lost_by_cause.counts_map_no_memory")
        + summary.get("samples.lost_by_cause.scratch_unavailable")
        + summary.get("samples.lost_by_cause.stack_copies_not_drained");
    assert_eq!(causes, lost, "losses by cause do not add up:\n{summary}");
    assert_eq!(folded.total() as f64, recorded, "the folded output does not hold the recorded samples:\n{summary}");
}

#[test]
fn a_hundred_thousand_distinct_stacks_are_all_kept() {
    root_or_skip!();
    let (folded, summary) = record(&[]);
    assert_accounted(&folded, &summary);
    let taken = summary.get("samples.taken");
    let lost = summary.get("samples.lost");
    assert!(lost <= 0.001 * taken, "{lost} of {taken} samples lost (over 0.1 %):\n{summary}");
    // Distinct stacks of the profile (symbolized; raw keys are not kept).
    let distinct = summary.get("frames.distinct_stacks");
    assert!(distinct >= 100_000.0, "only {distinct} distinct stacks in the profile:\n{summary}");
    // Every line of the folded file is one.
    let leaf_stacks = folded.sum_where(|stack| stack.leaf() == "many_stacks::leaf" && stack.count == 1);
    assert!(
        folded.stacks.len() >= 100_000 && leaf_stacks >= 90_000,
        "{} distinct folded stacks, {leaf_stacks} seen once in many_stacks::leaf; expected 100 000 and 90 000:\n{}",
        folded.stacks.len(),
        folded.describe_top(8)
    );
    // Each such stack spells its counter in left/right frames under `leaf`.
    let spelled = folded.sum_where(|stack| {
        stack.frames.iter().filter(|f| *f == "many_stacks::left" || *f == "many_stacks::right").count() == 24
    });
    assert!(spelled >= 90_000, "only {spelled} samples under 24 left/right frames:\n{}", folded.describe_top(8));
}

/// Maps of counts with room for 5000 stacks: most samples are lost, and
/// every one of them is counted.
#[test]
fn every_sample_a_full_map_drops_is_counted() {
    root_or_skip!();
    let (folded, summary) = record(&["--count-map-entries", "5000"]);
    assert_accounted(&folded, &summary);
    let full = summary.get("samples.lost_by_cause.counts_map_full");
    assert!(full >= 50_000.0, "only {full} samples lost to a full map of 5000 entries:\n{summary}");
    // Samples before the process's tables were loaded, and walks that met
    // code whose tables were not loaded yet, come as stack copies counted in
    // user space, not in the map: at most one stack each.
    let copied = summary.get("table_unwinding.copied_before_tables_loaded")
        + summary.get("table_unwinding.copied_at_code_outside_known_mappings");
    assert!(
        folded.stacks.len() as f64 <= 5000.0 + copied,
        "{} stacks from a map of 5000 entries and {copied} stack copies",
        folded.stacks.len()
    );
}
