//! What a run is asked to do, as plain types. The command line (`cli.rs`)
//! fills them in; nothing here knows clap, and nothing but `main.rs` knows
//! `cli`.
use std::{ffi::OsString, path::PathBuf, time::Duration};

use crate::formats::{Destination, Format, SvgOptions};

/// One invocation: record a profile, or analyse recorded ones.
#[derive(Debug)]
pub enum Command {
    Record(RunSettings),
    Analyze(Analysis),
    Doctor(DoctorSettings),
}

/// `flameprof doctor`.
#[derive(Debug)]
pub struct DoctorSettings {
    /// Also report how well this process can be profiled.
    pub pid: Option<u32>,
    pub json: bool,
}

/// A recording and what is written from it.
#[derive(Debug, Clone)]
pub struct RunSettings {
    pub record: RecordSettings,
    pub output: OutputSettings,
}

/// What is profiled.
#[derive(Debug, Clone)]
pub enum Target {
    System,
    Processes(Vec<u32>),
    Command(Vec<OsString>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    OnCpu,
    OffCpu,
    /// On-CPU and off-CPU in one graph of time.
    Wall,
}

/// How user stacks are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserWalk {
    /// The default: Tables where the kernel can run the table walker (and
    /// user frames are wanted), else FramePointers.
    Best,
    /// Frame pointers, walked by the kernel (`fp`).
    FramePointers,
    /// A copy of the stack unwound in user space (`dwarf`, on-CPU only).
    StackCopy,
    /// Unwind tables compiled from call-frame information, walked in the
    /// kernel (`table`).
    Tables,
}

/// What the on-CPU samplers count to decide when to take a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SamplingEvent {
    /// The software cpu-clock timer (the default): exists everywhere, VMs and
    /// containers included, and ticks in time, so a sample is 1/F s on CPU.
    #[default]
    CpuClock,
    /// The hardware PMU's CPU cycles: needs a PMU that can sample.
    Cycles,
}

impl SamplingEvent {
    /// As `-e` and the summary name it.
    pub fn name(self) -> &'static str {
        match self {
            SamplingEvent::CpuClock => "cpu-clock",
            SamplingEvent::Cycles => "cycles",
        }
    }
}

/// Everything the recording stage reads.
#[derive(Debug, Clone)]
pub struct RecordSettings {
    pub target: Target,
    pub mode: Mode,
    /// None: until Ctrl-C or the target's end.
    pub duration: Option<Duration>,
    /// Samples per second of CPU time (default 99).
    pub frequency: u64,
    /// What the on-CPU samplers count (`-e`, default cpu-clock).
    pub event: SamplingEvent,
    pub kernel_frames: bool,
    pub user_frames: bool,
    /// How user stacks are walked (`--call-graph`).
    pub user_walk: UserWalk,
    /// `--call-graph table`: bytes the unwind rows may take in the kernel.
    pub table_memory_bytes: u64,
    /// Off-CPU waits shorter than this are left out (default 1 µs).
    pub min_block_us: u64,
    pub max_block_us: Option<u64>,
    pub include_preempted: bool,
    pub state_marker: bool,
    /// `--wakers`: off-CPU waits joined with who woke them.
    pub wakers: bool,
    /// Buckets of the BPF stack-id map (default: the object's own size).
    pub stack_map_entries: Option<u32>,
    /// Entries of each map of counts (default: the object's own size).
    pub count_map_entries: Option<u32>,
    /// Tests only: the samplers' hash maps preallocated, as before Linux 6.1.
    pub preallocate_maps: bool,
    /// Tests only: ignore every Nth off-CPU switch-in.
    pub ignore_switch_in_every: Option<u32>,
    /// Tests only: timers per thread of -p targets (default 1).
    pub timers_per_thread: u32,
    /// `--other-users`: a run with capabilities but not as root may profile
    /// processes its user could not ptrace (and the whole system).
    pub other_users: bool,
    /// Debug files of stripped binaries from debuginfod servers.
    pub debuginfod: symbolize::DebuginfodSettings,
}

/// How the profile is shaped and where it goes.
#[derive(Debug, Clone)]
pub struct OutputSettings {
    /// A frame with the thread name under each process frame.
    pub per_thread: bool,
    /// Where each output goes, in which format (at least one).
    pub outputs: Vec<(Destination, Format)>,
    pub summary_json: Option<Destination>,
    /// Fail the run when more frames than this percentage are unresolved.
    pub max_unresolved_percent: Option<f64>,
    pub svg: SvgOptions,
}

/// The commands that read recorded profiles.
#[derive(Debug)]
pub enum Analysis {
    Diff(DiffSettings),
    Report(ReportSettings),
}

#[derive(Debug)]
pub struct DiffSettings {
    pub base: PathBuf,
    pub new: PathBuf,
    /// A differential flame graph is written here.
    pub output: Option<PathBuf>,
    /// Regression gate: percentage points a function's total share may grow.
    pub fail_above: Option<f64>,
    pub table: TableSettings,
}

#[derive(Debug)]
pub struct ReportSettings {
    pub file: PathBuf,
    pub table: TableSettings,
}

/// How `diff` and `report` print their tables.
#[derive(Debug, Clone, Copy)]
pub struct TableSettings {
    /// At most this many functions per table (default 20).
    pub top: usize,
    pub style: TableStyle,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableStyle {
    Plain,
    Markdown,
    Json,
}
