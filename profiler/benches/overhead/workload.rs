//! What this binary does when it is re-run as the profiled command: the
//! fixed-work CPU workload (`overhead --workload CHUNKS [OUTFILE]`) and the
//! interrupt-gap measurement (`overhead --gaps SECS [OUTFILE [DEPTH]]`).
//! The workspace builds with frame pointers, so both profilers unwind the
//! workload fully: samples land in `work_leaf` under STACK_DEPTH frames of
//! `work_level`.

use std::time::Instant;

use crate::knobs::env_usize;

const CHUNK_ITERS: u64 = 20_000;
pub const STACK_DEPTH: u32 = 12;

#[inline(never)]
fn work_leaf(seed: u64, iters: u64) -> u64 {
    let mut x = std::hint::black_box(seed) | 1;
    let n = std::hint::black_box(iters);
    let mut i = 0;
    while i < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
    }
    std::hint::black_box(x)
}

#[inline(never)]
fn work_level(depth: u32, seed: u64) -> u64 {
    if depth == 0 {
        work_leaf(seed, CHUNK_ITERS)
    } else {
        // Work after the call keeps this a real frame (no tail call).
        let r = work_level(depth - 1, seed.rotate_left(depth));
        std::hint::black_box(r).wrapping_add(depth as u64)
    }
}

#[inline(never)]
fn fixed_work(chunks: u64) -> u64 {
    let mut acc = 0u64;
    for i in 0..chunks {
        acc ^= work_level(STACK_DEPTH, acc ^ i);
    }
    acc
}

/// Chunks of fixed work that take about `target_secs` in one thread: the best
/// of three short probes, run in this process before any profiler starts.
pub fn calibrate(target_secs: f64) -> u64 {
    let probe = 200;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(fixed_work(probe));
        best = best.min(t.elapsed().as_secs_f64());
    }
    ((target_secs / best) * probe as f64).round().max(1.0) as u64
}

/// CPU time of this process. Without CONFIG_IRQ_TIME_ACCOUNTING (this kernel),
/// interrupts, and the BPF programs and perf callchain walks they run, are
/// charged to the task they interrupt; time spent preempted by other tasks
/// and steal time (PARAVIRT_TIME_ACCOUNTING) are not.
fn cpu_time() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

pub fn workload_main(args: &[String]) -> ! {
    let chunks: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    // FLAMEPROF_BENCH_WORKERS threads each do the whole work: with one per
    // CPU the machine is saturated and a profiler's own user-space process
    // competes with the workload, as on a busy production host.
    let workers = env_usize("FLAMEPROF_BENCH_WORKERS", 1).max(1);
    let (start, cpu0) = (Instant::now(), cpu_time());
    let threads: Vec<_> =
        (0..workers).map(|_| std::thread::spawn(move || std::hint::black_box(fixed_work(chunks)))).collect();
    for thread in threads {
        thread.join().expect("worker thread");
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    match args.get(1) {
        Some(out) => std::fs::write(out, format!("{secs:.9} {cpu:.9}\n")).expect("write workload result"),
        None => eprintln!("workload: {chunks} chunks in {secs:.3} s ({cpu:.3} s CPU)"),
    }
    std::process::exit(0);
}

/// `overhead --gaps SECS OUTFILE`: spin reading the clock for SECS and add up
/// the gaps between consecutive reads that are longer than the loop itself:
/// time taken from this thread by interrupts (and whatever they run: a BPF
/// program, perf's callchain walk) or by preemption. Gaps of GAP_MIN..GAP_MAX
/// are interrupts; longer ones are preemption by other tasks or the host,
/// left out so that other load on the machine does not count.
pub const GAP_MIN_NS: u64 = 1_000;
pub const GAP_MAX_NS: u64 = 50_000;

/// `overhead --gaps SECS OUTFILE [DEPTH]`: DEPTH extra frames under the
/// measuring loop make the user stack that every sample walks deeper.
pub fn gaps_main(args: &[String]) -> ! {
    let depth: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    gaps_at_depth(depth, args)
}

#[inline(never)]
fn gaps_at_depth(depth: u32, args: &[String]) -> ! {
    if depth > 0 {
        gaps_at_depth(std::hint::black_box(depth - 1), args)
    }
    gaps_measure(args)
}

#[inline(never)]
fn gaps_measure(args: &[String]) -> ! {
    let secs: f64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let start = Instant::now();
    let end_ns = (secs * 1e9) as u64;
    let (mut last, mut stolen, mut count, mut long) = (0u64, 0u64, 0u64, 0u64);
    loop {
        let now = start.elapsed().as_nanos() as u64;
        let gap = now - last;
        if gap >= GAP_MAX_NS {
            long += gap;
        } else if gap >= GAP_MIN_NS {
            stolen += gap;
            count += 1;
        }
        last = now;
        if now >= end_ns {
            break;
        }
    }
    let out = format!("{:.9} {stolen} {count} {long}\n", last as f64 * 1e-9);
    match args.get(1) {
        Some(path) => std::fs::write(path, out).expect("write gaps result"),
        None => eprint!("gaps: {out}"),
    }
    std::process::exit(0);
}
