//! `-e`: what on-CPU sampling counts. cpu-clock (the default) everywhere;
//! cycles where a hardware PMU can sample, else one clear error before
//! anything starts.

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(40);

/// Whether this machine has a CPU PMU (the kernel lists it as an event source).
fn has_cpu_pmu() -> bool {
    ["/sys/bus/event_source/devices/cpu", "/sys/bus/event_source/devices/cpu_core"]
        .iter()
        .any(|p| Path::new(p).exists())
}

/// `-F 999 -o FOLDED ARGS -- cpu_split 3 3`: the hot share and the summary.
fn cpu_split_with(extra: &[&str]) -> (f64, u64, Folded, Summary) {
    let dir = TempDir::new("event");
    let out = s(&dir.join("split.folded"));
    let cpu_split = example("cpu_split");
    let mut args = vec!["-F", "999", "-o", &out];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", &cpu_split, "3", "3"]);
    let (_, summary) = flameprof_with_summary(&args, T, &format!("flameprof {}", args.join(" ")));
    let folded = Folded::read(Path::new(&out));
    let hot = folded.with_frame("cpu_split::hot_three_quarters");
    let cold = folded.with_frame("cpu_split::cold_one_quarter");
    (share(hot, cold), hot + cold, folded, summary)
}

#[test]
fn the_summary_names_cpu_clock_by_default() {
    root_or_skip!();
    for extra in [&[][..], &["-e", "cpu-clock"][..]] {
        let (hot, n, folded, summary) = cpu_split_with(extra);
        assert_eq!(summary.value("event"), "cpu-clock", "flameprof {extra:?}: the summary's event:\n{summary}");
        assert!(n >= 300, "flameprof {extra:?}: only {n} samples in hot/cold:\n{}", folded.describe_top(8));
        assert!((hot - 0.75).abs() <= 0.07, "flameprof {extra:?}: hot share {hot:.3} of {n} samples, expected 0.75");
    }
    // Off-CPU samples nothing: no event.
    let dir = TempDir::new("event-off");
    let out = s(&dir.join("off.folded"));
    let (_, summary) = flameprof_with_summary(&["--off-cpu", "-o", &out, "--", "sleep", "0.2"], T, "--off-cpu");
    assert!(summary.value("event").is_null(), "--off-cpu: the summary's event should be null:\n{summary}");
}

/// Where a PMU can sample, cycles samples: the 3:1 split holds (cycles go
/// where the CPU time goes in a loop of the same instructions). Without
/// one: one line naming the event and the way out, exit status 1, no
/// output, no BPF left, and the command never ran.
#[test]
fn cycles_samples_where_a_pmu_exists_else_fails_cleanly() {
    root_or_skip!();
    if has_cpu_pmu() {
        let (hot, n, folded, summary) = cpu_split_with(&["-e", "cycles"]);
        assert_eq!(summary.value("event"), "cycles", "the summary's event:\n{summary}");
        assert!(n >= 300, "-e cycles: only {n} samples in hot/cold:\n{}", folded.describe_top(8));
        assert!((hot - 0.75).abs() <= 0.07, "-e cycles: hot share {hot:.3} of {n} samples, expected 0.75");
        return;
    }
    let dir = TempDir::new("cycles");
    let out = dir.join("x.folded");
    let json = dir.join("summary.json");
    let marker = dir.join("ran");
    let bpf = BpfSnapshot::take();
    let args = [
        "-e".to_string(),
        "cycles".into(),
        "-o".into(),
        s(&out),
        "--summary-json".into(),
        s(&json),
        "--".into(),
        "touch".into(),
        s(&marker),
    ];
    let run = flameprof(&args, T);
    assert_clean_error("-e cycles without a PMU", &run, &["cycles"], Some(&out));
    assert_eq!(run.code(), Some(1), "-e cycles without a PMU: exit status\n{}", run.stderr);
    for needle in ["no hardware PMU", "-e cpu-clock"] {
        assert!(run.stderr.contains(needle), "-e cycles: the error line does not say {needle:?}:\n{}", run.stderr);
    }
    assert!(!json.exists(), "-e cycles: --summary-json was written");
    assert!(!marker.exists(), "-e cycles: the command ran although nothing could be recorded");
    bpf.assert_none_left("-e cycles");
}

/// cycles are not time: --wall (which adds samples to off-CPU time) and
/// --off-cpu (which samples nothing) refuse -e cycles as a usage error.
#[test]
fn cycles_is_for_on_cpu_profiles_only() {
    for (args, needle) in
        [(&["-e", "cycles", "--wall"][..], "--wall"), (&["-e", "cycles", "--off-cpu"][..], "--off-cpu")]
    {
        let run = flameprof(&[args, &["--", "true"]].concat(), T);
        assert_clean_error(&format!("flameprof {}", args.join(" ")), &run, &[needle], None);
        assert_eq!(run.code(), Some(2), "flameprof {}: a usage error exits with 2\n{}", args.join(" "), run.stderr);
    }
}
