//! `-- CMD`: the command is started held at a gate until the probes are
//! attached, so its first instruction is already profiled; then waited for.
use std::{
    ffi::{CString, OsString},
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    error::{Error, Result},
    signals,
};
/// A started command, waiting at the gate until `release`.
pub struct GatedCommand {
    pub pid: u32,
    /// The program as resolved (a path with a slash, or found on PATH).
    pub path: PathBuf,
    gate: Option<i32>,
    exec_errors: i32,
    program: String,
    reaped: Option<CommandExit>,
}

/// How a command ended.
#[derive(Debug, Clone, Copy)]
pub struct CommandExit {
    /// The shell's convention: the exit code, or 128 + the killing signal.
    pub status: i32,
    /// User + system CPU time of the command and the children it waited for
    /// (wait4's rusage): what an on-CPU profile of it should account for.
    pub cpu_time: Duration,
}

/// `waitpid` that also collects the CPU time; `Some` once `pid` was reaped.
fn wait_for(pid: u32, options: i32) -> std::io::Result<Option<CommandExit>> {
    let mut status = 0;
    // SAFETY: rusage is plain integers, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `status` and `usage` are live values that wait4 fills in.
    let result = unsafe { libc::wait4(pid as i32, &mut status, options, &mut usage) };
    if result < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let seconds = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((result == pid as i32).then(|| CommandExit {
        status: decode_status(status),
        cpu_time: seconds(usage.ru_utime) + seconds(usage.ru_stime),
    }))
}

impl GatedCommand {
    /// Forks a child that waits for `release` before it execs `command`.
    pub fn start(command: &[OsString]) -> Result<Self> {
        let program_name = command[0].to_string_lossy().into_owned();
        let spawn_error = |source| Error::Spawn { command: program_name.clone(), source };
        let program = resolve_program(&command[0]).map_err(spawn_error)?;
        let to_c =
            |s: &[u8]| CString::new(s).map_err(|_| spawn_error(std::io::Error::other("argument contains a NUL byte")));
        let path = to_c(program.as_os_str().as_bytes())?;
        let args: Vec<CString> = command.iter().map(|a| to_c(a.as_bytes())).collect::<Result<_>>()?;
        let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());

