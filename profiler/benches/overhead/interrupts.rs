//! Sections 1c, 1d and 1e, measured with this binary's `--gaps` mode: the
//! interrupt time a sampler takes from its target, whom it interrupts besides
//! its target, and what a deeper user stack adds to every sample.

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use crate::bpf_stats::self_at_999_hz_with_bpf_stats;
use crate::ctx::Ctx;
use crate::knobs::{env_f64, env_usize};
use crate::oncpu::{OnCpu, VARIANTS, profiled_self};
use crate::parse::numbers;
use crate::process::{check, die, run, spawn_quiet};
use crate::stats::median;
use crate::table::{fmt_ratio, print_table};
use crate::workload::{GAP_MAX_NS, GAP_MIN_NS};

/// Rounds of every gap measurement (sections 1c, 1d).
fn gap_rounds() -> usize {
    env_usize("FLAMEPROF_BENCH_GAP_ROUNDS", 7).max(1)
}

/// Length of every gap measurement (sections 1c, 1d).
fn gap_secs() -> f64 {
    env_f64("FLAMEPROF_BENCH_GAP_SECS", 1.5)
}

/// 1c. Interrupt time, measured from inside the target: machine-speed
/// independent, so it resolves the small 99 Hz figure that run-to-run noise
/// of the fixed-work runs hides. Rows 0–4 are section 1's VARIANTS, in that
/// order: the verdicts index them.
pub fn taken_from_target(ctx: &mut Ctx, system_wide: bool) {
    let gap_secs = gap_secs();
    let gap_rounds = gap_rounds();
    // Plus the floor: the interrupt alone, with an empty BPF program.
    let have_bpftrace = Command::new("bpftrace").arg("--version").output().is_ok_and(|o| o.status.success());
    let mut gap_variants = VARIANTS.to_vec();
    if !system_wide {
        gap_variants.push(OnCpu::PerfNoStacks(999));
        gap_variants.push(OnCpu::FlameprofDwarf(999));
        gap_variants.push(OnCpu::PerfDwarf(999));
    }
    if have_bpftrace && !system_wide {
        gap_variants.push(OnCpu::EmptyBpf(999));
    } else if !have_bpftrace {
        eprintln!("oncpu: bpftrace is missing (scripts/setup.sh --tests installs it): no interrupt floor");
    }
    let n = gap_variants.len();
    let mut stolen = vec![Vec::new(); n];
    let mut per_irq = vec![Vec::new(); n];
    let mut gaps_s = vec![Vec::new(); n];
    for round in 0..gap_rounds {
        let mut r = vec![Vec::new(); n];
        for k in 0..n {
            let i = (k + round) % n;
            r[i] = profiled_self(ctx, gap_variants[i], "--gaps", &gap_secs.to_string(), system_wide).0;
            if r[i].len() != 4 {
                die("gap measurement left no result");
            }
        }
        for i in 0..n {
            let (t, ns, cnt) = (r[i][0], r[i][1], r[i][2]);
            stolen[i].push(ns * 1e-9 / t);
            gaps_s[i].push(cnt / t);
            // Extra interrupt time over the unprofiled run, per extra interrupt.
            per_irq[i].push((ns - r[0][1] * t / r[0][0]) / (cnt - r[0][2] * t / r[0][0]));
        }
    }
    let extra = |i: usize| median(&stolen[i]) - median(&stolen[0]);
    let mut rows = Vec::new();
    for (i, v) in gap_variants.iter().enumerate() {
        rows.push(vec![
            v.label(),
            format!("{:.0}", median(&gaps_s[i])),
            format!("{:.3} %", 100.0 * median(&stolen[i])),
            if i == 0 { "—".into() } else { format!("{:+.3} %", 100.0 * extra(i)) },
            if i == 0 { "—".into() } else { format!("{:.2}", median(&per_irq[i]) / 1e3) },
        ]);
    }
    print_table(
        &format!(
            "1c. Interrupt time taken from the target: a thread reading the clock for {gap_secs} s adds up gaps of {} µs–{} ms, median of {gap_rounds} interleaved rounds",
            GAP_MIN_NS as f64 / 1e3,
            GAP_MAX_NS as f64 / 1e6
        ),
        &["run", "gaps / s", "time in gaps", "added by profiler", "µs per added gap"],
        &rows,
    );
    println!(
        "\nThis counts the direct cost (timer interrupt + BPF program or perf callchain walk and\n\
         ring-buffer write) only, not cache pollution; it does not depend on the machine's speed.\n\
         The floor row runs an empty BPF program on the same cpu-clock timers: what any sampler\n\
         that takes one timer interrupt per sample pays before it does anything."
    );
    ctx.verdict(
        "99 Hz: interrupt time added (gap method)",
        format!("{:+.3} %", 100.0 * extra(1)),
        "< 1 %",
        Some(extra(1) < 0.01),
    );
    let gr = extra(3) / extra(4);
    ctx.verdict(
        "999 Hz: added interrupt time, flameprof/perf",
        format!("{} ({:+.3} % vs {:+.3} %)", fmt_ratio(extra(3), extra(4)), 100.0 * extra(3), 100.0 * extra(4)),
        "≤ 0.5",
        Some(extra(4) > 0.0 && gr <= 0.5),
    );
    for (i, v) in gap_variants.iter().enumerate().skip(VARIANTS.len()) {
        ctx.verdict(
            &format!("999 Hz: {} / perf -g (best ratio a per-sample interrupt can reach)", v.label()),
            format!("{} ({:+.3} % vs {:+.3} %)", fmt_ratio(extra(i), extra(4)), 100.0 * extra(i), 100.0 * extra(4)),
            "≤ 0.5 leaves room",
            None,
        );
    }
}

