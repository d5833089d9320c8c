//! `many_stacks [CPU_SECONDS] [THREADS]` — a different user stack
//! every few microseconds: THREADS threads (default 2, 1..=8) count (thread
//! i of N takes the values i, i + N, i + 2N, ...: no two threads share a
//! value) and, for each value of their counter, descend through LEVELS (24)
//! nested calls, the call at level i being `many_stacks::left` when bit i of
//! the counter is 0 and `many_stacks::right` when it is 1, down to
//! `many_stacks::leaf`, which burns a few microseconds. Each thread stops
//! once it has used CPU_SECONDS (default 6, fractions allowed) of CPU time
//! (its own clock, so a crowded machine only makes the run longer).
//!
//! By construction the stack under `leaf` spells the counter's low 24 bits
//! in `left`/`right` frames: 2^24 distinct stacks, visited in order, one
//! every 10 to 20 microseconds. Sampled at 10 kHz, successive samples are
//! several counter values apart and the counter does not wrap within the
//! run (a million values or so), so nearly every sample has a stack no
//! other sample has: 6 s of CPU on 2 threads at 10 kHz gives about 120 000
//! distinct stacks.

use flameprof_examples::{args, num_arg, seconds_arg, spin_iters};
use std::hint::black_box;
use std::time::Duration;

/// Nested left/right calls per stack: 2^LEVELS distinct stacks.
const LEVELS: u32 = 24;
/// Stacks visited between two reads of the thread's CPU clock.
const CLOCK_EVERY: u32 = 256;
/// Iterations of work at the bottom of each stack (a few microseconds).
const LEAF_ITERS: u64 = 6_000;

/// The work at the bottom: where the samples land.
#[inline(never)]
fn leaf(counter: u64) -> u64 {
    spin_iters!(0x9e37_79b9u64 ^ counter, LEAF_ITERS)
}

/// The next level down, chosen by bit `level` of the counter.
#[inline(always)]
fn descend(counter: u64, level: u32) -> u64 {
    if level == LEVELS {
        leaf(counter)
    } else if (counter >> level) & 1 == 0 {
        left(counter, level + 1)
    } else {
        right(counter, level + 1)
    }
}

#[inline(never)]
fn left(counter: u64, level: u32) -> u64 {
    let r = descend(black_box(counter), black_box(level));
    // Work after the call keeps this frame on the stack during the callee.
    black_box(black_box(r).wrapping_mul(31).wrapping_add(u64::from(level)))
}

#[inline(never)]
fn right(counter: u64, level: u32) -> u64 {
    let r = descend(black_box(counter), black_box(level));
    black_box(black_box(r).wrapping_mul(37) ^ u64::from(level))
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// One thread's counting, until it has used `cpu` of CPU time: thread
/// `index` of `threads` takes the values `index`, `index + threads`, ...,
/// so no two threads visit the same stack.
fn count(cpu: Duration, index: u64, threads: u64) -> u64 {
    let mut acc = 0u64;
    let mut counter = index;
    while thread_cpu_time() < cpu {
        // The clock is a system call: read it rarely, so that few samples
        // land there (those stacks repeat).
        for _ in 0..CLOCK_EVERY {
            acc ^= descend(counter, 0);
            counter += threads;
        }
    }
    black_box(acc)
}

fn main() {
    let args = args("[CPU_SECONDS] [THREADS]", 2);
    let cpu = seconds_arg(&args, 0, "CPU_SECONDS", 6.0);
    let threads: u32 = num_arg(&args, 1, "THREADS", 2, 1, 8);
    let workers: Vec<_> =
        (0..threads).map(|i| std::thread::spawn(move || count(cpu, u64::from(i), u64::from(threads)))).collect();
    for worker in workers {
        black_box(worker.join().unwrap_or(0));
    }
}