        let (gate_read, gate_write) = pipe().map_err(spawn_error)?;
        let (errors_read, errors_write) = pipe().map_err(spawn_error)?;
        unsafe extern "C" {
            static environ: *const *const libc::c_char;
        }
        // Only async-signal-safe calls between fork and exec: everything the
        // child needs was prepared above.
        // SAFETY: the child runs only async-signal-safe calls (read, signal, execve, write, _exit) on data
        // prepared before the fork.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(spawn_error(std::io::Error::last_os_error()));
        }
        if pid == 0 {
            // SAFETY: in the child after fork: `go`, `path`, `argv` (NULL-terminated, its strings alive in
            // `args`) and `environ` are valid, and only async-signal-safe calls are made before execve or
            // _exit.
            unsafe {
                // The parent's ends: while the child held the gate's write
                // end, closing it in the parent (an error before release)
                // could never give the child EOF, and both waited forever.
                libc::close(gate_write);
                libc::close(errors_read);
                let mut go = 0u8;
                let got = libc::read(gate_read, (&mut go as *mut u8).cast(), 1);
                if got == 1 && go == b'1' {
                    // flameprof ignores SIGPIPE for itself; an ignored signal
                    // survives exec, and the command must not inherit that.
                    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                    libc::execve(path.as_ptr(), argv.as_ptr(), environ);
                    let errno = *libc::__errno_location();
                    libc::write(errors_write, (&errno as *const i32).cast(), 4);
                }
                libc::_exit(127);
            }
        }
        // SAFETY: both descriptors come from pipe() above and are closed once, in the parent.
        unsafe {
            libc::close(gate_read);
            libc::close(errors_write);
        }
        Ok(GatedCommand {
            pid: pid as u32,
            gate: Some(gate_write),
            exec_errors: errors_read,
            program: program_name,
            path: program,
            reaped: None,
        })
    }

    /// Lets the child exec; fails if exec fails.
    pub fn release(&mut self) -> Result<()> {
        let Some(gate) = self.gate.take() else { return Ok(()) };
        // SAFETY: `gate` is our write end of the gate pipe, taken out of `self.gate` so it is closed once.
        unsafe {
            libc::write(gate, b"1".as_ptr().cast(), 1);
            libc::close(gate);
        }
        let mut errno = 0i32;
        // The error pipe closes on a successful exec (O_CLOEXEC): EOF means it ran.
        // SAFETY: `errno` is a live i32 and 4 bytes are read into it.
        let got = unsafe { libc::read(self.exec_errors, (&mut errno as *mut i32).cast(), 4) };
        // SAFETY: our read end of the error pipe, closed once (set to -1 just after).
        unsafe { libc::close(self.exec_errors) };
        self.exec_errors = -1;
        if got == 4 {
            self.wait_blocking();
            return Err(Error::Spawn {
                command: self.program.clone(),
                source: std::io::Error::from_raw_os_error(errno),
            });
        }
        Ok(())
    }

    /// How the command ended, once it has (non-blocking).
    pub fn try_exit(&mut self) -> Option<CommandExit> {
        if self.reaped.is_none() {
            self.reaped = wait_for(self.pid, libc::WNOHANG).ok().flatten();
        }
        self.reaped
    }

    /// Sends `signal` to the command, if it still runs.
    pub fn signal(&self, signal: i32) {
        if self.reaped.is_none() {
            // SAFETY: kill only reads its integer arguments; the pid is our unreaped child, so it was not
            // reused.
            unsafe { libc::kill(self.pid as i32, signal) };
        }
    }

    /// Waits for the command to end and returns how it ended.
    pub fn wait_blocking(&mut self) -> CommandExit {
        if let Some(exit) = self.reaped {
            return exit;
        }
        let (_, mut seen) = signals::latest();
        let exit = loop {
            match wait_for(self.pid, 0) {
                Ok(Some(exit)) => break exit,
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => break CommandExit { status: 127, cpu_time: Duration::ZERO },
            }
            // Signals that arrive while we wait are the command's business:
            // pass each on; the third one overall ends it for sure.
            let (signal, count) = signals::latest();
            if count != seen {
                seen = count;
                let forwarded = if count >= 3 { libc::SIGKILL } else { signal };
                // SAFETY: kill only reads its integer arguments; the pid is our unreaped child, so it was not
                // reused.
                unsafe { libc::kill(self.pid as i32, forwarded) };
            }
        };
        self.reaped = Some(exit);
        exit
    }
}

impl Drop for GatedCommand {
    /// A command never released (an error before recording) must not linger.
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            // SAFETY: the gate (taken from `self.gate`) and the error pipe's read end are ours and closed
            // only here.
            unsafe {
                libc::close(gate); // EOF at the gate: the child exits without exec.
                libc::close(self.exec_errors);
            }
            self.wait_blocking();
        } else if self.reaped.is_none() {
            // Released and still running on an error path: leaving it
            // orphaned would hide its exit status; wait for it.
            eprintln!("flameprof: waiting for the command (pid {}) to exit", self.pid);
            self.wait_blocking();
        }
    }
}

/// The shell's convention: the exit code, or 128 + the signal that killed it.
fn decode_status(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

fn pipe() -> std::io::Result<(i32, i32)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((fds[0], fds[1]))
}

/// Finds the program like a shell: a name with a slash is a path, else PATH.
fn resolve_program(program: &OsString) -> std::io::Result<PathBuf> {
    let not_found = || std::io::Error::new(std::io::ErrorKind::NotFound, "command not found");
    let executable = |path: &Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file())
            // SAFETY: the CString lives until access returns; access only reads it.
            && unsafe { libc::access(CString::new(path.as_os_str().as_bytes()).unwrap().as_ptr(), libc::X_OK) } == 0
    };
    if program.as_bytes().contains(&b'/') {
        let path = PathBuf::from(program);
        if !path.exists() {
            return Err(not_found());
        }
        if !executable(&path) {
            return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "not an executable file"));
        }
        return Ok(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&search)
        .map(|dir| dir.join(program))
        .find(|candidate| executable(candidate))
        .ok_or_else(not_found)
}