/// How a busy command is watched while a bystander measures its own gaps.
#[derive(Clone, Copy, PartialEq)]
enum Watch {
    Unprofiled,
    /// `flameprof -- CMD`: per-task timers inherited by the command.
    FlameprofCommand,
    /// `flameprof -p PID`: a timer per thread of the running process.
    FlameprofPid,
    PerfCommand,
}

impl Watch {
    fn label(self) -> &'static str {
        match self {
            Watch::Unprofiled => "command unprofiled",
            Watch::FlameprofCommand => "flameprof -F 999 -- CMD",
            Watch::FlameprofPid => "flameprof -F 999 -p PID",
            Watch::PerfCommand => "perf record -g -F 999 -- CMD",
        }
    }
}

/// 1d. A second process, not profiled, measures the interrupt time taken
/// from it while a CPU-bound command next to it is profiled at 999 Hz.
pub fn bystander(ctx: &mut Ctx, chunks: u64, work_secs: f64, system_wide: bool) {
    if system_wide {
        return;
    }
    let gap_secs = gap_secs();
    let rounds = gap_rounds();
    let me = std::env::current_exe().expect("current_exe");
    // The command keeps a CPU busy for the whole measurement and a bit more.
    let work_chunks = (((gap_secs + 2.0) / work_secs) * chunks as f64).ceil() as u64;
    let workload: [OsString; 3] = [me.clone().into(), "--workload".into(), work_chunks.to_string().into()];
    let svg = ctx.tmp.join("bystander.svg");
    let perf_data = ctx.tmp.join("bystander-perf.data");
    let result = ctx.tmp.join("bystander.result");
    let watches = [Watch::Unprofiled, Watch::FlameprofCommand, Watch::FlameprofPid, Watch::PerfCommand];
    let n = watches.len();
    let mut stolen = vec![Vec::new(); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let mut busy = Vec::new();
            match watches[i] {
                Watch::Unprofiled => busy.push(spawn_quiet(Command::new(&workload[0]).args(&workload[1..]), ctx.nice)),
                Watch::FlameprofCommand => {
                    let mut c = Command::new(&ctx.flameprof);
                    c.args(["-F", "999", "-o"]).arg(&svg).arg("--").args(&workload);
                    busy.push(spawn_quiet(&mut c, ctx.nice));
                }
                Watch::FlameprofPid => {
                    let target = spawn_quiet(Command::new(&workload[0]).args(&workload[1..]), ctx.nice);
                    let mut c = Command::new(&ctx.flameprof);
                    c.args(["-F", "999", "-o"]).arg(&svg).args(["-p", &target.id().to_string()]);
                    busy.push(spawn_quiet(&mut c, ctx.nice));
                    busy.push(target);
                }
                Watch::PerfCommand => {
                    let mut c = Command::new("perf");
                    c.args(["record", "-e", "cpu-clock", "-g", "-F", "999", "-o"])
                        .arg(&perf_data)
                        .arg("--")
                        .args(&workload);
                    busy.push(spawn_quiet(&mut c, ctx.nice));
                }
            }
            // Attach time; the command runs about gap_secs + 2 s in all.
            std::thread::sleep(Duration::from_millis(700));
            let _ = std::fs::remove_file(&result);
            let ran = run(Command::new(&me).arg("--gaps").arg(gap_secs.to_string()).arg(&result), ctx.nice);
            check(&ran, "bystander");
            for mut child in busy {
                let status = child.wait().expect("wait for the profiled command");
                if !status.success() {
                    die(&format!("{}: exit {status}", watches[i].label()));
                }
            }
            let r = numbers(&std::fs::read_to_string(&result).unwrap_or_default());
            if r.len() != 4 {
                die("the bystander left no result");
            }
            stolen[i].push(r[1] * 1e-9 / r[0]);
        }
    }
    let _ = std::fs::remove_file(&perf_data);
    let extra = |i: usize| median(&stolen[i]) - median(&stolen[0]);
    let rows: Vec<Vec<String>> = watches
        .iter()
        .enumerate()
        .map(|(i, w)| {
            vec![
                w.label().to_string(),
                format!("{:.3} %", 100.0 * median(&stolen[i])),
                if i == 0 { "—".into() } else { format!("{:+.3} %", 100.0 * extra(i)) },
            ]
        })
        .collect();
    print_table(
        &format!(
            "1d. Cost to a bystander: interrupt time taken from a process that is NOT profiled while a CPU-bound command next to it is, median of {rounds} interleaved rounds"
        ),
        &["command watched by", "bystander's time in gaps", "added"],
        &rows,
    );
    println!(
        "\n`-- CMD` puts cpu-clock timers on the command's own tasks (inherited by what it\n\
         starts) and `-p` one on each thread of the running process (inherited by threads it\n\
         starts), so only the target is interrupted. Per-CPU timers (bcc's profile, most eBPF\n\
         profilers, flameprof -p before 2026-11-22: +0.4 to +1.1 % here) make whoever shares the\n\
         CPUs pay the interrupt."
    );
    ctx.verdict(
        "bystander's interrupt time, 999 Hz: flameprof -- CMD; -p; perf -- CMD",
        format!("{:+.3} %; {:+.3} %; {:+.3} %", 100.0 * extra(1), 100.0 * extra(2), 100.0 * extra(3)),
        "—",
        None,
    );
}

