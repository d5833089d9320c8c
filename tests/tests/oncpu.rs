//! Issue 2: on-CPU sampling, end to end (real flameprof, real workloads).

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(40);

/// Records `-F 999 -- cpu_split SECONDS RATIO` and returns the hot share
/// among samples in hot or cold.
fn cpu_split_hot_share(seconds: &str, ratio: &str) -> (f64, u64, Folded) {
    let (hot, n, folded, _) = cpu_split_hot_share_with(&[], seconds, ratio);
    (hot, n, folded)
}

fn cpu_split_hot_share_with(extra: &[&str], seconds: &str, ratio: &str) -> (f64, u64, Folded, Summary) {
    let (hot, n, folded, summary, _) = cpu_split_run(extra, seconds, ratio);
    (hot, n, folded, summary)
}

/// As `cpu_split_hot_share_with`, and flameprof's run (its stderr).
fn cpu_split_run(extra: &[&str], seconds: &str, ratio: &str) -> (f64, u64, Folded, Summary, Run) {
    let dir = TempDir::new("split");
    let out = dir.join("split.folded");
    let out = s(&out);
    let cpu_split = example("cpu_split");
    let mut args = vec!["-F", "999", "-o", &out];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", &cpu_split, seconds, ratio]);
    let (run, summary) = flameprof_with_summary(&args, T, "flameprof -- cpu_split");
    let folded = Folded::read(Path::new(&out));
    let hot = folded.with_frame("cpu_split::hot_three_quarters");
    let cold = folded.with_frame("cpu_split::cold_one_quarter");
    (share(hot, cold), hot + cold, folded, summary, run)
}

/// At least 300 samples in hot or cold, three quarters of them in hot.
fn assert_three_quarters(hot: f64, n: u64, folded: &Folded) {
    assert!(n >= 300, "only {n} samples in hot/cold:\n{}", folded.describe_top(8));
    assert!((hot - 0.75).abs() <= 0.07, "hot share {hot:.3} of {n} samples\n{}", folded.describe_top(8));
}

/// Each kernel feature the probes found missing is named once at start,
/// and the run falls back: frame pointers where the table walker cannot
/// run, preallocated maps where the samplers may not allocate. On a kernel
/// that lacks nothing, no such line.
#[test]
fn what_the_kernel_lacks_is_named_once_at_start_and_the_run_falls_back() {
    root_or_skip!();
    kernel_can_record!();
    let (hot, n, folded, summary, run) = cpu_split_run(&[], "2", "3");
    let missing: Vec<&KernelFeature> = kernel_features().iter().filter(|f| f.present == Some(false)).collect();
    // A recording probes at start all but the off-CPU verifier (only loading
    // the off-CPU program tells, which an on-CPU run does not).
    let ids: Vec<&str> = missing.iter().map(|f| f.id.as_str()).filter(|&id| id != "off_cpu_fp_verifier").collect();
    let lacks: Vec<&str> =
        summary.value("kernel_lacks").as_array().unwrap().iter().filter_map(|id| id.as_str()).collect();
    assert_eq!(lacks, ids, "the summary's kernel_lacks differs from doctor's probes:\n{summary}");
    // The fallbacks a default on-CPU run of a command takes: each named once.
    for feature in missing.iter().filter(|f| ["bpf_task_pt_regs", "perf_event_allocated_maps"].contains(&f.id.as_str()))
    {
        assert_names_missing_feature(&run.stderr, feature);
    }
    let lines = run.stderr.lines().filter(|line| line.contains("this kernel lacks")).count();
    assert!(lines <= missing.len(), "more lines than missing features ({ids:?}):\n{}", run.stderr);
    let walker = !kernel_lacks("bpf_task_pt_regs") && !kernel_lacks("btf");
    assert_eq!(summary.value("call_graph").as_str(), Some(if walker { "table" } else { "fp" }), "{summary}");
    assert_three_quarters(hot, n, &folded);
}

