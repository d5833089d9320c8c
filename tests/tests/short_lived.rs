//! Issue 11: mappings from the kernel, as they happen. A stream of 1000
//! processes of 10-50 ms each (`short_lived`): nearly every sample is named
//! (the bar: at most 0.5 % of samples with an unknown user leaf),
//! in the function its process was given, in the shares given by
//! construction; the summary counts what the kernel reported and what
//! stayed unresolved. A process that execs (`exec_switch`): what ran
//! before and after the exec are each named from their own program.

use flameprof_tests::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(240);

/// The first user frame from the leaf (None: kernel frames only).
fn user_leaf(stack: &Stack) -> Option<&str> {
    stack.frames.iter().skip(1).rev().map(String::as_str).find(|frame| !is_kernel(frame))
}

#[test]
fn short_lived_processes_are_named() {
    root_or_skip!();
    let dir = TempDir::new("short-lived");
    let out = s(&dir.join("short.folded"));
    let workload = example("short_lived");
    let (run, summary) = flameprof_with_summary(
        &["-F", "999", "-o", &out, "--", &workload, "1000", "2"],
        T,
        "flameprof -- short_lived 1000 2",
    );
    let given: Vec<u64> = run
        .stderr
        .lines()
        .find_map(|line| line.split_once("short_0..short_9: ").map(|(_, ms)| ms.to_string()))
        .unwrap_or_else(|| panic!("short_lived did not report its processes:\n{}", run.stderr))
        .split(' ')
        .map(|ms| ms.parse().expect("ms"))
        .collect();
    let folded = Folded::read(Path::new(&out));
    let total = folded.total();
    let unknown_leaf = folded.sum_where(|stack| user_leaf(stack) == Some("[unknown]"));
    let unknown_percent = 100.0 * unknown_leaf as f64 / total.max(1) as f64;
    eprintln!("short_lived: {total} samples, {unknown_leaf} with an [unknown] user leaf ({unknown_percent:.2}%)");
    assert!(
        unknown_percent <= 0.5,
        "{unknown_percent:.2}% of {total} samples have an [unknown] user leaf (at most 0.5%):\n{}\nstderr:\n{}",
        folded.describe_top(12),
        run.stderr
    );
    // Every function got its share of the CPU time given by construction.
    let named: BTreeMap<usize, u64> =
        (0..10).map(|k| (k, folded.with_frame(&format!("short_lived::short_{k}")))).collect();
    let named_total: u64 = named.values().sum();
    let given_total: u64 = given.iter().sum();
    // 999 Hz: a sample per ms of CPU; a process also spends some of its
    // CPU time starting (exec, the loader) outside its function.
    assert!(
        named_total as f64 >= 0.85 * given_total as f64,
        "{named_total} samples in short_0..short_9, for {given_total} ms of CPU given:\n{}",
        folded.describe_top(12)
    );
    for (k, &samples) in &named {
        let share = 100.0 * samples as f64 / named_total as f64;
        let expected = 100.0 * given[*k] as f64 / given_total as f64;
        assert!(
            (share - expected).abs() <= 2.0,
            "short_{k}: {share:.2}% of the named samples, {expected:.2}% by construction"
        );
    }
    // The summary says where the mappings came from and what stayed unresolved.
    let from_reports = summary.get("processes.reported_by_kernel.processes_from_reports");
    assert!(from_reports >= 900.0, "only {from_reports} processes symbolized from the kernel's reports");
    assert!(summary.get("processes.reported_by_kernel.execs") >= 1000.0);
    let _lost = summary.get("processes.reported_by_kernel.lost");
    assert!(summary.value("frames.unresolved_by_cause").is_object());
    let _ended = summary.get("processes.ended_before_snapshot");
}

#[test]
fn an_exec_keeps_each_program_its_own_frames() {
    root_or_skip!();
    let dir = TempDir::new("exec-switch");
    let out = s(&dir.join("exec.folded"));
    let workload = example("exec_switch");
    let (run, _summary) =
        flameprof_with_summary(&["-F", "999", "-o", &out, "--", &workload, "400"], T, "flameprof -- exec_switch 400");
    let folded = Folded::read(Path::new(&out));
    let (before, after) = ("exec_switch::before_exec", "short_lived::after_exec");
    let (before_samples, after_samples) = (folded.with_frame(before), folded.with_frame(after));
    assert!(
        before_samples >= 280 && after_samples >= 280,
        "before the exec {before_samples}, after {after_samples} samples; expected about 400 each:\n{}\nstderr:\n{}",
        folded.describe_top(10),
        run.stderr
    );
    let root_of = |function: &str| -> Vec<String> {
        let mut roots: Vec<String> = folded
            .stacks
            .iter()
            .filter(|stack| stack.contains(function))
            .map(|stack| stack.root().to_string())
            .collect();
        roots.sort();
        roots.dedup();
        roots
    };
    let (before_roots, after_roots) = (root_of(before), root_of(after));
    assert!(
        before_roots.len() == 1 && after_roots.len() == 1 && before_roots != after_roots,
        "before the exec under {before_roots:?}, after under {after_roots:?}: each program should have a tower of its own"
    );
    assert!(before_roots[0].starts_with("exec_switch"), "pre-exec tower named {:?}", before_roots[0]);
    assert!(after_roots[0].starts_with("short_lived"), "post-exec tower named {:?}", after_roots[0]);
    let unknown = folded.sum_where(|stack| user_leaf(stack) == Some("[unknown]"));
    assert!(
        unknown * 100 <= folded.total(),
        "{unknown} of {} samples with an [unknown] user leaf:\n{}",
        folded.total(),
        folded.describe_top(10)
    );
}
