//! When to snapshot a process's mappings. A process is announced by its first
//! sample, which may come before the dynamic loader has mapped its libraries,
//! so each one is read again shortly after and then now and then while it
//! lives (dlopen); each read adds to what the snapshot knew, so code that is
//! unmapped later, or a process that exits, still resolves.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use symbolize::{ReportedMapping, Symbolizer};

use super::pids::{Pids, Seen};

/// Re-reads after an announcement; then every `PERIODIC`.
const FOLLOW_UPS: [Duration; 4] =
    [Duration::from_millis(5), Duration::from_millis(20), Duration::from_millis(100), Duration::from_millis(1000)];
const PERIODIC: Duration = Duration::from_secs(3);

#[derive(Default)]
pub struct Snapshots {
    /// Next refresh time and how many follow-ups were done, per live process.
    due: HashMap<u32, (Instant, usize)>,
    /// The processes each pid named.
    pub pids: Pids,
    /// Processes read by a scheduled follow-up since the last
    /// `take_followed_up`.
    followed_up: Vec<u32>,
    /// Processes whose mappings could not be read at all.
    pub failures: u64,
    /// Processes (pid, start) found ended since the last `take_ended`:
    /// gone from /proc, or followed by another with their pid.
    ended: Vec<(u32, u64)>,
}

impl Snapshots {
    /// A process to snapshot now (a target given up front, with its start
    /// unknown: 0, or announced by the kernel side). A second announcement
    /// of a process means it exec'd: its old snapshot describes another
    /// program and is dropped. An announcement of another process with a
    /// known pid (a reused pid) keeps the earlier one's snapshot under its
    /// new id. `reported`: every mapping of the process, as the kernel
    /// reported them (nothing is read from /proc then).
    pub fn announce(
        &mut self,
        symbolizer: &mut Symbolizer,
        pid: u32,
        started_ns: u64,
        reported: Option<&[ReportedMapping]>,
    ) -> Seen {
        let previous_start = self.pids.current_start(pid);
        let seen = self.pids.seen(pid, started_ns);
        match seen {
            Seen::New => {}
            Seen::Again => symbolizer.forget_process(pid),
            // Snapshotted already, when found running.
            Seen::StartLearned => return seen,
            Seen::Reused { earlier } => {
                symbolizer.rename_process(pid, earlier, started_ns);
                self.ended.push((pid, previous_start));
            }
        }
        if let Some(mappings) = reported {
            // Then the reads below (and the follow-ups) only read its JIT
            // code's perf map, if it has JIT code.
            symbolizer.install_reported(pid, mappings);
        }
        self.read(symbolizer, pid, 0, Instant::now());
        seen
    }

    /// The pid runs another program from now on (the kernel reported an
    /// exec): what its snapshot holds is of the earlier one, and /proc would
    /// show the new one, so it is not read again.
    pub fn stop_reading(&mut self, symbolizer: &mut Symbolizer, pid: u32) {
        self.due.remove(&pid);
        symbolizer.seal_process(pid);
    }

    /// Reads a process's mappings again now (the kernel side met code outside
    /// them), keeping its follow-up schedule.
    pub fn refresh(&mut self, symbolizer: &mut Symbolizer, pid: u32) {
        let _ = symbolizer.refresh_process(pid);
    }

    /// Runs the refreshes that are due.
    pub fn tick(&mut self, symbolizer: &mut Symbolizer) {
        let now = Instant::now();
        let due: Vec<(u32, usize)> =
            self.due.iter().filter(|(_, (at, _))| *at <= now).map(|(&pid, &(_, n))| (pid, n)).collect();
        for (pid, follow_ups) in due {
            if self.read(symbolizer, pid, follow_ups, now) {
                self.followed_up.push(pid);
            }
        }
    }

    /// A last read of every live process before recording ends.
    pub fn finish(&mut self, symbolizer: &mut Symbolizer) {
        let pids: Vec<u32> = self.due.keys().copied().collect();
        for pid in pids {
            let _ = symbolizer.refresh_process(pid);
        }
    }

    /// The processes whose mappings a follow-up read since the last call
    /// (their unwind tables may need loading again).
    pub fn take_followed_up(&mut self) -> Vec<u32> {
        let mut pids = std::mem::take(&mut self.followed_up);
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// The processes found ended since the last call.
    pub fn take_ended(&mut self) -> Vec<(u32, u64)> {
        std::mem::take(&mut self.ended)
    }

    /// Returns whether the process could be read.
    fn read(&mut self, symbolizer: &mut Symbolizer, pid: u32, follow_ups: usize, now: Instant) -> bool {
        match symbolizer.refresh_process(pid) {
            Ok(()) => {
                let wait = FOLLOW_UPS.get(follow_ups).copied().unwrap_or(PERIODIC);
                self.due.insert(pid, (now + wait, follow_ups + 1));
                true
            }
            Err(_) => {
                // Gone: whatever was read before stays in the symbolizer
                // until its counts are drained.
                self.due.remove(&pid);
                self.ended.push((pid, self.pids.current_start(pid)));
                if follow_ups == 0 {
                    self.failures += 1;
                }
                false
            }
        }
    }
}
