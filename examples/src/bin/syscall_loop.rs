//! `syscall_loop [SECONDS]` — burns CPU inside the kernel for SECONDS of wall
//! time (default 5, fractions allowed) by reading 1 MiB at a time from
//! `/dev/zero` (kernel time in `read_zero`/`clear_user`/iov code).
//!
//! Call chain: `syscall_loop::main` → `syscall_loop::read_dev_zero` →
//! `syscall_loop::sys_read` → libc `read` → kernel. A frame-pointer unwinder
//! starting in libc's `read` (no frame pointer) skips `sys_read`, so the user
//! part of most samples is `read` ← `read_dev_zero` ← `main`, under kernel
//! frames. Tests should match `syscall_loop::read_dev_zero`.

use flameprof_examples::{args, die, seconds_arg};
use std::time::{Duration, Instant};

const BUF: usize = 1 << 20;

/// The only place libc is called; it exists so the unwinder loses this frame
/// rather than `read_dev_zero`.
#[inline(never)]
fn sys_read(fd: libc::c_int, buf: &mut [u8]) -> isize {
    // SAFETY: `buf` is a live buffer of `buf.len()` writable bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    std::hint::black_box(n)
}

#[inline(never)]
fn read_dev_zero(fd: libc::c_int, buf: &mut [u8], duration: Duration) -> u64 {
    let start = Instant::now();
    let mut total = 0u64;
    while start.elapsed() < duration {
        let n = sys_read(fd, std::hint::black_box(&mut *buf));
        if n <= 0 {
            die(&format!("read /dev/zero: {}", std::io::Error::last_os_error()));
        }
        total += n as u64;
    }
    std::hint::black_box(total)
}

fn main() {
    let args = args("[SECONDS]", 1);
    let duration = seconds_arg(&args, 0, "SECONDS", 5.0);
    // SAFETY: a NUL-terminated literal path.
    let fd = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        die(&format!("open /dev/zero: {}", std::io::Error::last_os_error()));
    }
    let mut buf = vec![1u8; BUF];
    read_dev_zero(fd, &mut buf, duration);
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
}
