//! Reading the counts back: fast-path keys name their stacks by id in the
//! STACKS map and are expanded here to whole stacks, so everything after
//! this point sees one kind of key whichever path a sample took.
use std::collections::HashMap;

use aya::maps::{HashMap as BpfHashMap, MapData, StackTraceMap};
use profiler_ebpf::{LEAF_WORDS, MAX_STACK_DEPTH, NO_STACK, SampleKey, StackKey, TASK_COMM_LEN};

use crate::error::{Error, Result};

/// A whole-stack key from frames found in user space (DWARF unwinding,
/// /proc), cut at the kernel's frame limit like the kernel's own; of its
/// process's first mapping generation.
pub fn whole_stack(
    (tgid, started_ns): (u32, u64),
    marker: u32,
    comm: [u8; TASK_COMM_LEN],
    kernel: &[u64],
    user: &[u64],
) -> StackKey {
    let (kernel, user) = (&kernel[..kernel.len().min(MAX_STACK_DEPTH)], &user[..user.len().min(MAX_STACK_DEPTH)]);
    let mut key = StackKey {
        tgid,
        started_ns,
        mappings_since_ns: 0,
        kernel_depth: kernel.len() as u32,
        user_depth: user.len() as u32,
        marker,
        comm,
        leaf_words: [0; LEAF_WORDS],
        kernel: [0; MAX_STACK_DEPTH],
        user: [0; MAX_STACK_DEPTH],
    };
    key.kernel[..kernel.len()].copy_from_slice(kernel);
    key.user[..user.len()].copy_from_slice(user);
    key
}

/// Expands stack ids, reading each id from STACKS once.
pub struct StackExpander<'a> {
    stacks: StackTraceMap<&'a MapData>,
    cache: HashMap<i32, Vec<u64>>,
    /// Ids that could not be read back (should not happen: ids are never
    /// freed during a recording).
    pub missing_ids: u64,
}

impl<'a> StackExpander<'a> {
    pub fn new(stacks: StackTraceMap<&'a MapData>) -> Self {
        StackExpander { stacks, cache: HashMap::new(), missing_ids: 0 }
    }

    /// The whole-stack form of a fast-path key.
    pub fn expand(&mut self, key: &SampleKey) -> StackKey {
        let mut whole = StackKey {
            tgid: key.tgid,
            started_ns: key.started_ns,
            mappings_since_ns: key.mappings_since_ns,
            kernel_depth: 0,
            user_depth: 0,
            marker: key.marker,
            comm: key.comm,
            leaf_words: key.leaf_words,
            kernel: [0; MAX_STACK_DEPTH],
            user: [0; MAX_STACK_DEPTH],
        };
        whole.kernel_depth = self.fill(key.kernel_stack_id, &mut whole.kernel);
        whole.user_depth = self.fill(key.user_stack_id, &mut whole.user);
        whole
    }

    fn fill(&mut self, id: i32, into: &mut [u64; MAX_STACK_DEPTH]) -> u32 {
        if id == NO_STACK || id < 0 {
            return 0;
        }
        if !self.cache.contains_key(&id) {
            let frames = match self.stacks.get(&(id as u32), 0) {
                Ok(trace) => trace.frames().iter().map(|frame| frame.ip).collect(),
                Err(_) => {
                    self.missing_ids += 1;
                    Vec::new()
                }
            };
            self.cache.insert(id, frames);
        }
        let frames = &self.cache[&id];
        let depth = frames.len().min(MAX_STACK_DEPTH);
        into[..depth].copy_from_slice(&frames[..depth]);
        depth as u32
    }
}

/// Every (key, value) of a fast-path map, expanded, each key as `keep`
/// makes it (one whole key at a time).
pub fn read_fast<T>(
    map: &BpfHashMap<&MapData, SampleKey, u64>,
    expander: &mut StackExpander,
    keep: impl Fn(StackKey) -> T,
) -> Result<Vec<(T, u64)>> {
    map.iter()
        .map(|entry| {
            let (key, value) = entry.map_err(|e| Error::bpf("reading the stack counts", e))?;
            Ok((keep(expander.expand(&key)), value))
        })
        .collect()
}

/// Every (key, value) of a full-stack map, each key as `keep` makes it.
pub fn read_full<T>(map: &BpfHashMap<&MapData, StackKey, u64>, keep: impl Fn(StackKey) -> T) -> Result<Vec<(T, u64)>> {
    map.iter()
        .map(|entry| {
            let (key, value) = entry.map_err(|e| Error::bpf("reading the stack counts", e))?;
            Ok((keep(key), value))
        })
        .collect()
}
