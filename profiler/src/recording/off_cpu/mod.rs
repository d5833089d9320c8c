//! Off-CPU accounting at the end of a recording: the waits the program
//! timed, the waits still open at the stop (corrected by the CPU time their
//! threads had since), and the first waits of threads already blocked at
//! the start (`waiting_at_start`).
pub mod waiting_at_start;

use std::ops::RangeInclusive;

use profiler_ebpf::StackKey;

pub use crate::recording::bpf::WokenTime;
use crate::{
    error::Result,
    recording::{
        bpf::{self, OpenWait, Probes},
        proc,
    },
};
use waiting_at_start::{Found, WaitingAtStart};

/// Every off-CPU figure of a recording.
#[derive(Default)]
pub struct OffCpu {
    /// Nanoseconds off CPU per whole stack.
    pub times: Vec<(StackKey, u64)>,
    /// `--wakers`: waits joined with their wakers (those without one are in `times`).
    pub woken: Vec<WokenTime>,
    /// `--wakers`: waits still open at the stop whose thread had been woken
    /// (joined with that waker, in `woken`).
    pub woken_not_run_at_end: u64,
    /// Stack ids that could not be read back (their stacks show empty).
    pub missing_stack_ids: u64,
    /// Waits still open at the stop whose thread had run since (its
    /// switch-in was not seen): corrected by its CPU time.
    pub open_waits_ended_unseen: u64,
    /// What became of threads already blocked at the start.
    pub waiting_at_start: WaitingAtStart,
}

/// Reads back the off-CPU maps after `probes.stop()`. `start_ns` and `stop_ns`
/// are the recording's bounds on CLOCK_MONOTONIC (bpf_ktime_get_ns's clock).
pub fn collect(probes: &Probes, waiting: Option<Found>, start_ns: u64, stop_ns: u64) -> Result<OffCpu> {
    let maps = probes.off_cpu_maps()?;
    let limits = probes.block_limits();
    let mut times = maps.times;
    let mut woken = maps.woken;
    let closed = close_open_waits(maps.open_waits, stop_ns, &limits);
    times.extend(closed.times);
    woken.extend(closed.woken);
    let mut waiting_at_start = WaitingAtStart::default();
    if let Some(found) = waiting {
        let ends = probes.waiting_at_start_ends()?;
        let (first_waits, outcome) = waiting_at_start::waits(found, &ends, start_ns, stop_ns, limits);
        times.extend(first_waits);
        waiting_at_start = outcome;
    }
    Ok(OffCpu {
        times,
        woken,
        woken_not_run_at_end: closed.woken_not_run,
        missing_stack_ids: maps.missing_stack_ids,
        open_waits_ended_unseen: closed.ended_unseen,
        waiting_at_start,
    })
}

/// The waits still open at the stop, closed there.
#[derive(Default)]
struct Closed {
    times: Vec<(StackKey, u64)>,
    /// Woken before the stop, not run again yet: joined with their waker.
    woken: Vec<WokenTime>,
    woken_not_run: u64,
    /// Had in fact ended unseen (corrected by their CPU time).
    ended_unseen: u64,
}

/// Each wait still open at `stop_ns`, up to the stop, within the block
/// limits; and how many of them had in fact ended unseen. A thread still
/// recorded as blocked may have been switched in without the tracepoint
/// reporting it (see OFF_CPU_SWITCH_IN_UNSEEN): the CPU time it had since it
/// blocked is not wait.
fn close_open_waits(open_waits: Vec<OpenWait>, stop_ns: u64, limits: &RangeInclusive<u64>) -> Closed {
    let mut closed = Closed::default();
    for wait in open_waits {
        let ran_since = proc::schedstat(wait.tgid, wait.tid).map_or(0, |now| now.cpu_ns.saturating_sub(wait.ran_ns));
        // The CPU time is read after the stop: a thread woken since may have
        // run for at most the time since then, which is not part of the
        // recording. Only what is left ran before the stop.
        let ran_since = ran_since.saturating_sub(bpf::monotonic_ns().saturating_sub(stop_ns));
        closed.ended_unseen += u64::from(ran_since > 0);
        let waited = stop_ns.saturating_sub(wait.since_ns).saturating_sub(ran_since);
        // Woken, not run yet: the wakeup is counted as the kernel would have
        // at the switch-in (unless the thread did run, unseen).
        let waker = wait.waker.filter(|_| ran_since == 0);
        closed.woken_not_run += u64::from(waker.is_some());
        if !limits.contains(&waited) {
            continue;
        }
        match waker {
            Some(waker) => closed.woken.push(WokenTime { wakee: wait.stack, waker, ns: waited }),
            None => closed.times.push((wait.stack, waited)),
        }
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(tgid: u32) -> StackKey {
        StackKey {
            tgid,
            kernel_depth: 0,
            user_depth: 0,
            marker: 0,
            comm: [0; 16],
            started_ns: 0,
            mappings_since_ns: 0,
            leaf_words: [0; profiler_ebpf::LEAF_WORDS],
            kernel: [0; profiler_ebpf::MAX_STACK_DEPTH],
            user: [0; profiler_ebpf::MAX_STACK_DEPTH],
        }
    }

    /// A thread woken before the stop but not run again: its wait up to the
    /// stop is joined with its waker and counted; one never woken is not.
    #[test]
    fn a_woken_wait_still_open_at_the_stop_is_joined_and_counted() {
        // No such process: its CPU time reads as unknown (it did not run).
        let (tgid, tid) = (u32::MAX - 1, u32::MAX - 1);
        let open = |waker| OpenWait { tgid, tid, stack: stack(tgid), since_ns: 1_000, ran_ns: 0, waker };
        let waker = stack(7);
        let closed = close_open_waits(vec![open(Some(waker)), open(None)], 5_000, &(0..=u64::MAX));
        assert_eq!(closed.woken_not_run, 1);
        assert_eq!(closed.woken.len(), 1);
        assert_eq!((closed.woken[0].waker.tgid, closed.woken[0].ns), (7, 4_000));
        assert_eq!(closed.times.len(), 1);
        // Outside the block limits: counted as woken, not kept.
        let closed = close_open_waits(vec![open(Some(waker))], 5_000, &(0..=3_000));
        assert_eq!((closed.woken_not_run, closed.woken.len()), (1, 0));
    }
}
