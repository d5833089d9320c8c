//! `wakers MODE` — a thread waits 5 × ≈200 ms and is woken each time by
//! something known (for `--wakers`), MODE being one of:
//!
//! * `pipe`: the main thread waits for a byte in `wakers::wait_for_byte`
//!   (reading a pipe); the thread `burner` burns CPU for 200 ms in
//!   `wakers::burn_before_waking` and then writes the byte from
//!   `wakers::wake_by_write`.
//! * `mutex`: the thread `locker` waits for a `std::sync::Mutex` in
//!   `wakers::wait_for_lock` while the main thread holds it, burns 200 ms
//!   and unlocks it in `wakers::release_lock` (a handoff through the futex).
//! * `condvar`: the thread `signalled` waits on a `Condvar` in
//!   `wakers::wait_for_signal`; the main thread burns 200 ms and notifies it
//!   from `wakers::signal_condition`.
//! * `timer`: the main thread sleeps 200 ms in `wakers::sleep_on_timer`
//!   (nanosleep): the timer interrupt wakes it, no task.
//! * `child`: the main thread waits for a child in `wakers::wait_for_child`
//!   (waitpid); the child, named `exiting-child`, burns 200 ms and exits
//!   from `wakers::exit_child`: its exit wakes the parent.
//! * `stdin`: the main thread waits for bytes on its standard input in
//!   `wakers::wait_for_byte` until end of file (whoever writes them wakes it:
//!   a process that is not profiled, in the tests).
//!
//! Libc is reached through one framed helper (`sys_*`) so that a
//! frame-pointer walk starting in libc still finds the named function.
//! Prints the total wait on stderr (`wakers: MODE waited S s`), nothing on stdout.

use flameprof_examples::{args, burn_until, die, pipe};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant};

const ROUNDS: u32 = 5;
const WAIT: Duration = Duration::from_millis(200);

#[inline(never)]
fn sys_read(fd: libc::c_int, byte: &mut u8) -> isize {
    // SAFETY: `byte` is a live, writable byte.
    let n = unsafe { libc::read(fd, (byte as *mut u8).cast(), 1) };
    std::hint::black_box(n)
}

#[inline(never)]
fn sys_write(fd: libc::c_int, byte: u8) -> isize {
    // SAFETY: `byte` is a live byte on this stack.
    let n = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    std::hint::black_box(n)
}

#[inline(never)]
fn sys_nanosleep(d: Duration) {
    let mut ts = libc::timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ };
    let mut rem = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: both pointers are to live timespec values on this stack.
    while unsafe { libc::nanosleep(&ts, &mut rem) } != 0 {
        ts = rem;
    }
    std::hint::black_box(());
}

#[inline(never)]
fn sys_waitpid(pid: libc::pid_t) -> libc::c_int {
    let mut status = 0;
    // SAFETY: `status` is a live int that waitpid fills in.
    while unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            die(&format!("waitpid: {}", std::io::Error::last_os_error()));
        }
    }
    std::hint::black_box(status)
}

#[inline(never)]
fn wait_for_byte(fd: libc::c_int) {
    let mut byte = 0;
    if sys_read(fd, &mut byte) != 1 {
        die(&format!("read pipe: {}", std::io::Error::last_os_error()));
    }
    std::hint::black_box(byte);
}

#[inline(never)]
fn burn_before_waking() -> u64 {
    burn_until!(0x5eed_0001u64, Instant::now() + WAIT)
}

#[inline(never)]
fn wake_by_write(fd: libc::c_int) {
    if sys_write(fd, 1) != 1 {
        die(&format!("write pipe: {}", std::io::Error::last_os_error()));
    }
    std::hint::black_box(fd);
}

fn pipe_mode() {
    let (r, w) = pipe();
    let burner = std::thread::Builder::new()
        .name("burner".into())
        .spawn(move || {
            for _ in 0..ROUNDS {
                burn_before_waking();
                wake_by_write(w);
            }
        })
        .unwrap_or_else(|e| die(&format!("spawn: {e}")));
    for _ in 0..ROUNDS {
        wait_for_byte(r);
    }
    burner.join().expect("burner panicked");
}

#[inline(never)]
fn wait_for_lock(lock: &Mutex<u64>) {
    let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    *guard += 1;
    std::hint::black_box(&*guard);
}

