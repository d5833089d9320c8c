//! `threads [SECONDS] [N]` — N worker threads (default 3, 1..=8) that start
//! 0.5 s after the process does (so a profiler attached at exec sees them
//! created during recording), then each burn CPU for SECONDS (default 5,
//! fractions allowed) in their own function: thread i (named `worker-i`) runs
//! `threads::worker_i` (`threads::worker_0`, `threads::worker_1`, ...). Each
//! worker should get about the same share of samples. The main thread sleeps
//! for the delay, then waits idle (blocked in join) until the workers finish;
//! total run time ≈ 0.5 s + SECONDS.

use flameprof_examples::{args, burn_until, num_arg, seconds_arg};
use std::time::{Duration, Instant};

const START_DELAY: Duration = Duration::from_millis(500);

macro_rules! workers {
    ($($name:ident = $seed:expr),* $(,)?) => {
        $(
            #[inline(never)]
            fn $name(deadline: Instant) -> u64 {
                burn_until!($seed as u64, deadline)
            }
        )*
        const WORKERS: &[fn(Instant) -> u64] = &[$($name),*];
    };
}

workers! {
    worker_0 = 0x1111_2222_3333_4441u64,
    worker_1 = 0x1111_2222_3333_4443u64,
    worker_2 = 0x1111_2222_3333_4445u64,
    worker_3 = 0x1111_2222_3333_4447u64,
    worker_4 = 0x1111_2222_3333_4449u64,
    worker_5 = 0x1111_2222_3333_444bu64,
    worker_6 = 0x1111_2222_3333_444du64,
    worker_7 = 0x1111_2222_3333_444fu64,
}

fn main() {
    let args = args("[SECONDS] [N]", 2);
    let duration = seconds_arg(&args, 0, "SECONDS", 5.0);
    let n: usize = num_arg(&args, 1, "N", 3, 1, WORKERS.len());
    std::thread::sleep(START_DELAY);
    let deadline = Instant::now() + duration;
    let handles: Vec<_> = WORKERS[..n]
        .iter()
        .enumerate()
        .map(|(i, &work)| {
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || std::hint::black_box(work(deadline)))
                .unwrap_or_else(|e| flameprof_examples::die(&format!("spawn: {e}")))
        })
        .collect();
    for h in handles {
        h.join().expect("worker panicked");
    }
}
