//! Section 1, on-CPU slowdown: the fixed work of `workload.rs` unprofiled
//! and under flameprof and perf at 99 and 999 Hz, in interleaved rounds.
//! The interrupt-time parts (1c–1e) are in `interrupts.rs`.

use std::ffi::OsString;
use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::bpf_stats::{BPF_HEADER, bpf_rows, self_at_999_hz_with_bpf_stats};
use crate::ctx::Ctx;
use crate::interrupts;
use crate::knobs::{env_f64, env_usize};
use crate::parse::{line_numbers, numbers};
use crate::process::{Ran, check, die, run, set_nice, signal};
use crate::stats::{median, min_max, quartiles};
use crate::table::{fmt_ratio, pct, print_table};
use crate::workload::{STACK_DEPTH, calibrate};

/// How sections 1 and 1c run this binary: unprofiled, or under which
/// profiler at what rate (Hz).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum OnCpu {
    Base,
    Flameprof(u32),
    Perf(u32),
    /// bpftrace's `profile:hz:N { }`: an empty BPF program on per-CPU
    /// cpu-clock timers, the cost of the sampling interrupt alone.
    EmptyBpf(u32),
    /// `perf record` without -g on the command's own timers: the per-task
    /// interrupt plus a minimal sample record (no stack walk).
    PerfNoStacks(u32),
    /// `--call-graph dwarf`: 8 KiB of user stack copied per sample.
    FlameprofDwarf(u32),
    PerfDwarf(u32),
    /// `--call-graph table`: the user stack walked in the kernel with unwind
    /// tables compiled from the binaries' .eh_frame.
    FlameprofTable(u32),
}

impl OnCpu {
    pub fn label(self) -> String {
        match self {
            OnCpu::Base => "unprofiled".into(),
            OnCpu::Flameprof(hz) => format!("flameprof --call-graph fp {hz} Hz"),
            OnCpu::Perf(hz) => format!("perf record -g {hz} Hz"),
            OnCpu::EmptyBpf(hz) => format!("empty BPF program {hz} Hz (floor, per CPU)"),
            OnCpu::PerfNoStacks(hz) => format!("perf record, no -g, {hz} Hz (floor, per task)"),
            OnCpu::FlameprofDwarf(hz) => format!("flameprof --call-graph dwarf {hz} Hz"),
            OnCpu::PerfDwarf(hz) => format!("perf record --call-graph dwarf {hz} Hz"),
            OnCpu::FlameprofTable(hz) => format!("flameprof --call-graph table {hz} Hz"),
        }
    }

    /// flameprof's `--call-graph` method, always given explicitly (the
    /// default may change); None for the runs without flameprof.
    fn call_graph(self) -> Option<&'static str> {
        match self {
            OnCpu::Flameprof(_) => Some("fp"),
            OnCpu::FlameprofDwarf(_) => Some("dwarf"),
            OnCpu::FlameprofTable(_) => Some("table"),
            _ => None,
        }
    }
}

/// One fixed-work run: wall and CPU seconds, and the profiler's sample count.
struct OnCpuRun {
    secs: f64,
    cpu: f64,
    samples: Option<f64>,
}

/// Waits until the background profiler `pid` has opened one perf event per CPU
/// (then a little longer for the BPF attach), or `timeout`.
fn wait_attached(pid: u32, timeout: Duration) {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let start = Instant::now();
    while start.elapsed() < timeout {
        let n = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().contains("perf_event")))
                    .count()
            })
            .unwrap_or(0);
        if n >= cpus {
            std::thread::sleep(Duration::from_millis(300));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
}

fn oncpu_run(ctx: &Ctx, v: OnCpu, chunks: u64, system_wide: bool) -> OnCpuRun {
    let (result, samples) = profiled_self(ctx, v, "--workload", &chunks.to_string(), system_wide);
    let (secs, cpu) = match result[..] {
        [secs, cpu] => (secs, cpu),
        _ => die(&format!("{}: the workload left no result", v.label())),
    };
    OnCpuRun { secs, cpu, samples }
}

