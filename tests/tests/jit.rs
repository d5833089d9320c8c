//! JIT code named through perf maps (`/tmp/perf-PID.map`): the `jit` example
//! writes two functions into anonymous memory and names them in its map;
//! node's `--perf-basic-prof` names JavaScript functions.

use flameprof_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

/// Records `[extra] -- PROGRAM ARGS` into a folded profile (and a pprof
/// one) with a summary.
fn record(dir: &TempDir, extra: &[&str], program: &str, args: &[&str]) -> (Folded, Run, Summary) {
    let out = s(&dir.join("p.folded"));
    let pprof = s(&dir.join("p.pb.gz"));
    let mut all = vec!["-o", &out, "-o", &pprof];
    all.extend_from_slice(extra);
    all.push("--");
    all.push(program);
    all.extend_from_slice(args);
    let (run, summary) = flameprof_with_summary(&all, T, &format!("flameprof {}", all.join(" ")));
    (Folded::read(Path::new(&out)), run, summary)
}

/// Samples in anonymous memory no perf map entry named (`[anon]+0x...`).
fn unnamed_jit(folded: &Folded) -> u64 {
    folded.sum_where(|stack| stack.frames.iter().any(|f| f.starts_with("[anon]+0x")))
}

/// Samples in the example's two JIT functions, named.
fn named_jit(folded: &Folded) -> (u64, u64) {
    (folded.with_frame("jit_hot_[j]"), folded.with_frame("jit_cold_[j]"))
}

/// The example's JIT code, named, nearly all of it, in the 3:1 split of its
/// construction.
fn assert_named_three_to_one(folded: &Folded, run: &Run, at_least: u64) {
    let (hot, cold) = named_jit(folded);
    let unnamed = unnamed_jit(folded);
    let named = hot + cold;
    assert!(named >= at_least, "only {named} samples in named JIT code\n{}\n{}", folded.describe_top(6), run.stderr);
    assert!(
        named as f64 >= 0.99 * (named + unnamed) as f64,
        "{unnamed} samples in unnamed anonymous code, {named} named\n{}",
        folded.describe_top(6)
    );
    let hot_share = share(hot, cold);
    assert!(within(hot_share, 0.75, 0.10), "jit_hot's share is {hot_share:.3} ({hot}:{cold}), expected 0.75");
}

#[test]
fn jit_functions_are_named_under_their_rust_callers_in_their_three_to_one_split() {
    root_or_skip!();
    let dir = TempDir::new("jit");
    let (folded, run, summary) = record(&dir, &["-F", "999"], &example("jit"), &["1.5", "remove"]);
    let total = folded.total();
    assert_named_three_to_one(&folded, &run, 1000);
    let (hot, cold) = named_jit(&folded);
    assert!((hot + cold) as f64 >= 0.95 * total as f64, "{} of {total} samples in JIT code", hot + cold);
    // The default unwinder walks JIT code by its frame pointer, to the Rust
    // code that called it.
    let under_callers = with_chain(&folded, &["jit::main", "jit::run_jit_code", "jit_hot_[j]"])
        + with_chain(&folded, &["jit::main", "jit::run_jit_code", "jit_cold_[j]"]);
    assert!(
        under_callers as f64 >= 0.98 * (hot + cold) as f64,
        "only {under_callers} of {} JIT samples under jit::main and jit::run_jit_code\n{}",
        hot + cold,
        folded.describe_top(6)
    );
    assert_eq!(summary.get("jit.perf_maps_read"), 1.0);
    assert_eq!(summary.get("jit.perf_map_entries"), 2.0);
    assert_eq!(summary.get("jit.perf_map_malformed_lines"), 0.0);
    assert!(summary.get("jit.weighted_frames_named") >= (hot + cold) as f64, "{summary}");
    assert!(summary.get("frames.unresolved_percent") < 1.0, "{summary}");

    // pprof keeps the JIT mark: `report` of it names both functions so.
    let report = flameprof(&["report", &s(&dir.join("p.pb.gz")), "--top", "100", "--json"], T);
    report.assert_success("flameprof report p.pb.gz");
    let json: serde_json::Value = serde_json::from_slice(&report.stdout).expect("report --json is JSON");
    let total_of = |function: &str| {
        json["top_total"].as_array().unwrap().iter().find(|r| r["function"] == function).map(|r| r["total"].clone())
    };
    assert_eq!(total_of("jit_hot_[j]"), Some(hot.into()), "{json}");
    assert_eq!(total_of("jit_cold_[j]"), Some(cold.into()), "{json}");
}

