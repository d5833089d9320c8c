//! Issue 12: `--wakers` joins each off-CPU wait with who woke it. The
//! `wakers` example waits 5 × 200 ms in a function of its own and is woken
//! each time by something known; the folded output must join the wait with
//! that waker (bcc's offwaketime layout: wait root first, `--`, the waker's
//! stack leaf first, its name last).

use flameprof_tests::*;
use std::io::Write;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(40);
const SEPARATOR: &str = "--";

/// Records `flameprof --off-cpu --wakers ARGS -- wakers MODE` into a folded
/// profile and a JSON summary.
fn record(mode: &str, args: &[&str]) -> (Folded, Run, Summary) {
    let dir = TempDir::new(&format!("wakers-{mode}"));
    let out = dir.join("o.folded");
    let mut all: Vec<String> = vec!["-o".into(), s(&out), "--wakers".into()];
    all.extend(args.iter().map(|a| a.to_string()));
    if !args.contains(&"--wall") {
        all.push("--off-cpu".into());
    }
    all.extend(["--".into(), example("wakers"), mode.into()]);
    let (run, summary) = flameprof_with_summary(&all, T, &format!("flameprof {}", all.join(" ")));
    (Folded::read(&out), run, summary)
}

/// The wait part of a stack (before `--`) and its waker part (after it).
fn halves(stack: &Stack) -> (&[String], Option<&[String]>) {
    match stack.position(SEPARATOR) {
        Some(at) => (&stack.frames[..at], Some(&stack.frames[at + 1..])),
        None => (&stack.frames[..], None),
    }
}

/// Time (µs) waited in `wait_fn`, and the part of it joined with a waker
/// for which `waker_ok` holds.
fn joined(folded: &Folded, wait_fn: &str, waker_ok: impl Fn(&[String]) -> bool) -> (u64, u64) {
    let waited = folded.sum_where(|s| halves(s).0.iter().any(|f| f == wait_fn));
    let joined = folded.sum_where(|s| {
        let (wait, waker) = halves(s);
        wait.iter().any(|f| f == wait_fn) && waker.is_some_and(&waker_ok)
    });
    (waited, joined)
}

/// At least 90 % of at least 0.9 s (5 × 200 ms) waited in `wait_fn` is
/// joined with a waker `waker_ok` accepts.
fn assert_joined(folded: &Folded, run: &Run, wait_fn: &str, what: &str, waker_ok: impl Fn(&[String]) -> bool) {
    let (waited, joined) = joined(folded, wait_fn, waker_ok);
    assert!(
        waited >= 900_000,
        "{wait_fn}: only {waited} µs waited, expected about 1 s\n{}\n{}",
        folded.describe_top(8),
        run.stderr
    );
    assert!(
        joined as f64 >= 0.9 * waited as f64,
        "{wait_fn}: {joined} of {waited} µs joined with {what} (need 90 %)\n{}\n{}",
        waker_lines(folded),
        run.stderr
    );
}

/// Each stack's waker part (leaf first), for failure messages.
fn waker_lines(folded: &Folded) -> String {
    let mut lines: Vec<String> = folded
        .stacks
        .iter()
        .filter_map(|s| halves(s).1.map(|waker| format!("  {:>9} -- {}", s.count, waker.join(";"))))
        .collect();
    lines.sort();
    lines.join("\n")
}

fn has(frames: &[String], name: &str) -> bool {
    frames.iter().any(|f| f == name)
}

/// The waker part runs leaf first: the wakeup itself first, the name last.
fn leaf_first_and_named(waker: &[String], name: &str) -> bool {
    waker.first().is_some_and(|f| f == "try_to_wake_up_[k]") && waker.last().is_some_and(|f| f == name)
}