/// Runs this binary in `mode` (`--workload` / `--gaps`) with argument `arg`,
/// under variant `v`; returns the numbers it wrote, and the profiler's sample count.
pub fn profiled_self(ctx: &Ctx, v: OnCpu, mode: &str, arg: &str, system_wide: bool) -> (Vec<f64>, Option<f64>) {
    let me = std::env::current_exe().expect("current_exe");
    let res = ctx.tmp.join("workload.result");
    let _ = std::fs::remove_file(&res);
    let workload: Vec<OsString> = vec![me.into(), mode.into(), arg.into(), res.clone().into()];
    let svg = ctx.tmp.join("oncpu.svg");
    let perf_data = ctx.tmp.join("perf.data");
    let stderr = match v {
        OnCpu::Base => {
            let ran = run(Command::new(&workload[0]).args(&workload[1..]), ctx.nice);
            check(&ran, "workload");
            ran.stderr
        }
        OnCpu::Flameprof(hz) | OnCpu::FlameprofDwarf(hz) | OnCpu::FlameprofTable(hz) if !system_wide => {
            let call_graph = v.call_graph().expect("a flameprof run");
            let ran = run(
                Command::new(&ctx.flameprof)
                    .args(["-F", &hz.to_string(), "--call-graph", call_graph, "-o"])
                    .arg(&svg)
                    .arg("--")
                    .args(&workload),
                ctx.nice,
            );
            check(&ran, "flameprof -- workload");
            ran.stderr
        }
        OnCpu::Flameprof(hz) | OnCpu::FlameprofDwarf(hz) | OnCpu::FlameprofTable(hz) => {
            let mut prof = Command::new(&ctx.flameprof);
            prof.args(["--call-graph", v.call_graph().expect("a flameprof run")]);
            prof.args(["-a", "-F", &hz.to_string(), "-o"])
                .arg(&svg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            set_nice(&mut prof, ctx.nice);
            let mut child = prof.spawn().unwrap_or_else(|e| die(&format!("flameprof -a: {e}")));
            wait_attached(child.id(), Duration::from_secs(10));
            let ran = run(Command::new(&workload[0]).args(&workload[1..]), ctx.nice);
            signal(child.id(), libc::SIGINT);
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            let status = child.wait().expect("wait flameprof");
            check(&ran, "workload");
            check(&Ran { status, stderr: err.clone(), wall: Duration::ZERO }, "flameprof -a");
            err
        }
        OnCpu::Perf(hz) | OnCpu::PerfNoStacks(hz) | OnCpu::PerfDwarf(hz) => {
            let mut cmd = Command::new("perf");
            cmd.arg("record");
            if system_wide {
                cmd.arg("-a");
            }
            match v {
                OnCpu::Perf(_) => drop(cmd.arg("-g")),
                OnCpu::PerfDwarf(_) => drop(cmd.args(["--call-graph", "dwarf"])),
                _ => {}
            }
            cmd.args(["-e", "cpu-clock", "-F", &hz.to_string(), "-o"]).arg(&perf_data).arg("--").args(&workload);
            let ran = run(&mut cmd, ctx.nice);
            check(&ran, "perf record");
            ran.stderr
        }
        OnCpu::EmptyBpf(hz) => {
            let line: Vec<String> = workload.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            let ran = run(
                Command::new("bpftrace").args(["-e", &format!("profile:hz:{hz} {{ }}"), "-c", &line.join(" ")]),
                ctx.nice,
            );
            check(&ran, "bpftrace profile:hz");
            ran.stderr
        }
    };
    let result = numbers(&std::fs::read_to_string(&res).unwrap_or_default());
    let samples = match v {
        OnCpu::Base | OnCpu::EmptyBpf(_) | OnCpu::PerfNoStacks(_) => None,
        OnCpu::Flameprof(_) | OnCpu::FlameprofDwarf(_) | OnCpu::FlameprofTable(_) => {
            line_numbers(&stderr, "samples:").and_then(|n| n.first().copied())
        }
        OnCpu::Perf(_) | OnCpu::PerfDwarf(_) => stderr
            .lines()
            .find(|l| l.contains("samples)"))
            .and_then(|l| l.rfind('(').map(|i| numbers(&l[i..])))
            .and_then(|n| n.first().copied()),
    };
    let _ = std::fs::remove_file(&perf_data);
    (result, samples)
}

/// The runs of sections 1 and 1c, in table order; both index them:
/// 0 unprofiled, 1 and 2 flameprof and perf at 99 Hz, 3 and 4 at 999 Hz.
pub const VARIANTS: [OnCpu; 5] =
    [OnCpu::Base, OnCpu::Flameprof(99), OnCpu::Perf(99), OnCpu::Flameprof(999), OnCpu::Perf(999)];

/// Section 1 and its parts, in print order: 1, 1c, 1d, 1b, 1e.
pub fn bench(ctx: &mut Ctx) {
    let rounds = env_usize("FLAMEPROF_BENCH_ROUNDS", 9).max(1);
    let work_secs = env_f64("FLAMEPROF_BENCH_WORK_SECS", 2.0);
    let system_wide = env_usize("FLAMEPROF_BENCH_SYSTEM_WIDE", 0) != 0;
    if Command::new("perf").arg("--version").output().is_err() {
        die("perf is not installed (apt-get install linux-perf)");
    }
    let chunks = calibrate(work_secs);
    slowdown(ctx, chunks, rounds, work_secs, system_wide);
    interrupts::taken_from_target(ctx, system_wide);
    interrupts::bystander(ctx, chunks, work_secs, system_wide);
    // Like 1d, these profile `-- CMD` only: left out of a system-wide run.
    if !system_wide {
        bpf_cost(ctx, chunks);
        interrupts::walk_cost(ctx);
    }
}

/// Section 1 proper: slowdown of the fixed work, wall and CPU time, per
/// round against the unprofiled run of the same round.
fn slowdown(ctx: &mut Ctx, chunks: u64, rounds: usize, work_secs: f64, system_wide: bool) {
    let workers = env_usize("FLAMEPROF_BENCH_WORKERS", 1).max(1);
    let scope = format!(
        "{} with {workers} worker thread(s)",
        if system_wide { "system-wide (-a)" } else { "the command only (-- CMD)" }
    );
    eprintln!("oncpu: {chunks} chunks of fixed work (≈{work_secs} s unprofiled), {rounds} rounds, profiling {scope}");
    // One warm-up run of each (page cache, BPF JIT, perf's first start).
    for &v in &VARIANTS {
        oncpu_run(ctx, v, chunks / 10 + 1, system_wide);
    }
    // Per variant: wall times, CPU times, and their per-round ratios to the
    // unprofiled run of the same round.
    let n = VARIANTS.len();
    let (mut wall, mut cpu) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let (mut wall_r, mut cpu_r) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let mut samples = vec![Vec::new(); n];
    for round in 0..rounds {
        // Interleaved; the order rotates each round so no variant always
        // follows the same one.
        let mut r: Vec<Option<OnCpuRun>> = (0..n).map(|_| None).collect();
        for k in 0..n {
            let i = (k + round) % n;
            r[i] = Some(oncpu_run(ctx, VARIANTS[i], chunks, system_wide));
        }
        let r: Vec<OnCpuRun> = r.into_iter().map(Option::unwrap).collect();
        for i in 0..n {
            wall[i].push(r[i].secs);
            cpu[i].push(r[i].cpu);
            wall_r[i].push(r[i].secs / r[0].secs - 1.0);
            cpu_r[i].push(r[i].cpu / r[0].cpu - 1.0);
            samples[i].extend(r[i].samples);
        }
        eprintln!(
            "oncpu round {}/{rounds} (wall/cpu s): {}",
            round + 1,
            r.iter().map(|x| format!("{:.3}/{:.3}", x.secs, x.cpu)).collect::<Vec<_>>().join("  ")
        );
    }
    let slow_wall = |i: usize| median(&wall_r[i]);
    let slow_cpu = |i: usize| median(&cpu_r[i]);
    let range = |v: &[f64]| {
        let (lo, hi) = min_max(v);
        format!("{} … {}", pct(lo), pct(hi))
    };
    let mut rows = Vec::new();
    for (i, v) in VARIANTS.iter().enumerate() {
        let dash = || "—".to_string();
        rows.push(vec![
            v.label(),
            format!("{:.3}", median(&wall[i])),
            if i == 0 { dash() } else { pct(slow_wall(i)) },
            if i == 0 { dash() } else { range(&wall_r[i]) },
            format!("{:.3}", median(&cpu[i])),
            if i == 0 { dash() } else { pct(slow_cpu(i)) },
            if i == 0 { dash() } else { range(&cpu_r[i]) },
            if samples[i].is_empty() { dash() } else { format!("{:.0}", median(&samples[i])) },
        ]);
    }
    print_table(
        &format!(
            "1. On-CPU slowdown: fixed CPU work (≈{work_secs} s, {STACK_DEPTH}+ frames deep), profiling {scope}, medians of {rounds} interleaved rounds"
        ),
        &["run", "wall (s)", "wall slowdown", "wall range", "CPU (s)", "CPU slowdown", "CPU range", "samples"],
        &rows,
    );
    println!(
        "\nCPU = the workload's own CPU time (CLOCK_PROCESS_CPUTIME_ID). This kernel has no\n\
         IRQ_TIME_ACCOUNTING, so sampling interrupts (and the BPF program or perf callchain walk\n\
         they run) are charged to the task they interrupt, while time lost to other load on this\n\
         shared machine is not: the CPU column is the low-noise measure of the profiler's cost and\n\
         the verdicts use it; the wall column adds any preemption by the profiler's own process\n\
         and everyone else's noise."
    );
    println!(
        "flameprof/perf slowdown ratio (CPU): 99 Hz {:.2}, 999 Hz {:.2}; (wall): 99 Hz {:.2}, 999 Hz {:.2}",
        slow_cpu(1) / slow_cpu(2),
        slow_cpu(3) / slow_cpu(4),
        slow_wall(1) / slow_wall(2),
        slow_wall(3) / slow_wall(4),
    );
    let fp99 = slow_cpu(1);
    // The run-to-run noise of this machine (several %) can exceed the
    // target: call it only when the middle half of the per-round ratios is
    // on one side of it.
    let (q1, q3) = quartiles(&cpu_r[1]);
    let resolved = if q3 < 0.01 {
        Some(true)
    } else if q1 >= 0.01 {
        Some(false)
    } else {
        None
    };
    ctx.verdict(
        "on-CPU slowdown at 99 Hz (CPU; wall), fixed work",
        format!(
            "{}; {} (middle half of rounds {} … {}{})",
            pct(fp99),
            pct(slow_wall(1)),
            pct(q1),
            pct(q3),
            if resolved.is_none() { ": noise spans the target" } else { "" }
        ),
        "< 1 %",
        resolved,
    );
    let ratio999 = slow_cpu(3) / slow_cpu(4);
    let measured = format!(
        "{} ({} vs {}; wall {} vs {})",
        fmt_ratio(slow_cpu(3), slow_cpu(4)),
        pct(slow_cpu(3)),
        pct(slow_cpu(4)),
        pct(slow_wall(3)),
        pct(slow_wall(4))
    );
    let ok = slow_cpu(4) > 0.0 && ratio999 <= 0.5;
    ctx.verdict("999 Hz slowdown, flameprof/perf (CPU)", measured, "≤ 0.5", Some(ok));
}

/// 1b. Where flameprof's on-CPU cost goes: one extra 999 Hz run (not part of
/// the figures above) with BPF run-time stats on.
fn bpf_cost(ctx: &mut Ctx, chunks: u64) {
    let (ran, stats) =
        self_at_999_hz_with_bpf_stats(ctx, "fp", "stats.svg", ["--workload".to_string(), chunks.to_string()]);
    let wl = line_numbers(&ran.stderr, "workload:").unwrap_or_default();
    let (wall_s, cpu_s) = (wl.get(1).copied().unwrap_or(f64::NAN), wl.get(2).copied().unwrap_or(f64::NAN));
    let samples = line_numbers(&ran.stderr, "samples:").and_then(|n| n.first().copied()).unwrap_or(f64::NAN);
    let mut rows = bpf_rows("flameprof -F 999 -- workload", &stats, wall_s, Some(("target sample", samples)));
    for r in &mut rows {
        r[5] = format!("{} (of the workload's CPU time: {:.2} %)", r[5], {
            let ns: f64 = r[4].parse::<f64>().unwrap_or(f64::NAN) * 1e6;
            100.0 * ns / 1e9 / cpu_s
        });
    }
    print_table(
        "1b. Where flameprof's on-CPU cost goes: BPF program run time at 999 Hz (one extra run, kernel BPF stats on)",
        &BPF_HEADER,
        &rows,
    );
    println!(
        "\nThe perf_event program runs on the command's own cpu-clock timers (-- CMD); the rest\n\
         of the slowdown is the timer interrupt itself (see the floor in 1c) and cache effects."
    );
}
