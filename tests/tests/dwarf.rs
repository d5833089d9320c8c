//! `--call-graph dwarf`: user stacks unwound with the binaries' .eh_frame,
//! through code built without frame pointers (real flameprof, real
//! workloads).

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

/// A run this file's tests stand for, which a kernel without
/// bpf_task_pt_regs (Linux 5.15) must refuse with the line naming it.
const WALK_HERE: &[&str] = &["--call-graph", "dwarf", "-o", "/dev/null", "--", "true"];

const T: Duration = Duration::from_secs(40);

/// Records `-F 999 [extra] -- EXAMPLE ARGS` into a folded profile and a
/// JSON summary.
fn record(extra: &[&str], workload: &str, args: &[&str]) -> (Folded, Run, Summary) {
    let dir = TempDir::new("dwarf");
    let out = dir.join("p.folded");
    let out = s(&out);
    let program = example(workload);
    let mut all = vec!["-F", "999", "-o", &out];
    all.extend_from_slice(extra);
    all.push("--");
    all.push(&program);
    all.extend_from_slice(args);
    let (run, summary) = flameprof_with_summary(&all, T, &format!("flameprof {}", all.join(" ")));
    (Folded::read(Path::new(&out)), run, summary)
}

/// Share of the samples in `leaf_fn` whose stack holds each of `callers`,
/// in this order from the root, rootward of `leaf_fn`.
fn share_with_callers(folded: &Folded, leaf_fn: &str, callers: &[&str]) -> (f64, u64) {
    let total = folded.with_frame(leaf_fn);
    let whole = folded.sum_where(|s| {
        let Some(leaf) = s.position(leaf_fn) else { return false };
        let positions: Option<Vec<usize>> = callers.iter().map(|c| s.position(c)).collect();
        positions.is_some_and(|p| p.windows(2).all(|w| w[0] < w[1]) && p.last().is_none_or(|&last| last < leaf))
    });
    (whole as f64 / total.max(1) as f64, total)
}

/// The comparison callback of libc's qsort (no frame pointers in Debian's
/// libc) is found under its real callers with DWARF unwinding; frame
/// pointers lose them (which is what makes this workload a test).
#[test]
fn dwarf_unwinding_walks_through_code_without_frame_pointers() {
    root_or_skip!();
    kernel_can_record!();
    needs_kernel_feature!("bpf_task_pt_regs", WALK_HERE);
    let callers = ["libc_sort::main", "libc_sort::sort_rounds"];
    let (dwarf, run, summary) = record(&["--call-graph", "dwarf"], "libc_sort", &["1.5"]);
    let (share, n) = share_with_callers(&dwarf, "libc_sort::compare", &callers);
    assert!(n >= 500, "only {n} samples in libc_sort::compare:\n{}", dwarf.describe_top(6));
    assert!(
        share >= 0.95,
        "--call-graph dwarf: only {:.1}% of {n} samples in compare have main and sort_rounds above them\n{}\n{}",
        share * 100.0,
        dwarf.describe_top(6),
        run.stderr
    );
    // The libc frames between them are there too.
    let (through_qsort, _) =
        share_with_callers(&dwarf, "libc_sort::compare", &["libc_sort::sort_rounds", "msort_with_tmp"]);
    assert!(
        through_qsort >= 0.95,
        "only {:.1}% of compare samples show qsort's frames\n{}",
        through_qsort * 100.0,
        dwarf.describe_top(6)
    );
    let complete = summary.get("dwarf_unwinding.complete");
    let stacks = summary.get("dwarf_unwinding.user_stacks");
    assert!(complete >= 0.95 * stacks, "only {complete} of {stacks} unwinds complete:\n{summary}");

    let (fp, _, _) = record(&["--call-graph", "fp"], "libc_sort", &["1"]);
    let (fp_share, _) = share_with_callers(&fp, "libc_sort::compare", &callers);
    assert!(
        fp_share < 0.5,
        "frame pointers found compare's callers in {:.1}% of samples: this libc keeps frame pointers, so the workload no longer tests unwinding through frameless code",
        fp_share * 100.0
    );
}

/// DWARF unwinding changes how stacks are walked, not what is counted: the
/// 3:1 split holds and every sample is kept.
#[test]
fn dwarf_unwinding_keeps_the_cpu_split() {
    root_or_skip!();
    kernel_can_record!();
    needs_kernel_feature!("bpf_task_pt_regs", WALK_HERE);
    let (folded, _, summary) = record(&["--call-graph", "dwarf"], "cpu_split", &["2", "3"]);
    let hot = folded.with_frame("cpu_split::hot_three_quarters");
    let cold = folded.with_frame("cpu_split::cold_one_quarter");
    let n = hot + cold;
    assert!(n >= 700, "only {n} samples in hot/cold:\n{}", folded.describe_top(6));
    assert!(
        (share(hot, cold) - 0.75).abs() <= 0.07,
        "3:1 split with dwarf unwinding: hot share {:.3} of {n}\n{}",
        share(hot, cold),
        folded.describe_top(6)
    );
    assert_eq!(summary.get("samples.lost"), 0.0, "samples were lost:\n{summary}");
    let (under_main, _) = share_with_callers(&folded, "cpu_split::hot_three_quarters", &["_start", "cpu_split::main"]);
    assert!(
        under_main >= 0.95,
        "only {:.1}% of hot samples reach _start\n{}",
        under_main * 100.0,
        folded.describe_top(6)
    );
}

