//! `recursion [DEPTH] [SECONDS]` — a deep stack: `recursion::main` calls
//! `recursion::descend`, which recurses until there are DEPTH (default 100,
//! 1..=10000) nested `descend` frames, and the innermost one calls
//! `recursion::bottom`, which burns CPU until SECONDS (default 5, fractions
//! allowed) of wall time have passed since the start.
//!
//! Each level does work after its recursive call, so no frame is turned into
//! a tail call or loop: a sample's stack is `bottom`, then exactly DEPTH
//! frames of `descend`, then `main`. (Unwinders with a depth cap, e.g. perf's
//! default of 127 frames, truncate stacks for large DEPTH.)

use flameprof_examples::{args, burn_until, num_arg, seconds_arg};
use std::hint::black_box;
use std::time::Instant;

#[inline(never)]
fn bottom(deadline: Instant) -> u64 {
    burn_until!(0x27d4_eb2fu64, deadline)
}

/// `remaining` counts this frame: `descend(n, ..)` makes n `descend` frames.
#[inline(never)]
fn descend(remaining: u32, deadline: Instant) -> u64 {
    let r = if remaining <= 1 { bottom(deadline) } else { descend(black_box(remaining - 1), deadline) };
    // Work after the call keeps this frame alive during the callee.
    black_box(black_box(r).wrapping_mul(31).wrapping_add(remaining as u64))
}

fn main() {
    let args = args("[DEPTH] [SECONDS]", 2);
    let depth: u32 = num_arg(&args, 0, "DEPTH", 100, 1, 10_000);
    let duration = seconds_arg(&args, 1, "SECONDS", 5.0);
    let deadline = Instant::now() + duration;
    black_box(descend(depth, deadline));
}
