//! What flameprof reads of running tasks from /proc: liveness, state, CPU
//! time, thread lists and names, and the checks on `-p` PIDs.
use crate::error::{Error, Result};

/// True while process `pid` exists and one of its threads has not exited.
/// A main thread that ended (`pthread_exit` in `main`) shows as a zombie
/// while the other threads run on: the process is alive.
pub fn is_alive(pid: u32) -> bool {
    symbolize::live_task_dir(pid).is_some()
}

/// The state letter (R, S, D, I, Z...) of the task whose /proc directory is `dir`.
fn state(dir: &str) -> Option<char> {
    parse_state(&std::fs::read_to_string(format!("{dir}/stat")).ok()?)
}

/// The state letter of a `stat` text.
pub(crate) fn parse_state(stat: &str) -> Option<char> {
    // The state follows the parenthesised name, which may itself hold ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The state letter of thread `tid` of process `tgid`, if it still exists.
pub fn thread_state(tgid: u32, tid: u32) -> Option<char> {
    state(&format!("/proc/{tgid}/task/{tid}"))
}

/// A thread's scheduler figures (`/proc/PID/task/TID/schedstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedstat {
    /// CPU time so far (ns), the kernel's `se.sum_exec_runtime`.
    pub cpu_ns: u64,
    /// Times it was given a CPU.
    pub runs: u64,
}

pub fn schedstat(tgid: u32, tid: u32) -> Option<Schedstat> {
    parse_schedstat(&std::fs::read_to_string(format!("/proc/{tgid}/task/{tid}/schedstat")).ok()?)
}

/// A `schedstat` text: CPU time (ns), wait time (ns), runs.
pub(crate) fn parse_schedstat(text: &str) -> Option<Schedstat> {
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    let cpu_ns = fields.next()?.ok()?;
    let runs = fields.nth(1)?.ok()?;
    Some(Schedstat { cpu_ns, runs })
}

/// Every process id (`/proc`).
pub fn process_ids() -> Vec<u32> {
    numeric_entries("/proc")
}

/// The thread ids of process `pid` (none if it is gone).
pub fn thread_ids(pid: u32) -> Vec<u32> {
    numeric_entries(&format!("/proc/{pid}/task"))
}

fn numeric_entries(dir: &str) -> Vec<u32> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Fails with a clear message for a PID that is not a running process: no
/// such PID, a zombie, or the id of a thread rather than of a process.
pub fn check_pid(pid: u32) -> Result<()> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|_| Error::NoSuchProcess(pid))?;
    match check_status(pid, &status) {
        // Its main thread may have ended with others running on.
        Err(Error::ProcessExited(_)) if is_alive(pid) => Ok(()),
        checked => checked,
    }
}

/// [`check_pid`] on the `status` text of `pid`.
pub(crate) fn check_status(pid: u32, status: &str) -> Result<()> {
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or("");
    if field("State:").starts_with(['Z', 'X']) {
        return Err(Error::ProcessExited(pid));
    }
    match field("Tgid:").parse::<u32>() {
        Ok(tgid) if tgid != pid => Err(Error::ThreadNotProcess { tid: pid, tgid }),
        _ => Ok(()),
    }
}

/// Whether the user running flameprof could read process `pid` with ptrace
/// (same user, not made undumpable by a set-id exec): opening its `auxv`
/// makes the kernel apply exactly that check (PTRACE_MODE_READ_FSCREDS).
/// `None` when the process is gone.
pub fn invoker_may_read(pid: u32) -> Option<bool> {
    match std::fs::File::open(format!("/proc/{pid}/auxv")) {
        Ok(_) => Some(true),
        Err(error) if matches!(error.kind(), std::io::ErrorKind::PermissionDenied) => Some(false),
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => Some(false),
        Err(_) => None,
    }
}

/// The name of a process (`/proc/PID/comm`), if it still exists.
pub fn process_name(pid: u32) -> Option<String> {
    name(&format!("/proc/{pid}"))
}

/// The name of thread `tid` of process `tgid`, if it still exists.
pub fn thread_name(tgid: u32, tid: u32) -> Option<String> {
    name(&format!("/proc/{tgid}/task/{tid}"))
}

fn name(dir: &str) -> Option<String> {
    let name = std::fs::read_to_string(format!("{dir}/comm")).ok()?;
    Some(name.trim_end_matches('\n').to_string())
}
