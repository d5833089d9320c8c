//! Section 4, off-CPU: slowdown of `pingpong` (pipe round trips) under
//! `flameprof --off-cpu` (frame pointers, and unwind tables; each also with
//! `--wakers`, where every switch-in follows a recorded wakeup) and under an
//! equivalent bpftrace script, and (4b) where they spend their BPF run time.

use std::path::Path;
use std::process::Command;

use crate::bpf_stats::{BPF_HEADER, bpf_rows, run_with_bpf_stats};
use crate::ctx::Ctx;
use crate::knobs::env_usize;
use crate::parse::line_numbers;
use crate::process::{check, die, run};
use crate::stats::{median, min_max};
use crate::table::{fmt_ratio, pct, print_table};

const BPFTRACE_OFFCPU: &str = r#"
// Off-CPU time by stack, like bcc's offcputime, for the command (-c) only.
// Switch-out (the current task is prev): remember when and where it blocked,
// unless it was preempted (still runnable). Switch-in: add the blocked time
// to that stack's total, in the kernel.
tracepoint:sched:sched_switch
{
  if (pid == cpid && args->prev_state != 0) {
    @start[tid] = nsecs;
    @kst[tid] = kstack;
    @ust[tid] = ustack;
  }
  $s = @start[args->next_pid];
  if ($s != 0) {
    @us[@kst[args->next_pid], @ust[args->next_pid], args->next_comm] = sum((nsecs - $s) / 1000);
    delete(@start[args->next_pid]);
    delete(@kst[args->next_pid]);
    delete(@ust[args->next_pid]);
  }
}
END { clear(@start); clear(@kst); clear(@ust); }
"#;

#[derive(Clone, Copy, PartialEq)]
enum OffCpu {
    Base,
    /// `--call-graph fp`.
    Flameprof,
    /// `--call-graph table`: user stacks walked with unwind tables.
    FlameprofTable,
    /// `--call-graph fp --wakers`.
    FlameprofWakers,
    /// `--call-graph table --wakers`.
    FlameprofTableWakers,
    Bpftrace,
}

impl OffCpu {
    fn label(self) -> &'static str {
        match self {
            OffCpu::Base => "unprofiled",
            OffCpu::Flameprof => "flameprof --off-cpu --call-graph fp",
            OffCpu::FlameprofTable => "flameprof --off-cpu --call-graph table",
            OffCpu::FlameprofWakers => "flameprof --off-cpu --call-graph fp --wakers",
            OffCpu::FlameprofTableWakers => "flameprof --off-cpu --call-graph table --wakers",
            OffCpu::Bpftrace => "bpftrace offcputime-like script",
        }
    }
}

fn pingpong_secs(stderr: &str) -> Option<f64> {
    // "pingpong: N round trips in X s, ..."
    line_numbers(stderr, "pingpong:").and_then(|n| n.get(1).copied())
}

