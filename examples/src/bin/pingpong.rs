//! `pingpong [ROUNDS]` — a context-switch-heavy workload: two threads bounce
//! one byte over two pipes ROUNDS times (default 200000, 1..=10^9). The main
//! thread writes to pipe A and blocks reading pipe B in `pingpong::ping`; the
//! second thread (named `pong`) blocks reading pipe A and answers on pipe B in
//! `pingpong::pong`. Libc is called only through the framed helpers
//! `pingpong::sys_read` / `pingpong::sys_write`. Prints the elapsed seconds
//! and round trips per second on stderr, nothing on stdout.

use flameprof_examples::{args, die, num_arg, pipe};
use std::time::Instant;

#[inline(never)]
fn sys_read(fd: libc::c_int, byte: &mut u8) {
    // SAFETY: `byte` is a live, writable byte.
    if unsafe { libc::read(fd, (byte as *mut u8).cast(), 1) } != 1 {
        die(&format!("read pipe: {}", std::io::Error::last_os_error()));
    }
}

#[inline(never)]
fn sys_write(fd: libc::c_int, byte: u8) {
    // SAFETY: `byte` is a live byte on this stack.
    if unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) } != 1 {
        die(&format!("write pipe: {}", std::io::Error::last_os_error()));
    }
}

/// Main thread: send a byte on A, wait for the answer on B.
#[inline(never)]
fn ping(rounds: u64, a_w: libc::c_int, b_r: libc::c_int) -> u8 {
    let mut byte = 0u8;
    for _ in 0..rounds {
        sys_write(a_w, byte.wrapping_add(1));
        sys_read(b_r, &mut byte);
    }
    std::hint::black_box(byte)
}

/// Second thread: answer every byte from A on B.
#[inline(never)]
fn pong(rounds: u64, a_r: libc::c_int, b_w: libc::c_int) -> u8 {
    let mut byte = 0u8;
    for _ in 0..rounds {
        sys_read(a_r, &mut byte);
        sys_write(b_w, byte);
    }
    std::hint::black_box(byte)
}

fn main() {
    let args = args("[ROUNDS]", 1);
    let rounds: u64 = num_arg(&args, 0, "ROUNDS", 200_000, 1, 1_000_000_000);
    let (a_r, a_w) = pipe();
    let (b_r, b_w) = pipe();
    let start = Instant::now();
    let t = std::thread::Builder::new()
        .name("pong".into())
        .spawn(move || pong(rounds, a_r, b_w))
        .unwrap_or_else(|e| die(&format!("spawn: {e}")));
    ping(rounds, a_w, b_r);
    t.join().expect("pong thread panicked");
    let secs = start.elapsed().as_secs_f64();
    eprintln!("pingpong: {rounds} round trips in {secs:.3} s, {:.0} round trips/s", rounds as f64 / secs);
}
