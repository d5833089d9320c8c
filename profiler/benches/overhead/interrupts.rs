//! Sections 1d and 1e: whom a sampler interrupts besides its target, and
//! what a deeper user stack adds to every sample.
use super::*;

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
pub fn bystander(ctx: &mut Ctx, chunks: u64, work_secs: f64, gap_secs: f64, system_wide: bool) {
    if system_wide {
        return;
    }
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

fn spawn_quiet(cmd: &mut Command, nice: i32) -> std::process::Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    set_nice(cmd, nice);
    cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start {:?}: {e}", cmd.get_program())))
}
