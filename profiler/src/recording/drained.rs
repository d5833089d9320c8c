//! The counts of ended processes, drained from the kernel while recording,
//! are symbolized at once, while their processes' snapshots are still
//! there, and kept by symbolized stack. The snapshots of ended processes
//! are then forgotten, which closes the files only they mapped: over a
//! long recording of short-lived processes, memory and open files follow
//! what lives and what the output holds, not every process ever seen.
use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use profiler_ebpf::StackKey;
use symbolize::{Mapping, Symbolizer};

use super::{LeafFixups, bpf::DrainPass, leaf_fixup, mapping_generations::MappingGenerations, pids::Pids};
use crate::profile::{
    build::{RawStack, symbolize_into},
    symbolized::SymbolizedCounts,
};

/// What the drain passes did, for the summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct DrainStats {
    pub passes: u64,
    /// Entries moved out of the maps (a key drained twice counts twice).
    pub entries: u64,
    /// Snapshots of ended processes forgotten.
    pub snapshots_forgotten: u64,
    /// Time spent symbolizing them while recording.
    pub symbolizing: Duration,
}

/// What the drain passes of a recording gave, symbolized.
pub struct DrainedCounts {
    pub stats: DrainStats,
    pub on_cpu: SymbolizedCounts,
    /// Nanoseconds off CPU.
    pub off_cpu: SymbolizedCounts,
    /// `--call-graph fp`: the leaf fix-up of the drained stacks (on-CPU,
    /// off-CPU).
    pub leaf_fixups: (LeafFixups, LeafFixups),
    /// On-CPU samples whose stack reached the frame limit.
    pub samples_at_depth_limit: u64,
    pub missing_stack_ids: u64,
    /// The executable mappings of forgotten processes, by module basename
    /// (the first process mapping a module wins), for pprof's mapping table.
    pub modules: HashMap<String, Mapping>,
    /// Processes (pid, start) found ended, with the pass that found them:
    /// their snapshots go at a pass that finds nothing of theirs in the
    /// maps; with stack copies, a later pass than the one that found them
    /// (copies taken just before a process ended may still be on their way
    /// to being unwound).
    ended: HashMap<(u32, u64), u64>,
    copies: bool,
    /// Whether snapshots of ended processes may be forgotten: not when
    /// something still to be symbolized at the end may name them (`--wakers`
    /// joins are not drained, nor are `--call-graph dwarf`'s stacks).
    forget_ended: bool,
    fix_leaves: bool,
}

impl DrainedCounts {
    /// `copies`: some samples come as stack copies, unwound in user space.
    pub fn new(forget_ended: bool, fix_leaves: bool, copies: bool) -> Self {
        DrainedCounts {
            stats: DrainStats::default(),
            on_cpu: SymbolizedCounts::default(),
            off_cpu: SymbolizedCounts::default(),
            leaf_fixups: Default::default(),
            samples_at_depth_limit: 0,
            missing_stack_ids: 0,
            modules: HashMap::new(),
            ended: HashMap::new(),
            copies,
            forget_ended,
            fix_leaves,
        }
    }

    /// A process (pid, start) known to have ended: its snapshot is
    /// forgotten at the next pass that leaves nothing of it in the maps.
    pub fn note_ended(&mut self, pid: u32, started_ns: u64) {
        if self.forget_ended {
            self.ended.entry((pid, started_ns)).or_insert(self.stats.passes);
        }
    }