/// The samplers' maps preallocated, as on kernels before 6.1 (forced here
/// on any kernel): the same profile, nothing lost.
#[test]
fn cpu_split_holds_with_preallocated_maps() {
    root_or_skip!();
    kernel_can_record!();
    let (hot, n, folded, summary) = cpu_split_hot_share_with(&["--preallocate-maps"], "2", "3");
    assert_eq!(summary.get("samples.lost"), 0.0, "samples were lost:\n{summary}");
    assert_three_quarters(hot, n, &folded);
}

/// A one-bucket stack-id map makes nearly every sample collide: those take
/// the full-stack path, and the profile must not change.
#[test]
fn cpu_split_holds_when_stack_ids_collide() {
    root_or_skip!();
    kernel_can_record!();
    let (hot, n, folded, summary) =
        cpu_split_hot_share_with(&["--call-graph", "fp", "--stack-map-entries", "1"], "2", "3");
    let full_path = summary.get("samples.full_stack_path_captures");
    assert!(full_path >= 0.5 * n as f64, "only {full_path} of {n} samples took the full-stack path:\n{summary}");
    // PREEMPT_RT refills the per-CPU caches that new map entries come from
    // in a thread, later: a burst of new entries (every sample here is
    // one) can find them empty. Counted as such, and rare (1 of 1637 on
    // 6.12-rt under qemu).
    let lost = summary.get("samples.lost");
    if preempt_rt() {
        assert_eq!(lost, summary.get("samples.lost_by_cause.counts_map_no_memory"), "{summary}");
        assert!(lost <= 0.005 * n as f64, "{lost} samples lost:\n{summary}");
    } else {
        assert_eq!(lost, 0.0, "samples were lost:\n{summary}");
    }
    assert!(
        (hot - 0.75).abs() <= 0.07,
        "3:1 split on the full-stack path: hot share {hot:.3} of {n} samples\n{}",
        folded.describe_top(8)
    );
}

#[test]
fn cpu_split_3_to_1_gives_three_quarters() {
    root_or_skip!();
    kernel_can_record!();
    let (hot, n, folded) = cpu_split_hot_share("3", "3");
    // 3 s at 999 Hz: about 3000 samples on one thread.
    assert!(n >= 1000, "only {n} samples in hot/cold:\n{}", folded.describe_top(8));
    assert!(
        (hot - 0.75).abs() <= 0.07,
        "3:1 split: hot share {hot:.3} of {n} samples, expected 0.75 ± 0.07\n{}",
        folded.describe_top(8)
    );
}

/// `-p` of a process already running: its 3:1 split, and nothing else. The
/// workload outlives the recording by far, so however long flameprof takes
/// to start (seconds in an emulated VM, scripts/vm-test.sh) the recording
/// sees it throughout.
#[test]
fn a_running_process_keeps_its_cpu_split_under_p() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("pid-split");
    let out = dir.join("p.folded");
    let work = Background::spawn(bin("cpu_split"), &["600", "3"]);
    let pid = work.pid().to_string();
    flameprof(&["-F", "999", "-p", &pid, "-d", "3", "-o", &s(&out)], T).assert_success("flameprof -p cpu_split");
    drop(work);
    let folded = Folded::read(&out);
    let roots: Vec<String> = folded.by_root().into_keys().collect();
    assert_eq!(roots, ["cpu_split"], "-p of one process: its name is the only root");
    let hot = folded.with_frame("cpu_split::hot_three_quarters");
    let cold = folded.with_frame("cpu_split::cold_one_quarter");
    assert!(hot + cold >= 300, "only {} samples in hot/cold:\n{}", hot + cold, folded.describe_top(6));
    assert!(
        (share(hot, cold) - 0.75).abs() <= 0.07,
        "-p: hot share {:.3} of {} samples, expected 0.75 ± 0.07\n{}",
        share(hot, cold),
        hot + cold,
        folded.describe_top(6)
    );
}

