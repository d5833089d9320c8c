//! `duty_cycle [ROUNDS] [MS]` — one thread alternates MS ms of CPU work in
//! `duty_cycle::burn` and MS ms of sleep in `duty_cycle::nap` (`nanosleep`),
//! ROUNDS times (default 10 rounds of 50 ms): about half of its time on CPU
//! and half off, by construction. Prints its own measured split on stderr:
//! `duty_cycle: burn X s, nap Y s`.

use flameprof_examples::{args, burn_until, nanosleep_once, num_arg};
use std::time::{Duration, Instant};

#[inline(never)]
fn burn(d: Duration) -> u64 {
    burn_until!(0x2545_f491u64, Instant::now() + d)
}

#[inline(never)]
fn nap(d: Duration) {
    // Interrupted sleeps only shorten the nap; the measured split says so.
    nanosleep_once!(d);
}

fn main() {
    let args = args("[ROUNDS] [MS]", 2);
    let rounds: u32 = num_arg(&args, 0, "ROUNDS", 10, 1, 100_000);
    let ms: u64 = num_arg(&args, 1, "MS", 50, 1, 60_000);
    let d = Duration::from_millis(ms);
    let (mut burned, mut napped) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(burn(d));
        burned += t.elapsed();
        let t = Instant::now();
        nap(d);
        napped += t.elapsed();
    }
    eprintln!("duty_cycle: burn {:.3} s, nap {:.3} s", burned.as_secs_f64(), napped.as_secs_f64());
}
