//! Mapping generations: the kernel side keys each sample by the time its
//! process last unmapped file-backed code (`StackKey::mappings_since_ns`)
//! and reports each such unmap (a CODE_UNMAPPED notice). Where the kernel
//! does not let that program attach, user space begins a generation itself
//! when the side-band reports a mapping made over a file's code, at that
//! record's time: exact for the symbolizer, but samples taken before user
//! space read the record keep the earlier generation (`latency`). A sample of the
//! generation that began at `since` was taken before the process's next
//! unmap, so the mappings made before that next unmap are the ones it saw:
//! no code was unmapped in between, so nothing mapped then can have
//! replaced what it ran in. Before symbolizing, each key's generation is
//! replaced by that bound (0: the latest generation, symbolized against the
//! process's snapshot as it is). Generations never show in the output:
//! frames are named right, and stacks merge again once symbolized.
use std::collections::HashMap;

use profiler_ebpf::{StackKey, notice};

/// Unmaps kept per process; past this the oldest go (their samples are
/// symbolized against what was mapped later), counted.
const MAX_UNMAPS_PER_PROCESS: usize = 4096;

/// When each process (pid, start) unmapped code, as the kernel reported it.
#[derive(Debug, Default)]
pub struct MappingGenerations {
    unmaps: HashMap<(u32, u64), Vec<u64>>,
    /// Unmaps reported (for the summary).
    pub noted: u64,
    /// Unmaps forgotten past MAX_UNMAPS_PER_PROCESS.
    pub forgotten: u64,
    /// Generations begun by user space: how many, and the longest time
    /// from a replacing mapping to its generation's start in the kernel.
    pub from_sideband: u64,
    pub max_latency_ns: u64,
}

impl MappingGenerations {
    /// Takes a NEW_PROCESSES record if it reports an unmap (returns whether
    /// it did).
    pub fn take_notice(&mut self, item: &[u8]) -> bool {
        let Some((pid, started_ns, at_ns)) = unmap_of(item) else { return false };
        self.note(pid, started_ns, at_ns);
        true
    }

    /// A generation user space began (`now_ns`: when the kernel got it).
    pub fn begun_by_user_space(&mut self, pid: u32, started_ns: u64, at_ns: u64, now_ns: u64) {
        self.from_sideband += 1;
        self.max_latency_ns = self.max_latency_ns.max(now_ns.saturating_sub(at_ns));
        self.note(pid, started_ns, at_ns);
    }

    fn note(&mut self, pid: u32, started_ns: u64, at_ns: u64) {
        self.noted += 1;
        let unmaps = self.unmaps.entry((pid, started_ns)).or_default();
        // Notices of one process come in order, but keep it sorted anyway.
        let at = unmaps.partition_point(|&t| t <= at_ns);
        unmaps.insert(at, at_ns);
        if unmaps.len() > MAX_UNMAPS_PER_PROCESS {
            unmaps.remove(0);
            self.forgotten += 1;
        }
    }

    /// Replaces each key's generation by its end (see the module's comment).
    /// Keys must still name their process by pid.
    pub fn bound<'a>(&self, keys: impl Iterator<Item = &'a mut StackKey>) {
        for key in keys {
            key.mappings_since_ns = self.end_of(key.tgid, key.started_ns, key.mappings_since_ns);
        }
    }

    /// The unmap that ended the generation of (pid, start) that began at
    /// `since_ns`; 0 for its latest.
    pub fn end_of(&self, pid: u32, started_ns: u64, since_ns: u64) -> u64 {
        let Some(unmaps) = self.unmaps.get(&(pid, started_ns)) else { return 0 };
        unmaps.get(unmaps.partition_point(|&t| t <= since_ns)).copied().unwrap_or(0)
    }

    /// Forgets a process whose counts are all symbolized.
    pub fn forget(&mut self, pid: u32, started_ns: u64) {
        self.unmaps.remove(&(pid, started_ns));
    }
}

/// (pid, process start, when) of a CODE_UNMAPPED ProcessNotice.
fn unmap_of(item: &[u8]) -> Option<(u32, u64, u64)> {
    let word = |at: usize| item.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_ne_bytes);
    let long = |at: usize| item.get(at..at + 8).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_ne_bytes);
    (word(4)? == notice::CODE_UNMAPPED).then_some((word(0)?, long(8)?, long(16)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(pid: u32, started_ns: u64, at_ns: u64) -> Vec<u8> {
        let mut item = Vec::new();
        item.extend(pid.to_ne_bytes());
        item.extend(notice::CODE_UNMAPPED.to_ne_bytes());
        item.extend(started_ns.to_ne_bytes());
        item.extend(at_ns.to_ne_bytes());
        item
    }

    #[test]
    fn a_generation_ends_at_the_next_unmap_of_its_process() {
        let mut generations = MappingGenerations::default();
        for at in [300, 100] {
            assert!(generations.take_notice(&notice(7, 5, at)));
        }
        assert!(!generations.take_notice(&[0; 8]));
        // Generations of process (7, 5): [0, 100), [100, 300), [300, ...).
        assert_eq!(generations.end_of(7, 5, 0), 100);
        assert_eq!(generations.end_of(7, 5, 100), 300);
        assert_eq!(generations.end_of(7, 5, 300), 0);
        // Another process with the pid, and a process that never unmapped.
        assert_eq!(generations.end_of(7, 6, 0), 0);
        assert_eq!(generations.end_of(8, 5, 0), 0);
        generations.forget(7, 5);
        assert_eq!(generations.end_of(7, 5, 0), 0);
        assert_eq!(generations.noted, 2);
    }
}
