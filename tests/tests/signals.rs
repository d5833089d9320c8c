//! SIGINT / SIGTERM stop the recording early; the output is still written.

use flameprof_tests::*;
use std::time::{Duration, Instant};

/// Signals flameprof 1.5 s into a 30 s recording and checks it ends quickly
/// with a complete profile. `command`: profile `-- spinner 30` (else `-p`).
fn stop_with(signal: i32, command: bool) {
    let dir = TempDir::new("sig");
    let out = dir.join("x.folded");
    let o = s(&out);
    let spinner = example("spinner");
    let background = if command { None } else { Some(Background::spawn(&spinner, &["30"])) };
    let pid = background.as_ref().map(|b| b.pid().to_string()).unwrap_or_default();
    let args: Vec<&str> =
        if command { vec!["-d", "30", "-o", &o, "--", &spinner, "30"] } else { vec!["-d", "30", "-o", &o, "-p", &pid] };
    let fp = spawn_flameprof(&args);
    let fp_pid = fp.id();
    std::thread::sleep(Duration::from_millis(1500));
    let children = children_of(fp_pid);
    send_signal(fp_pid, signal);
    let signalled = Instant::now();
    let mut fp = fp;
    let wait_exit = |fp: &mut std::process::Child, limit: Duration| {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(st) = fp.try_wait().unwrap() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    };
    let exited = wait_exit(&mut fp, Duration::from_secs(6));
    let took = signalled.elapsed();
    if exited.is_none() {
        // Still running: end the command ourselves so flameprof can finish
        // (and we can still check what it writes), then give up on it.
        kill_pids_named(&children, "spinner");
        if wait_exit(&mut fp, Duration::from_secs(10)).is_none() {
            let _ = fp.kill();
        }
    }
    let run = wait_with_timeout(fp, Duration::from_secs(5), "flameprof after signal");
    kill_pids_named(&children, "spinner"); // the command, if flameprof left it running
    let what = format!("signal {signal} ({})", if command { "-- spinner 30" } else { "-p spinner" });
    assert!(
        exited.is_some() && took < Duration::from_secs(4),
        "{what}: flameprof took {took:?} to exit after the signal (exited: {exited:?}); expected a few seconds\nstderr:\n{}",
        run.stderr
    );
    let text =
        std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{what}: no output written: {e}\n{}", run.stderr));
    assert!(text.ends_with('\n'), "{what}: output's last line is not terminated");
    let folded = Folded::parse(&text).unwrap_or_else(|e| panic!("{what}: output: {e}"));
    // ~1.5 s at 99 Hz recorded before the signal.
    assert!(
        folded.with_frame("spinner::spin") >= 60,
        "{what}: output incomplete: {} samples in spinner::spin\n{}",
        folded.with_frame("spinner::spin"),
        folded.describe_top(5)
    );
}

#[test]
fn sigint_stops_a_pid_recording() {
    root_or_skip!();
    kernel_can_record!();
    stop_with(libc::SIGINT, false);
}

#[test]
fn sigterm_stops_a_pid_recording() {
    root_or_skip!();
    kernel_can_record!();
    stop_with(libc::SIGTERM, false);
}

#[test]
fn sigint_stops_a_command_recording() {
    root_or_skip!();
    kernel_can_record!();
    stop_with(libc::SIGINT, true);
}

#[test]
fn sigterm_stops_a_command_recording() {
    root_or_skip!();
    kernel_can_record!();
    stop_with(libc::SIGTERM, true);
}

/// flameprof ignores SIGPIPE for itself; the command must not inherit that
/// (an ignored signal survives exec), or its pipelines behave differently.
#[test]
fn command_runs_with_default_sigpipe() {
    root_or_skip!();
    kernel_can_record!();
    let dir = TempDir::new("sigpipe");
    let out = dir.join("x.folded");
    let run = flameprof(&["-o", &s(&out), "--", "sh", "-c", "grep SigIgn /proc/self/status"], Duration::from_secs(30));
    run.assert_success("flameprof -- sh -c grep SigIgn");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let mask = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap_or_else(|| panic!("no SigIgn line in the command's output: {stdout}"));
    assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "the command runs with SIGPIPE ignored (SigIgn {mask:#x})");
}

/// SIGKILL cannot be caught: whatever flameprof had loaded must still go
/// away with it, at any moment (loading, attaching, recording, writing).
/// The kernel's own listings of BPF programs and maps are checked; with
/// --wall, --wakers and the table walker (the default) nearly every program
/// and map flameprof has is in use (three walkers, each holding its own
/// program array). The kernel frees some in deferred work after a
/// process dies, so a short wait is allowed.
#[test]
fn sigkill_at_any_moment_leaves_no_bpf_program_or_map_behind() {
    root_or_skip!();
    kernel_can_record!();
    let spinner = example("spinner");
    for delay_ms in [20, 80, 200, 500, 1200] {
        let maps_before = loaded_bpf_map_ids().expect("bpf(BPF_MAP_GET_NEXT_ID) failed");
        let programs = BpfSnapshot::take();
        let dir = TempDir::new("sigkill");
        let out = s(&dir.join("x.folded"));
        let fp = spawn_flameprof(&["--wall", "--wakers", "-o", &out, "--", &spinner, "3"]);
        let fp_pid = fp.id();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let children = children_of(fp_pid);
        send_signal(fp_pid, libc::SIGKILL);
        let run = wait_with_timeout(fp, Duration::from_secs(10), "flameprof after SIGKILL");
        assert!(!run.status.success(), "flameprof was not killed after {delay_ms} ms");
        kill_pids_named(&children, "spinner");
        programs.assert_nothing_left(&maps_before, Duration::from_secs(3), &format!("SIGKILL after {delay_ms} ms"));
    }
}