/// The workload runs 3 s under `-p PID -d 5`: its JIT code is named after it
/// exits (the recording ends with it), its map left behind and read at the
/// end, or deleted at its exit and read while it ran. The second time a
/// spinner keeps the recording going 2 s past its exit. (3 s, not 1: on a
/// busy machine flameprof's start-up took 1.5 s, and the workload had
/// ended before it.)
#[test]
fn jit_code_is_named_when_the_process_exits_before_the_recording_ends() {
    root_or_skip!();
    for map in ["keep", "remove"] {
        let mut workload = Background::spawn(example("jit"), &["3", map]);
        let spinner = (map == "remove").then(|| Background::spawn(example("spinner"), &["8"]));
        let mut pids = workload.pid().to_string();
        if let Some(spinner) = &spinner {
            pids = format!("{pids},{}", spinner.pid());
        }
        let dir = TempDir::new("jit-exit");
        let out = s(&dir.join("p.folded"));
        let args = ["-F", "999", "-p", &pids, "-d", "5", "-o", &out];
        let (run, summary) = flameprof_with_summary(&args, T, &format!("flameprof {} ({map})", args.join(" ")));
        let exited = workload.wait(Duration::from_secs(1));
        let _ = std::fs::remove_file(format!("/tmp/perf-{}.map", workload.pid()));
        assert!(exited.is_some_and(|s| s.success()), "the jit workload did not end well: {exited:?}");
        if map == "remove" {
            assert_eq!(summary.value("stopped_by"), "duration", "{summary}");
            assert!(summary.get("duration_seconds") >= 4.9, "{summary}");
        } else {
            assert_eq!(summary.value("stopped_by"), "target ended", "{summary}");
        }
        let folded = Folded::read(Path::new(&out));
        // flameprof's start-up (loading BPF) takes part of the second.
        assert_named_three_to_one(&folded, &run, 300);
    }
}

/// Garbage lines, numbers too large, empty ranges and bytes that are not
/// UTF-8 around one good entry (jit_cold): no crash, jit_cold named, jit_hot
/// left as its offset in anonymous memory, and counted as unresolved.
#[test]
fn a_malformed_perf_map_leaves_frames_unresolved_and_counted() {
    root_or_skip!();
    let dir = TempDir::new("jit-garbage");
    let (folded, run, summary) = record(&dir, &["-F", "999"], &example("jit"), &["1.5", "garbage"]);
    let (hot, cold) = named_jit(&folded);
    let unnamed = unnamed_jit(&folded);
    assert_eq!(hot, 0, "{}", folded.describe_top(6));
    assert!(cold >= 200, "only {cold} samples named jit_cold\n{}\n{}", folded.describe_top(6), run.stderr);
    let hot_share = share(unnamed, cold);
    assert!(within(hot_share, 0.75, 0.10), "the unnamed share is {hot_share:.3} ({unnamed}:{cold}), expected 0.75");
    assert_eq!(summary.get("jit.perf_map_malformed_lines"), 8.0, "{summary}");
    assert_eq!(summary.get("jit.perf_map_entries"), 1.0, "{summary}");
    let without_entry = summary.get("jit.weighted_frames_without_map_entry");
    assert!(without_entry >= unnamed as f64, "{without_entry} frames without an entry, {unnamed} samples\n{summary}");
    assert!(summary.get("frames.weighted_unresolved") >= without_entry, "{summary}");
    // jit_hot is 3/4 of the samples, one of about 20 frames of each stack.
    let unresolved = summary.get("frames.unresolved_percent");
    assert!(unresolved > 2.0, "only {unresolved}% of frames unresolved\n{summary}");
}

