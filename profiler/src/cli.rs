//! The command line, and the only module that knows clap: it turns flags
//! into the plain settings of `settings.rs` that the rest of the program takes.
use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{Args, Parser, Subcommand, ValueEnum};
use symbolize::DebuginfodSettings;

use crate::{
    error::{Error, Result},
    formats::{Destination, Format, Palette, SvgOptions},
    settings::{
        self, Command, DiffSettings, DoctorSettings, Mode, OutputSettings, RecordSettings, ReportSettings, RunSettings,
        SamplingEvent, TableSettings, TableStyle, Target, UserWalk,
    },
};

/// Sample stacks of a process, a command or the whole system, kernel and user
/// frames together, and write a flame graph.
#[derive(Debug, Parser)]
#[command(name = "flameprof", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true, subcommand_help_heading = "Commands for CI (instead of recording)")]
#[command(
    after_help = "Examples:\n  flameprof -p 1234 -d 30 > cpu.svg\n  flameprof -o build.folded -- make -j2\n  flameprof --off-cpu -p 1234 -d 10 -o wait.svg\n  flameprof -o cpu.pb.gz -o cpu.svg --summary-json run.json -- cargo bench\n  flameprof diff base.pb.gz cpu.pb.gz -o diff.svg --fail-above 5\n  flameprof report cpu.pb.gz --top 15 --markdown\n\nExit status: the command's with `-- CMD` (outputs are written even when it fails);\n1 for errors, --max-unresolved failures; 2 for usage errors."
)]
pub struct Cli {
    #[command(subcommand)]
    pub analysis: Option<Analysis>,

    /// Profile these processes (all their threads, also those created while recording).
    #[arg(short, long, value_delimiter = ',', value_name = "PID[,PID...]")]
    pub pid: Vec<u32>,
    /// Profile the whole system (the default without -p or a command).
    #[arg(short, long, conflicts_with = "pid")]
    pub all: bool,
    /// Stop after SECS seconds (fractions allowed); default: Ctrl-C or the target's end.
    #[arg(short, long, value_name = "SECS", allow_negative_numbers = true)]
    pub duration: Option<f64>,
    /// Samples per second of CPU time: per CPU with -a, per thread with -p and a command.
    #[arg(short = 'F', long, default_value_t = 99, value_name = "HZ")]
    pub frequency: u64,
    /// What on-CPU sampling counts: `cpu-clock` (a software timer, everywhere)
    /// or `cycles` (the hardware PMU's CPU cycles, where there is one that can
    /// sample; on-CPU profiles only).
    #[arg(short, long, value_enum, default_value_t = EventArg::CpuClock, value_name = "EVENT")]
    pub event: EventArg,
    /// Write the profile here (default: stdout; `-` is stdout). Repeat for several
    /// formats of one recording. The extension picks the format: .svg, .folded/.txt,
    /// .pb.gz (pprof), .speedscope.json.
    #[arg(short, long, value_name = "FILE", action = clap::ArgAction::Append)]
    pub output: Vec<PathBuf>,
    /// Output format: of the only output, or of outputs whose extension names
    /// none; default from the -o extension, else svg.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Also write a JSON summary of the run: samples, losses by cause, unresolved
    /// frames, duration, command exit status, the outputs written.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Fail the run (exit status 1, after writing every output) when more than PCT
    /// percent of the frames are unresolved.
    #[arg(long, value_name = "PCT")]
    pub max_unresolved: Option<f64>,
    /// Only user-space frames.
    #[arg(short = 'U', long, conflicts_with = "kernel_only")]
    pub user_only: bool,
    /// Only kernel frames.
    #[arg(short = 'K', long)]
    pub kernel_only: bool,
    /// Split each process by thread name (a frame under the process frame).
    #[arg(long)]
    pub per_thread: bool,
    /// How user stacks are walked: `fp` follows frame pointers in the kernel
    /// (cheapest); `table` walks them in the kernel with tables compiled from
    /// the binaries' .eh_frame/.debug_frame, which also walks code built
    /// without frame pointers (most distribution libraries), on-CPU and
    /// off-CPU; `dwarf` copies 8-12 KiB of stack per sample and unwinds it in
    /// user space (on-CPU only).
    ///
    /// Default: `table` where the kernel can run it (Linux 5.15 with BTF),
    /// else `fp` (with a warning naming what is missing).
    #[arg(long, value_enum, value_name = "METHOD")]
    pub call_graph: Option<CallGraph>,
    /// `--call-graph table`: memory the unwind tables may take in the kernel,
    /// in MiB (16 bytes a row; glibc needs about 0.5 MiB, rustc's driver 18,
    /// its libLLVM 22: the default holds a Rust build). Allocated when the
    /// recording starts. Files that do not fit are walked with frame
    /// pointers, counted.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub table_memory: u64,

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
    /// Off-CPU and --wall: join each wait with who woke it: the waker's stacks
    /// and name above a `--` frame (as bcc's offwaketime folds them).
    #[arg(long)]
    pub wakers: bool,

