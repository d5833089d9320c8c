//! Where /proc shows a process's memory. Its own directory, except once its
//! main thread has ended (`pthread_exit` in `main`) while other threads run
//! on: that thread is a zombie whose `maps` is empty and whose `map_files`
//! is gone, so a live thread's directory is used instead.
use std::path::PathBuf;

/// `/proc/PID`, or `/proc/PID/task/TID` of a live thread when the main
/// thread has exited (or the process's own directory when none is found).
pub fn memory_view(pid: u32) -> PathBuf {
    let own = PathBuf::from(format!("/proc/{pid}"));
    if !exited(&own) {
        return own;
    }
    let live = std::fs::read_dir(own.join("task"))
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path()))
        .find(|thread| !exited(thread));
    live.unwrap_or(own)
}

/// Whether the task whose /proc directory is `dir` is a zombie or dead
/// (false when it cannot be read: the caller's own read then reports it).
fn exited(dir: &std::path::Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { return false };
    // The state follows the parenthesised name, which may itself hold ')'.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    matches!(state, Some('Z' | 'X'))
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
