//! `pid_reuse [CPU_SECONDS]` — two processes, one after the other, with the
//! same pid (needs root: clone3 with `set_tid`). The first child execs
//! `pid_reuse first CPU_SECONDS` and burns that much CPU (default 1,
//! fractions allowed) in `pid_reuse::first_process`; once it has exited and
//! been reaped, a second child is created with the very same pid and execs
//! `pid_reuse second CPU_SECONDS`, which burns in
//! `pid_reuse::second_process`. Same program, same name, another command
//! line. Prints `pid_reuse: pid P reused` on stderr (exit status 1 and a
//! message when the pid could not be reused).

use flameprof_examples::{die, seconds_arg, spin_iters};
use std::ffi::CString;
use std::hint::black_box;
use std::time::Duration;

/// Iterations between two reads of the CPU clock.
const CHUNK: u64 = 200_000;

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[inline(never)]
fn first_process(cpu: Duration) -> u64 {
    let mut acc = 0u64;
    while thread_cpu_time() < cpu {
        acc = acc.wrapping_add(spin_iters!(0x9e37_79b9u64 ^ acc, CHUNK));
    }
    black_box(acc)
}

#[inline(never)]
fn second_process(cpu: Duration) -> u64 {
    let mut acc = 0u64;
    while thread_cpu_time() < cpu {
        acc ^= spin_iters!(0x85eb_ca6bu64 ^ acc, CHUNK);
    }
    black_box(acc)
}

/// `struct clone_args` of clone3(2) (Linux 5.5+ for `set_tid`).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Starts `self ROLE SECONDS` as a child, with pid `pid` when given;
/// returns the child's pid.
fn start(role: &str, seconds: &str, pid: Option<libc::pid_t>) -> libc::pid_t {
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("cannot find own executable: {e}")));
    let argv: Vec<CString> = [me.to_string_lossy().as_ref(), role, seconds]
        .iter()
        .map(|a| CString::new(*a).unwrap_or_else(|_| die("an argument holds a NUL byte")))
        .collect();
    let mut pointers: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());
    let wanted = [pid.unwrap_or(0)];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: if pid.is_some() { wanted.as_ptr() as u64 } else { 0 },
        set_tid_size: u64::from(pid.is_some()),
        ..CloneArgs::default()
    };
    // SAFETY: clone3 with no stack and no CLONE_VM behaves as fork: the
    // child gets a copy of this single-threaded process, `args` and
    // `wanted` are live for the call and the kernel only reads them.
    let child = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) };
    if child == 0 {
        // SAFETY: in the child: `pointers` is a NUL-terminated array of
        // pointers to live C strings; execv only returns on failure.
        unsafe { libc::execv(pointers[0], pointers.as_ptr()) };
        // SAFETY: the exec failed: leave the child at once.
        unsafe { libc::_exit(127) };
    }
    if child < 0 {
        let error = std::io::Error::last_os_error();
        eprintln!("pid_reuse: cannot create a process with pid {}: {error}", wanted[0]);
        std::process::exit(1);
    }
    child as libc::pid_t
}

fn wait(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a live int.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("first") => {
            black_box(first_process(seconds_arg(&args, 1, "CPU_SECONDS", 1.0)));
            return;
        }
        Some("second") => {
            black_box(second_process(seconds_arg(&args, 1, "CPU_SECONDS", 1.0)));
            return;
        }
        Some("-h" | "--help") => {
            eprintln!("usage: pid_reuse [CPU_SECONDS]");
            return;
        }
        _ => {}
    }
    let seconds = seconds_arg(&args, 0, "CPU_SECONDS", 1.0).as_secs_f64().to_string();
    let first = start("first", &seconds, None);
    wait(first);
    let second = start("second", &seconds, Some(first));
    wait(second);
    eprintln!("pid_reuse: pid {first} reused");
}