#[test]
fn pipe_wait_is_joined_with_the_waking_function() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("pipe_wait_is_joined_with_the_waking_function", || {
        let (folded, run, summary) = record("pipe", &[]);
        assert_joined(&folded, &run, "wakers::wait_for_byte", "wakers::wake_by_write in burner", |waker| {
            has(waker, "wakers::wake_by_write") && leaf_first_and_named(waker, "burner")
        });
        // The wait part ends where the thread blocked (the scheduler).
        let blocked_in_schedule = folded.sum_where(|s| {
            let (wait, waker) = halves(s);
            waker.is_some() && wait.last().is_some_and(|f| f.contains("schedule") && is_kernel(f))
        });
        let joined_total = folded.sum_where(|s| halves(s).1.is_some());
        assert!(blocked_in_schedule as f64 >= 0.9 * joined_total as f64, "{}", folded.describe_top(6));
        assert!(summary.get("wakers.waits_joined") >= 5.0, "{summary}");
        assert_eq!(summary.get("wakers.waker_records_lost"), 0.0, "{summary}");
    });
}

/// The same with frame pointers: the waker's user stack walked by the
/// kernel's frame-pointer walk from sched_waking, its frameless libc leaf
/// fixed up like every frame-pointer stack (`sys_write` is put back).
#[test]
fn pipe_wait_is_joined_with_frame_pointers_too() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("pipe_wait_is_joined_with_frame_pointers_too", || {
        let (folded, run, summary) = record("pipe", &["--call-graph", "fp"]);
        assert_eq!(summary.value("call_graph"), "fp");
        assert_joined(&folded, &run, "wakers::wait_for_byte", "wakers::sys_write in wakers::wake_by_write", |waker| {
            let at = |name: &str| waker.iter().position(|f| f == name);
            // Leaf first: the helper before its caller.
            matches!((at("wakers::sys_write"), at("wakers::wake_by_write")), (Some(a), Some(b)) if a + 1 == b)
                && waker.last().is_some_and(|f| f == "burner")
        });
        assert!(summary.get("wakers.waker_leaf_fixup.callers_inserted") >= 0.9e9, "{summary}");
    });
}

#[test]
fn mutex_handoff_is_joined_with_the_unlocking_function() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("mutex_handoff_is_joined_with_the_unlocking_function", || {
        let (folded, run, _) = record("mutex", &[]);
        assert_joined(&folded, &run, "wakers::wait_for_lock", "wakers::release_lock", |waker| {
            has(waker, "wakers::release_lock") && has(waker, "futex_wake_[k]")
        });
    });
}

#[test]
fn condition_variable_is_joined_with_the_notifying_function() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("condition_variable_is_joined_with_the_notifying_function", || {
        let (folded, run, _) = record("condvar", &[]);
        assert_joined(&folded, &run, "wakers::wait_for_signal", "wakers::signal_condition", |waker| {
            has(waker, "wakers::signal_condition")
        });
    });
}

/// A timer's expiry is an interrupt: the waker is the kernel's timer path,
/// marked `[in interrupt]`, with no user frame (whoever was interrupted).
#[test]
fn timer_wakeups_are_the_interrupt_path_with_kernel_frames_only() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("timer_wakeups_are_the_interrupt_path_with_kernel_frames_only", || {
        let (folded, run, summary) = record("timer", &[]);
        assert_joined(&folded, &run, "wakers::sleep_on_timer", "the timer interrupt, kernel frames only", |waker| {
            let n = waker.len();
            n >= 2
                && waker[n - 2] == "[in interrupt]"
                && has(waker, "hrtimer_wakeup_[k]")
                && waker[..n - 2].iter().all(|f| is_kernel(f))
        });
        assert!(summary.get("wakers.wakeups_from_interrupts") >= 5.0, "{summary}");
    });
}

/// A child's exit wakes its parent's waitpid: the waker is the exiting
/// child (its exit path in the kernel; its memory is gone by then).
#[test]
fn child_exit_is_joined_with_the_parents_waitpid() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("child_exit_is_joined_with_the_parents_waitpid", || {
        let (folded, run, _) = record("child", &[]);
        assert_joined(&folded, &run, "wakers::wait_for_child", "the exiting child's do_exit", |waker| {
            has(waker, "do_exit_[k]") && leaf_first_and_named(waker, "exiting-child")
        });
    });
}