/// Samples taken in the kernel unwind the user stack from the registers
/// saved at kernel entry: kernel frames leafward, the user caller above.
#[test]
fn dwarf_unwinding_of_samples_in_the_kernel() {
    root_or_skip!();
    kernel_can_record!();
    needs_kernel_feature!("bpf_task_pt_regs", WALK_HERE);
    let (folded, _, _) = record(&["--call-graph", "dwarf"], "syscall_loop", &["1.5"]);
    let user_fn = "syscall_loop::read_dev_zero";
    let in_kernel_below = folded.sum_where(|s| {
        s.position(user_fn).is_some_and(|i| s.frames[i + 1..].iter().any(|f| is_kernel(f)))
            && s.contains("syscall_loop::main")
    });
    let total = folded.with_frame(user_fn);
    assert!(total >= 300, "only {total} samples in {user_fn}:\n{}", folded.describe_top(6));
    assert!(
        in_kernel_below as f64 >= 0.8 * total as f64,
        "{in_kernel_below} of {total} samples in {user_fn} have kernel frames below and main above\n{}",
        folded.describe_top(6)
    );
}

/// Threads start at clone3, whose CFI marks the outermost frame: their
/// stacks are complete too.
#[test]
fn dwarf_unwinding_of_threads() {
    root_or_skip!();
    kernel_can_record!();
    needs_kernel_feature!("bpf_task_pt_regs", WALK_HERE);
    let (folded, _, summary) = record(&["--call-graph", "dwarf"], "threads", &["1.5", "3"]);
    for i in 0..3 {
        let f = format!("threads::worker_{i}");
        let n = folded.with_frame(&f);
        assert!(n >= 30, "{f} has {n} samples:\n{}", folded.describe_top(8));
    }
    let complete = summary.get("dwarf_unwinding.complete");
    let stacks = summary.get("dwarf_unwinding.user_stacks");
    assert!(complete >= 0.95 * stacks, "only {complete} of {stacks} thread unwinds complete:\n{summary}");
}

/// Go binaries have .debug_frame (compressed), not .eh_frame, and Go leaves
/// leaf functions without a frame pointer: only the CFI finds the leaf's
/// caller (examples/go/leaf_spin.go).
#[test]
fn dwarf_unwinding_of_a_go_program_reads_debug_frame() {
    root_or_skip!();
    kernel_can_record!();
    needs_kernel_feature!("bpf_task_pt_regs", WALK_HERE);
    let dir = TempDir::new("go");
    let program = dir.join("leaf_spin");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/go/leaf_spin.go");
    let built = std::process::Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .env("GOCACHE", std::env::temp_dir().join("flameprof-tests-gocache"))
        .env("GOPATH", std::env::temp_dir().join("flameprof-tests-gopath"))
        .env("GO111MODULE", "off")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `go build` ({e}): scripts/setup.sh --tests installs golang-go"));
    assert!(built.status.success(), "go build failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let program = s(&program);
    let record_go = |call_graph: &str| {
        let out = dir.join(&format!("{call_graph}.folded"));
        let run = flameprof(&["-F", "999", "--call-graph", call_graph, "-o", &s(&out), "--", &program, "1.5"], T);
        run.assert_success(&format!("flameprof --call-graph {call_graph} -- leaf_spin"));
        (Folded::read(&out), run)
    };
    let (dwarf, run) = record_go("dwarf");
    let (share, n) = share_with_callers(&dwarf, "main.spin", &["main.main", "main.outer"]);
    assert!(n >= 500, "only {n} samples in main.spin:\n{}", dwarf.describe_top(4));
    assert!(
        share >= 0.95,
        "--call-graph dwarf: only {:.1}% of main.spin samples under main.outer\n{}\n{}",
        share * 100.0,
        dwarf.describe_top(4),
        run.stderr
    );
    // Frame pointers alone skip main.spin's caller (a frameless leaf); the
    // fp walk's leaf fix-up puts it back from the CFI, which in a Go binary
    // is .debug_frame only: the fix-up count shows the walk alone missed it.
    let out = dir.join("fp.folded");
    let fp_args = ["-F", "999", "--call-graph", "fp", "-o", &s(&out), "--", &program, "1.5"];
    let (fp_run, summary) = flameprof_with_summary(&fp_args, T, "flameprof --call-graph fp -- leaf_spin");
    let fp = Folded::read(&out);
    let (fp_share, fp_n) = share_with_callers(&fp, "main.spin", &["main.main", "main.outer"]);
    let inserted = summary.get("leaf_fixup.on_cpu_samples.callers_inserted");
    assert!(
        inserted >= 0.9 * fp_n as f64,
        "the leaf fix-up put main.spin's caller back in only {inserted} of {fp_n} samples: this Go keeps frame pointers in leaves, so the workload no longer tests .debug_frame\n{}",
        fp_run.stderr
    );
    assert!(
        fp_share >= 0.9,
        "with the fix-up, main.outer is above main.spin in only {:.1}% of samples",
        fp_share * 100.0
    );
}
