//! Counts kept by symbolized stack. A long recording drains the counts of
//! ended processes from the kernel pass by pass; each pass is symbolized at
//! once and added here, and its raw keys (up to 2 KiB of addresses each)
//! are dropped. Memory then follows the distinct stacks the output will
//! hold, frames shared through one table, not the raw keys of the run.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use symbolize::UnresolvedReason;

use super::{Frame, SharedFrame, Stack};

/// A frame's index in `FrameTable`.
type FrameId = u32;

/// Every distinct frame once.
#[derive(Default)]
struct FrameTable {
    ids: HashMap<SharedFrame, FrameId>,
    frames: Vec<SharedFrame>,
}

impl FrameTable {
    fn id(&mut self, frame: SharedFrame) -> FrameId {
        if let Some(&id) = self.ids.get(&frame) {
            return id;
        }
        let id = FrameId::try_from(self.frames.len()).expect("fewer than 4 billion distinct frames");
        self.frames.push(frame.clone());
        self.ids.insert(frame, id);
        id
    }
}

/// One stack under its process: the process (its id, as the kernel keyed
/// it, and start), the thread's name, and the frames below them.
#[derive(PartialEq, Eq, Hash)]
struct StackOf {
    process: u32,
    started_ns: u64,
    thread: Arc<str>,
    frames: Box<[FrameId]>,
}

/// What the addresses of a stack resolved to, for the health summary
/// (each counted once per address, however many inlined frames it gave).
#[derive(Debug, Clone, Default)]
pub struct StackFacts {
    pub addresses: u64,
    pub unresolved: u64,
    /// Named through a perf map.
    pub jit: u64,
    /// In JIT code, named by no perf map entry (also unresolved).
    pub jit_unnamed: u64,
    /// Why each unresolved address stayed so, and its module.
    pub causes: Vec<(UnresolvedReason, Option<Arc<str>>)>,
}

/// Counts by symbolized stack; see the module's comment.
#[derive(Default)]
pub struct SymbolizedCounts {
    pub(super) names: NameCache,
    frames: FrameTable,
    /// Count, and the facts of the first raw stack that gave the stack.
    stacks: HashMap<StackOf, (u64, StackFacts)>,
}

impl SymbolizedCounts {
    /// Adds `count` to the stack of `frames` (root first, below the
    /// process and thread frames) of thread `thread` of a process.
    pub fn add(
        &mut self,
        (process, started_ns): (u32, u64),
        thread: &str,
        frames: Stack,
        facts: StackFacts,
        count: u64,
    ) {
        let thread = self.names.intern(thread);
        let frames = frames.into_iter().map(|frame| self.frames.id(frame)).collect();
        let entry = self.stacks.entry(StackOf { process, started_ns, thread, frames }).or_insert((0, facts));
        entry.0 += count;
    }

    /// The ids of the processes with stacks here.
    pub fn processes(&self) -> HashSet<u32> {
        self.stacks.keys().map(|stack| stack.process).collect()
    }

    /// Gives each process the id `id` names it by now (pid, start): a pid
    /// reused since the counts came in names another process.
    pub fn rename_processes(&mut self, id: impl Fn(u32, u64) -> u32) {
        let stacks = std::mem::take(&mut self.stacks);
        for (mut stack, (count, facts)) in stacks {
            stack.process = id(stack.process, stack.started_ns);
            self.stacks.entry(stack).or_insert((0, facts)).0 += count;
        }
    }

    /// Keeps only the stacks of processes `keep` accepts.
    pub fn retain_processes(&mut self, keep: impl Fn(u32) -> bool) {
        self.stacks.retain(|stack, _| keep(stack.process));
    }

    /// Each stack with what goes above its frames: `head` gives the frames
    /// of (process, thread), root first.
    pub fn drain_stacks(
        self,
        mut head: impl FnMut(u32, &str) -> Stack,
    ) -> impl Iterator<Item = (Stack, u64, StackFacts)> {
        let frames = self.frames.frames;
        self.stacks.into_iter().map(move |(stack, (count, facts))| {
            let mut whole = head(stack.process, &stack.thread);
            whole.extend(stack.frames.iter().map(|&id| frames[id as usize].clone()));
            (whole, count, facts)
        })
    }
}

/// One allocation per distinct string, shared by every frame that names
/// it, and one per distinct frame, shared by every stack that has it.
#[derive(Default)]
pub(super) struct NameCache {
    strings: HashSet<Arc<str>>,
    frames: HashSet<SharedFrame>,
}

impl NameCache {
    pub(super) fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(existing) = self.strings.get(text) {
            return existing.clone();
        }
        let shared: Arc<str> = text.into();
        self.strings.insert(shared.clone());
        shared
    }

    /// `frame`, shared with every earlier equal one.
    pub(super) fn frame(&mut self, frame: Frame) -> SharedFrame {
        if let Some(existing) = self.frames.get(&frame) {
            return existing.clone();
        }
        let shared = Arc::new(frame);
        self.frames.insert(shared.clone());
        shared
    }

    pub(super) fn task(&mut self, name: &str) -> SharedFrame {
        let frame = Frame { name: self.intern(name), ..Frame::task("") };
        self.frame(frame)
    }

    pub(super) fn marker(&mut self, name: &str) -> SharedFrame {
        let frame = Frame { name: self.intern(name), ..Frame::marker("") };
        self.frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Profile, Unit};

    fn user(name: &str) -> SharedFrame {
        Frame { kind: crate::profile::FrameKind::User, ..Frame::task(name) }.into()
    }

    #[test]
    fn counts_of_one_symbolized_stack_add_up_and_keep_their_process() {
        let mut counts = SymbolizedCounts::default();
        counts.add((7, 1), "worker", vec![user("main"), user("spin")], StackFacts::default(), 3);
        counts.add((7, 1), "worker", vec![user("main"), user("spin")], StackFacts::default(), 4);
        counts.add((8, 2), "worker", vec![user("main"), user("spin")], StackFacts::default(), 5);
        counts.add((8, 2), "worker", vec![user("main"), user("spin")], StackFacts::default(), 1);
        assert_eq!(counts.stacks.len(), 2);
        // The pid 7 went to another process since: the first is renamed.
        counts.rename_processes(|pid, started| if (pid, started) == (7, 1) { 7 | 1 << 22 } else { pid });
        let mut profile = Profile::new(Unit::Samples { frequency_hz: 99 });
        let head = |process, thread: &str| vec![Frame::task(&format!("{thread}-{process}")).into()];
        for (stack, count, _) in counts.drain_stacks(head) {
            profile.add(stack, count);
        }
        let weights: HashMap<String, u64> =
            profile.stacks.iter().map(|(stack, &weight)| (stack[0].name.to_string(), weight)).collect();
        assert_eq!(weights, HashMap::from([(format!("worker-{}", 7 | 1 << 22), 7), ("worker-8".to_string(), 6)]));
    }
}