/// `-p` of a process whose main thread has ended (`pthread_exit` in
/// `main`) while another thread spins: the main thread is a zombie, with
/// empty maps, but the process runs on. It is profiled to the end of `-d`,
/// every sample of its spinning thread named through that thread's view of
/// the mappings, as many samples as its CPU time at -F gives.
#[test]
fn a_process_whose_main_thread_ended_is_profiled_under_p() {
    root_or_skip!();
    kernel_can_record!();
    let program = c_program("leader_exits", &["-O2"]);
    let work = Background::spawn(s(&program), &["600"]);
    let zombie_leader = || {
        std::fs::read_to_string(format!("/proc/{}/stat", work.pid()))
            .is_ok_and(|stat| stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
    };
    let waited = std::time::Instant::now();
    while !zombie_leader() {
        assert!(waited.elapsed() < Duration::from_secs(10), "the main thread of leader_exits did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = TempDir::new("leader-exits");
    let out = dir.join("p.folded");
    let pid = work.pid().to_string();
    let cpu_before = process_cpu_seconds(work.pid());
    let args = ["-F", "99", "-p", &pid, "-d", "2", "-o", &s(&out)];
    let (run, summary) = flameprof_with_summary(&args, T, "flameprof -p of a process whose main thread ended");
    let cpu = process_cpu_seconds(work.pid()) - cpu_before;
    drop(work);
    assert_eq!(summary.value("stopped_by"), "duration", "{summary}");
    let folded = Folded::read(&out);
    let spinning = with_chain(&folded, &["start_thread", "spin"]);
    assert!(
        spinning as f64 >= 0.95 * folded.total() as f64,
        "only {spinning} of {} samples named start_thread -> spin\n{}\n{}",
        folded.total(),
        folded.describe_top(6),
        run.stderr
    );
    // The timer runs from attach to the end of -d; the CPU time measured
    // around flameprof includes its start-up, so fewer samples, not more.
    let expected = cpu * 99.0;
    assert!(
        spinning as f64 <= 1.1 * expected && spinning as f64 >= 0.5 * expected,
        "{spinning} samples for {cpu:.2} s of CPU at 99 Hz\n{}",
        run.stderr
    );
    assert!(summary.get("frames.unresolved_percent") < 1.0, "{summary}");
}

#[test]
fn cpu_split_1_to_1_gives_one_half() {
    root_or_skip!();
    kernel_can_record!();
    let (hot, n, folded) = cpu_split_hot_share("2", "1");
    assert!(n >= 700, "only {n} samples in hot/cold:\n{}", folded.describe_top(8));
    assert!(
        (hot - 0.5).abs() <= 0.07,
        "1:1 split: hot share {hot:.3} of {n} samples, expected 0.5 ± 0.07\n{}",
        folded.describe_top(8)
    );
}

/// Kernel frames only ever sit leafward of all user frames (after the root).
fn kernel_after_user(stack: &Stack) -> bool {
    let frames = &stack.frames[1..];
    match frames.iter().position(|f| is_kernel(f)) {
        None => true,
        Some(first_k) => frames[first_k..].iter().all(|f| is_kernel(f)),
    }
}

#[test]
fn syscall_loop_kernel_frames_are_leafward_of_user_frames() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("syscall");
    let out = dir.join("sys.folded");
    flameprof(&["-F", "999", "-o", &s(&out), "--", &example("syscall_loop"), "1.5"], T)
        .assert_success("flameprof -- syscall_loop");
    let folded = Folded::read(&out);
    let user_fn = "syscall_loop::read_dev_zero";
    let in_fn = folded.with_frame(user_fn);
    let kernel_below =
        folded.sum_where(|s| s.position(user_fn).is_some_and(|i| s.frames[i + 1..].iter().any(|f| is_kernel(f))));
    assert!(in_fn >= 300, "only {in_fn} samples contain {user_fn}:\n{}", folded.describe_top(8));
    let frac = kernel_below as f64 / in_fn as f64;
    assert!(
        frac >= 0.80,
        "{:.1}% of samples in {user_fn} have kernel frames leafward of it, expected >= 80%\n{}",
        frac * 100.0,
        folded.describe_top(8)
    );
    let bad: Vec<&Stack> = folded.stacks.iter().filter(|s| !kernel_after_user(s)).collect();
    assert!(bad.is_empty(), "stacks with a kernel frame rootward of a user frame: {bad:#?}");
}

#[test]
fn user_only_and_kernel_only() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("uk");
    let u = dir.join("u.folded");
    let k = dir.join("k.folded");
    flameprof(&["-U", "-F", "999", "-o", &s(&u), "--", &example("syscall_loop"), "1"], T).assert_success("-U");
    flameprof(&["-K", "-F", "999", "-o", &s(&k), "--", &example("syscall_loop"), "1"], T).assert_success("-K");

    let u = Folded::read(&u);
    assert!(u.total() > 200, "-U: only {} samples", u.total());
    let kernel_in_u: Vec<&Stack> = u.stacks.iter().filter(|s| s.frames.iter().any(|f| is_kernel(f))).collect();
    assert!(kernel_in_u.is_empty(), "-U output has kernel frames: {kernel_in_u:#?}");
    assert!(u.with_frame("syscall_loop::read_dev_zero") > 0, "-U lost the user frames:\n{}", u.describe_top(5));

    let k = Folded::read(&k);
    assert!(k.total() > 200, "-K: only {} samples", k.total());
    let user_in_k: Vec<&Stack> = k.stacks.iter().filter(|s| s.frames[1..].iter().any(|f| !is_kernel(f))).collect();
    assert!(
        user_in_k.is_empty(),
        "-K output has user frames below the root: {:#?}",
        &user_in_k[..user_in_k.len().min(3)]
    );
    // The workload spends most of its time in the kernel: most -K samples have kernel frames.
    let with_kernel = k.sum_where(|s| s.frames.len() > 1);
    assert!(
        with_kernel as f64 >= 0.5 * k.total() as f64,
        "-K: only {with_kernel} of {} samples have kernel frames",
        k.total()
    );
}

#[test]
fn recursion_100_is_unwound_to_full_depth() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("rec");
    let out = dir.join("rec.folded");
    let args = ["-F", "999", "-o", &s(&out), "--", &example("recursion"), "100", "2"];
    let (_, summary) = flameprof_with_summary(&args, T, "flameprof -- recursion 100 2");
    let folded = Folded::read(&out);
    let total = folded.total();
    let full = folded.sum_where(|s| {
        let depth = s.frames.iter().filter(|f| *f == "recursion::descend").count();
        let Some(first) = s.position("recursion::descend") else { return false };
        let last = s.frames.iter().rposition(|f| f == "recursion::descend").unwrap();
        depth == 100
            && s.frames[last + 1..].iter().any(|f| f == "recursion::bottom")
            && s.frames[..first].iter().any(|f| f == "main" || f == "recursion::main")
    });
    assert!(
        full as f64 >= 0.9 * total as f64 && total >= 1000,
        "only {full} of {total} samples have exactly 100 descend frames between main and bottom\n{}",
        folded.describe_top(5)
    );
    // The truncation counter is reported (and near 0 at this depth).
    let at_limit = summary.get("samples.stacks_at_depth_limit");
    assert!(at_limit < 0.05 * total as f64, "{at_limit} stacks at the limit for depth 100:\n{summary}");
}

