//! `cpu_split [SECONDS] [RATIO]` — a single thread splitting its CPU time
//! RATIO : 1 between two functions, for `SECONDS` (default 5, fractions
//! allowed) of wall time.
//!
//! Each round of the main loop runs RATIO units of work in
//! `cpu_split::hot_three_quarters` and 1 unit in `cpu_split::cold_one_quarter`.
//! A unit is a fixed number of iterations of the same inner loop, expanded
//! into each function's own frame, so the split does not depend on machine
//! speed: the leaf frame of a sample is `hot_three_quarters` with share
//! RATIO/(RATIO+1) (0.75 with the default RATIO 3) and `cold_one_quarter`
//! with share 1/(RATIO+1). Both are called directly from `cpu_split::main`.
//! (The names reflect the default ratio.) RATIO is a number > 0, default 3.
//!
//! Each round runs a pseudo-random number of units (1 to 16, the same in both
//! functions), so rounds have no fixed length. With fixed rounds a periodic
//! sampler can lock onto the round's phase and see one function far more
//! often than its share: CI saw 0.58 for 1:1 when two rounds took about one
//! sampling period.

use flameprof_examples::{args, num_arg, seconds_arg, spin_iters};
use std::time::Instant;

/// Iterations in one unit of work (a fraction of a millisecond).
const UNIT: u64 = 100_000;

/// Most units in one round.
const MAX_UNITS_PER_ROUND: u64 = 16;

/// Units in the next round, 1..=MAX_UNITS_PER_ROUND, from a fixed-seed
/// xorshift generator: reproducible runs, no period a sampler could lock to.
fn units_in_next_round(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    1 + *state % MAX_UNITS_PER_ROUND
}

#[inline(never)]
fn hot_three_quarters(iters: u64) -> u64 {
    spin_iters!(0x9e37_79b9_7f4a_7c15u64, iters)
}

#[inline(never)]
fn cold_one_quarter(iters: u64) -> u64 {
    spin_iters!(0x2545_f491_4f6c_dd1du64, iters)
}

fn main() {
    let args = args("[SECONDS] [RATIO]", 2);
    let duration = seconds_arg(&args, 0, "SECONDS", 5.0);
    let ratio: f64 = num_arg(&args, 1, "RATIO", 3.0, 1e-3, 1e3);
    let hot_iters = (ratio * UNIT as f64).round().max(1.0) as u64;
    let start = Instant::now();
    let mut acc = 0u64;
    let mut rng = 0x853c_49e6_748f_ea9bu64;
    while start.elapsed() < duration {
        let units = units_in_next_round(&mut rng);
        acc ^= hot_three_quarters(hot_iters * units);
        acc ^= cold_one_quarter(UNIT * units);
    }
    std::hint::black_box(acc);
}
