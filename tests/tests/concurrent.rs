//! Issue 8: two flameprof runs at once each give correct profiles. Each run
//! loads its own BPF object (its own maps and timers), so neither sees the
//! other's samples: a command's profile shows its own split and nothing of
//! the other run's workload, and a system-wide run alongside sees both.

use flameprof_tests::*;
use std::process::Child;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// Samples a split needs before its share is judged: 6 s of wall time give
/// about 6000 at 999 Hz on an idle machine, a few hundred on a crowded one
/// (the workloads run for wall time, not CPU time); at 300 the ±0.07 bound
/// is about three standard deviations.
const MIN_SAMPLES: u64 = 300;

/// `cpu_split 6 3`: 3:1 between these two functions.
const SPLIT_HOT: &str = "cpu_split::hot_three_quarters";
const SPLIT_COLD: &str = "cpu_split::cold_one_quarter";
/// `threads 6 2`: two workers with the same share.
const WORKER_0: &str = "threads::worker_0";
const WORKER_1: &str = "threads::worker_1";

/// Starts `flameprof --summary-json DIR/NAME.json -F 999 -o DIR/NAME.folded ARGS`.
fn start(dir: &TempDir, name: &str, args: &[&str]) -> Child {
    let json = s(&dir.join(&format!("{name}.json")));
    let out = s(&dir.join(&format!("{name}.folded")));
    let mut all = vec!["--summary-json", &json, "-F", "999", "-o", &out];
    all.extend_from_slice(args);
    spawn_flameprof(&all)
}

/// Waits for a run started by `start` and reads what it wrote.
fn finish(dir: &TempDir, name: &str, child: Child) -> (Folded, Summary) {
    wait_with_timeout(child, T, name).assert_success(name);
    let folded = Folded::read(&dir.join(&format!("{name}.folded")));
    let summary = Summary::read(&dir.join(&format!("{name}.json")));
    (folded, summary)
}

fn assert_nothing_lost(name: &str, summary: &Summary) {
    assert_eq!(summary.get("samples.lost"), 0.0, "{name}: samples lost:\n{summary}");
    assert_eq!(summary.get("processes.not_announced"), 0.0, "{name}: processes not announced:\n{summary}");
}

/// The 3:1 split of `cpu_split 6 3`, and no sample of `threads`.
fn assert_split_only(name: &str, folded: &Folded) {
    let (hot, cold) = (folded.with_frame(SPLIT_HOT), folded.with_frame(SPLIT_COLD));
    assert!(hot + cold >= MIN_SAMPLES, "{name}: only {} samples in hot/cold:\n{}", hot + cold, folded.describe_top(8));
    let hot_share = share(hot, cold);
    assert!(
        (hot_share - 0.75).abs() <= 0.07,
        "{name}: hot share {hot_share:.3} of {} samples, expected 0.75 ± 0.07\n{}",
        hot + cold,
        folded.describe_top(8)
    );
    let foreign = folded.sum_where(|stack| stack.frames.iter().any(|f| f.starts_with("threads::")));
    assert_eq!(foreign, 0, "{name}: {foreign} samples of the other run's workload:\n{}", folded.describe_top(8));
}

/// The 1:1 split of the two workers of `threads 6 2`, and no sample of `cpu_split`.
fn assert_workers_only(name: &str, folded: &Folded) {
    let (w0, w1) = (folded.with_frame(WORKER_0), folded.with_frame(WORKER_1));
    assert!(w0 + w1 >= MIN_SAMPLES, "{name}: only {} samples in the workers:\n{}", w0 + w1, folded.describe_top(8));
    let w0_share = share(w0, w1);
    assert!(
        (w0_share - 0.5).abs() <= 0.07,
        "{name}: worker_0's share {w0_share:.3} of {} samples, expected 0.5 ± 0.07\n{}",
        w0 + w1,
        folded.describe_top(8)
    );
    let foreign = folded.sum_where(|stack| stack.frames.iter().any(|f| f.starts_with("cpu_split::")));
    assert_eq!(foreign, 0, "{name}: {foreign} samples of the other run's workload:\n{}", folded.describe_top(8));
}

/// Two `-- CMD` recordings at once, of two workloads with different splits.
#[test]
fn two_command_runs_at_once_each_see_only_their_command() {
    root_or_skip!();
    let dir = TempDir::new("concurrent");
    let (split, threads) = (example("cpu_split"), example("threads"));
    let a = start(&dir, "split", &["--", &split, "6", "3"]);
    let b = start(&dir, "threads", &["--", &threads, "6", "2"]);
    let (split_folded, split_summary) = finish(&dir, "split", a);
    let (threads_folded, threads_summary) = finish(&dir, "threads", b);
    assert_nothing_lost("split", &split_summary);
    assert_nothing_lost("threads", &threads_summary);
    assert_split_only("split", &split_folded);
    assert_workers_only("threads", &threads_folded);
    // Each run's timers are on its own command's tasks only.
    for (name, summary) in [("split", &split_summary), ("threads", &threads_summary)] {
        assert_eq!(summary.get("samples.other_processes_interrupted"), 0.0, "{name}:\n{summary}");
    }
}

/// A `-p` recording and a system-wide one at once, while a `-- CMD` one
/// runs too: the `-p` and command profiles hold only their own process, the
/// system-wide one both workloads, each with its split. The system-wide run
/// walks frame pointers: with tables it compiles those of every program
/// running, and on a machine busy building Rust (rustc's LLVM library takes
/// seconds) its loop is late to read the workloads' mappings, which is not
/// what this test is about.
#[test]
fn process_and_system_wide_runs_alongside_a_command_run() {
    root_or_skip!();
    let dir = TempDir::new("concurrent");
    let (split, threads) = (example("cpu_split"), example("threads"));
    let target = Background::spawn(&split, &["7", "3"]);
    let pid = target.pid().to_string();
    let by_pid = start(&dir, "pid", &["-d", "5", "-p", &pid]);
    let all = start(&dir, "all", &["-d", "5", "-a", "--call-graph", "fp"]);
    let command = start(&dir, "threads", &["--", &threads, "6", "2"]);
    let (pid_folded, pid_summary) = finish(&dir, "pid", by_pid);
    let (all_folded, all_summary) = finish(&dir, "all", all);
    let (threads_folded, threads_summary) = finish(&dir, "threads", command);
    for (name, summary) in [("pid", &pid_summary), ("all", &all_summary), ("threads", &threads_summary)] {
        assert_nothing_lost(name, summary);
    }
    assert_split_only("pid", &pid_folded);
    assert_workers_only("threads", &threads_folded);
    // System-wide: both workloads, each with its own split (the command may
    // start a little after the -a run, so its share is not asserted).
    let (hot, cold) = (all_folded.with_frame(SPLIT_HOT), all_folded.with_frame(SPLIT_COLD));
    let (w0, w1) = (all_folded.with_frame(WORKER_0), all_folded.with_frame(WORKER_1));
    assert!(
        hot + cold >= MIN_SAMPLES && w0 + w1 >= MIN_SAMPLES,
        "-a: hot+cold {}, workers {}:\n{}",
        hot + cold,
        w0 + w1,
        { all_folded.describe_top(12) }
    );
    assert!((share(hot, cold) - 0.75).abs() <= 0.07, "-a: hot share {:.3}", share(hot, cold));
    assert!((share(w0, w1) - 0.5).abs() <= 0.07, "-a: worker_0 share {:.3}", share(w0, w1));
    drop(target);
}