#[test]
fn recursion_200_reports_stacks_at_the_frame_limit() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("rec200");
    let out = dir.join("rec.folded");
    let args = ["-F", "999", "-o", &s(&out), "--", &example("recursion"), "200", "1"];
    let (_, summary) = flameprof_with_summary(&args, T, "flameprof -- recursion 200 1");
    let folded = Folded::read(&out);
    let total = folded.total();
    let truncated = folded.sum_where(|s| {
        let d = s.frames.iter().filter(|f| *f == "recursion::descend").count();
        d > 0 && d < 200
    });
    let at_limit = summary.get("samples.stacks_at_depth_limit");
    assert!(
        at_limit >= 0.5 * truncated as f64 && truncated as f64 >= 0.5 * total as f64,
        "depth 200: {truncated} of {total} samples truncated, summary says {at_limit} at the limit:\n{summary}"
    );
}

#[test]
fn threads_created_during_recording_are_profiled() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("threads");
    for per_thread in [false, true] {
        let out = dir.join(&format!("t{per_thread}.folded"));
        let work = Background::spawn(bin("threads"), &["2", "3"]);
        let pid = work.pid().to_string();
        let mut args = vec!["-p", &pid, "-d", "3", "-o"];
        let o = s(&out);
        args.push(&o);
        if per_thread {
            args.push("--per-thread");
        }
        flameprof(&args, T).assert_success("flameprof -p threads");
        let folded = Folded::read(&out);
        let workers = assert_three_equal_workers(&folded, &format!("-p, per_thread={per_thread}"));
        for (i, (f, n)) in workers.into_iter().enumerate() {
            if per_thread {
                let name = format!("worker-{i}");
                let under_name = folded.sum_where(|s| s.contains(&f) && s.frames.get(1) == Some(&name));
                assert!(
                    under_name as f64 >= 0.95 * n as f64,
                    "--per-thread: only {under_name} of {n} samples of {f} have {name} as second frame\n{}",
                    folded.describe_top(10)
                );
            }
        }
        if !per_thread {
            let named = folded.sum_where(|s| s.frames.get(1).is_some_and(|f| f.starts_with("worker-")));
            assert_eq!(named, 0, "thread names appear without --per-thread");
        }
    }
}

