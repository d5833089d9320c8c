//! Starting the measured commands (at the bench's niceness) and stopping
//! the bench on failure.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn die(msg: &str) -> ! {
    eprintln!("overhead bench: error: {msg}");
    std::process::exit(1);
}

/// A finished command: how it ended, what it wrote to stderr, how long it took.
pub struct Ran {
    pub status: ExitStatus,
    pub stderr: String,
    pub wall: Duration,
}

/// Runs `cmd` with stdout discarded and stderr captured, at niceness `nice`.
pub fn run(cmd: &mut Command, nice: i32) -> Ran {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    set_nice(cmd, nice);
    let start = Instant::now();
    let out = cmd.output().unwrap_or_else(|e| die(&format!("cannot start {:?}: {e}", cmd.get_program())));
    Ran { status: out.status, stderr: String::from_utf8_lossy(&out.stderr).into_owned(), wall: start.elapsed() }
}

pub fn set_nice(cmd: &mut Command, nice: i32) {
    if nice != 0 {
        // SAFETY: setpriority is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(move || {
                libc::setpriority(libc::PRIO_PROCESS, 0, nice);
                Ok(())
            });
        }
    }
}

pub fn check(ran: &Ran, what: &str) {
    if !ran.status.success() {
        die(&format!("{what} failed ({}):\n{}", ran.status, ran.stderr.trim_end()));
    }
}

pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill only reads its integer arguments; the pids are of processes this benchmark started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Starts `cmd` in the background, all output discarded, at niceness `nice`.
pub fn spawn_quiet(cmd: &mut Command, nice: i32) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    set_nice(cmd, nice);
    cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start {:?}: {e}", cmd.get_program())))
}
