//! The command line: a thin clap layer that turns flags into `Settings`.
use std::{ffi::OsString, path::PathBuf, time::Duration};

use clap::{Parser, ValueEnum};

use crate::{
    error::{Error, Result},
    output::{Format, SvgOptions},
    session::{Mode, Settings, Target},
};

/// Sample stacks of a process, a command or the whole system, kernel and user
/// frames together, and write a flame graph.
#[derive(Debug, Parser)]
#[command(name = "flameprof", version, about, long_about = None)]
#[command(after_help = "Examples:\n  flameprof -p 1234 -d 30 > cpu.svg\n  flameprof -o build.folded -- make -j2\n  flameprof --off-cpu -p 1234 -d 10 -o wait.svg")]
pub struct Cli {
    /// Profile these processes (all their threads, also those created while recording).
    #[arg(short, long, value_delimiter = ',', value_name = "PID[,PID...]")]
    pub pid: Vec<u32>,
    /// Profile the whole system (the default without -p or a command).
    #[arg(short, long, conflicts_with = "pid")]
    pub all: bool,
    /// Stop after SECS seconds (fractions allowed); default: Ctrl-C or the target's end.
    #[arg(short, long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Samples per second per CPU.
    #[arg(short = 'F', long, default_value_t = 99, value_name = "HZ")]
    pub frequency: u64,
    /// Write the profile here (default: stdout). The extension picks the format.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format; default from the -o extension, else svg.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Only user-space frames.
    #[arg(short = 'U', long, conflicts_with = "kernel_only")]
    pub user_only: bool,
    /// Only kernel frames.
    #[arg(short = 'K', long)]
    pub kernel_only: bool,
    /// Split each process by thread name (a frame under the process frame).
    #[arg(long)]
    pub per_thread: bool,

    /// Record where threads wait instead of where they run: time off CPU, in microseconds.
    #[arg(long, conflicts_with = "wall")]
    pub off_cpu: bool,
    /// On-CPU samples and off-CPU time in one graph of wall-clock time (microseconds),
    /// under [on-cpu] and [off-cpu] root frames.
    #[arg(long)]
    pub wall: bool,
    /// Off-CPU: leave out blocks shorter than USECS microseconds.
    #[arg(long, value_name = "USECS", default_value_t = 1)]
    pub min_block: u64,
    /// Off-CPU: leave out blocks longer than USECS microseconds.
    #[arg(long, value_name = "USECS")]
    pub max_block: Option<u64>,
    /// Off-CPU: keep involuntary preemption (runnable but descheduled: CPU contention).
    #[arg(long)]
    pub include_preempted: bool,
    /// Off-CPU: add the thread state when it blocked as a leaf frame
    /// ([sleeping], [uninterruptible], [preempted]).
    #[arg(long)]
    pub state_marker: bool,

    /// Title of the flame graph.
    #[arg(long)]
    pub title: Option<String>,
    /// Width of the SVG in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: usize,
    /// Omit frames narrower than this many pixels.
    #[arg(long, default_value_t = 0.1, value_name = "PIXELS")]
    pub min_width: f64,
    /// Icicle graph: roots at the top.
    #[arg(long)]
    pub inverted: bool,
    /// Colour palette.
    #[arg(long, value_enum, default_value_t = Palette::Kernel)]
    pub colors: Palette,

    /// The command to start and profile, with its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Colour palettes offered (inferno's basic palettes).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Palette {
    /// Kernel frames orange, inlined aqua, user code red/green (inferno's `java`).
    Kernel,
    Hot,
    Mem,
    Io,
    Red,
    Green,
    Blue,
    Aqua,
    Yellow,
    Purple,
    Orange,
}

impl Cli {
    pub fn into_settings(self) -> Result<Settings> {
        let usage = |msg: String| Err(Error::Usage(msg));
        if !(1..=100_000).contains(&self.frequency) {
            return usage(format!("-F {} is out of range: use 1 to 100000 Hz", self.frequency));
        }
        let duration = match self.duration {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => {
                Some(Duration::from_secs_f64(secs))
            }
            Some(secs) => return usage(format!("-d {secs} is not a positive number of seconds")),
        };
        if self.pid.contains(&0) {
            return usage("-p 0 is not a process: give the PID of a running process".into());
        }
        let target = match (&self.pid[..], &self.command[..]) {
            ([], []) => Target::System,
            (pids, []) => Target::Processes(pids.to_vec()),
            ([], command) => Target::Command(command.to_vec()),
            _ => return usage("-p and a command cannot be combined: use one or the other".into()),
        };
        if self.all && !self.command.is_empty() {
            return usage("-a and a command cannot be combined: use one or the other".into());
        }
        if let Some(max) = self.max_block {
            if max < self.min_block {
                return usage(format!("--max-block {max} is below --min-block {}", self.min_block));
            }
        }
        if self.width == 0 {
            return usage("--width must be at least 1 pixel".into());
        }
        let mode = if self.off_cpu {
            Mode::OffCpu
        } else if self.wall {
            Mode::Wall
        } else {
            Mode::OnCpu
        };
        let format = match self.format {
            Some(format) => format,
            None => match &self.output {
                Some(path) => Format::from_path(path).unwrap_or(Format::Svg),
                None => Format::Svg,
            },
        };
        let title = self.title.unwrap_or_else(|| default_title(mode).to_string());
        Ok(Settings {
            target,
            mode,
            duration,
            frequency: self.frequency,
            kernel_frames: !self.user_only,
            user_frames: !self.kernel_only,
            per_thread: self.per_thread,
            min_block_us: self.min_block,
            max_block_us: self.max_block,
            include_preempted: self.include_preempted,
            state_marker: self.state_marker,
            output: self.output,
            format,
            svg: SvgOptions {
                title,
                width: self.width,
                min_width: self.min_width,
                inverted: self.inverted,
                palette: self.colors,
            },
        })
    }
}

fn default_title(mode: Mode) -> &'static str {
    match mode {
        Mode::OnCpu => "On-CPU Flame Graph",
        Mode::OffCpu => "Off-CPU Time Flame Graph",
        Mode::Wall => "Wall-Clock Time Flame Graph (on-CPU and off-CPU)",
    }
}