    /// Buckets of the BPF stack-id map (default 32768). Stacks whose bucket
    /// is taken are counted whole instead; a tiny map forces that path (tests).
    #[arg(long, hide = true, value_name = "N")]
    pub stack_map_entries: Option<u32>,

    /// Entries of each map of counts (default 131072 stacks). Samples whose
    /// stack finds its map full are lost, and counted; a tiny map forces
    /// that (tests).
    #[arg(long, hide = true, value_name = "N")]
    pub count_map_entries: Option<u32>,

    /// Tests only: preallocate the samplers' hash maps as on a kernel
    /// before 6.1, which refuses them allocated as used.
    #[arg(long, hide = true)]
    pub preallocate_maps: bool,

    /// Tests only: the off-CPU program ignores every Nth switch-in of a
    /// blocked thread, as if no tracepoint had reported it.
    #[arg(long, hide = true, value_name = "N")]
    pub ignore_switch_in_every: Option<u32>,

    /// With capabilities but not as root, flameprof profiles only processes
    /// the user running it could ptrace (its own, not set-id ones); this
    /// allows other users' processes too, and -a (which needs it).
    #[arg(long)]
    pub other_users: bool,

    /// Do not ask debuginfod servers (DEBUGINFOD_URLS) for the debug files
    /// of stripped binaries; those on this machine are still used.
    #[arg(long)]
    pub no_debuginfod: bool,

    /// Seconds each debuginfod request may take (default: DEBUGINFOD_TIMEOUT, else 10).
    #[arg(long, value_name = "SECS")]
    pub debuginfod_timeout: Option<u64>,

    /// Tests only: open N timers per thread of -p targets (as a thread that
    /// inherits one while its own is opened has two).
    #[arg(long, hide = true, value_name = "N", default_value_t = 1)]
    pub timers_per_thread: u32,

    /// Title of the flame graph.
    #[arg(long)]
    pub title: Option<String>,
    /// Width of the SVG in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: usize,
    /// Omit frames narrower than this many pixels.
    #[arg(long, default_value_t = 0.1, value_name = "PIXELS")]
    pub min_width: f64,
    /// Reverse stacks (leaf functions become the roots): merges by leaf.
    #[arg(long)]
    pub reverse: bool,
    /// Icicle graph: roots at the top.
    #[arg(long)]
    pub inverted: bool,
    /// Colour palette.
    #[arg(long, value_enum, default_value_t = PaletteArg::Kernel)]
    pub colors: PaletteArg,

    /// The command to start and profile, with its arguments (after `--`).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// How user stacks are walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CallGraph {
    /// Frame pointers, walked in the kernel.
    Fp,
    /// Call-frame information (.eh_frame), unwound in user space from a stack copy.
    Dwarf,
    /// Call-frame information compiled into tables, walked in the kernel.
    Table,
}

/// Sampling events, as `-e` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventArg {
    /// The software cpu-clock timer.
    CpuClock,
    /// The hardware PMU's CPU cycles.
    Cycles,
}

impl From<EventArg> for SamplingEvent {
    fn from(event: EventArg) -> SamplingEvent {
        match event {
            EventArg::CpuClock => SamplingEvent::CpuClock,
            EventArg::Cycles => SamplingEvent::Cycles,
        }
    }
}

