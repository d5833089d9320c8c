//! Reading back what the programs counted, once they are stopped: on-CPU
//! counts, off-CPU maps, threads waiting at the start.
use aya::maps::{HashMap, StackTraceMap};
use profiler_ebpf::{BlockedThread, STACK_IN_FULL_MAP, StackKey, StartedBlock, WakerRecord, WokenKey, names};

use super::{OffCpuMaps, OpenWait, Probes, WokenTime, stacks, stacks::StackExpander};
use crate::{
    error::{Error, Result},
    recording::packed::PackedStack,
};

impl Probes {
    /// Samples per whole stack (packed), from both paths, and how many
    /// stack ids could not be read back (their stacks show empty).
    pub fn on_cpu_counts(&self) -> Result<(Vec<(PackedStack, u64)>, u64)> {
        let mut expander = self.expander()?;
        let pack = |key: StackKey| PackedStack::pack(&key);
        let mut counts = stacks::read_fast(&self.map(names::ON_CPU_COUNTS)?, &mut expander, pack)?;
        counts.extend(stacks::read_full(&self.map(names::ON_CPU_FULL_COUNTS)?, pack)?);
        Ok((counts, expander.missing_ids))
    }

    /// What the off-CPU maps hold: nanoseconds per whole stack of the waits
    /// that ended, and the waits still open.
    pub fn off_cpu_maps(&self) -> Result<OffCpuMaps> {
        let mut expander = self.expander()?;
        let mut times = stacks::read_fast(&self.map(names::OFF_CPU_TIMES)?, &mut expander, |key| key)?;
        times.extend(stacks::read_full(&self.map(names::OFF_CPU_FULL_TIMES)?, |key| key)?);
        let mut open_waits = Vec::new();
        let starts: HashMap<_, u32, StartedBlock> = self.map(names::OFF_CPU_STARTS)?;
        for entry in starts.iter() {
            let (tid, started) = entry.map_err(|e| Error::bpf("reading blocked threads", e))?;
            // A stub of a full-stack record: read from that map below.
            if started.key.kernel_stack_id == STACK_IN_FULL_MAP {
                continue;
            }
            open_waits.push(OpenWait {
                tgid: started.key.tgid,
                tid,
                stack: expander.expand(&started.key),
                since_ns: started.since_ns,
                ran_ns: started.ran_ns,
                waker: None,
            });
        }
        let wakers = self.wakers_of_open_waits()?;
        let full_starts: HashMap<_, u32, BlockedThread> = self.map(names::OFF_CPU_FULL_STARTS)?;
        for entry in full_starts.iter() {
            let (tid, blocked) = entry.map_err(|e| Error::bpf("reading blocked threads", e))?;
            // Woken during this wait (an older record was for an earlier one).
            let waker = wakers.get(&tid).filter(|w| w.woken_ns >= blocked.since_ns && blocked.preempted == 0);
            open_waits.push(OpenWait {
                tgid: blocked.stack.tgid,
                tid,
                stack: blocked.stack,
                since_ns: blocked.since_ns,
                ran_ns: blocked.ran_ns,
                waker: waker.map(|w| w.stack),
            });
        }
        let woken = self.woken_times()?;
        Ok(OffCpuMaps { times, woken, open_waits, missing_stack_ids: expander.missing_ids })
    }

    /// `--wakers`: the waits that ended joined with their wakers.
    fn woken_times(&self) -> Result<Vec<WokenTime>> {
        if !self.settings.wakers {
            return Ok(Vec::new());
        }
        let map: HashMap<_, WokenKey, u64> = self.map(names::WOKEN_TIMES)?;
        map.iter()
            .map(|entry| {
                let (key, ns) = entry.map_err(|e| Error::bpf("reading waits joined with wakers", e))?;
                Ok(WokenTime { wakee: key.wakee, waker: key.waker, ns })
            })
            .collect()
    }

    /// `--wakers`: the wakers of threads woken but not run again yet.
    fn wakers_of_open_waits(&self) -> Result<std::collections::HashMap<u32, WakerRecord>> {
        if !self.settings.wakers {
            return Ok(Default::default());
        }
        let map: HashMap<_, u32, WakerRecord> = self.map(names::WAKERS)?;
        map.iter().map(|entry| entry.map_err(|e| Error::bpf("reading wakers", e))).collect()
    }

    /// Off-CPU waits kept (ns): --min-block to --max-block. The program
    /// applies the same to the waits it ends (`within_limits`).
    pub fn block_limits(&self) -> std::ops::RangeInclusive<u64> {
        self.settings.min_block_ns..=self.settings.max_block_ns.unwrap_or(u64::MAX)
    }

    /// Threads with a wait recorded by the off-CPU program (switched out
    /// since the start).
    pub fn threads_with_open_waits(&self) -> Result<std::collections::HashSet<u32>> {
        let starts: HashMap<_, u32, StartedBlock> = self.map(names::OFF_CPU_STARTS)?;
        starts.keys().map(|tid| tid.map_err(|e| Error::bpf("reading blocked threads", e))).collect()
    }

    /// Asks the off-CPU program to note when these threads first run
    /// again; returns how many of them (in order) fit in its map.
    pub fn watch_waiting_at_start(&mut self, tids: &[u32]) -> Result<usize> {
        let mut map: HashMap<_, u32, u64> = self.map_mut(names::WAITING_AT_START)?;
        Ok(tids.iter().take_while(|&&tid| map.insert(tid, 0, 0).is_ok()).count())
    }

    /// When each watched thread first ran again (0: not yet).
    pub fn waiting_at_start_ends(&self) -> Result<std::collections::HashMap<u32, u64>> {
        let map: HashMap<_, u32, u64> = self.map(names::WAITING_AT_START)?;
        map.iter().map(|entry| entry.map_err(|e| Error::bpf("reading threads blocked at the start", e))).collect()
    }

    pub(super) fn expander(&self) -> Result<StackExpander<'_>> {
        Ok(StackExpander::new(self.map::<StackTraceMap<_>>(names::STACKS)?))
    }
}