/// --min-block and --max-block apply to joined waits: the 200 ms waits go
/// with --min-block 300 ms and with --max-block 100 ms, and stay between.
#[test]
fn block_limits_apply_to_joined_waits() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("block_limits_apply_to_joined_waits", || {
        let in_wait = |folded: &Folded| folded.with_frame("wakers::wait_for_byte");
        let (kept, run, _) = record("pipe", &["--min-block", "150000", "--max-block", "260000"]);
        assert_joined(&kept, &run, "wakers::wait_for_byte", "wakers::wake_by_write", |waker| {
            has(waker, "wakers::wake_by_write")
        });
        for limits in [["--min-block", "300000"], ["--max-block", "100000"]] {
            let (folded, _, _) = record("pipe", &limits);
            assert_eq!(in_wait(&folded), 0, "{limits:?} left 200 ms waits in:\n{}", folded.describe_top(6));
        }
    });
}

/// --wall keeps preemptions: nothing wakes them, so they are counted apart
/// from waits that lack a recorded wakeup, and the joins still hold.
#[test]
fn wall_profiles_join_wakers_under_the_off_cpu_root() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("wall_profiles_join_wakers_under_the_off_cpu_root", || {
        let (folded, run, summary) = record("pipe", &["--wall"]);
        assert_joined(&folded, &run, "wakers::wait_for_byte", "wakers::wake_by_write", |waker| {
            has(waker, "wakers::wake_by_write")
        });
        let joined_not_off_cpu = folded.sum_where(|s| s.contains(SEPARATOR) && s.root() != "[off-cpu]");
        assert_eq!(joined_not_off_cpu, 0, "{}", folded.describe_top(6));
        // Summary fields exist and are numbers (preemptions happen here: the burner spins).
        summary.get("wakers.waits_preempted");
        summary.get("wakers.waits_without_waker");
    });
}

/// A process outside the targets (this test) wakes the target: its name and
/// kernel stack show, no user frames (it is not walked).
#[test]
fn a_waker_outside_the_targets_shows_its_name_and_kernel_stack() {
    root_or_skip!();
    kernel_can_record!();
    retry_once("a_waker_outside_the_targets_shows_its_name_and_kernel_stack", || {
        let mut target = std::process::Command::new(example("wakers"))
            .arg("stdin")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("start wakers stdin");
        let pid = target.id();
        let mut input = target.stdin.take().expect("stdin");
        // Writes a byte every 200 ms for 4 s from a thread of known name.
        let writer = std::thread::Builder::new()
            .name("outside-waker".into())
            .spawn(move || {
                let end = Instant::now() + Duration::from_secs(4);
                while Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(200));
                    input.write_all(b"x").expect("write to the target");
                }
            })
            .expect("spawn the writer");
        let dir = TempDir::new("wakers-outside");
        let out = dir.join("o.folded");
        let args = ["--off-cpu", "--wakers", "-p", &pid.to_string(), "-o", &s(&out)];
        let (run, _) = flameprof_with_summary(&args, T, "flameprof --off-cpu --wakers -p PID");
        writer.join().expect("writer thread");
        let _ = target.wait();
        let folded = Folded::read(&out);
        let (waited, joined) = joined(&folded, "wakers::wait_for_input", |waker| {
            waker.last().is_some_and(|f| f == "outside-waker")
                && has(waker, "try_to_wake_up_[k]")
                && waker[..waker.len() - 1].iter().all(|f| is_kernel(f))
        });
        // Every wait but the one already under way at the start (its stack
        // read from /proc, no wakeup seen): at most one 200 ms wait unjoined.
        assert!(joined >= 1_000_000, "only {joined} µs joined\n{}\n{}", waker_lines(&folded), run.stderr);
        assert!(
            waited - joined <= 260_000,
            "{} of {waited} µs not joined with outside-waker\n{}",
            waited - joined,
            waker_lines(&folded)
        );
    });
}
