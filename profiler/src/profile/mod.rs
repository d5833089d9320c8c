//! The symbolized profile: weighted stacks of frames, root first. Every
//! output format is written from this one model.
pub mod build;
pub mod symbolized;

use std::{collections::HashMap, sync::Arc};

/// Where a frame comes from; outputs mark kernel, JIT and inlined frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameKind {
    /// The process (root of each process's tree) or thread name.
    Task,
    /// A label added by flameprof: `[on-cpu]`, `[off-cpu]`, `[sleeping]`...
    Marker,
    Kernel,
    User,
    /// User-space JIT code named through the process's perf map.
    Jit,
}

impl FrameKind {
    /// Code (user, JIT or kernel), not a process, thread or marker frame.
    pub fn is_code(self) -> bool {
        matches!(self, FrameKind::User | FrameKind::Jit | FrameKind::Kernel)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Frame {
    pub name: Arc<str>,
    pub kind: FrameKind,
    /// Executable, library or kernel module the code belongs to.
    pub module: Option<Arc<str>>,
    pub file: Option<Arc<str>>,
    pub line: Option<u32>,
    /// Inlined into its caller (the frame before it).
    pub inlined: bool,
}

impl Frame {
    pub fn task(name: &str) -> Self {
        Self::plain(name, FrameKind::Task)
    }

    pub fn marker(name: &str) -> Self {
        Self::plain(name, FrameKind::Marker)
    }

    fn plain(name: &str, kind: FrameKind) -> Self {
        Frame { name: name.into(), kind, module: None, file: None, line: None, inlined: false }
    }
}

/// What a stack's count measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// On-CPU samples taken at this frequency per CPU.
    Samples { frequency_hz: u64 },
    /// Time, in microseconds (off-CPU and wall-clock profiles).
    Microseconds,
}

impl Unit {
    /// How outputs name the count ("samples", "microseconds").
    pub fn name(self) -> &'static str {
        match self {
            Unit::Samples { .. } => "samples",
            Unit::Microseconds => "microseconds",
        }
    }
}

/// A profile read back from a file, with the comments it carries (health).
#[derive(Debug)]
pub struct Loaded {
    pub profile: Profile,
    pub comments: Vec<String>,
}

/// A frame as stacks hold it: shared, so that a stack position costs a
/// pointer, not the frame's 64 bytes (a system-wide profile has tens of
/// thousands of stacks, dozens of frames deep, over far fewer frames).
pub type SharedFrame = Arc<Frame>;

/// Frames root first.
pub type Stack = Vec<SharedFrame>;

#[derive(Debug, Clone)]
pub struct Profile {
    pub unit: Unit,
    /// Weight per distinct stack (root first).
    pub stacks: HashMap<Stack, u64>,
}

impl Profile {
    pub fn new(unit: Unit) -> Self {
        Profile { unit, stacks: HashMap::new() }
    }

    /// Adds `weight` to the stack of `frames` (root first): shared frames,
    /// or frames of its own (read back from a file).
    pub fn add<F: Into<SharedFrame>>(&mut self, frames: impl IntoIterator<Item = F>, weight: u64) {
        if weight > 0 {
            let stack: Stack = frames.into_iter().map(Into::into).collect();
            *self.stacks.entry(stack).or_default() += weight;
        }
    }

    pub fn total(&self) -> u64 {
        self.stacks.values().sum()
    }

    /// Stacks in a stable order (by their folded text), for deterministic output.
    pub fn sorted_stacks(&self) -> Vec<(&Stack, u64)> {
        let mut stacks: Vec<_> = self.stacks.iter().map(|(s, &w)| (s, w)).collect();
        stacks.sort_by(|a, b| a.0.cmp(b.0));
        stacks
    }
}
