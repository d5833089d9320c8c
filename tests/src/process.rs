//! Running processes: flameprof and the workloads, with captured output,
//! timeouts, and cleanup by pid.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::binaries::flameprof_bin;

/// What a finished process left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with stderr when the run did not succeed.
    pub fn assert_success(&self, what: &str) -> &Self {
        assert!(self.status.success(), "{what}: expected success, got {:?}\nstderr:\n{}", self.status, self.stderr);
        self
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Sends `signal` to `pid` (only processes the tests started).
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill only reads its integer arguments; callers pass pids of processes the tests started.
    unsafe {
        libc::kill(pid as libc::pid_t, signal);
    }
}

/// Waits for a spawned child with captured output; on timeout kills it (by
/// its pid) and panics.
pub fn wait_with_timeout(mut child: Child, timeout: Duration, what: &str) -> Run {
    let start = Instant::now();
    let out = child.stdout.take().map(spawn_reader);
    let err = child.stderr.take().map(spawn_reader);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
            panic!(
                "{what}: still running after {:?}: killed\nstderr so far:\n{}",
                timeout,
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let stdout = out.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    let stderr = err.map(|h| h.join().unwrap_or_default()).unwrap_or_default();
    Run { status, stdout, stderr: String::from_utf8_lossy(&stderr).into_owned(), elapsed }
}

/// Runs a command to completion with captured stdout/stderr (stdin null).
pub fn run_command(mut cmd: Command, timeout: Duration) -> Run {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    wait_with_timeout(child, timeout, &what)
}

/// Runs `flameprof ARGS` with a timeout.
pub fn flameprof<S: AsRef<std::ffi::OsStr>>(args: &[S], timeout: Duration) -> Run {
    let mut cmd = Command::new(flameprof_bin());
    cmd.args(args);
    run_command(cmd, timeout)
}

/// Starts `flameprof ARGS` in the background with captured output.
pub fn spawn_flameprof<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Child {
    Command::new(flameprof_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start flameprof")
}

/// A workload running in the background; killed (by pid) and reaped on drop.
pub struct Background {
    pub child: Child,
    pub started: Instant,
}

impl Background {
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(program: impl AsRef<std::ffi::OsStr>, args: &[S]) -> Background {
        let program = program.as_ref().to_owned();
        let child = Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
        Background { child, started: Instant::now() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the workload to end by itself.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Direct children of a process (from /proc/PID/task/*/children).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        if let Ok(s) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
    }
    out
}

/// Kills processes (by pid) that the tests started indirectly, only while
/// their name is still `comm` (a reaped pid may have been reused).
pub fn kill_pids_named(pids: &[u32], comm: &str) {
    for &p in pids {
        let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        if name.trim_end() == comm {
            send_signal(p, libc::SIGKILL);
        }
    }
}
