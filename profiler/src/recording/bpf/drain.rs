//! Moving the counts of exited processes out of the kernel's maps while
//! recording: a long recording of many short-lived processes would
//! otherwise fill the maps of counts (each process's stacks are keys of
//! their own), and a full map drops samples. A process that has ended (or
//! is a zombie) gets no more samples or waits, so its entries are read and
//! deleted without losing a count. Keys name a process by pid and start,
//! so a later process with the same pid never adds to them. (Without the
//! starts, on kernels whose BTF lacks them, one race is left: a process that
//! takes the pid between the check and the delete and whose first sample
//! has the very same key, in those microseconds.)
//!
//! Each pass hands what it moved out back to the caller as whole stacks
//! (fast-path ids expanded while the STACKS map still holds them), to be
//! symbolized at once and kept by symbolized stack: a raw key is never
//! kept past its pass.
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use aya::maps::{HashMap as BpfHashMap, MapData};
use profiler_ebpf::{SampleKey, StackKey, names};

use super::Probes;
use crate::error::{Error, Result};

/// Time between passes while passes find something to drain, or while the
/// maps are over a quarter full; otherwise a pass that drains less than a
/// tenth of what it reads doubles it, up to `MAX_EVERY` (a long-lived
/// process with many stacks is read rarely while there is room).
const EVERY: Duration = Duration::from_secs(2);
const MAX_EVERY: Duration = Duration::from_secs(32);

/// What one pass moved out of the kernel.
#[derive(Default)]
pub struct DrainPass {
    pub on_cpu: Vec<(StackKey, u64)>,
    /// Nanoseconds off CPU per stack.
    pub off_cpu: Vec<(StackKey, u64)>,
    /// Processes (pid, start) whose entries stay in the maps: alive.
    pub kept: HashSet<(u32, u64)>,
    /// Stack ids that could not be read back (their stacks show empty).
    pub missing_stack_ids: u64,
}

/// When to pass next, and what the passes did.
pub struct Drained {
    /// Entries moved out (a key drained twice counts twice).
    pub entries: u64,
    pub passes: u64,
    next: Instant,
    every: Duration,
}

impl Default for Drained {
    fn default() -> Self {
        Drained { entries: 0, passes: 0, next: Instant::now() + EVERY, every: EVERY }
    }
}

impl Probes {
    /// When due, moves the entries of processes that have ended (`ended`
    /// says which, by pid and start) out of the maps of counts; `None`
    /// when no pass was due.
    pub fn drain_ended(&mut self, ended: impl Fn(u32, u64) -> bool) -> Result<Option<DrainPass>> {
        if Instant::now() < self.drained.next {
            return Ok(None);
        }
        let mut cache: HashMap<(u32, u64), bool> = HashMap::new();
        let mut alive =
            |tgid: u32, started: u64| !*cache.entry((tgid, started)).or_insert_with(|| ended(tgid, started));
        let mut pass = DrainPass::default();
        let mut read =
            self.drain_pair(names::ON_CPU_COUNTS, names::ON_CPU_FULL_COUNTS, &mut alive, &mut pass, false)?;
        if self.settings.off_cpu {
            read += self.drain_pair(names::OFF_CPU_TIMES, names::OFF_CPU_FULL_TIMES, &mut alive, &mut pass, true)?;
        }
        pass.kept = cache.into_iter().filter(|&(_, ended)| !ended).map(|(owner, _)| owner).collect();
        let moved = (pass.on_cpu.len() + pass.off_cpu.len()) as u64;
        let roomy = read < u64::from(self.count_map_capacity) / 4;
        let drained = &mut self.drained;
        drained.entries += moved;
        drained.passes += 1;
        drained.every = if roomy && moved * 10 < read { (drained.every * 2).min(MAX_EVERY) } else { EVERY };
        drained.next = Instant::now() + drained.every;
        Ok(Some(pass))
    }

    /// Drains one fast map and one full map into `pass` (its off-CPU part
    /// when `off_cpu`); returns the entries read.
    fn drain_pair(
        &mut self,
        fast: &'static str,
        full: &'static str,
        alive: &mut impl FnMut(u32, u64) -> bool,
        pass: &mut DrainPass,
        off_cpu: bool,
    ) -> Result<u64> {
        let (read_fast, gone_fast) = self.drain_map::<SampleKey>(fast, alive)?;
        let (read_full, gone_full) = self.drain_map::<StackKey>(full, alive)?;
        let mut expander = self.expander()?;
        let into = if off_cpu { &mut pass.off_cpu } else { &mut pass.on_cpu };
        into.extend(gone_fast.iter().map(|(key, count)| (expander.expand(key), *count)));
        into.extend(gone_full);
        pass.missing_stack_ids += expander.missing_ids;
        Ok(read_fast + read_full)
    }

    /// Removes from the count map `name` the entries of processes `alive`
    /// says are gone; returns (entries read, the entries removed).
    fn drain_map<K: aya::Pod + Owner>(
        &mut self,
        name: &'static str,
        alive: &mut impl FnMut(u32, u64) -> bool,
    ) -> Result<(u64, Vec<(K, u64)>)> {
        let mut read = 0;
        let mut map: BpfHashMap<&mut MapData, K, u64> = self.map_mut(name)?;
        // Keys are deleted after the walk: a walk resumes from the key it
        // last returned, which must still be there.
        let mut gone = Vec::new();
        for entry in map.iter() {
            let (key, count) = entry.map_err(|e| Error::bpf("draining the stack counts", e))?;
            read += 1;
            let (tgid, started_ns) = key.owner();
            if !alive(tgid, started_ns) {
                gone.push((key, count));
            }
        }
        for (key, _) in &gone {
            map.remove(key).map_err(|e| Error::bpf("draining the stack counts", e))?;
        }
        Ok((read, gone))
    }
}

/// The process a count key belongs to: (tgid, start time).
trait Owner {
    fn owner(&self) -> (u32, u64);
}

impl Owner for SampleKey {
    fn owner(&self) -> (u32, u64) {
        (self.tgid, self.started_ns)
    }
}

impl Owner for StackKey {
    fn owner(&self) -> (u32, u64) {
        (self.tgid, self.started_ns)
    }
}
