//! A process's peak memory: flameprof run and reaped with wait4(2), whose
//! resource usage is that process's own (and its reaped descendants').

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::flameprof_bin;
use crate::process::Run;

/// Runs `flameprof ARGS` (stdin null, output captured) and returns how it
/// ended with its peak resident memory in bytes (`ru_maxrss`).
pub fn flameprof_with_peak<S: AsRef<std::ffi::OsStr>>(args: &[S], timeout: Duration) -> (Run, u64) {
    let mut cmd = Command::new(flameprof_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // The kernel counts, in a process's peak, the memory image it replaced
    // at exec: spawned the default way (vfork), that is this test's own, its
    // peak included (the bombs it built). A hook makes std fork instead, and
    // a forked copy's peak starts at what this process holds now.
    // SAFETY: the hook does nothing, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| Ok(()));
    }
    let start = Instant::now();
    // Reaped below with wait4, which std's Child does not know of.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("spawn flameprof");
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = read(child.stdout.take().map(|p| Box::new(p) as _));
    let err = read(child.stderr.take().map(|p| Box::new(p) as _));
    let pid = child.id() as libc::pid_t;
    let (status, peak) = loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value of this plain C struct.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: wait4 writes only to the two out-pointers, both valid for
        // the call; `pid` is our own child, reaped here and nowhere else
        // (`child` is never waited for).
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break (ExitStatus::from_raw(status), usage.ru_maxrss as u64 * 1024);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            // SAFETY: as above, with no rusage wanted (a null pointer is allowed).
            unsafe { libc::wait4(pid, &mut status, 0, std::ptr::null_mut()) };
            panic!("flameprof {:?}: still running after {timeout:?}: killed", cmd.get_args().collect::<Vec<_>>());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    (Run { status, stdout, stderr, elapsed }, peak)
}
