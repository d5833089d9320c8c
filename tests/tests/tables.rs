//! `--call-graph table`: user stacks walked in the kernel with unwind tables
//! compiled from the binaries' call-frame information, on-CPU and off-CPU,
//! through code built without frame pointers (C built by the test with
//! -fomit-frame-pointer, Debian's libc and python3).

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// -O2 without frame pointers, as distributions build; no sibling calls, so
/// that every function of the known call chain keeps its frame.
const NO_FRAME_POINTERS: &[&str] = &["-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls"];

fn no_fp_program() -> String {
    s(&c_program("no_frame_pointers", NO_FRAME_POINTERS))
}

/// Records `[extra] -- PROGRAM ARGS` into a folded profile and a summary.
fn record(extra: &[&str], program: &str, args: &[&str]) -> (Folded, Run, Summary) {
    let dir = TempDir::new("tables");
    let out = s(&dir.join("p.folded"));
    let mut all = vec!["-o", &out];
    all.extend_from_slice(extra);
    all.push("--");
    all.push(program);
    all.extend_from_slice(args);
    let (run, summary) = flameprof_with_summary(&all, T, &format!("flameprof {}", all.join(" ")));
    (Folded::read(Path::new(&out)), run, summary)
}

/// Weight of the stacks holding every one of `chain`, in this order from
/// the root (not necessarily adjacent).
fn with_chain(folded: &Folded, chain: &[&str]) -> u64 {
    folded.sum_where(|stack| {
        let positions: Option<Vec<usize>> = chain.iter().map(|f| stack.position(f)).collect();
        positions.is_some_and(|p| p.windows(2).all(|w| w[0] < w[1]))
    })
}

#[test]
fn code_without_frame_pointers_reaches_main_on_cpu() {
    root_or_skip!();
    let program = no_fp_program();
    let (table, run, summary) = record(&["-F", "999", "--call-graph", "table"], &program, &["cpu", "2"]);
    let total = table.total();
    assert!(total >= 1000, "only {total} samples:\n{}", run.stderr);
    // outer spends about 1 % of its time reading the clock, not in middle.
    let under_main = with_chain(&table, &["_start", "main", "outer"]);
    assert!(
        under_main as f64 >= 0.99 * total as f64,
        "only {under_main} of {total} samples have _start, main and outer above them\n{}\n{}",
        table.describe_top(8),
        run.stderr
    );
    // 3:1 by construction (inner_hot spins 3000 rounds per 1000 of inner_cold).
    let hot = with_chain(&table, &["middle", "inner_hot", "spin"]) as f64;
    let cold = with_chain(&table, &["middle", "inner_cold", "spin"]) as f64;
    let hot_share = hot / (hot + cold);
    assert!(within(hot_share, 0.75, 0.05), "inner_hot's share of the spinning is {hot_share:.3}, expected 0.75");
    assert_eq!(summary.get("samples.lost"), 0.0);
    let walks = summary.get("table_unwinding.user_stacks");
    let complete = summary.get("table_unwinding.complete");
    assert!(complete >= 0.99 * walks, "only {complete} of {walks} walks complete:\n{}", run.stderr);

    // Frame pointers lose the callers: what makes this workload a test.
    let (fp, _, _) = record(&["-F", "999"], &program, &["cpu", "1"]);
    let fp_under_main = with_chain(&fp, &["main", "outer", "middle"]);
    assert!(
        (fp_under_main as f64) < 0.5 * fp.total() as f64,
        "frame pointers found main in {fp_under_main} of {} samples: the workload no longer tests frameless code",
        fp.total()
    );
}

#[test]
fn a_direct_nanosleep_caller_shows_with_its_time_off_cpu() {
    root_or_skip!();
    let program = no_fp_program();
    let (table, run, _) = record(&["--off-cpu", "--call-graph", "table"], &program, &["sleep", "5", "200"]);
    // Microseconds; 5 x 200 ms in sleeper, which calls nanosleep itself.
    let sleeping = with_chain(&table, &["_start", "main", "sleeper", "__GI___clock_nanosleep"]) as f64 / 1e6;
    assert!(
        within(sleeping, 1.0, 0.10),
        "main -> sleeper -> nanosleep waited {sleeping:.3} s, expected 1.0 s\n{}\n{}",
        table.describe_top(6),
        run.stderr
    );
    // With frame pointers the wrapper hides its caller (the bug this fixes).
    let (fp, _, _) = record(&["--off-cpu"], &program, &["sleep", "5", "200"]);
    assert_eq!(with_chain(&fp, &["sleeper", "__GI___clock_nanosleep"]), 0, "{}", fp.describe_top(6));
}

