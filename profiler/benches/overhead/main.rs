//! flameprof's overhead benchmark: `cargo bench -p flameprof --bench overhead`
//! (as root). A plain `main()` (harness = false) that prints tables.
//!
//! Needs the example workloads built first:
//! `cargo build --release -p flameprof -p flameprof-examples`
//! (flameprof itself is built by `cargo bench`; it is taken from
//! `CARGO_BIN_EXE_flameprof`, the examples from the same directory).
//!
//! Sections (all by default; name some as arguments to run only those,
//! e.g. `cargo bench -p flameprof --bench overhead -- oncpu offcpu`):
//!
//! - `oncpu`: slowdown of a fixed-work, CPU-bound workload (this binary
//!   re-run with `--workload`) at 99 Hz and 999 Hz: unprofiled
//!   vs `flameprof -F HZ -- CMD` vs `perf record -e cpu-clock -g
//!   -F HZ -- CMD`, interleaved rounds, medians of per-round
//!   ratios against the unprofiled run of the same round, in
//!   wall time and in the workload's CPU time (which includes
//!   interrupt time on this kernel but not other load). Plus
//!   (1c) the interrupt time each profiler takes from a thread
//!   that reads the clock in a loop (machine-speed independent;
//!   also `--call-graph table` at both rates and the dwarf
//!   modes), (1b) flameprof's BPF run time per sample, and (1e)
//!   that run time by user stack depth, frame pointers against
//!   tables.
//! - `post`: a 30 s system-wide recording at 99 Hz of a busy machine:
//!   post-processing time (flameprof's summary line, and wall
//!   time minus the recording time) and loss counters.
//! - `symbolize`: `symbolize::Symbolizer::symbolize_file` throughput on the
//!   flameprof binary (DWARF line tables, debug = 1), cold and
//!   warm, with its answers checked against the symbol table.
//! - `offcpu`: slowdown of `pingpong` (fixed number of pipe round trips)
//!   under `flameprof --off-cpu -- CMD` (frame pointers, and
//!   `--call-graph table`) and under an equivalent bpftrace
//!   sched_switch script, the cost per context switch, and (4b)
//!   each one's BPF run time per switch.
//! - `dwarf`: flameprof's own CPU per sample recording `libc_sort` with
//!   `--call-graph fp` and `--call-graph dwarf` (interleaved;
//!   the difference is what user-space unwinding adds). Section
//!   1c also has `--call-graph dwarf` rows for flameprof and perf.
//! - `tables`: `--call-graph table`'s unwind tables: build time and kernel
//!   memory of libc's, libpython's and flameprof's tables
//!   (`symbolize::compile_unwind_table`), and what flameprof's
//!   summary reports for a python3 run. The table walker's cost
//!   is in 1c and 1e (per sample, against frame pointers) and 4
//!   and 4b (per context switch).
//! - `walk` (only when named): 1e alone.
//! - `tables-system` (only when named): the unwind tables of a 30 s
//!   system-wide `--call-graph table` recording of section 2's
//!   busy machine: files, rows, memory, build time, losses.
//!
//! Every flameprof run names its `--call-graph` method (the default has been
//! `table` where the kernel runs it since 2026-11-30); a row called just
//! "flameprof" is frame pointers (`fp`).
//!
//! Environment knobs (defaults in brackets):
//! `FLAMEPROF_BENCH_FLAMEPROF` [the flameprof cargo built] the flameprof binary
//! to measure; the example workloads are taken from its directory (copy
//! both, and this binary, elsewhere to measure one build while others
//! rebuild target/);
//! `FLAMEPROF_BENCH_ROUNDS` [9] rounds of the on-CPU comparison;
//! `FLAMEPROF_BENCH_WORK_SECS` [2.0] unprofiled duration of the fixed work
//! (calibrated once per invocation; all runs then do the same work);
//! `FLAMEPROF_BENCH_GAP_ROUNDS` [7], `FLAMEPROF_BENCH_GAP_SECS` [1.5] rounds and
//! length of the interrupt-gap measurement (section 1c);
//! `FLAMEPROF_BENCH_WORKERS` [1] threads of the on-CPU workload, each doing
//! the whole work (2 on this machine: every CPU busy, so a profiler's own
//! user-space work competes with the workload);
//! `FLAMEPROF_BENCH_SYSTEM_WIDE` [0] 1: profile the on-CPU workload with
//! `-a` (flameprof in the background, `perf record -a`) instead of `-- CMD`;
//! `FLAMEPROF_BENCH_WALK_ROUNDS` [3] rounds of the per-depth BPF run time (1e);
//! `FLAMEPROF_BENCH_RECORD_SECS` [30] length of the system-wide recordings
//! (post-processing, tables-system);
//! `FLAMEPROF_BENCH_SYM_ADDRS` [20000] addresses per symbolization batch;
//! `FLAMEPROF_BENCH_OFFCPU_ROUNDS` [7] rounds of the off-CPU comparison;
//! `FLAMEPROF_BENCH_PINGPONG` [200000] round trips per pingpong run;
//! `FLAMEPROF_BENCH_PINGPONG_CPU` [1] CPU pingpong is pinned to (empty: not pinned);
//! `FLAMEPROF_BENCH_TABLE_ROUNDS` [5] rounds of the table build timings;
//! `FLAMEPROF_BENCH_NICE` [-10] niceness of the measured commands (profiler
//! and workload alike), to keep unrelated load on this small machine from
//! preempting them; 0 to disable.

