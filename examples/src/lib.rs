//! Shared helpers for the flameprof example workloads.
//!
//! Every binary in `src/bin/` is a small program whose profile is known by
//! construction; the end-to-end tests and benchmarks match on the names of
//! its functions (documented at the top of each binary). The rules that keep
//! those names visible to a frame-pointer unwinder:
//!
//! * every asserted function is a plain `#[inline(never)]` Rust function (the
//!   workspace builds with `-C force-frame-pointers=yes`), with a body distinct
//!   from every other one so LLVM's function merging cannot fold two of them;
//! * CPU work is expanded in place with the [`spin_iters!`] / [`burn_until!`]
//!   macros, so the sampled leaf frame *is* the asserted function (no shared
//!   callee, no inlined-subroutine frame);
//! * a call into libc (no frame pointers on Debian) goes through one extra
//!   framed `#[inline(never)]` helper: an unwinder starting in the libc
//!   wrapper skips exactly that helper and still finds the asserted function.
//!
//! Binaries write nothing on stdout. A bad argument prints one line on stderr
//! and exits with status 2.

use std::str::FromStr;
use std::time::Duration;

/// Iterations of [`spin_iters!`] per check of the clock in [`burn_until!`]
/// (tens of microseconds on a current CPU).
pub const CHUNK: u64 = 20_000;

/// Run `$iters` rounds of a dependent xorshift chain seeded with `$seed` and
/// evaluate to the result. Expanded in the caller, so samples land in the
/// caller's own frame. Use a different seed in every function so their code
/// differs.
#[macro_export]
macro_rules! spin_iters {
    ($seed:expr, $iters:expr) => {{
        let mut x: u64 = ::std::hint::black_box($seed as u64) | 1;
        let n: u64 = ::std::hint::black_box($iters as u64);
        let mut i: u64 = 0;
        while i < n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            i += 1;
        }
        ::std::hint::black_box(x)
    }};
}

/// Burn CPU in the calling function until `$deadline` (an `Instant`),
/// checking the clock every [`CHUNK`] iterations. Evaluates to a `u64`.
#[macro_export]
macro_rules! burn_until {
    ($seed:expr, $deadline:expr) => {{
        let deadline: ::std::time::Instant = $deadline;
        let mut acc: u64 = 0;
        loop {
            acc = acc.wrapping_add($crate::spin_iters!(($seed as u64) ^ acc, $crate::CHUNK));
            if ::std::time::Instant::now() >= deadline {
                break;
            }
        }
        ::std::hint::black_box(acc)
    }};
}

/// CPU time of the calling thread so far.
pub fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// Burn `$cpu` (a `Duration`) of the calling thread's CPU time in the
/// calling function, whatever else runs on the machine. Evaluates to a `u64`.
#[macro_export]
macro_rules! burn_cpu {
    ($seed:expr, $cpu:expr) => {{
        let until = $crate::thread_cpu_time() + $cpu;
        let mut acc: u64 = 0;
        while $crate::thread_cpu_time() < until {
            acc = acc.wrapping_add($crate::spin_iters!(($seed as u64) ^ acc, $crate::CHUNK / 4));
        }
        ::std::hint::black_box(acc)
    }};
}

/// One libc `nanosleep` of `$duration` (a `Duration`), called from the
/// calling function itself: no helper frame between it and libc's
/// frameless wrapper. An interrupted sleep is not resumed (it only ends
/// early). Not a tail call, so the caller's frame stays on the stack.
#[macro_export]
macro_rules! nanosleep_once {
    ($duration:expr) => {{
        let d: ::std::time::Duration = $duration;
        let ts = ::libc::timespec { tv_sec: d.as_secs() as _, tv_nsec: d.subsec_nanos() as _ };
        // SAFETY: `ts` is a live timespec; a null remainder pointer is allowed.
        unsafe { ::libc::nanosleep(&ts, ::std::ptr::null_mut()) };
        ::std::hint::black_box(());
    }};
}

/// Name of this program (basename of argv[0]), for messages.
pub fn prog() -> String {
    let a0 = std::env::args().next().unwrap_or_default();
    a0.rsplit('/').next().unwrap_or("example").to_string()
}

/// Print `prog: msg` on stderr and exit with status 2.
/// A pipe (read end, write end), closed on exec; dies on failure.
pub fn pipe() -> (libc::c_int, libc::c_int) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        die(&format!("pipe: {}", std::io::Error::last_os_error()));
    }
    (fds[0], fds[1])
}

pub fn die(msg: &str) -> ! {
    eprintln!("{}: {msg}", prog());
    std::process::exit(2)
}

/// Command-line arguments (without argv[0]): at most `max` of them, else die
/// with `usage`. `-h`/`--help` prints the usage on stderr and exits 0.
pub fn args(usage: &str, max: usize) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        eprintln!("usage: {} {usage}", prog());
        std::process::exit(0);
    }
    if args.len() > max {
        die(&format!("too many arguments (usage: {} {usage})", prog()));
    }
    args
}

/// Parse optional argument `i` as a non-negative, finite number of seconds
/// (fractions allowed), or return `default`.
pub fn seconds_arg(args: &[String], i: usize, name: &str, default: f64) -> Duration {
    let Some(s) = args.get(i) else {
        return Duration::from_secs_f64(default);
    };
    match s.parse::<f64>() {
        Ok(v) if (0.0..1e9).contains(&v) => Duration::from_secs_f64(v),
        _ => die(&format!("invalid {name} {s:?}: expected a number of seconds from 0 to 1e9")),
    }
}

/// Parse optional argument `i` as a number in `min..=max`, or return
/// `default`.
pub fn num_arg<T>(args: &[String], i: usize, name: &str, default: T, min: T, max: T) -> T
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(s) = args.get(i) else {
        return default;
    };
    match s.parse::<T>() {
        Ok(v) if v >= min && v <= max => v,
        _ => die(&format!("invalid {name} {s:?}: expected a number from {min} to {max}")),
    }
}
