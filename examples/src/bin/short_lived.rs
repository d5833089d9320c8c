//! `short_lived [COUNT] [PARALLEL]` — a build-like stream of short-lived
//! processes: starts COUNT processes (default 1000, at most PARALLEL at a
//! time, default 2), each one this program exec'd as `short_lived --child
//! I`, which burns 10 to 50 ms of its own CPU time (`child_cpu_ms(I)`: 10 +
//! I * 7 mod 41) in the function `short_lived::short_K` with K = I mod 10,
//! then exits. Each process lives a few tens of milliseconds: what a
//! profiler that reads /proc late misses. At the end it prints on stderr
//! `short_lived: N processes, K ms of CPU in short_0..short_9: a b c ...`
//! (the CPU time each function was given by construction).
//!
//! `short_lived --after-exec MS` burns MS ms of CPU in
//! `short_lived::after_exec` (the program `exec_switch` execs).

use flameprof_examples::{args, burn_cpu, die, num_arg};
use std::process::{Child, Command};
use std::time::Duration;

/// Ten functions, each with its own seed (distinct code).
macro_rules! short_functions {
    ($($name:ident = $seed:expr),* $(,)?) => {
        $(
            #[inline(never)]
            fn $name(cpu: Duration) -> u64 {
                burn_cpu!($seed, cpu)
            }
        )*
        const SHORT: [fn(Duration) -> u64; 10] = [$($name),*];
    };
}

short_functions!(
    short_0 = 0x1001,
    short_1 = 0x2002,
    short_2 = 0x3003,
    short_3 = 0x4004,
    short_4 = 0x5005,
    short_5 = 0x6006,
    short_6 = 0x7007,
    short_7 = 0x8008,
    short_8 = 0x9009,
    short_9 = 0xa00a,
);

#[inline(never)]
fn after_exec(cpu: Duration) -> u64 {
    burn_cpu!(0xbeef, cpu)
}

/// The CPU time child `i` burns, by construction: 10 to 50 ms.
fn child_cpu_ms(i: u64) -> u64 {
    10 + (i * 7) % 41
}

fn main() {
    let args = args("[COUNT] [PARALLEL] | --child I | --after-exec MS", 2);
    match args.first().map(String::as_str) {
        Some("--child") => {
            let i: u64 = num_arg(&args, 1, "I", 0, 0, u64::MAX);
            std::hint::black_box(SHORT[(i % 10) as usize](Duration::from_millis(child_cpu_ms(i))));
            return;
        }
        Some("--after-exec") => {
            let ms: u64 = num_arg(&args, 1, "MS", 300, 0, 1_000_000);
            std::hint::black_box(after_exec(Duration::from_millis(ms)));
            return;
        }
        _ => {}
    }
    let count: u64 = num_arg(&args, 0, "COUNT", 1000, 1, 1_000_000);
    let parallel: usize = num_arg(&args, 1, "PARALLEL", 2, 1, 64);
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("cannot find own executable: {e}")));
    let mut running: Vec<Child> = Vec::new();
    let mut given_ms = [0u64; 10];
    for i in 0..count {
        while running.len() >= parallel {
            let first = running.remove(0);
            wait(first);
        }
        match Command::new(&me).args(["--child", &i.to_string()]).spawn() {
            Ok(child) => running.push(child),
            Err(e) => die(&format!("cannot start child {i}: {e}")),
        }
        given_ms[(i % 10) as usize] += child_cpu_ms(i);
    }
    running.into_iter().for_each(wait);
    let shares: Vec<String> = given_ms.iter().map(u64::to_string).collect();
    eprintln!("short_lived: {count} processes, ms of CPU in short_0..short_9: {}", shares.join(" "));
}

fn wait(mut child: Child) {
    if !child.wait().is_ok_and(|status| status.success()) {
        die("a child failed");
    }
}
