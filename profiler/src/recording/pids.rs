//! Which process a pid names: over a long recording a pid is reused by
//! later processes, and the kernel side keys every count by (pid, start).
//! Each process gets the id the rest of flameprof knows it by: the latest
//! process with a pid has the pid itself; an earlier one has its pid plus
//! its rank among the processes of that pid above it (the first is
//! `pid + 1 << 22`, the second `pid + 2 << 22`...), a number no live
//! process has (`symbolize::PID_LIMIT`).
use std::collections::HashMap;

use symbolize::PID_LIMIT;

/// Bits of a pid in an id; the rest is the rank (0: the latest process).
const PID_BITS: u32 = PID_LIMIT.trailing_zeros();
/// Ranks an id can hold; later reuses of one pid share the last rank.
const MAX_RANK: u32 = u32::MAX >> PID_BITS;

/// The pid of a process id.
pub fn pid_of(id: u32) -> u32 {
    id & (PID_LIMIT - 1)
}

/// The rank of an earlier process with its pid (1 for the first), or 0
/// for the latest.
pub fn rank_of(id: u32) -> u32 {
    id >> PID_BITS
}

/// How a graph names a process when it shows several: `name-PID`, and
/// `name-PID#N` for the Nth of the earlier processes that had the pid.
pub fn label(name: &str, id: u32) -> String {
    match rank_of(id) {
        0 => format!("{name}-{}", pid_of(id)),
        rank => format!("{name}-{}#{rank}", pid_of(id)),
    }
}

/// What an announcement of (pid, start) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A pid not seen before.
    New,
    /// The process seen before: announced again after an exec.
    Again,
    /// The process seen before, whose start was not known (marked by user
    /// space): now it is.
    StartLearned,
    /// Another process than the one seen before: the earlier one is now
    /// known as `earlier`.
    Reused { earlier: u32 },
}

/// The starts of the processes each pid has named, in order.
#[derive(Default)]
pub struct Pids {
    starts: HashMap<u32, Vec<u64>>,
}

impl Pids {
    /// Notes that the process (pid, start) was announced; start 0 means
    /// unknown (user space marked a process it found running).
    pub fn seen(&mut self, pid: u32, started_ns: u64) -> Seen {
        let starts = self.starts.entry(pid).or_default();
        match starts.last_mut() {
            None => {
                starts.push(started_ns);
                Seen::New
            }
            Some(last) if *last == started_ns || started_ns == 0 => Seen::Again,
            Some(last) if *last == 0 => {
                *last = started_ns;
                Seen::StartLearned
            }
            Some(_) => {
                starts.push(started_ns);
                Seen::Reused { earlier: id_at(pid, starts.len() - 2, starts.len()) }
            }
        }
    }

    /// The start of the latest process with this pid (0: unknown).
    pub fn current_start(&self, pid: u32) -> u64 {
        self.starts.get(&pid).and_then(|starts| starts.last().copied()).unwrap_or(0)
    }

    /// Whether process (pid, start) is known to have been followed by a
    /// later process with its pid (so it has ended). A start not announced
    /// yet (its notice is still on its way) is not.
    pub fn superseded(&self, pid: u32, started_ns: u64) -> bool {
        let Some(starts) = self.starts.get(&pid) else { return false };
        started_ns != 0 && starts.iter().rev().skip(1).any(|&start| start == started_ns)
    }

    /// The id of process (pid, start), as the kernel side keyed it. A start
    /// of 0 (a key built from /proc for a process already running at the
    /// start) is the first process with that pid; a start never announced
    /// (the announcement was lost, counted) is the latest.
    pub fn id(&self, pid: u32, started_ns: u64) -> u32 {
        let Some(starts) = self.starts.get(&pid) else { return pid };
        let index = match started_ns {
            0 => Some(0),
            _ => starts.iter().position(|&start| start == started_ns),
        };
        index.map_or(pid, |index| id_at(pid, index, starts.len()))
    }
}

/// The id of the `index`-th of `count` processes with pid `pid`.
fn id_at(pid: u32, index: usize, count: usize) -> u32 {
    if index + 1 >= count {
        return pid;
    }
    let rank = u32::try_from(index + 1).unwrap_or(MAX_RANK).min(MAX_RANK);
    pid | (rank << PID_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_pid_gives_the_earlier_process_an_id_of_its_own() {
        let mut pids = Pids::default();
        assert_eq!(pids.seen(42, 1000), Seen::New);
        assert_eq!(pids.seen(42, 1000), Seen::Again);
        assert_eq!(pids.id(42, 1000), 42);
        let Seen::Reused { earlier } = pids.seen(42, 2000) else { panic!("not a reuse") };
        assert_eq!((pid_of(earlier), rank_of(earlier)), (42, 1));
        assert!(earlier >= PID_LIMIT);
        assert_eq!(pids.id(42, 1000), earlier);
        assert_eq!(pids.id(42, 2000), 42);
        let Seen::Reused { earlier: second } = pids.seen(42, 3000) else { panic!("not a reuse") };
        assert_eq!((pid_of(second), rank_of(second)), (42, 2));
        assert_eq!(pids.id(42, 2000), second);
        assert_eq!(pids.id(42, 1000), earlier);
        // Keys from /proc (start 0) are of the first process.
        assert_eq!(pids.id(42, 0), earlier);
        assert_eq!(pids.current_start(42), 3000);
        assert!(pids.superseded(42, 1000) && pids.superseded(42, 2000));
        // The latest, and a process whose announcement has not come yet.
        assert!(!pids.superseded(42, 3000) && !pids.superseded(42, 4000));
    }

    #[test]
    fn a_start_learned_later_is_the_same_process() {
        let mut pids = Pids::default();
        assert_eq!(pids.seen(7, 0), Seen::New);
        assert_eq!(pids.seen(7, 500), Seen::StartLearned);
        assert_eq!(pids.id(7, 500), 7);
        assert_eq!(pids.id(7, 0), 7);
        assert_eq!(pids.id(8, 123), 8);
    }
}