/// 1e. flameprof's BPF run time per sample with the measuring thread 0 and
/// 100 frames deeper: the kernel's user-stack walk, per frame (perf walks
/// the same way).
pub fn walk_cost(ctx: &mut Ctx) {
    let result = ctx.tmp.join("walk.result");
    let depths = [0u32, 100];
    let mut per_sample = Vec::new();
    let mut rows = Vec::new();
    for depth in depths {
        let args: [OsString; 4] = ["--gaps".into(), "2".into(), result.clone().into(), depth.to_string().into()];
        let (_, stats) = self_at_999_hz_with_bpf_stats(ctx, "walk.svg", &args);
        let Some(perf_event) = stats.iter().find(|p| p.prog_type == 7) else {
            eprintln!("walk cost: no perf_event program stats (BPF_ENABLE_STATS unavailable?)");
            return;
        };
        let ns = perf_event.run_time_ns as f64 / perf_event.run_cnt.max(1) as f64;
        per_sample.push(ns);
        rows.push(vec![format!("+{depth} frames"), format!("{}", perf_event.run_cnt), format!("{ns:.0}")]);
    }
    print_table(
        "1e. flameprof's BPF run time per sample vs user stack depth (999 Hz, -- CMD)",
        &["measuring thread", "samples", "ns / sample"],
        &rows,
    );
    let per_frame = (per_sample[1] - per_sample[0]) / (depths[1] - depths[0]) as f64;
    println!("\nEach user frame walked costs {per_frame:.0} ns per sample (bpf_get_stackid's frame-pointer walk).");
    ctx.verdict("BPF run time per user frame walked", format!("{per_frame:.0} ns"), "—", None);
}
