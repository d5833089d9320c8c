//! Stripped binaries: their debug files from a real debuginfod server
//! (Debian's), and what happens without one: module+offset frames, a
//! counted miss, never a wait past the timeout.

use flameprof_tests::*;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(90);

/// A copy of the C workload whose symbols live only in a debug file:
/// (stripped program, directory holding its debug file).
fn stripped_program(dir: &TempDir) -> (PathBuf, PathBuf) {
    // As tests/tables.rs builds it: every function of the chain keeps its frame.
    let built = c_program("no_frame_pointers", &["-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls"]);
    let program = dir.join("stripped");
    let serve = dir.join("serve");
    std::fs::create_dir_all(&serve).unwrap();
    let run = |args: &[&str]| {
        let status = Command::new("objcopy").args(args).status().expect("run objcopy (binutils)");
        assert!(status.success(), "objcopy {args:?} failed");
    };
    run(&["--only-keep-debug", &s(&built), &s(&serve.join("stripped.debug"))]);
    run(&["--strip-all", &s(&built), &s(&program)]);
    (program, serve)
}

/// Records the stripped program's 3:1 split with these settings.
fn record(program: &Path, extra: &[&str], env: &[(&str, &str)], dir: &TempDir, name: &str) -> (Folded, Run, Summary) {
    let out = s(&dir.join(&format!("{name}.folded")));
    // 999 Hz: about 1000 samples, so the 3:1 split is known to ±0.014 (one sigma).
    let mut args = vec!["-F", "999", "-o", &out];
    args.extend_from_slice(extra);
    let program = s(program);
    args.extend_from_slice(&["--", &program, "cpu", "1"]);
    let (run, summary) = flameprof_with_summary_env(&args, env, T, name);
    (Folded::read(Path::new(&out)), run, summary)
}

#[test]
fn a_stripped_program_is_named_through_a_debuginfod_server() {
    root_or_skip!();
    let dir = TempDir::new("debuginfod");
    let (program, serve) = stripped_program(&dir);
    let server = DebuginfodServer::start(&serve, &build_id_of(&program));
    let cache = s(&dir.join("cache"));
    let env = [("DEBUGINFOD_URLS", server.url.as_str()), ("DEBUGINFOD_CACHE_PATH", cache.as_str())];
    let (folded, run, summary) = record(&program, &[], &env, &dir, "with-server");
    let hot = with_chain(&folded, &["main", "outer", "middle", "inner_hot", "spin"]) as f64;
    let cold = with_chain(&folded, &["main", "outer", "middle", "inner_cold", "spin"]) as f64;
    let total = folded.total() as f64;
    assert!(
        hot + cold >= 0.95 * total,
        "only {} of {total} samples named\n{}\n{}",
        hot + cold,
        folded.describe_top(5),
        run.stderr
    );
    assert!(within(hot / (hot + cold), 0.75, 0.05), "inner_hot's share {:.3}, expected 0.75", hot / (hot + cold));
    assert_eq!(summary.get("debug_info.found_by_debuginfod"), 1.0, "{}", run.stderr);
    assert_eq!(summary.get("debug_info.debuginfod_misses"), 0.0);
}

#[test]
fn without_debug_info_frames_are_module_offsets_and_the_miss_is_counted() {
    root_or_skip!();
    let dir = TempDir::new("debuginfod-miss");
    let (program, _serve) = stripped_program(&dir);
    let (folded, run, summary) = record(&program, &["--no-debuginfod"], &[], &dir, "no-server");
    assert_eq!(with_chain(&folded, &["outer"]), 0, "named without debug info?\n{}", folded.describe_top(5));
    let offsets = folded.sum_where(|stack| stack.frames.iter().any(|f| f.starts_with("stripped+0x")));
    assert!(offsets as f64 >= 0.95 * folded.total() as f64, "{}\n{}", folded.describe_top(5), run.stderr);
    let no_debug_info = summary.get("frames.unresolved_by_cause.no_debug_info");
    assert!(no_debug_info >= folded.total() as f64, "no_debug_info {no_debug_info}\n{}", run.stderr);
    let without = summary.value("debug_info.files_without_debug_info").to_string();
    assert!(without.contains("\"stripped\""), "files without debug info: {without}");

    // A server that accepts connections and never answers: the request
    // gives up at the timeout, counts a miss, and the server is asked no more.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let cache = s(&dir.join("cache"));
    let env = [("DEBUGINFOD_URLS", url.as_str()), ("DEBUGINFOD_CACHE_PATH", cache.as_str())];
    let (_, run, summary) = record(&program, &["--debuginfod-timeout", "2"], &env, &dir, "silent-server");
    assert_eq!(summary.get("debug_info.debuginfod_misses"), 1.0, "{}", run.stderr);
    let waited = summary.get("debug_info.debuginfod_seconds");
    assert!((1.5..3.0).contains(&waited), "waited {waited:.2} s for a 2 s timeout\n{}", run.stderr);
    assert_eq!(summary.value("debug_info.debuginfod_gave_up"), &serde_json::Value::Bool(true));
}
