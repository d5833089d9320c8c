//! `offcpu_blocks` — blocks (off CPU) for known times in known places, on the
//! main thread:
//!
//! 1. 5 × 200 ms `nanosleep` in `offcpu_blocks::sleep_200ms` (≈ 1.0 s), via
//!    the helper `offcpu_blocks::sys_nanosleep` → libc `nanosleep`;
//! 2. then 5 × ≈100 ms blocking `read(2)` of a pipe in
//!    `offcpu_blocks::wait_on_pipe` (≈ 0.5 s), via the helper
//!    `offcpu_blocks::sys_read` → libc `read`. A second thread (named
//!    `pipe-writer`) writes one byte 100 ms after each read starts, waiting in
//!    `offcpu_blocks::writer_delay` (its own nanosleep) — it is told each read
//!    is about to start through a channel.
//!
//! A frame-pointer unwinder starting in the libc wrapper skips the `sys_*`
//! helper, so switch-out stacks read `nanosleep` ← `sleep_200ms` ← `main` and
//! `read` ← `wait_on_pipe` ← `main`. Takes no arguments; prints a timing
//! summary on stderr, nothing on stdout.

use flameprof_examples::{args, die};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROUNDS: u32 = 5;

#[inline(never)]
fn sys_nanosleep(d: Duration) {
    let mut ts = libc::timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ };
    loop {
        let mut rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: both pointers are to live timespec values on this stack.
        let r = unsafe { libc::nanosleep(&ts, &mut rem) };
        if r == 0 {
            return;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            die(&format!("nanosleep: {}", std::io::Error::last_os_error()));
        }
        ts = rem;
    }
}

#[inline(never)]
fn sys_read(fd: libc::c_int, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is a live buffer of `buf.len()` writable bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    std::hint::black_box(n)
}

#[inline(never)]
fn sleep_200ms() {
    sys_nanosleep(Duration::from_millis(200));
    std::hint::black_box(());
}

#[inline(never)]
fn wait_on_pipe(fd: libc::c_int) {
    let mut byte = [0u8; 1];
    loop {
        let n = sys_read(fd, &mut byte);
        if n == 1 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        die(&format!("read pipe: {n} {}", std::io::Error::last_os_error()));
    }
    std::hint::black_box(byte);
}

#[inline(never)]
fn writer_delay() {
    sys_nanosleep(Duration::from_millis(100));
    std::hint::black_box(());
}

fn main() {
    args("(takes no arguments)", 0);
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        die(&format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let (rfd, wfd) = (fds[0], fds[1]);
    let (tx, rx) = mpsc::channel::<()>();
    let writer = std::thread::Builder::new()
        .name("pipe-writer".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                writer_delay();
                // SAFETY: the pointer is to a one-byte array that outlives the call.
                if unsafe { libc::write(wfd, [1u8].as_ptr().cast(), 1) } != 1 {
                    die(&format!("write pipe: {}", std::io::Error::last_os_error()));
                }
            }
        })
        .unwrap_or_else(|e| die(&format!("spawn: {e}")));

    let t0 = Instant::now();
    for _ in 0..ROUNDS {
        sleep_200ms();
    }
    let t1 = Instant::now();
    for _ in 0..ROUNDS {
        tx.send(()).expect("writer thread gone");
        wait_on_pipe(rfd);
    }
    let t2 = Instant::now();
    drop(tx);
    writer.join().expect("writer panicked");
    eprintln!(
        "offcpu_blocks: sleep_200ms {:.3} s, wait_on_pipe {:.3} s",
        (t1 - t0).as_secs_f64(),
        (t2 - t1).as_secs_f64()
    );
}