// Shared by the sections.
mod bpf_stats;
mod ctx;
mod knobs;
mod parse;
mod process;
mod stats;
mod table;
// What this binary runs when a section re-runs it as the profiled command.
mod workload;

// The sections (SECTIONS below gives their order); interrupts.rs holds parts
// 1c–1e of section 1, unwind_tables.rs sections 6 and 6b.
mod dwarf;
mod interrupts;
mod offcpu;
mod oncpu;
mod post;
mod symbolization;
mod unwind_tables;

use std::time::Instant;

use ctx::Ctx;
use process::die;
use table::print_table;
use workload::{gaps_main, workload_main};

/// A section of the bench, by the name that selects it on the command line.
struct Section {
    name: &'static str,
    bench: fn(&mut Ctx),
    /// Run when no section is named (the rest only when named).
    by_default: bool,
}

/// In the order they run by default.
const SECTIONS: [Section; 8] = [
    Section { name: "oncpu", bench: oncpu::bench, by_default: true },
    Section { name: "post", bench: post::bench, by_default: true },
    Section { name: "symbolize", bench: symbolization::bench, by_default: true },
    Section { name: "offcpu", bench: offcpu::bench, by_default: true },
    Section { name: "dwarf", bench: dwarf::bench, by_default: true },
    Section { name: "tables", bench: unwind_tables::bench, by_default: true },
    Section { name: "tables-system", bench: unwind_tables::system_wide, by_default: false },
    // 1e alone (part of oncpu): BPF run time per sample by stack depth.
    Section { name: "walk", bench: interrupts::walk_cost, by_default: false },
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--workload") => workload_main(&args[1..]),
        Some("--gaps") => gaps_main(&args[1..]),
        _ => {}
    }
    // cargo passes `--bench`; other plain words select sections, run in the
    // order given.
    let mut wanted: Vec<&Section> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(|w| {
            SECTIONS.iter().find(|s| s.name == w).unwrap_or_else(|| {
                let names: Vec<&str> = SECTIONS.iter().map(|s| s.name).collect();
                die(&format!("unknown section {w:?}: choose from {}", names.join(", ")))
            })
        })
        .collect();
    if wanted.is_empty() {
        wanted = SECTIONS.iter().filter(|s| s.by_default).collect();
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        die("this benchmark loads BPF programs and runs perf system-wide: run it as root \
             (e.g. `sudo -E cargo bench -p flameprof --bench overhead`)");
    }
    let mut ctx = Ctx::new();
    println!(
        "# flameprof overhead benchmark\n\n{} CPUs, kernel {}, load average at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        load_average()
    );
    let started = Instant::now();
    for section in wanted {
        let t = Instant::now();
        (section.bench)(&mut ctx);
        eprintln!("{}: {:.0} s", section.name, t.elapsed().as_secs_f64());
    }
    let rows: Vec<Vec<String>> = ctx.verdicts.iter().map(|r| r.to_vec()).collect();
    print_table("Summary", &["target", "measured", "goal", "verdict"], &rows);
    println!("\ntotal {:.0} s; load average at end: {}", started.elapsed().as_secs_f64(), load_average());
    let _ = std::fs::remove_dir_all(&ctx.tmp);
}

/// The 1, 5 and 15 minute load averages, for the record: other load on the
/// machine skews every figure.
fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
