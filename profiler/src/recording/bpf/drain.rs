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
//! Drained counts are kept compactly (a whole-stack key is 2 KiB, most
//! stacks a few dozen frames) and handed back with the rest at the end.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use aya::maps::{HashMap as BpfHashMap, MapData};
use profiler_ebpf::{LEAF_WORDS, SampleKey, StackKey, TASK_COMM_LEN, names};

use super::{
    Probes,
    stacks::{StackExpander, whole_stack},
};
use crate::error::{Error, Result};

/// Time between passes while passes find something to drain, or while the
/// maps are over a quarter full; otherwise a pass that drains less than a
/// tenth of what it reads doubles it, up to `MAX_EVERY` (a long-lived
/// process with many stacks is read rarely while there is room).
const EVERY: Duration = Duration::from_secs(2);
const MAX_EVERY: Duration = Duration::from_secs(32);

/// A whole stack without its unused entries.
#[derive(Clone)]
pub struct CompactStack {
    tgid: u32,
    started_ns: u64,
    marker: u32,
    comm: [u8; TASK_COMM_LEN],
    leaf_words: [u64; LEAF_WORDS],
    kernel: Box<[u64]>,
    user: Box<[u64]>,
}

impl CompactStack {
    fn of(key: &StackKey) -> Self {
        let depth = |d: u32| (d as usize).min(profiler_ebpf::MAX_STACK_DEPTH);
        CompactStack {
            tgid: key.tgid,
            started_ns: key.started_ns,
            marker: key.marker,
            comm: key.comm,
            leaf_words: key.leaf_words,
            kernel: key.kernel[..depth(key.kernel_depth)].into(),
            user: key.user[..depth(key.user_depth)].into(),
        }
    }

    pub fn key(&self) -> StackKey {
        let mut key = whole_stack((self.tgid, self.started_ns), self.marker, self.comm, &self.kernel, &self.user);
        key.leaf_words = self.leaf_words;
        key
    }
}

/// Counts drained from one pair of maps (fast path by stack ids, full path
/// by whole stack).
#[derive(Default)]
pub struct DrainedCounts {
    pub fast: Vec<(SampleKey, u64)>,
    pub full: Vec<(CompactStack, u64)>,
}

impl DrainedCounts {
    /// Every drained count as a whole stack (fast-path ids expanded).
    pub fn expanded<'a>(&'a self, expander: &'a mut StackExpander) -> impl Iterator<Item = (StackKey, u64)> + 'a {
        let fast: Vec<(StackKey, u64)> = self.fast.iter().map(|(key, count)| (expander.expand(key), *count)).collect();
        fast.into_iter().chain(self.full.iter().map(|(stack, count)| (stack.key(), *count)))
    }
}

/// What the passes moved out of the kernel, and when to pass next.
pub struct Drained {
    pub on_cpu: DrainedCounts,
    pub off_cpu: DrainedCounts,
    /// Entries moved out (a key drained twice counts twice).
    pub entries: u64,
    pub passes: u64,
    next: Instant,
    every: Duration,
}

impl Default for Drained {
    fn default() -> Self {
        Drained {
            on_cpu: DrainedCounts::default(),
            off_cpu: DrainedCounts::default(),
            entries: 0,
            passes: 0,
            next: Instant::now() + EVERY,
            every: EVERY,
        }
    }
}

impl Probes {
    /// When due, moves the entries of processes that have ended (`ended`
    /// says which, by pid and start) out of the maps of counts.
    pub fn drain_ended(&mut self, ended: impl Fn(u32, u64) -> bool) -> Result<()> {
        if Instant::now() < self.drained.next {
            return Ok(());
        }
        let mut cache: HashMap<(u32, u64), bool> = HashMap::new();
        let mut alive =
            |tgid: u32, started: u64| !*cache.entry((tgid, started)).or_insert_with(|| ended(tgid, started));
        let mut read = 0;
        let mut moved = 0;
        let mut drained = std::mem::take(&mut self.drained.on_cpu);
        let (r, m) = self.drain_pair(names::ON_CPU_COUNTS, names::ON_CPU_FULL_COUNTS, &mut alive, &mut drained)?;
        self.drained.on_cpu = drained;
        (read, moved) = (read + r, moved + m);
        if self.settings.off_cpu {
            let mut drained = std::mem::take(&mut self.drained.off_cpu);
            let (r, m) = self.drain_pair(names::OFF_CPU_TIMES, names::OFF_CPU_FULL_TIMES, &mut alive, &mut drained)?;
            self.drained.off_cpu = drained;
            (read, moved) = (read + r, moved + m);
        }
        let roomy = read < u64::from(self.count_map_capacity()) / 4;
        let drained = &mut self.drained;
        drained.entries += moved;
        drained.passes += 1;
        drained.every = if roomy && moved * 10 < read { (drained.every * 2).min(MAX_EVERY) } else { EVERY };
        drained.next = Instant::now() + drained.every;
        Ok(())
    }

    /// Entries each map of counts holds.
    fn count_map_capacity(&self) -> u32 {
        self.settings.count_map_entries.unwrap_or(profiler_ebpf::MAX_DISTINCT_STACKS)
    }

    /// Drains one fast map and one full map; returns (entries read, moved).
    fn drain_pair(
        &mut self,
        fast: &'static str,
        full: &'static str,
        alive: &mut impl FnMut(u32, u64) -> bool,
        into: &mut DrainedCounts,
    ) -> Result<(u64, u64)> {
        let (read_fast, gone_fast) = self.drain_map::<SampleKey>(fast, alive)?;
        let (read_full, gone_full) = self.drain_map::<StackKey>(full, alive)?;
        let moved = (gone_fast.len() + gone_full.len()) as u64;
        into.fast.extend(gone_fast);
        into.full.extend(gone_full.iter().map(|(key, count)| (CompactStack::of(key), *count)));
        Ok((read_fast + read_full, moved))
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