/// The commands other than recording: on recorded profiles, and `doctor`.
#[derive(Debug, Subcommand)]
pub enum Analysis {
    /// Compare two profiles (folded or pprof): per-function share changes, a
    /// differential flame graph, and a regression gate.
    #[command(
        after_help = "Exit status: 0; 1 when --fail-above finds a regression (one line per function on stderr);\n2 for unreadable inputs or bad arguments."
    )]
    Diff(DiffArgs),
    /// The top functions of a profile (folded or pprof) by self and total share.
    Report(ReportArgs),
    /// Check whether profiling can work here, and how well for a process:
    /// privileges, kernel features, unwinding methods; with -p, each module's
    /// frame pointers, unwind tables, symbols and debug information.
    #[command(after_help = "Exit status: 0 when profiling can work here; 1 when something is missing.")]
    Doctor(DoctorArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also report how well this process can be profiled.
    #[arg(short, long, value_name = "PID")]
    pub pid: Option<u32>,
    /// JSON instead of lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The reference profile (e.g. from the base branch).
    pub base: PathBuf,
    /// The profile to check.
    pub new: PathBuf,
    /// Write a differential flame graph (SVG): red grew, blue shrank, `[new]` only
    /// in NEW, `[only in BASE]` gone.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit with status 1 when a function's total share grew by more than PCT
    /// percentage points.
    #[arg(long, value_name = "PCT")]
    pub fail_above: Option<f64>,
    #[command(flatten)]
    pub table: TableArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A folded or pprof (.pb.gz) profile.
    pub file: PathBuf,
    #[command(flatten)]
    pub table: TableArgs,
}

/// How `diff` and `report` print their tables.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// Show at most N functions per table.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub top: usize,
    /// JSON instead of tables.
    #[arg(long, conflicts_with = "markdown")]
    pub json: bool,
    /// Markdown tables (for $GITHUB_STEP_SUMMARY).
    #[arg(long)]
    pub markdown: bool,
}

/// Output formats, as `--format` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// Interactive flame graph (.svg).
    Svg,
    /// Folded stacks, one line per stack (.folded, .txt).
    Folded,
    /// Gzipped pprof protobuf (.pb.gz), for go tool pprof, Pyroscope, Parca.
    Pprof,
    /// speedscope JSON (.speedscope.json).
    Speedscope,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Svg => Format::Svg,
            FormatArg::Folded => Format::Folded,
            FormatArg::Pprof => Format::Pprof,
            FormatArg::Speedscope => Format::Speedscope,
        }
    }
}

/// Colour palettes offered (inferno's basic palettes).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PaletteArg {
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

impl From<PaletteArg> for Palette {
    fn from(palette: PaletteArg) -> Palette {
        match palette {
            PaletteArg::Kernel => Palette::Kernel,
            PaletteArg::Hot => Palette::Hot,
            PaletteArg::Mem => Palette::Mem,
            PaletteArg::Io => Palette::Io,
            PaletteArg::Red => Palette::Red,
            PaletteArg::Green => Palette::Green,
            PaletteArg::Blue => Palette::Blue,
            PaletteArg::Aqua => Palette::Aqua,
            PaletteArg::Yellow => Palette::Yellow,
            PaletteArg::Purple => Palette::Purple,
            PaletteArg::Orange => Palette::Orange,
        }
    }
}

impl TableArgs {
    fn settings(&self) -> TableSettings {
        let style = if self.json {
            TableStyle::Json
        } else if self.markdown {
            TableStyle::Markdown
        } else {
            TableStyle::Plain
        };
        TableSettings { top: self.top, style }
    }
}

impl Analysis {
    fn command(self) -> Command {
        match self {
            Analysis::Diff(args) => Command::Analyze(settings::Analysis::Diff(DiffSettings {
                table: args.table.settings(),
                base: args.base,
                new: args.new,
                output: args.output,
                fail_above: args.fail_above,
            })),
            Analysis::Report(args) => Command::Analyze(settings::Analysis::Report(ReportSettings {
                table: args.table.settings(),
                file: args.file,
            })),
            Analysis::Doctor(args) => Command::Doctor(DoctorSettings { pid: args.pid, json: args.json }),
        }
    }
}

/// The path the kernel would open: its directory resolved (links, `.`,
/// `..`), so `x.svg`, `./x.svg` and `$PWD/x.svg` are one output. A directory
/// that cannot be resolved is left as written: writing there fails anyway.
fn resolved(path: &Path) -> PathBuf {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    match (dir.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path.to_path_buf(),
    }
}