#[test]
fn exited_process_with_deleted_binary_is_symbolized() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("deleted");
    let copy = dir.join("spinner");
    std::fs::copy(bin("spinner"), &copy).expect("copy spinner");
    let out = dir.join("d.folded");
    let mut work = Background::spawn(&copy, &["1.5"]);
    let pid = work.pid().to_string();
    let fp = spawn_flameprof(&["-p", &pid, "-d", "10", "-o", &s(&out)]);
    std::thread::sleep(Duration::from_millis(600));
    std::fs::remove_file(&copy).expect("delete the copied binary");
    let run = wait_with_timeout(fp, Duration::from_secs(20), "flameprof -p spinner");
    run.assert_success("flameprof -p spinner");
    assert!(work.wait(Duration::from_secs(1)).is_some(), "spinner still running");
    assert!(
        run.elapsed < Duration::from_secs(5),
        "flameprof took {:?}: it did not stop when its only target ended (-d 10)",
        run.elapsed
    );
    let folded = Folded::read(&out);
    let spin = folded.with_frame("spinner::spin");
    assert!(
        spin as f64 >= 0.5 * folded.total() as f64 && spin >= 40,
        "spinner::spin has {spin} of {} samples after the binary was deleted\n{}",
        folded.total(),
        folded.describe_top(5)
    );
}

#[test]
fn command_exit_status_is_returned() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("exit");
    let out = dir.join("e.folded");
    let mut cmd = std::process::Command::new(flameprof_bin());
    cmd.args(["-o", &s(&out), "--", &example("spinner"), "0.3"]).env("EXIT_CODE", "7");
    let run = run_command(cmd, T);
    assert_eq!(run.code(), Some(7), "EXIT_CODE=7 spinner: flameprof exit {:?}\n{}", run.status, run.stderr);
    assert!(Folded::read(&out).with_frame("spinner::spin") > 0, "profile of the failing command missing");

    let run = flameprof(&["-o", &s(&out), "--", &example("spinner"), "0.3"], T);
    assert_eq!(run.code(), Some(0), "spinner: flameprof exit {:?}\n{}", run.status, run.stderr);
}

#[test]
fn children_of_the_command_are_profiled() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("child");
    let out = dir.join("c.folded");
    // `; true` keeps the shell from exec-ing spinner in place: a real child.
    let script = format!("{} 1; true", example("spinner"));
    flameprof(&["-o", &s(&out), "--", "sh", "-c", &script], T).assert_success("flameprof -- sh -c spinner");
    let folded = Folded::read(&out);
    let spin = folded.with_frame("spinner::spin");
    assert!(
        spin >= 40 && spin as f64 >= 0.5 * folded.total() as f64,
        "spinner::spin (child of sh) has {spin} of {} samples\n{}",
        folded.total(),
        folded.describe_top(5)
    );
}