    /// Symbolizes what a pass moved out (each key against the mappings of
    /// its generation), keeps it by symbolized stack, then forgets the
    /// snapshots and generations of the processes it emptied.
    pub fn take(
        &mut self,
        pass: DrainPass,
        pids: &Pids,
        generations: &mut MappingGenerations,
        symbolizer: &mut Symbolizer,
    ) {
        let started = Instant::now();
        let DrainPass { mut on_cpu, mut off_cpu, kept, missing_stack_ids } = pass;
        self.missing_stack_ids += missing_stack_ids;
        self.stats.passes += 1;
        self.stats.entries += (on_cpu.len() + off_cpu.len()) as u64;
        for (key, _) in on_cpu.iter().chain(&off_cpu) {
            self.note_ended(key.tgid, key.started_ns);
        }
        generations.bound(on_cpu.iter_mut().chain(off_cpu.iter_mut()).map(|(key, _)| key));
        self.own_ids_and_depths(&mut on_cpu, pids);
        own_ids(&mut off_cpu, pids);
        if self.fix_leaves {
            self.leaf_fixups.0.add(leaf_fixup::apply(&mut on_cpu, symbolizer));
            self.leaf_fixups.1.add(leaf_fixup::apply(&mut off_cpu, symbolizer));
        }
        symbolize_all(&mut self.on_cpu, &on_cpu, symbolizer);
        symbolize_all(&mut self.off_cpu, &off_cpu, symbolizer);
        drop((on_cpu, off_cpu));
        self.forget(&kept, pids, generations, symbolizer);
        self.stats.symbolizing += started.elapsed();
    }

    /// On-CPU stacks unwound in user space from stack copies (`dwarf`, and
    /// `table` before a process's tables were loaded), symbolized now, as a
    /// pass is: they are final once unwound, and their processes' snapshots
    /// may be forgotten by the next pass. Their processes are not taken as
    /// ended: the copies do not say.
    pub fn take_unwound(&mut self, mut on_cpu: Vec<(StackKey, u64)>, pids: &Pids, symbolizer: &mut Symbolizer) {
        let started = Instant::now();
        self.own_ids_and_depths(&mut on_cpu, pids);
        symbolize_all(&mut self.on_cpu, &on_cpu, symbolizer);
        self.stats.symbolizing += started.elapsed();
    }

    /// On-CPU stacks about to be symbolized: their processes' own ids, and
    /// the samples at the frame limit counted.
    fn own_ids_and_depths(&mut self, on_cpu: &mut [(StackKey, u64)], pids: &Pids) {
        own_ids(on_cpu, pids);
        self.samples_at_depth_limit +=
            samples_at_depth_limit(on_cpu.iter().map(|(k, n)| (k.kernel_depth, k.user_depth, *n)));
    }

    /// Forgets the snapshots of ended processes the maps hold nothing of,
    /// keeping their modules.
    fn forget(
        &mut self,
        kept: &HashSet<(u32, u64)>,
        pids: &Pids,
        generations: &mut MappingGenerations,
        symbolizer: &mut Symbolizer,
    ) {
        let this_pass = self.stats.passes + u64::from(!self.copies);
        let gone: Vec<(u32, u64)> = self
            .ended
            .iter()
            .filter(|&(owner, &found_at)| found_at < this_pass && !kept.contains(owner))
            .map(|(&owner, _)| owner)
            .collect();
        for (pid, started_ns) in gone {
            self.ended.remove(&(pid, started_ns));
            let id = pids.id(pid, started_ns);
            for mapping in symbolizer.mappings(id) {
                let name = mapping.path.rsplit('/').next().unwrap_or(&mapping.path).to_string();
                self.modules.entry(name).or_insert(mapping);
            }
            symbolizer.forget_process(id);
            generations.forget(pid, started_ns);
            self.stats.snapshots_forgotten += 1;
        }
    }
}

/// The snapshot of a process whose pid went to another one since is kept
/// under an id of its own: the keys get that id.
fn own_ids(stacks: &mut [(StackKey, u64)], pids: &Pids) {
    for (key, _) in stacks {
        key.tgid = pids.id(key.tgid, key.started_ns);
    }
}

/// Samples whose stack reached the frame limit, of (kernel depth, user
/// depth, samples).
pub(super) fn samples_at_depth_limit(stacks: impl Iterator<Item = (u32, u32, u64)>) -> u64 {
    let limit = profiler_ebpf::MAX_STACK_DEPTH as u32;
    stacks.filter(|&(kernel, user, _)| kernel >= limit || user >= limit).map(|(_, _, n)| n).sum()
}

fn symbolize_all(into: &mut SymbolizedCounts, raw: &[(StackKey, u64)], symbolizer: &mut Symbolizer) {
    if !raw.is_empty() {
        symbolize_into(into, &RawStack::plain(raw).collect::<Vec<_>>(), symbolizer);
        symbolizer.trim_parsed_files();
    }
}