pub fn bench(ctx: &mut Ctx) {
    let rounds = env_usize("FLAMEPROF_BENCH_OFFCPU_ROUNDS", 7).max(1);
    let trips = env_usize("FLAMEPROF_BENCH_PINGPONG", 200_000).max(1);
    let pingpong = ctx.example("pingpong");
    let bpftrace_ok = Command::new("bpftrace").arg("--version").output().is_ok_and(|o| o.status.success());
    if !Path::new("/sys/kernel/tracing/events").exists() {
        // bpftrace's tracepoint attach reads the tracepoint id from tracefs.
        let _ = Command::new("mount").args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"]).status();
        eprintln!("offcpu: mounted tracefs on /sys/kernel/tracing for bpftrace");
    }
    let script = ctx.tmp.join("offcpu.bt");
    std::fs::write(&script, BPFTRACE_OFFCPU).expect("write bpftrace script");
    let svg = ctx.tmp.join("offcpu.svg");
    let mut variants = vec![
        OffCpu::Base,
        OffCpu::Flameprof,
        OffCpu::FlameprofTable,
        OffCpu::FlameprofWakers,
        OffCpu::FlameprofTableWakers,
    ];
    if bpftrace_ok {
        variants.push(OffCpu::Bpftrace);
    } else {
        eprintln!("offcpu: bpftrace not found (apt-get install -y bpftrace): its column is skipped");
    }
    // Both threads on one CPU (taskset, which execs pingpong in place): the
    // scheduler's placement otherwise changes from run to run between
    // same-CPU switches and cross-CPU wake-ups through idle, which differ in
    // cost by 3x. Empty FLAMEPROF_BENCH_PINGPONG_CPU leaves placement free.
    let pin = std::env::var("FLAMEPROF_BENCH_PINGPONG_CPU").unwrap_or_else(|_| "1".into());
    let mut target: Vec<String> = Vec::new();
    if !pin.is_empty() {
        // bpftrace -c wants a path that names one binary.
        let taskset = std::env::var_os("PATH")
            .and_then(|p| std::env::split_paths(&p).map(|d| d.join("taskset")).find(|p| p.exists()))
            .unwrap_or_else(|| die("taskset not found (util-linux)"));
        target.extend([taskset.display().to_string(), "-c".into(), pin.clone()]);
    }
    target.push(pingpong.display().to_string());
    // The command line of each variant, `trips` round trips.
    let command = |v: OffCpu, trips: usize| -> Command {
        let t = trips.to_string();
        match v {
            OffCpu::Base => {
                let mut c = Command::new(&target[0]);
                c.args(&target[1..]).arg(&t);
                c
            }
            OffCpu::Flameprof | OffCpu::FlameprofTable | OffCpu::FlameprofWakers | OffCpu::FlameprofTableWakers => {
                let fp = matches!(v, OffCpu::Flameprof | OffCpu::FlameprofWakers);
                let call_graph = if fp { "fp" } else { "table" };
                let mut c = Command::new(&ctx.flameprof);
                c.args(["--off-cpu", "--call-graph", call_graph, "-o"]).arg(&svg);
                if matches!(v, OffCpu::FlameprofWakers | OffCpu::FlameprofTableWakers) {
                    c.arg("--wakers");
                }
                c.arg("--").args(&target).arg(&t);
                c
            }
            OffCpu::Bpftrace => {
                let mut c = Command::new("bpftrace");
                c.arg("-c").arg(format!("{} {t}", target.join(" "))).arg(&script);
                c
            }
        }
    };
    // Seconds, the targets' context switches, and (with tables) the user
    // stacks walked and how many of them were complete.
    let run_one = |v: OffCpu, trips: usize| -> (f64, Option<f64>, Option<Vec<f64>>) {
        let ran = run(&mut command(v, trips), ctx.nice);
        check(&ran, "pingpong run");
        let secs =
            pingpong_secs(&ran.stderr).unwrap_or_else(|| die(&format!("no pingpong timing in:\n{}", ran.stderr)));
        // Every variant's summary counts the same switches: those without
        // --wakers only (a profiled run switches as often; one source).
        let switches = match v {
            OffCpu::Flameprof | OffCpu::FlameprofTable => {
                line_numbers(&ran.stderr, "off-CPU:").and_then(|n| n.first().copied())
            }
            _ => None,
        };
        (secs, switches, line_numbers(&ran.stderr, "table unwinding:"))
    };
    for &v in &variants {
        run_one(v, trips / 10 + 1);
    }
    let mut times = vec![Vec::new(); variants.len()];
    let mut ratios = vec![Vec::new(); variants.len()];
    let mut switches = Vec::new();
    let (mut walks, mut complete) = (0.0, 0.0);
    for round in 0..rounds {
        let mut t = vec![f64::NAN; variants.len()];
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let (secs, sw, table) = run_one(variants[i], trips);
            t[i] = secs;
            if let Some(sw) = sw {
                switches.push(sw);
            }
            if let (OffCpu::FlameprofTable, Some([stacks, whole, ..])) = (variants[i], table.as_deref()) {
                walks += stacks;
                complete += whole;
            }
        }
        for i in 0..variants.len() {
            times[i].push(t[i]);
            ratios[i].push(t[i] / t[0] - 1.0);
        }
        eprintln!(
            "offcpu round {}/{rounds}: {}",
            round + 1,
            t.iter().map(|x| format!("{x:.3}")).collect::<Vec<_>>().join(" ")
        );
    }
    let sw = median(&switches);
    let base = median(&times[0]);
    let mut rows = Vec::new();
    let mut per_switch = vec![f64::NAN; variants.len()];
    for i in 0..variants.len() {
        // Per-round paired difference, median: the cost each profiler adds.
        let diffs: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a - b).collect();
        per_switch[i] = median(&diffs) / sw;
        let (lo, hi) = min_max(&ratios[i]);
        rows.push(vec![
            variants[i].label().into(),
            format!("{:.3}", median(&times[i])),
            if i == 0 { "—".into() } else { pct(median(&ratios[i])) },
            if i == 0 { "—".into() } else { format!("{} … {}", pct(lo), pct(hi)) },
            if i == 0 { "—".into() } else { format!("{:.2}", 1e6 * per_switch[i]) },
        ]);
    }
    print_table(
        &format!(
            "4. Off-CPU: pingpong {trips} round trips{} ({sw:.0} context switches of the targets per run, ≈{:.2} µs each unprofiled), median of {rounds} interleaved rounds",
            if pin.is_empty() { String::new() } else { format!(" on CPU {pin}") },
            1e6 * base / sw
        ),
        &["run", "median time (s)", "slowdown (median)", "slowdown range", "added µs / switch"],
        &rows,
    );
    println!(
        "\n--call-graph table walked {walks:.0} user stacks in these rounds, {:.2} % of them complete to the\n\
         outermost frame (the rest: flameprof's summary says where they ended).",
        100.0 * complete / walks
    );
    // Where the cost goes: one extra run of each profiler with BPF stats on.
    let mut rows = Vec::new();
    // Per profiler: its programs' run time per target switch (µs).
    let mut bpf_per_switch = vec![f64::NAN; variants.len()];
    for (i, &v) in variants.iter().enumerate().skip(1) {
        let (ran, stats) = run_with_bpf_stats(&mut command(v, trips), ctx.nice);
        check(&ran, &format!("{} with BPF stats", v.label()));
        let secs = pingpong_secs(&ran.stderr).unwrap_or(f64::NAN);
        rows.extend(bpf_rows(v.label(), &stats, secs, Some(("target switch", sw))));
        bpf_per_switch[i] = stats.iter().map(|p| p.run_time_ns as f64).sum::<f64>() / 1e3 / sw;
    }
    print_table(
        "4b. Where the off-CPU cost goes: BPF program run time (one extra run each, kernel BPF stats on)",
        &BPF_HEADER,
        &rows,
    );
    println!(
        "\nsched_switch programs run on every context switch of the machine (the other tasks' too);\n\
         'per target switch' divides their total by the targets' switches. The rest of the added\n\
         time per switch is the tracepoint/trampoline entry and cache effects."
    );

    let fp = median(&ratios[1]);
    if let Some(b) = variants.iter().position(|&v| v == OffCpu::Bpftrace) {
        let bt = median(&ratios[b]);
        ctx.verdict(
            "off-CPU slowdown, flameprof vs bpftrace",
            format!("{} vs {}", pct(fp), pct(bt)),
            "flameprof < bpftrace",
            Some(fp < bt),
        );
    } else {
        ctx.verdict(
            "off-CPU slowdown, flameprof vs bpftrace",
            format!("{} vs not run", pct(fp)),
            "flameprof < bpftrace",
            None,
        );
    }
    ctx.verdict(
        "off-CPU cost per context switch",
        format!("{:.2} µs", 1e6 * per_switch[1]),
        "reported (no target)",
        None,
    );
    // Rows 3 and 4 against rows 1 and 2: what --wakers adds.
    ctx.verdict(
        "--wakers: added per context switch over --off-cpu alone, fp; table",
        format!(
            "{:.2} µs ({:.2} vs {:.2}); {:.2} µs ({:.2} vs {:.2}); BPF run time {:.2} vs {:.2}, {:.2} vs {:.2} µs",
            1e6 * (per_switch[3] - per_switch[1]),
            1e6 * per_switch[3],
            1e6 * per_switch[1],
            1e6 * (per_switch[4] - per_switch[2]),
            1e6 * per_switch[4],
            1e6 * per_switch[2],
            bpf_per_switch[3],
            bpf_per_switch[1],
            bpf_per_switch[4],
            bpf_per_switch[2]
        ),
        "reported (no target)",
        None,
    );
    // Rows 1 and 2: frame pointers and tables.
    ctx.verdict(
        "off-CPU cost per context switch, table vs fp: added; BPF run time",
        format!(
            "{:.2} vs {:.2} µs ({}); {:.2} vs {:.2} µs",
            1e6 * per_switch[2],
            1e6 * per_switch[1],
            fmt_ratio(per_switch[2], per_switch[1]),
            bpf_per_switch[2],
            bpf_per_switch[1]
        ),
        "reported (no target)",
        None,
    );
}