#[test]
fn system_wide_shows_the_spinner_with_consistent_root_names() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("all");
    let out = dir.join("a.folded");
    let work = Background::spawn(bin("spinner"), &["3"]);
    std::thread::sleep(Duration::from_millis(200));
    let run = flameprof(&["-a", "-d", "1", "-o", &s(&out)], T);
    run.assert_success("flameprof -a");
    let folded = Folded::read(&out);
    let roots = folded.by_root();
    let pid = work.pid();
    let with_pid = format!("spinner-{pid}");
    // Rule: with several processes in the profile every root is NAME-PID
    // (NAME-PID#N for what a pid ran before an exec, or an earlier process
    // of a reused pid); with one it is the bare name.
    let several = roots.len() > 1;
    let expected_root = if several { with_pid.clone() } else { "spinner".to_string() };
    let spin = folded.sum_where(|s| s.root() == expected_root && s.contains("spinner::spin"));
    // About 99 when the spinner has a CPU to itself; 10 is enough to show the
    // root naming on a CI machine whose CPUs are also taken by others.
    assert!(spin >= 10, "no (or few: {spin}) spinner::spin samples under root {expected_root}; roots: {roots:?}");
    if several {
        let bad: Vec<&String> = roots
            .keys()
            .filter(|r| {
                let id = match r.rsplit_once('#') {
                    Some((id, generation)) if generation.parse::<u32>().is_ok() => id,
                    _ => r.as_str(),
                };
                !id.rsplit_once('-').is_some_and(|(n, p)| !n.is_empty() && p.parse::<u32>().is_ok())
            })
            .collect();
        assert!(bad.is_empty(), "several processes, but roots without -PID: {bad:?} (all roots: {roots:?})");
    }
}

