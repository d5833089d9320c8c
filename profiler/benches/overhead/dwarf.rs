//! Section 5, `--call-graph dwarf`: flameprof's own CPU per sample while it
//! unwinds as it records, against `--call-graph fp`.

use std::process::Command;

use crate::ctx::Ctx;
use crate::knobs::env_usize;
use crate::parse::line_numbers;
use crate::process::{check, die, run};
use crate::stats::median;
use crate::table::print_table;

/// CPU time (s) of this process's waited-for children so far.
fn children_cpu_seconds() -> f64 {
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a live rusage that getrusage fills in.
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

pub fn bench(ctx: &mut Ctx) {
    let rounds = env_usize("FLAMEPROF_BENCH_ROUNDS", 5).max(1);
    let workload = ctx.example("libc_sort");
    let out = ctx.tmp.join("dwarf.folded");
    let methods = ["fp", "dwarf"];
    // Per method: flameprof's own CPU seconds per recorded sample.
    let mut per_sample = vec![Vec::new(); methods.len()];
    let mut samples = vec![Vec::new(); methods.len()];
    for round in 0..rounds {
        for k in 0..methods.len() {
            let i = (k + round) % methods.len();
            let before = children_cpu_seconds();
            let ran = run(
                Command::new(&ctx.flameprof)
                    .args(["-F", "999", "--call-graph", methods[i], "-o"])
                    .arg(&out)
                    .arg("--")
                    .arg(&workload)
                    .arg("2"),
                ctx.nice,
            );
            check(&ran, "flameprof -- libc_sort");
            let total = children_cpu_seconds() - before;
            let command = line_numbers(&ran.stderr, "CPU time").and_then(|n| n.first().copied());
            let recorded = line_numbers(&ran.stderr, "samples:").and_then(|n| n.first().copied());
            let (Some(command), Some(recorded)) = (command, recorded) else {
                die(&format!("flameprof's summary lacks the command's CPU time or samples:\n{}", ran.stderr))
            };
            per_sample[i].push((total - command) / recorded.max(1.0));
            samples[i].push(recorded);
        }
    }
    let rows: Vec<Vec<String>> = methods
        .iter()
        .enumerate()
        .map(|(i, m)| {
            vec![
                format!("--call-graph {m}"),
                format!("{:.0}", median(&samples[i])),
                format!("{:.1} µs", 1e6 * median(&per_sample[i])),
            ]
        })
        .collect();
    print_table(
        &format!(
            "5. flameprof's own CPU while recording libc_sort (2 s at 999 Hz, ~30-frame stacks through libc), median of {rounds} interleaved rounds"
        ),
        &["run", "samples", "flameprof CPU per sample"],
        &rows,
    );
    let extra = median(&per_sample[1]) - median(&per_sample[0]);
    println!(
        "\nflameprof's own CPU is its whole process (start-up, polling, symbolizing, writing) minus the\n\
         command's CPU time from its summary. The difference between the rows is what dwarf mode adds:\n\
         copying stacks out of the ring buffer, unwinding them, and the larger profile that whole stacks\n\
         make (frame pointers cut these stacks short, so they merge into few): {:.1} µs per sample.",
        1e6 * extra
    );
    ctx.verdict(
        "--call-graph dwarf: user-space unwinding per sample",
        format!("{:.1} µs", 1e6 * extra),
        "reported",
        None,
    );
}