#[inline(never)]
fn burn_holding_lock() -> u64 {
    burn_until!(0x5eed_0002u64, Instant::now() + WAIT)
}

#[inline(never)]
fn release_lock(guard: std::sync::MutexGuard<'_, u64>) {
    drop(std::hint::black_box(guard));
}

fn mutex_mode() {
    let lock = Arc::new(Mutex::new(0u64));
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let theirs = lock.clone();
    let locker = std::thread::Builder::new()
        .name("locker".into())
        .spawn(move || {
            while go_rx.recv().is_ok() {
                wait_for_lock(&theirs);
                done_tx.send(()).expect("main thread gone");
            }
        })
        .unwrap_or_else(|e| die(&format!("spawn: {e}")));
    for _ in 0..ROUNDS {
        let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        go_tx.send(()).expect("locker gone");
        burn_holding_lock();
        release_lock(guard);
        done_rx.recv().expect("locker gone");
    }
    drop(go_tx);
    locker.join().expect("locker panicked");
}

#[inline(never)]
fn wait_for_signal(state: &(Mutex<bool>, Condvar)) {
    let mut ready = state.0.lock().unwrap_or_else(|e| e.into_inner());
    while !*ready {
        ready = state.1.wait(ready).unwrap_or_else(|e| e.into_inner());
    }
    *ready = false;
}

#[inline(never)]
fn burn_before_signal() -> u64 {
    burn_until!(0x5eed_0003u64, Instant::now() + WAIT)
}

#[inline(never)]
fn signal_condition(state: &(Mutex<bool>, Condvar)) {
    *state.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
    state.1.notify_one();
    std::hint::black_box(state);
}

fn condvar_mode() {
    let state = Arc::new((Mutex::new(false), Condvar::new()));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let theirs = state.clone();
    let signalled = std::thread::Builder::new()
        .name("signalled".into())
        .spawn(move || {
            for _ in 0..ROUNDS {
                wait_for_signal(&theirs);
                done_tx.send(()).expect("main thread gone");
            }
        })
        .unwrap_or_else(|e| die(&format!("spawn: {e}")));
    for _ in 0..ROUNDS {
        burn_before_signal();
        signal_condition(&state);
        done_rx.recv().expect("signalled thread gone");
    }
    signalled.join().expect("signalled thread panicked");
}

#[inline(never)]
fn sleep_on_timer() {
    sys_nanosleep(WAIT);
    std::hint::black_box(());
}

#[inline(never)]
fn wait_for_child(pid: libc::pid_t) {
    let status = sys_waitpid(pid);
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        die(&format!("child ended with status {status:#x}"));
    }
}

#[inline(never)]
fn child_work() -> u64 {
    burn_until!(0x5eed_0004u64, Instant::now() + WAIT)
}

#[inline(never)]
fn exit_child() -> ! {
    // SAFETY: _exit ends this (forked, single-threaded) child at once,
    // running nothing of the parent's.
    unsafe { libc::_exit(0) }
}

fn child_mode() {
    for _ in 0..ROUNDS {
        // SAFETY: the child only burns CPU, renames itself and calls _exit:
        // nothing that needs locks another thread of the parent could hold
        // (the parent is single-threaded here anyway).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            die(&format!("fork: {}", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
            unsafe { libc::prctl(libc::PR_SET_NAME, c"exiting-child".as_ptr()) };
            child_work();
            exit_child();
        }
        wait_for_child(pid);
    }
}

#[inline(never)]
fn wait_for_input() -> bool {
    let mut byte = 0;
    sys_read(0, &mut byte) == 1
}

fn stdin_mode() {
    while wait_for_input() {}
}

fn main() {
    let args = args("pipe|mutex|condvar|timer|child|stdin", 1);
    let mode = args.first().map(String::as_str).unwrap_or("");
    let start = Instant::now();
    match mode {
        "pipe" => pipe_mode(),
        "mutex" => mutex_mode(),
        "condvar" => condvar_mode(),
        "timer" => (0..ROUNDS).for_each(|_| sleep_on_timer()),
        "child" => child_mode(),
        "stdin" => stdin_mode(),
        _ => die("MODE must be one of pipe, mutex, condvar, timer, child, stdin"),
    }
    eprintln!("wakers: {mode} waited {:.3} s", start.elapsed().as_secs_f64());
}