/// CPU time of a process so far (s), from its threads' schedstat.
fn process_cpu_seconds(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("process exists");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// `-- CMD` and `-p` sample with timers on the targets' own threads, so a
/// busy bystander is never interrupted, and each target thread has one
/// timer's worth of samples: its CPU time at -F. The counter of others
/// interrupted does count: a child the target forks inherits the timer,
/// and its ticks are filtered out in the kernel.
#[test]
fn targets_are_sampled_without_interrupting_other_processes() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("bystander");
    let out = dir.join("b.folded");
    let bystander = Background::spawn(bin("spinner"), &["8"]);
    let target = Background::spawn(bin("spinner"), &["6"]);
    std::thread::sleep(Duration::from_millis(200));
    let others = |summary: &Summary| summary.get("samples.other_processes_interrupted");

    let pid = target.pid().to_string();
    let cpu_before = process_cpu_seconds(target.pid());
    let args = ["-F", "99", "-p", &pid, "-d", "1", "-o", &s(&out)];
    let (run, summary) = flameprof_with_summary(&args, T, "flameprof -p spinner next to a bystander");
    let cpu = process_cpu_seconds(target.pid()) - cpu_before;
    assert_eq!(others(&summary), 0.0, "-p interrupted other processes:\n{summary}");
    // The target ran longer than the recording: flameprof's start-up (the
    // verifier takes a few hundred ms for the table walkers) and end. At
    // most that long of its CPU time falls outside the recording.
    let outside = (run.elapsed.as_secs_f64() - summary.get("duration_seconds")).max(0.0);
    let spin = Folded::read(&out).with_frame("spinner::spin") as f64;
    assert!(
        spin <= cpu * 99.0 * 1.1 + 2.0 && spin >= (cpu - outside).max(0.0) * 99.0 * 0.85,
        "-p: {spin} samples for {cpu:.2} s of CPU at 99 Hz (a thread with two timers would have twice as many)\n{}",
        run.stderr
    );
    // Two timers on the thread (the hidden test option forces what a thread
    // started during attach can get): the second one's ticks are dropped.
    let cpu_before = process_cpu_seconds(target.pid());
    let args = ["-F", "99", "-p", &pid, "-d", "1", "--timers-per-thread", "2", "-o", &s(&out)];
    let (run, summary) = flameprof_with_summary(&args, T, "flameprof -p --timers-per-thread 2");
    let cpu = process_cpu_seconds(target.pid()) - cpu_before;
    let outside = (run.elapsed.as_secs_f64() - summary.get("duration_seconds")).max(0.0);
    let spin = Folded::read(&out).with_frame("spinner::spin") as f64;
    let dropped = summary.get("samples.second_timer_ticks_dropped");
    assert!(
        spin <= cpu * 99.0 * 1.1 + 2.0 && spin >= (cpu - outside).max(0.0) * 99.0 * 0.85 && dropped >= 0.5 * spin,
        "two timers per thread: {spin} samples for {cpu:.2} s of CPU at 99 Hz, {dropped} second-timer ticks dropped\n{summary}"
    );
    drop(target);

    let args = ["-F", "99", "-o", &s(&out), "--", &example("spinner"), "1"];
    let (_, summary) = flameprof_with_summary(&args, T, "flameprof -- spinner next to a bystander");
    assert_eq!(others(&summary), 0.0, "-- CMD interrupted other processes:\n{summary}");
    // The spinner shares the CPUs with the bystander and other tests: what it
    // is owed is its own CPU time at 99 Hz, not its wall time.
    let cpu = summary.get("command_cpu_seconds");
    let owed = cpu * 99.0;
    let spin = Folded::read(&out).with_frame("spinner::spin") as f64;
    assert!(owed >= 10.0, "the spinner got only {cpu:.3} s of CPU in 1 s: too little to check\n{summary}");
    assert!(
        (spin - owed).abs() <= 0.15 * owed + 2.0,
        "-- spinner 1: {spin} samples in spinner::spin for {cpu:.3} s of CPU at 99 Hz (expected about {owed:.0})\n{summary}"
    );

    // `; true` keeps the shell from exec-ing the spinner: a child, not a
    // target. The shell forks it 1 s in, after flameprof's timers are open
    // (start-up takes up to ~0.5 s on a loaded machine: the verifier).
    let script = format!("sleep 1; {} 1; true", example("spinner"));
    let parent = Background::spawn("sh", &["-c", &script]);
    let pid = parent.pid().to_string();
    let args = ["-F", "99", "-p", &pid, "-d", "2", "-o", &s(&out)];
    let (_, summary) = flameprof_with_summary(&args, T, "flameprof -p sh (forks a spinner)");
    assert!(
        others(&summary) >= 20.0,
        "-p of a shell whose child inherits the timer: {} interrupts of other processes counted, expected about 90\n{summary}",
        others(&summary)
    );
    drop(parent);
    drop(bystander);
}

#[test]
fn threads_of_a_command_are_profiled() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("cmdthreads");
    let out = dir.join("t.folded");
    flameprof(&["-o", &s(&out), "--", &example("threads"), "1.5", "3"], T).assert_success("flameprof -- threads");
    assert_three_equal_workers(&Folded::read(&out), "-- threads");
}

/// The `threads` example's 3 equal workers each have about a third of the
/// samples; returns (frame, samples) per worker.
fn assert_three_equal_workers(folded: &Folded, what: &str) -> Vec<(String, u64)> {
    let total = folded.total();
    (0..3)
        .map(|i| {
            let f = format!("threads::worker_{i}");
            let n = folded.with_frame(&f);
            assert!(
                n as f64 >= 0.15 * total as f64 && n >= 30,
                "{what}: {f} has {n} of {total} samples\n{}",
                folded.describe_top(10)
            );
            (f, n)
        })
        .collect()
}

/// Whether this kernel is built with PREEMPT_RT.
fn preempt_rt() -> bool {
    std::fs::read_to_string("/sys/kernel/realtime").is_ok_and(|text| text.trim() == "1")
}