impl Cli {
    /// Where each output goes and in which format, checked for clashes.
    pub fn outputs(&self) -> Result<Vec<(Destination, Format)>> {
        if let Some(pct) = self.max_unresolved
            && !(0.0..=100.0).contains(&pct)
        {
            return Err(Error::Usage(format!("--max-unresolved {pct} is not a percentage (0 to 100)")));
        }
        let fallback = self.format.map_or(Format::Svg, Format::from);
        if self.output.is_empty() {
            return Ok(vec![(Destination::Stdout, fallback)]);
        }
        let single = self.output.len() == 1;
        let mut outputs: Vec<(Destination, Format)> = Vec::new();
        for path in &self.output {
            let format = match (single, self.format) {
                (true, Some(format)) => format.into(),
                _ => Format::from_path(path).unwrap_or(fallback),
            };
            let destination =
                if path.as_os_str() == "-" { Destination::Stdout } else { Destination::File(path.clone()) };
            let clash = outputs.iter().any(|(d, _)| match (d, &destination) {
                (Destination::Stdout, Destination::Stdout) => true,
                (Destination::File(a), Destination::File(b)) => resolved(a) == resolved(b),
                _ => false,
            });
            if clash {
                return Err(Error::Usage(format!("-o {} is given twice", path.display())));
            }
            outputs.push((destination, format));
        }
        Ok(outputs)
    }

    /// What this invocation asks for, checked: analysis, or a recording.
    pub fn into_command(mut self) -> Result<Command> {
        match self.analysis.take() {
            Some(subcommand) => Ok(subcommand.command()),
            None => self.into_run_settings().map(Command::Record),
        }
    }

