//! `churn [SECONDS] [RATE]` — process and thread churn for soak runs: for
//! SECONDS (default 10, fractions allowed) it starts RATE processes a second
//! (default 500, 1..=5000) and reaps them as they end, while a second
//! process starts and ends threads (a new one every 5 ms, up to 4 alive,
//! each burning about 1 ms). With the kernel's default pid_max (32768) pids
//! wrap every minute or so at 500 a second, so a long run reuses pids.
//!
//! Every other process is forked without exec; the others exec `churn
//! --child N`. Either way the child burns about 0.2 ms of CPU in one of
//! `churn::child_a`, `churn::child_b`, `churn::child_c` (by N mod 3) and
//! exits; threads burn in `churn::thread_work`. At the end it prints on
//! stderr: `churn: P processes, T threads started`.

use flameprof_examples::{args, die, num_arg, seconds_arg, spin_iters};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

/// Work of one child (about 0.2 ms).
const CHILD_ITERS: u64 = 100_000;
/// Work of one thread (about 1 ms).
const THREAD_ITERS: u64 = 500_000;
const THREAD_EVERY: Duration = Duration::from_millis(5);
const THREADS_ALIVE: usize = 4;

#[inline(never)]
fn child_a(n: u64) -> u64 {
    spin_iters!(0x9e37_79b9u64 ^ n, CHILD_ITERS)
}

#[inline(never)]
fn child_b(n: u64) -> u64 {
    spin_iters!(0x85eb_ca6bu64 ^ n, CHILD_ITERS)
}

#[inline(never)]
fn child_c(n: u64) -> u64 {
    spin_iters!(0xc2b2_ae35u64 ^ n, CHILD_ITERS)
}

#[inline(never)]
fn thread_work(n: u64) -> u64 {
    spin_iters!(0x27d4_eb2fu64 ^ n, THREAD_ITERS)
}

fn child_work(n: u64) -> u64 {
    match n % 3 {
        0 => child_a(n),
        1 => child_b(n),
        _ => child_c(n),
    }
}

/// Starts and ends threads until `deadline`; returns how many it started.
fn thread_churn(deadline: Instant) -> u64 {
    let mut alive = Vec::new();
    let mut started = 0u64;
    while Instant::now() < deadline {
        alive.retain(|t: &std::thread::JoinHandle<u64>| !t.is_finished());
        if alive.len() < THREADS_ALIVE {
            let n = started;
            alive.push(std::thread::spawn(move || thread_work(n)));
            started += 1;
        }
        std::thread::sleep(THREAD_EVERY);
    }
    for thread in alive {
        black_box(thread.join().unwrap_or(0));
    }
    started
}

/// Reaps every child that has ended; returns how many.
fn reap() -> u64 {
    let mut reaped = 0;
    // SAFETY: waitpid with a null status pointer only reaps; -1 is any child.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {
        reaped += 1;
    }
    reaped
}

fn main() {
    let args = args("[SECONDS] [RATE] | --child N | --threads SECONDS", 2);
    match args.first().map(String::as_str) {
        Some("--child") => {
            let n: u64 = num_arg(&args, 1, "N", 0, 0, u64::MAX);
            black_box(child_work(n));
            return;
        }
        Some("--threads") => {
            let seconds = seconds_arg(&args, 1, "SECONDS", 10.0);
            let threads = thread_churn(Instant::now() + seconds);
            eprintln!("churn: {threads} threads started");
            return;
        }
        _ => {}
    }
    let duration = seconds_arg(&args, 0, "SECONDS", 10.0);
    let rate: u64 = num_arg(&args, 1, "RATE", 500, 1, 5000);
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("cannot find own executable: {e}")));
    let seconds = format!("{}", duration.as_secs_f64());
    let mut threads = Command::new(&me)
        .args(["--threads", &seconds])
        .spawn()
        .unwrap_or_else(|e| die(&format!("cannot start the thread churner: {e}")));
    let start = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let mut started = 0u64;
    let mut failed = 0u64;
    while start.elapsed() < duration {
        let n = started;
        if n.is_multiple_of(2) {
            // SAFETY: this process has one thread, so the child may run any
            // code; it only computes and leaves with _exit (no atexit
            // handlers, no buffers flushed twice).
            match unsafe { libc::fork() } {
                0 => {
                    black_box(child_work(n));
                    // SAFETY: ends the forked child at once.
                    unsafe { libc::_exit(0) };
                }
                -1 => failed += 1,
                _ => started += 1,
            }
        } else {
            // Reaped by `reap` (waitpid of any child), not through the handle.
            match Command::new(&me).args(["--child", &n.to_string()]).spawn() {
                Ok(child) => {
                    drop(child);
                    started += 1;
                }
                Err(_) => failed += 1,
            }
        }
        reap();
        // Keep the rate: sleep to the next start, or not at all when late.
        let next = every.mul_f64((started + failed) as f64);
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    // SAFETY: as in `reap`, but blocking: waits for every child left.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), 0) } > 0 {}
    let _ = threads.wait();
    eprintln!("churn: {started} processes started ({failed} failed to start)");
}