#[test]
fn a_direct_read_caller_shows_with_its_time_off_cpu() {
    root_or_skip!();
    let program = no_fp_program();
    let (table, run, _) = record(&["--off-cpu", "--call-graph", "table"], &program, &["read", "5", "200"]);
    let reading = with_chain(&table, &["main", "reader", "__GI___libc_read"]) as f64 / 1e6;
    assert!(
        within(reading, 1.0, 0.10),
        "main -> reader -> read waited {reading:.3} s, expected 1.0 s\n{}\n{}",
        table.describe_top(6),
        run.stderr
    );
    // The writer thread's sleeps are under its thread entry.
    let writer = with_chain(&table, &["clone3", "start_thread", "writer", "__GI___clock_nanosleep"]) as f64 / 1e6;
    assert!(within(writer, 1.0, 0.10), "the writer thread slept {writer:.3} s, expected 1.0 s");
}

#[test]
fn a_signal_handler_shows_the_interrupted_code_beneath_it() {
    root_or_skip!();
    let program = no_fp_program();
    let (table, run, _) = record(&["-F", "999", "--call-graph", "table"], &program, &["signal", "1.5"]);
    let in_handler = table.with_frame("handler_work");
    assert!(in_handler >= 100, "only {in_handler} samples in the signal handler:\n{}", run.stderr);
    let whole = with_chain(&table, &["_start", "main", "victim", "on_signal", "handler_work"]);
    assert!(
        whole as f64 >= 0.95 * in_handler as f64,
        "only {whole} of {in_handler} handler samples have the interrupted victim and main beneath\n{}",
        table.describe_top(6)
    );
}

#[test]
fn recursion_deeper_than_the_limit_is_cut_and_counted() {
    root_or_skip!();
    let program = no_fp_program();
    let (table, run, summary) = record(&["-F", "999", "-U", "--call-graph", "table"], &program, &["deep", "1"]);
    let total = table.total();
    // 300 frames of 2 KiB each: every walk stops at the 127-frame limit.
    let at_limit = summary.get("table_unwinding.at_depth_limit");
    assert!(at_limit >= 0.95 * total as f64, "{at_limit} of {total} walks at the depth limit:\n{}", run.stderr);
    // -U: the process frame, then 127 user frames (the leaf, spin or the
    // clock, under 126 of recurse).
    let full_depth =
        table.sum_where(|s| s.frames.len() == 128 && s.frames.iter().filter(|f| *f == "recurse").count() >= 126);
    assert!(
        full_depth as f64 >= 0.95 * total as f64,
        "only {full_depth} of {total} stacks have 127 user frames, 126 of them recurse\n{}",
        table.describe_top(3)
    );
}

#[test]
fn a_qsort_callback_keeps_its_callers_through_libc() {
    root_or_skip!();
    let (table, run, _) = record(&["-F", "999", "--call-graph", "table"], &example("libc_sort"), &["1.5"]);
    let in_compare = table.with_frame("libc_sort::compare");
    let whole =
        with_chain(&table, &["libc_sort::main", "libc_sort::sort_rounds", "msort_with_tmp", "libc_sort::compare"]);
    assert!(in_compare >= 500, "only {in_compare} samples in compare:\n{}", run.stderr);
    assert!(
        whole as f64 >= 0.95 * in_compare as f64,
        "only {whole} of {in_compare} compare samples have main, sort_rounds and msort_with_tmp above\n{}",
        table.describe_top(6)
    );
}

/// Debian's own python3, built without frame pointers: its stacks reach
/// _start.
#[test]
fn debians_python3_stacks_reach_start() {
    root_or_skip!();
    let python = Path::new("/usr/bin/python3");
    assert!(python.exists(), "Debian's python3 is missing (package python3)");
    let script = "import json, re\n\
        d = [{'a': i, 'b': str(i) * 5} for i in range(2000)]\n\
        for _ in range(1000):\n    s = json.dumps(d); json.loads(s); re.findall(r'\\d+', s)\n";
    let (table, run, summary) = record(&["-F", "999", "--call-graph", "table"], &s(python), &["-c", script]);
    let total = table.total();
    let complete = table.sum_where(|s| s.frames.iter().any(|f| f == "_start"));
    assert!(
        complete as f64 >= 0.99 * total as f64,
        "only {complete} of {total} python3 samples reach _start\n{}\n{}",
        table.describe_top(8),
        run.stderr
    );
    assert_eq!(summary.get("table_unwinding.cut_at_bad_frame"), 0.0, "{}", run.stderr);
}

/// --wall runs the on-CPU and the off-CPU walkers at once (each program type
/// has its own program array of walkers): both halves keep their callers.
#[test]
fn wall_time_walks_both_halves_with_tables() {
    root_or_skip!();
    let program = no_fp_program();
    let (table, run, _) = record(&["--wall", "--call-graph", "table"], &program, &["sleep", "3", "200"]);
    let asleep = with_chain(&table, &["[off-cpu]", "main", "sleeper", "__GI___clock_nanosleep"]) as f64 / 1e6;
    assert!(within(asleep, 0.6, 0.10), "main -> sleeper waited {asleep:.3} s, expected 0.6 s\n{}", run.stderr);
    let warm = with_chain(&table, &["[on-cpu]", "main", "warm_up"]) as f64 / 1e6;
    assert!(within(warm, 0.1, 0.25), "main -> warm_up ran {warm:.3} s, expected 0.1 s\n{}", table.describe_top(6));
}
