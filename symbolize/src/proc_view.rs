//! Where /proc shows a process's memory. Its own directory, except once its
//! main thread has ended (`pthread_exit` in `main`) while other threads run
//! on: that thread is a zombie whose `maps` is empty and whose `map_files`
//! is gone, so a live thread's directory is used instead.
use std::path::{Path, PathBuf};

/// `/proc/PID`, or `/proc/PID/task/TID` of a live thread when the main
/// thread has exited (or the process's own directory when none is found).
pub fn memory_view(pid: u32) -> PathBuf {
    live_task_dir(pid).unwrap_or_else(|| PathBuf::from(format!("/proc/{pid}")))
}

/// The /proc directory of a live task of process `pid`: its own while its
/// main thread runs, else a live thread's; None when the process is gone
/// or all its threads have exited.
pub fn live_task_dir(pid: u32) -> Option<PathBuf> {
    let own = PathBuf::from(format!("/proc/{pid}"));
    if !exited(state(&own)?) {
        return Some(own);
    }
    std::fs::read_dir(own.join("task"))
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path()))
        .find(|thread| state(thread).is_some_and(|s| !exited(s)))
}

/// The state letter (R, S, Z...) of the task whose /proc directory is `dir`.
fn state(dir: &Path) -> Option<char> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // The state follows the parenthesised name, which may itself hold ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether a task in this state has exited (a zombie, or dead).
fn exited(state: char) -> bool {
    matches!(state, 'Z' | 'X')
}

#[cfg(test)]
mod tests {
    use super::memory_view;

    #[test]
    fn a_live_process_is_seen_through_its_own_directory() {
        let pid = std::process::id();
        assert_eq!(memory_view(pid), std::path::PathBuf::from(format!("/proc/{pid}")));
    }
}