/// node's --perf-basic-prof writes /tmp/perf-PID.map: the JavaScript
/// function that burns the CPU is named in most samples.
#[test]
fn node_perf_basic_prof_names_javascript_functions() {
    root_or_skip!();
    if !node_or_skip("node_perf_basic_prof_names_javascript_functions") {
        return;
    }
    let dir = TempDir::new("jit-node");
    let pid_file = dir.join("node.pid");
    // The shell writes its pid, which node keeps (exec), to find its map;
    // node's log (isolate-*-v8.log, which --perf-basic-prof turns on) goes
    // to the temporary directory.
    let shell =
        format!("echo $$ > '{}' && cd '{}' && exec node --perf-basic-prof -e \"$0\"", s(&pid_file), s(dir.path()));
    let recorded = std::panic::catch_unwind(|| record(&dir, &["-F", "999"], "sh", &["-c", &shell, BURN_CPU_JS]));
    if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<u32>().ok()) {
        let _ = std::fs::remove_file(format!("/tmp/perf-{pid}.map"));
    }
    let (folded, run, summary) = recorded.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    assert_burn_cpu_named(&folded, &run);
    assert!(summary.get("jit.perf_maps_read") >= 1.0, "{summary}");
}

/// node's --perf-prof writes a jitdump file (jit-PID.dump, in its working
/// directory) and maps it executable, with no perf map: the JavaScript
/// functions are named through the dump.
#[test]
fn node_perf_prof_jitdump_names_javascript_functions() {
    root_or_skip!();
    if !node_or_skip("node_perf_prof_jitdump_names_javascript_functions") {
        return;
    }
    let dir = TempDir::new("jit-node-dump");
    let shell = format!("cd '{}' && exec node --perf-prof -e \"$0\"", s(dir.path()));
    let (folded, run, summary) = record(&dir, &["-F", "999"], "sh", &["-c", &shell, BURN_CPU_JS]);
    let dumps = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok);
    let dumped = dumps.filter(|e| e.file_name().to_string_lossy().starts_with("jit-")).count();
    assert_eq!(dumped, 1, "node --perf-prof wrote no jit-PID.dump in {}", dir.path().display());
    assert_burn_cpu_named(&folded, &run);
    assert!(summary.get("jit.perf_map_entries") >= 1.0, "{summary}");
}

/// burnCpu (BURN_CPU_JS) is named as JIT code in most samples.
fn assert_burn_cpu_named(folded: &Folded, run: &Run) {
    let total = folded.total();
    let named = folded.sum_where(|st| st.frames.iter().any(|f| f.contains("burnCpu") && f.ends_with("_[j]")));
    assert!(
        named as f64 >= 0.7 * total as f64,
        "burnCpu named in only {named} of {total} samples\n{}\n{}",
        folded.describe_top(8),
        run.stderr
    );
}

/// JavaScript that burns the CPU in `burnCpu` for 2 s.
const BURN_CPU_JS: &str = "function burnCpu(n) { let x = 0; for (let i = 0; i < n; i++) { x = (x * 31 + i) % 1000003; } return x; }\n\
                  const end = Date.now() + 2000; let s = 0;\n\
                  while (Date.now() < end) { s += burnCpu(200000); }\n\
                  if (s < 0) console.log(s);";

/// Whether node is there; a loud skip line if not (a failure under CI).
fn node_or_skip(test: &str) -> bool {
    if Command::new("node").arg("--version").output().is_ok() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "CI is set but `node` is missing: install nodejs");
    let line = format!("!!!!! SKIPPED (node is not installed): {test} !!!!!");
    println!("{line}");
    eprintln!("{line}");
    false
}
