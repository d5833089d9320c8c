//! BPF run-time statistics: where a BPF profiler's time goes. BPF_ENABLE_STATS
//! turns on the kernel's per-program run-time accounting for as long as the
//! returned fd is open (so it switches itself off if this bench dies); the
//! profiler's programs are then found through its /proc/PID/fd and their
//! run_cnt / run_time_ns read from /proc/PID/fdinfo while it runs.
//!
//! A program entered by a tail call (the `--call-graph table` walkers) is not
//! counted on its own: the kernel times the run of the program it entered
//! through, tail calls included, and leaves the walker's run_cnt at 0. The
//! stats are summed by program type, which covers both ways of counting.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::ctx::Ctx;
use crate::process::{Ran, check, die, set_nice};

const BPF_ENABLE_STATS: libc::c_long = 32;
const BPF_STATS_RUN_TIME: u32 = 0;

fn enable_bpf_stats() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd as _;
    let attr = [BPF_STATS_RUN_TIME, 0u32];
    // SAFETY: `attr` is a live 8-byte bpf_attr prefix for BPF_ENABLE_STATS; the kernel only reads
    // `size_of_val(&attr)` bytes of it.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_ENABLE_STATS, attr.as_ptr(), std::mem::size_of_val(&attr)) };
    // SAFETY: a non-negative result is a new descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

#[derive(Clone, Debug, Default)]
pub struct ProgStat {
    pub prog_type: u32,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

/// BPF_PROG_TYPE_PERF_EVENT: the on-CPU samplers.
pub const PERF_EVENT: u32 = 7;

fn prog_type_name(t: u32) -> String {
    match t {
        5 => "tracepoint".into(),
        PERF_EVENT => "perf_event".into(),
        17 => "raw_tracepoint".into(),
        26 => "tracing (tp_btf)".into(),
        _ => format!("type {t}"),
    }
}

/// Current stats of the BPF programs that process `pid` holds, by prog id.
fn read_prog_stats(pid: u32, into: &mut BTreeMap<u64, ProgStat>) {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return };
    for e in dir.filter_map(|e| e.ok()) {
        if !std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("bpf-prog")) {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy()))
        else {
            continue;
        };
        let field = |k: &str| {
            info.lines().find_map(|l| l.strip_prefix(k).map(|v| v.trim().parse::<u64>().unwrap_or(0))).unwrap_or(0)
        };
        into.insert(
            field("prog_id:"),
            ProgStat {
                prog_type: field("prog_type:") as u32,
                run_cnt: field("run_cnt:"),
                run_time_ns: field("run_time_ns:"),
            },
        );
    }
}

/// Runs `cmd` like [`run`], with BPF run-time stats on, sampling the stats
/// of the programs it holds until it exits. Stats are summed by program type.
pub fn run_with_bpf_stats(cmd: &mut Command, nice: i32) -> (Ran, Vec<ProgStat>) {
    let guard = enable_bpf_stats();
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    set_nice(cmd, nice);
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start {:?}: {e}", cmd.get_program())));
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut stats = BTreeMap::new();
    let status = loop {
        read_prog_stats(child.id(), &mut stats);
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    drop(guard);
    let ran = Ran { status, stderr: reader.join().unwrap_or_default(), wall: start.elapsed() };
    let mut by_type: BTreeMap<u32, ProgStat> = BTreeMap::new();
    for p in stats.values() {
        let e = by_type.entry(p.prog_type).or_insert(ProgStat { prog_type: p.prog_type, ..Default::default() });
        e.run_cnt += p.run_cnt;
        e.run_time_ns += p.run_time_ns;
    }
    if stats_look_disabled(&stats) {
        eprintln!("note: BPF run-time stats unavailable (BPF_ENABLE_STATS failed?)");
    }
    (ran, by_type.into_values().filter(|p| p.run_cnt > 0).collect())
}

/// `flameprof -F 999 --call-graph CALL_GRAPH -o TMP/OUTPUT -- <this bench>
/// ARGS`, with BPF run-time stats on (OUTPUT's extension picks the format).
pub fn self_at_999_hz_with_bpf_stats(
    ctx: &Ctx,
    call_graph: &str,
    output: &str,
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> (Ran, Vec<ProgStat>) {
    let me = std::env::current_exe().expect("current_exe");
    let (ran, stats) = run_with_bpf_stats(
        Command::new(&ctx.flameprof)
            .args(["-F", "999", "--call-graph", call_graph, "-o"])
            .arg(ctx.tmp.join(output))
            .arg("--")
            .arg(&me)
            .args(args),
        ctx.nice,
    );
    check(&ran, "flameprof with BPF stats");
    (ran, stats)
}

/// Programs found but none ever counted a run: the kernel kept no stats.
fn stats_look_disabled(stats: &BTreeMap<u64, ProgStat>) -> bool {
    !stats.is_empty() && stats.values().all(|p| p.run_cnt == 0)
}

/// Rows for a "BPF run time" table; `per` = (name, count) of the events the
/// programs' cost is divided by.
pub fn bpf_rows(run: &str, stats: &[ProgStat], wall: f64, per: Option<(&str, f64)>) -> Vec<Vec<String>> {
    stats
        .iter()
        .map(|p| {
            vec![
                run.to_string(),
                prog_type_name(p.prog_type),
                format!("{}", p.run_cnt),
                format!("{:.0}", p.run_time_ns as f64 / p.run_cnt as f64),
                format!("{:.1}", p.run_time_ns as f64 / 1e6),
                format!("{:.2} %", 100.0 * p.run_time_ns as f64 / 1e9 / wall),
                per.map_or("—".into(), |(what, n)| format!("{:.2} µs per {what}", p.run_time_ns as f64 / 1e3 / n)),
            ]
        })
        .collect()
}

pub const BPF_HEADER: [&str; 7] =
    ["run", "program", "runs", "ns / run", "total ms", "of the run's wall time", "per event"];