    fn into_run_settings(self) -> Result<RunSettings> {
        let usage = |msg: String| Err(Error::Usage(msg));
        if !(1..=100_000).contains(&self.frequency) {
            return usage(format!("-F {} is out of range: use 1 to 100000 Hz", self.frequency));
        }
        let duration = match self.duration {
            None => None,
            Some(secs) if secs.is_finite() && secs > 0.0 && secs < 1e9 => Some(Duration::from_secs_f64(secs)),
            Some(secs) => return usage(format!("-d {secs} is not a positive number of seconds")),
        };
        if self.pid.contains(&0) {
            return usage("-p 0 is not a process: give the PID of a running process".into());
        }
        // clap takes a bare trailing `--` as no command at all: that would
        // quietly profile the whole system instead.
        if self.command.is_empty() && std::env::args_os().last().is_some_and(|a| a == "--") {
            return usage("nothing follows `--`: give the command to profile, e.g. `-- ./my-program args`".into());
        }
        if self.summary_json.as_deref().is_some_and(|p| p.as_os_str() == "-") {
            return usage("--summary-json needs a file path (stdout carries the profile)".into());
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
        if let Some(max) = self.max_block
            && max < self.min_block
        {
            return usage(format!("--max-block {max} is below --min-block {}", self.min_block));
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
        let event = SamplingEvent::from(self.event);
        if event != SamplingEvent::CpuClock {
            match mode {
                Mode::OnCpu => {}
                Mode::OffCpu => {
                    return usage(format!(
                        "-e {} picks the on-CPU sampling event, and --off-cpu samples none: drop -e",
                        event.name()
                    ));
                }
                // A cycles sample is not a fixed slice of time, and --wall
                // adds on-CPU samples to off-CPU time.
                Mode::Wall => {
                    return usage(format!(
                        "--wall counts on-CPU samples as time, which only -e cpu-clock samples: drop -e {}",
                        event.name()
                    ));
                }
            }
        }
        if self.wakers && mode == Mode::OnCpu {
            return usage("--wakers joins waits with their wakers: add --off-cpu or --wall".into());
        }
        if self.call_graph == Some(CallGraph::Table) && self.kernel_only {
            return usage("--call-graph table walks user stacks, and -K keeps none: drop one of them".into());
        }
        if self.call_graph == Some(CallGraph::Dwarf) {
            if mode != Mode::OnCpu {
                return usage(
                    "--call-graph dwarf works for on-CPU profiles only: use --call-graph table to walk off-CPU stacks without frame pointers"
                        .into(),
                );
            }
            if self.kernel_only {
                return usage("--call-graph dwarf walks user stacks, and -K keeps none: drop one of them".into());
            }
        }
        let outputs = self.outputs()?;
        let title = self.title.unwrap_or_else(|| default_title(mode).to_string());
        let record = RecordSettings {
            target,
            mode,
            duration,
            frequency: self.frequency,
            event,
            kernel_frames: !self.user_only,
            user_frames: !self.kernel_only,
            user_walk: match self.call_graph {
                None => UserWalk::Best,
                Some(CallGraph::Fp) => UserWalk::FramePointers,
                Some(CallGraph::Dwarf) => UserWalk::StackCopy,
                Some(CallGraph::Table) => UserWalk::Tables,
            },
            table_memory_bytes: self.table_memory.saturating_mul(1 << 20),
            min_block_us: self.min_block,
            max_block_us: self.max_block,
            include_preempted: self.include_preempted,
            state_marker: self.state_marker,
            wakers: self.wakers,
            stack_map_entries: self.stack_map_entries,
            count_map_entries: self.count_map_entries,
            preallocate_maps: self.preallocate_maps,
            ignore_switch_in_every: self.ignore_switch_in_every,
            timers_per_thread: self.timers_per_thread.clamp(1, 4),
            other_users: self.other_users,
            debuginfod: DebuginfodSettings {
                enabled: !self.no_debuginfod,
                timeout: Duration::from_secs(
                    self.debuginfod_timeout
                        .or_else(|| std::env::var("DEBUGINFOD_TIMEOUT").ok()?.trim().parse().ok())
                        .unwrap_or(10),
                ),
            },
        };
        let output = OutputSettings {
            per_thread: self.per_thread,
            outputs,
            summary_json: self.summary_json.map(Destination::File),
            max_unresolved_percent: self.max_unresolved,
            svg: SvgOptions {
                title,
                width: self.width,
                min_width: self.min_width,
                inverted: self.inverted,
                reverse: self.reverse,
                palette: self.colors.into(),
            },
        };
        Ok(RunSettings { record, output })
    }
}

fn default_title(mode: Mode) -> &'static str {
    match mode {
        Mode::OnCpu => "On-CPU Flame Graph",
        Mode::OffCpu => "Off-CPU Time Flame Graph",
        Mode::Wall => "Wall-Clock Time Flame Graph (on-CPU and off-CPU)",
    }
}

#[cfg(test)]
mod ci_tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("flameprof").chain(args.iter().copied())).expect("parses")
    }

    #[test]
    fn several_outputs_take_their_format_from_the_extension() {
        let cli = parse(&[
            "-o",
            "a.svg",
            "-o",
            "a.pb.gz",
            "-o",
            "a.speedscope.json",
            "-o",
            "a.data",
            "--format",
            "folded",
            "--",
            "true",
        ]);
        let formats: Vec<Format> = cli.outputs().unwrap().into_iter().map(|(_, f)| f).collect();
        assert_eq!(formats, [Format::Svg, Format::Pprof, Format::Speedscope, Format::Folded]);
        // A single output: --format wins, as before.
        let cli = parse(&["-o", "a.svg", "--format", "pprof"]);
        assert_eq!(cli.outputs().unwrap()[0].1, Format::Pprof);
        assert_eq!(cli.into_run_settings().unwrap().output.outputs[0].1, Format::Pprof);
        assert!(parse(&["-o", "a.svg", "-o", "a.svg"]).outputs().is_err());
        assert!(parse(&["-o", "a.svg", "-o", "./a.svg"]).outputs().is_err());
        assert!(parse(&["-o", "/tmp/a.svg", "-o", "/tmp/../tmp/a.svg"]).outputs().is_err());
        assert!(parse(&["-o", "a.svg", "-o", "b/a.svg"]).outputs().is_ok());
        assert!(parse(&["--max-unresolved", "120"]).outputs().is_err());
    }

    #[test]
    fn subcommands_and_recording_flags_do_not_mix() {
        let cli = parse(&["diff", "a.pb.gz", "b.folded", "--fail-above", "5"]);
        assert!(matches!(cli.analysis, Some(Analysis::Diff(ref d)) if d.fail_above == Some(5.0)));
        let cli = parse(&["report", "a.pb.gz", "--top", "3", "--markdown"]);
        assert!(matches!(cli.analysis, Some(Analysis::Report(ref r)) if r.table.top == 3 && r.table.markdown));
        // After `--`, `diff` is a command to profile.
        let cli = parse(&["-F", "999", "--", "diff", "x", "y"]);
        assert!(cli.analysis.is_none());
        assert_eq!(cli.command, ["diff", "x", "y"]);
        assert!(Cli::try_parse_from(["flameprof", "-F", "99", "report", "a"]).is_err());
    }
}
