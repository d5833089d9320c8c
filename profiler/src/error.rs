//! What can go wrong, as one line a user can act on: each message names the
//! problem and the fix. Causes stay typed (`#[source]`); [`one_line`] is the
//! one place that flattens a cause chain into text, and [`Error::exit_code`]
//! the one place that maps errors to exit statuses.
use std::{io, path::PathBuf};

/// Exit status of usage errors (as clap's own) and unreadable analysis inputs.
pub const EXIT_USAGE: i32 = 2;
/// Exit status of every other failure.
pub const EXIT_FAILURE: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error("flameprof needs root (or CAP_BPF and CAP_PERFMON) to load BPF programs: run it with sudo")]
    NotPrivileged,
    #[error("no process with PID {0}: check the PID with `ps -p {0}`")]
    NoSuchProcess(u32),
    #[error("process {0} has already exited (a zombie waiting for its parent): nothing to profile")]
    ProcessExited(u32),
    #[error("{tid} is a thread of process {tgid}, not a process: use -p {tgid} (--per-thread splits threads by name)")]
    ThreadNotProcess { tid: u32, tgid: u32 },
    #[error(
        "process {0} is another user's, and flameprof runs with capabilities, not as root: profile your own processes, or add --other-users (see README, Privileges)"
    )]
    OtherUsersProcess(u32),
    #[error(
        "profiling the whole system reads every user's stacks, and flameprof runs with capabilities, not as root: add --other-users to allow it (see README, Privileges)"
    )]
    SystemWideNeedsOtherUsers,
    #[error("cannot start `{command}`: {source}; check the command name and that it is executable")]
    Spawn {
        command: String,
        #[source]
        source: io::Error,
    },

    /// A kernel feature found missing before anything was loaded.
    #[error("this kernel lacks {feature}: {hint}")]
    KernelFeature { feature: String, hint: String },
    /// A feature the start-up probes found missing, which this run needs.
    #[error("{}", .0.missing_line())]
    MissingFeature(crate::recording::kernel::features::Feature),
    /// `-e EVENT` cannot sample here (checked before anything starts).
    #[error("cannot sample on -e {event}: {why}; -e cpu-clock (the default) works everywhere")]
    EventUnavailable { event: &'static str, why: String },
    /// A kernel feature that failed when it was used.
    #[error("this kernel lacks {feature}: {attempt} failed ({}); {needs}", one_line(source))]
    Attach {
        feature: String,
        attempt: String,
        needs: &'static str,
        #[source]
        source: Box<BpfError>,
    },
    /// A sampling timer that could not be opened for a reason other than a
    /// kernel without the event.
    #[error("{attempt} failed ({}); {hint}", one_line(source))]
    SamplingTimer {
        attempt: String,
        hint: &'static str,
        #[source]
        source: Box<BpfError>,
    },
    #[error("loading the BPF programs failed ({context}): {}", one_line(source))]
    Bpf {
        context: &'static str,
        #[source]
        source: Box<BpfError>,
    },
    #[error("cannot map the unwind tables into memory: {source}; this kernel may lack BPF_F_MMAPABLE (Linux 5.5)")]
    TableMapping {
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot open the side-band event (mappings, execs, forks) on CPU {cpu}: {source}; it needs root or CAP_PERFMON"
    )]
    Sideband {
        cpu: u32,
        #[source]
        source: io::Error,
    },
    #[error("cannot start a thread ({what}): {source}; the system is out of threads or memory")]
    Thread {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot list online CPUs ({what}): {source}")]
    OnlineCpus {
        what: String,
        #[source]
        source: io::Error,
    },

    #[error("cannot write {}: {source}; pick a writable path with -o", path.display())]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the profile to stdout: {0}")]
    Stdout(#[source] io::Error),
    #[error("refusing to write an SVG to a terminal: redirect stdout (`> out.svg`) or use -o FILE")]
    SvgToTerminal,
    #[error("cannot render the {format} output: {source}")]
    Render {
        format: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "{percent:.1}% of frames are unresolved, above --max-unresolved {max} (outputs written anyway): install debug symbols or build with frame pointers"
    )]
    TooManyUnresolved { percent: f64, max: f64 },

    #[error("cannot read {}: {source}", path.display())]
    ReadProfile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a readable profile: {reason}", path.display())]
    NotAProfile { path: PathBuf, reason: String },
    #[error("{base} counts {base_unit} but {new} counts {new_unit}: compare profiles of the same kind")]
    UnitMismatch { base: String, base_unit: &'static str, new: String, new_unit: &'static str },
    #[error("cannot draw the differential flame graph: {0}")]
    DiffGraph(#[source] io::Error),
    /// `diff -o`: the graph could not be written (exit status 2, as `diff`
    /// keeps 1 for a regression). Wraps the `Output` error of the write.
    #[error("{0}")]
    DiffOutput(#[source] Box<Error>),
}

/// What the BPF side of aya reported (boxed in `Error`: aya's errors are large).
#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(transparent)]
    Load(#[from] aya::EbpfError),
    #[error(transparent)]
    Program(#[from] aya::programs::ProgramError),
    #[error(transparent)]
    Map(#[from] aya::maps::MapError),
    #[error(transparent)]
    Btf(#[from] aya::BtfError),
    #[error("the BPF object cannot be prepared: {0}")]
    Object(String),
    #[error("the BPF object has no {kind} named {name}")]
    Missing { kind: &'static str, name: &'static str },
}

impl Error {
    /// A BPF failure while doing `context`.
    pub fn bpf(context: &'static str, source: impl Into<BpfError>) -> Self {
        Error::Bpf { context, source: Box::new(source.into()) }
    }

    /// The process exit status this error ends a run with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_)
            | Error::ProcessExited(_)
            | Error::ThreadNotProcess { .. }
            | Error::ReadProfile { .. }
            | Error::NotAProfile { .. }
            | Error::UnitMismatch { .. }
            | Error::DiffGraph(_)
            | Error::DiffOutput(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }
}

/// An error and every cause under it, on one line (`a: b: c`).
pub fn one_line(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Messages that already quote their cause (`{source}`) are not repeated.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
