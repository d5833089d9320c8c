//! The run summary: every figure of a run (samples, losses by cause, how
//! stacks ended, off-CPU accounting, unresolved frames, JIT code), computed once from
//! the recording. Two renderers read it: `--summary-json` (serde, this
//! module's field names) and the text on stderr (`text`), plus the health
//! lines every output carries.
mod text;

use profiler_ebpf::counter;
use serde::{Serialize, Serializer};
use symbolize::{Symbolizer, UnresolvedReason};

pub use text::render as render_text;

use crate::{
    profile::build::FrameStats,
    recording::{
        LeafFixups, Recording, StopReason, TableStats,
        kernel::features::{Feature, KernelFeatures},
    },
    settings::{Mode, SamplingEvent, UserWalk},
};

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    #[serde(serialize_with = "mode_name")]
    pub mode: Mode,
    pub duration_seconds: f64,
    #[serde(serialize_with = "stop_reason_name")]
    pub stopped_by: StopReason,
    pub command_exit_status: Option<i32>,
    pub command_cpu_seconds: Option<f64>,
    /// How user stacks were walked: "fp", "dwarf" or "table".
    #[serde(serialize_with = "walk_name")]
    pub call_graph: UserWalk,
    /// Kernel features the start-up probes found missing (as `doctor
    /// --json` names them): the run fell back without them.
    pub kernel_lacks: Vec<&'static str>,
    /// What on-CPU sampling counted: "cpu-clock" or "cycles" (`-e`); null
    /// for --off-cpu, which samples nothing.
    #[serde(serialize_with = "event_name")]
    pub event: Option<SamplingEvent>,
    pub samples: Samples,
    pub dwarf_unwinding: Option<DwarfUnwinding>,
    pub table_unwinding: Option<TableUnwinding>,
    /// `--call-graph fp`: callers a frame-pointer walk skipped above a leaf
    /// without its frame set up, put back from the word at sp.
    pub leaf_fixup: Option<LeafFixup>,
    pub off_cpu: OffCpu,
    /// `--wakers` only.
    pub wakers: Option<Wakers>,
    pub frames: Frames,
    pub jit: Jit,
    pub symbolization: Symbolization,
    pub debug_info: DebugInfo,
    pub processes: Processes,
    pub max_unresolved_percent: Option<f64>,
    pub max_unresolved_exceeded: Option<bool>,
    pub outputs: Vec<WrittenOutput>,
    /// flameprof's peak resident memory (VmHWM) once the outputs are
    /// written; `None` where /proc does not say.
    pub peak_memory_mib: Option<f64>,
}

/// The leaf fix-up of frame-pointer walks, on-CPU in samples and off-CPU
/// in nanoseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LeafFixup {
    pub on_cpu_samples: LeafFixups,
    pub off_cpu_ns: LeafFixups,
}

/// On-CPU samples: what was taken, lost and how complete their stacks are.
#[derive(Debug, Clone, Serialize)]
pub struct Samples {
    pub taken: u64,
    pub recorded: u64,
    /// Dropped whole: map full, or (dwarf) copies not drained or unreadable.
    pub lost: u64,
    pub lost_by_cause: SampleLosses,
    /// Recorded samples whose stacks are complete: no read fault, not cut
    /// at the depth limit, no cut unwind (a lower bound when a sample has
    /// several problems).
    #[serde(serialize_with = "percent_4")]
    pub complete_stack_percent: f64,
    pub kernel_stack_faults: u64,
    pub user_stack_faults: u64,
    pub stacks_at_depth_limit: u64,
    /// Samples or blocks whose stack took the full-stack path (not a loss).
    pub full_stack_path_captures: u64,
    pub other_processes_interrupted: u64,
    pub second_timer_ticks_dropped: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SampleLosses {
    /// A map of counts held its max_entries keys (E2BIG).
    pub counts_map_full: u64,
    /// A map of counts could not allocate a new entry below its
    /// max_entries (ENOMEM: entries are allocated on use).
    pub counts_map_no_memory: u64,
    pub scratch_unavailable: u64,
    pub stack_copies_not_drained: u64,
}

/// `--call-graph dwarf`: how the user-space unwinds ended.
#[derive(Debug, Clone, Serialize)]
pub struct DwarfUnwinding {
    pub user_stacks: u64,
    pub complete: u64,
    pub cut_at_stack_copy_end: u64,
    pub cut_at_code_without_unwind_info: u64,
    pub cut_at_bad_frame: u64,
    pub at_depth_limit: u64,
    pub frames_by_frame_pointer: u64,
    /// Copies not drained in time or unreadable: counted in `samples.lost`.
    pub copies_lost: u64,
}

/// `--call-graph table`: how the kernel-side walks ended (one end per user
/// stack walked, on-CPU samples and off-CPU blocks alike) and the tables.
#[derive(Debug, Clone, Serialize)]
pub struct TableUnwinding {
    pub user_stacks: u64,
    pub complete: u64,
    pub at_depth_limit: u64,
    pub cut_at_code_without_unwind_info: u64,
    pub cut_at_bad_frame: u64,
    /// Of those, walks at a CFA from a register whose value the walker did
    /// not know there (a register other than rbx past the first frame).
    pub bad_frames_at_unknown_register: u64,
    /// Walked with frame pointers because the process's tables were not
    /// loaded yet (its first samples).
    pub before_tables_loaded: u64,
    /// On-CPU samples of the same moments whose user stack was copied and
    /// unwound in user space instead (`dwarf_unwinding` tells how those
    /// unwinds ended). Not part of `user_stacks`.
    pub copied_before_tables_loaded: u64,
    /// On-CPU walks cut at code outside every mapping the tables knew
    /// (mostly a library whose tables were not loaded yet), whose user
    /// stack was copied and unwound in user space instead. Not part of
    /// `user_stacks`.
    pub copied_at_code_outside_known_mappings: u64,
    /// Walks that would have been copied so, but the copy ring was full
    /// (user space busy, say compiling tables): kept cut, and counted in
    /// `cut_at_code_without_unwind_info`.
    pub not_copied_ring_full: u64,
    pub walker_unavailable: u64,
    /// Frames walked with the frame pointer (code without tables).
    pub frames_by_frame_pointer: u64,
    pub tables: TableStats,
}

#[derive(Debug, Clone, Serialize)]
pub struct OffCpu {
    pub context_switches: u64,
    pub blocks_lost: u64,
    pub blocks_lost_by_cause: BlockLosses,
    pub blocks_started: u64,
    pub blocks_ended: u64,
    pub preemptions_left_out: u64,
    pub threads_waiting_at_start_counted: u64,
    pub threads_waiting_at_start_not_counted: u64,
    pub threads_waiting_at_start_unreadable: u64,
    pub switch_ins_not_traced_recovered: u64,
}

/// `--wakers`: how waits were joined with who woke them.
#[derive(Debug, Clone, Serialize)]
pub struct Wakers {
    /// Waits joined with their waker: ended in the kernel, plus those of
    /// threads woken before the stop that had not run again.
    pub waits_joined: u64,
    /// Of `waits_joined`: woken, not run again by the end (closed at the stop).
    pub woken_not_run_again_at_end: u64,
    /// Waker records stored (one per wakeup of a blocked target).
    pub wakeups_recorded: u64,
    /// Of `wakeups_recorded`: an interrupt woke the thread (kernel stack only).
    pub wakeups_from_interrupts: u64,
    /// Wakeups whose waker stack (kernel or user) could not be read; joined
    /// with what was read.
    pub waker_stacks_unreadable: u64,
    /// Waits that ended with no wakeup recorded: shown without a waker.
    pub waits_without_waker: u64,
    /// Waits that were preemptions (--wall, --include-preempted): nothing
    /// wakes them; shown without a waker.
    pub waits_preempted: u64,
    /// Wakeups not recorded because the map of wakers was full.
    pub waker_records_lost: u64,
    /// `--call-graph fp`: the leaf fix-up of the wakers' user stacks (in ns
    /// of the waits they ended; the waits' own are under `leaf_fixup`).
    pub waker_leaf_fixup: Option<crate::recording::LeafFixups>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlockLosses {
    pub starts_map_full: u64,
    pub times_map_full: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Frames {
    /// Frames in the profile, each weighted by its stack's weight.
    pub weighted_total: u64,
    pub weighted_unresolved: u64,
    #[serde(serialize_with = "percent_4")]
    pub unresolved_percent: f64,
    /// Distinct stacks of the profile, symbolized.
    pub distinct_stacks: u64,
    pub processes: u64,
    pub stack_ids_not_read_back: u64,
    /// Unresolved frames (weighted) by why they stayed so: `no_mapping`
    /// (no mapping of the process was known for the address), `no_symbol`
    /// (a file without a symbol there), `no_debug_info` (a stripped file
    /// whose debug file was found neither here nor through debuginfod),
    /// `jit_without_map_entry`, and the rarer causes.
    pub unresolved_by_cause: std::collections::BTreeMap<&'static str, u64>,
    /// The modules with the most unresolved frames (weighted), most first.
    pub unresolved_top_modules: Vec<(String, u64)>,
}

/// User-space symbolization: file offsets looked up, and how many an
/// earlier lookup of the same file (another process of one binary) answered.
#[derive(Debug, Clone, Serialize)]
pub struct Symbolization {
    pub file_offsets_looked_up: u64,
    pub answered_from_memory: u64,
    /// Counts of ended processes drained from the kernel while recording
    /// (symbolized then, their raw keys dropped): passes and entries.
    pub drain_passes: u64,
    pub drained_entries: u64,
    /// Time spent symbolizing drained counts while recording.
    pub seconds_while_recording: f64,
    /// Snapshots of ended processes forgotten (their files closed).
    pub snapshots_forgotten: u64,
    /// Parsed files blazesym held at most (counted by file size), and
    /// files evicted to stay within the bound.
    pub parsed_files_peak_mib: f64,
    pub parsed_files_evicted: u64,
    /// Handles on mapped files closed to stay within their bound.
    pub file_handles_closed: u64,
}

/// Debug files of stripped binaries, and debuginfod.
#[derive(Debug, Clone, Serialize)]
pub struct DebugInfo {
    pub stripped_files: u64,
    pub found_locally: u64,
    pub found_by_debuginfod: u64,
    pub debuginfod_misses: u64,
    pub debuginfod_seconds: f64,
    /// A request ran into the timeout, and debuginfod was asked no more.
    pub debuginfod_gave_up: bool,
    /// Stripped files that kept only their dynamic symbols.
    pub files_without_debug_info: Vec<String>,
}

/// JIT code (anonymous executable memory) and the perf maps that name it.
#[derive(Debug, Clone, Serialize)]
pub struct Jit {
    /// Frames of JIT code named through perf maps, weighted like `frames`.
    pub weighted_frames_named: u64,
    /// Frames of JIT code no perf map entry named (part of the unresolved).
    pub weighted_frames_without_map_entry: u64,
    /// Processes whose perf map was read.
    pub perf_maps_read: u64,
    pub perf_map_entries: u64,
    /// Lines that were not `START SIZE name`, skipped.
    pub perf_map_malformed_lines: u64,
    /// Maps not read to their end (size or entry bounds).
    pub perf_maps_cut_at_limit: u64,
    /// Maps not read: a symlink, not a regular file, or another user's.
    pub perf_maps_refused: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Processes {
    pub ended_before_snapshot: u64,
    pub not_announced: u64,
    pub children_not_followed: u64,
    /// Without root and --other-users: processes that became another user's.
    pub other_users_left_out: u64,
    /// What the side-band events reported: mappings, execs, forks, exits,
    /// records lost (a ring was full) or malformed, and how many processes
    /// were symbolized from those reports (None: the events could not be
    /// opened; everything came from /proc).
    pub reported_by_kernel: Option<crate::recording::SidebandSummary>,
    /// Code unmapped by targets (a `dlclose`, a `munmap`): each begins a
    /// new mapping generation of its process, whose samples are symbolized
    /// against the mappings of their time (None: this kernel's unmaps
    /// cannot be traced).
    pub code_unmaps: Option<crate::recording::CodeUnmaps>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WrittenOutput {
    /// `-` for stdout.
    pub path: String,
    pub format: &'static str,
}

impl RunSummary {
    /// Every figure of the run; the outputs and the --max-unresolved verdict
    /// are filled in once known.
    pub fn new(recording: &Recording, frames: FrameStats, symbolizer: &Symbolizer, mode: Mode) -> Self {
        let (perf_maps, debug, lookups) =
            (symbolizer.perf_map_stats(), symbolizer.debug_info_stats(), symbolizer.lookup_stats());
        let parsed = symbolizer.parsed_files();
        let c = &recording.counters;
        let unwinds = recording.unwind_stats;
        let lost_by_cause = SampleLosses {
            counts_map_full: c.get(counter::COUNTS_MAP_FULL),
            counts_map_no_memory: c.get(counter::COUNTS_MAP_NO_MEMORY),
            scratch_unavailable: c.get(counter::SCRATCH_UNAVAILABLE),
            stack_copies_not_drained: c.get(counter::USER_COPIES_FULL),
        };
        let copies_lost = lost_by_cause.stack_copies_not_drained + unwinds.map_or(0, |u| u.malformed);
        let taken = c.get(counter::ON_CPU_SAMPLES);
        let lost = lost_by_cause.counts_map_full
            + lost_by_cause.counts_map_no_memory
            + lost_by_cause.scratch_unavailable
            + copies_lost;
        let recorded = taken.saturating_sub(lost);
        let kernel_stack_faults = c.get(counter::KERNEL_STACK_FAULT);
        let user_stack_faults = c.get(counter::USER_STACK_FAULT) + c.get(counter::USER_COPY_FAULT);
        let stacks_at_depth_limit = recording.samples_at_depth_limit;
        let unwinds_cut = unwinds.map_or(0, |u| u.at_copy_end + u.at_missing_info + u.at_bad_frame);
        let incomplete = kernel_stack_faults + user_stack_faults + stacks_at_depth_limit + unwinds_cut;
        let complete_share = if recorded == 0 { 1.0 } else { 1.0 - ratio(incomplete.min(recorded), recorded) };
        let waiting = recording.waiting_at_start;
        RunSummary {
            mode,
            duration_seconds: recording.elapsed.as_secs_f64(),
            stopped_by: recording.stopped_by,
            command_exit_status: recording.command_exit.map(|exit| exit.status),
            command_cpu_seconds: recording.command_exit.map(|exit| exit.cpu_time.as_secs_f64()),
            call_graph: recording.user_walk,
            kernel_lacks: Feature::ALL
                .into_iter()
                .filter(|&feature| KernelFeatures::get().lacks(feature))
                .map(Feature::id)
                .collect(),
            event: recording.event,
            samples: Samples {
                taken,
                recorded,
                lost,
                lost_by_cause,
                complete_stack_percent: 100.0 * complete_share,
                kernel_stack_faults,
                user_stack_faults,
                stacks_at_depth_limit,
                full_stack_path_captures: c.get(counter::STACK_ID_COLLISIONS),
                other_processes_interrupted: c.get(counter::ON_CPU_OTHERS_INTERRUPTED),
                second_timer_ticks_dropped: c.get(counter::ON_CPU_DUPLICATE_TICKS),
            },
            dwarf_unwinding: unwinds.map(|u| DwarfUnwinding {
                user_stacks: u.samples,
                complete: u.complete,
                cut_at_stack_copy_end: u.at_copy_end,
                cut_at_code_without_unwind_info: u.at_missing_info,
                cut_at_bad_frame: u.at_bad_frame,
                at_depth_limit: u.at_depth_limit,
                frames_by_frame_pointer: u.frames_by_frame_pointer,
                copies_lost,
            }),
            leaf_fixup: recording
                .leaf_fixups
                .map(|(on_cpu_samples, off_cpu_ns)| LeafFixup { on_cpu_samples, off_cpu_ns }),
            table_unwinding: recording.table_stats.clone().map(|tables| {
                let complete = c.get(counter::UNWIND_COMPLETE);
                let at_depth_limit = c.get(counter::UNWIND_DEPTH_LIMIT);
                let no_info = c.get(counter::UNWIND_NO_INFO);
                let bad_frame = c.get(counter::UNWIND_BAD_FRAME);
                let before = c.get(counter::UNWIND_NOT_LOADED);
                let unavailable = c.get(counter::UNWIND_TAIL_CALL_FAILED);
                TableUnwinding {
                    user_stacks: complete + at_depth_limit + no_info + bad_frame + before + unavailable,
                    complete,
                    at_depth_limit,
                    cut_at_code_without_unwind_info: no_info,
                    cut_at_bad_frame: bad_frame,
                    bad_frames_at_unknown_register: c.get(counter::UNWIND_REGISTER_UNKNOWN),
                    before_tables_loaded: before,
                    copied_before_tables_loaded: c.get(counter::UNWIND_COPIED_BEFORE_TABLES),
                    copied_at_code_outside_known_mappings: c.get(counter::UNWIND_COPIED_AT_UNKNOWN_CODE),
                    not_copied_ring_full: c.get(counter::UNWIND_COPY_RING_FULL),
                    walker_unavailable: unavailable,
                    frames_by_frame_pointer: c.get(counter::UNWIND_FP_FRAMES),
                    tables,
                }
            }),
            off_cpu: OffCpu {
                context_switches: c.get(counter::OFF_CPU_SWITCHES),
                blocks_lost: c.get(counter::OFF_CPU_STARTS_FULL) + c.get(counter::OFF_CPU_MAP_FULL),
                blocks_lost_by_cause: BlockLosses {
                    starts_map_full: c.get(counter::OFF_CPU_STARTS_FULL),
                    times_map_full: c.get(counter::OFF_CPU_MAP_FULL),
                },
                blocks_started: c.get(counter::OFF_CPU_BLOCKS_STARTED),
                blocks_ended: c.get(counter::OFF_CPU_BLOCKS_ENDED),
                preemptions_left_out: c.get(counter::OFF_CPU_PREEMPTIONS),
                threads_waiting_at_start_counted: waiting.counted,
                threads_waiting_at_start_not_counted: waiting.not_counted,
                threads_waiting_at_start_unreadable: waiting.unreadable,
                switch_ins_not_traced_recovered: c.get(counter::OFF_CPU_SWITCH_IN_UNSEEN)
                    + recording.open_waits_ended_unseen,
            },
            wakers: recording.wakers.then(|| Wakers {
                waits_joined: c.get(counter::WAKEUPS_JOINED) + recording.woken_not_run_at_end,
                woken_not_run_again_at_end: recording.woken_not_run_at_end,
                wakeups_recorded: c.get(counter::WAKEUPS_RECORDED),
                wakeups_from_interrupts: c.get(counter::WAKEUPS_FROM_INTERRUPT),
                waker_stacks_unreadable: c.get(counter::WAKER_STACK_FAULT),
                waits_without_waker: c.get(counter::WAITS_WITHOUT_WAKER),
                waits_preempted: c.get(counter::WAITS_PREEMPTED),
                waker_records_lost: c.get(counter::WAKERS_FULL),
                waker_leaf_fixup: recording.waker_leaf_fixups,
            }),
            frames: Frames {
                weighted_total: frames.frames,
                weighted_unresolved: frames.unresolved_frames,
                unresolved_percent: 100.0 * ratio(frames.unresolved_frames, frames.frames),
                distinct_stacks: frames.distinct_stacks,
                processes: frames.processes,
                stack_ids_not_read_back: recording.missing_stack_ids,
                unresolved_by_cause: frames.unresolved_by_cause.iter().map(|(c, n)| (cause_name(*c), *n)).collect(),
                unresolved_top_modules: top_modules(&frames.unresolved_by_module, 5),
            },
            symbolization: Symbolization {
                file_offsets_looked_up: lookups.looked_up,
                answered_from_memory: lookups.remembered,
                drain_passes: recording.drain.passes,
                drained_entries: recording.drain.entries,
                seconds_while_recording: recording.drain.symbolizing.as_secs_f64(),
                snapshots_forgotten: recording.drain.snapshots_forgotten,
                parsed_files_peak_mib: parsed.peak_bytes as f64 / (1 << 20) as f64,
                parsed_files_evicted: parsed.evicted,
                file_handles_closed: symbolizer.file_handles_closed(),
            },
            debug_info: DebugInfo {
                stripped_files: debug.stripped_files,
                found_locally: debug.found_locally,
                found_by_debuginfod: debug.found_by_debuginfod,
                debuginfod_misses: debug.debuginfod_misses,
                debuginfod_seconds: debug.debuginfod_time.as_secs_f64(),
                debuginfod_gave_up: debug.debuginfod_gave_up,
                files_without_debug_info: debug.without_debug_info.clone(),
            },
            jit: Jit {
                weighted_frames_named: frames.jit_frames,
                weighted_frames_without_map_entry: frames.jit_frames_unnamed,
                perf_maps_read: perf_maps.maps_read,
                perf_map_entries: perf_maps.entries,
                perf_map_malformed_lines: perf_maps.malformed_lines,
                perf_maps_cut_at_limit: perf_maps.maps_cut_at_limit,
                perf_maps_refused: perf_maps.maps_refused,
            },
            processes: Processes {
                ended_before_snapshot: recording.snapshot_failures,
                not_announced: c.get(counter::NEW_PROCESS_DROPPED),
                children_not_followed: c.get(counter::TARGETS_FULL),
                other_users_left_out: recording.other_users_left_out,
                reported_by_kernel: recording.sideband,
                code_unmaps: recording.code_unmaps,
            },
            max_unresolved_percent: None,
            max_unresolved_exceeded: None,
            outputs: Vec::new(),
            peak_memory_mib: None,
        }
    }

    /// Notes flameprof's peak resident memory so far.
    pub fn note_peak_memory(&mut self) {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:")?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok());
        self.peak_memory_mib = kib.map(|kib| kib as f64 / 1024.0);
    }

    /// Applies `--max-unresolved`: true when the profile is above it.
    pub fn judge_unresolved(&mut self, max_percent: Option<f64>) -> bool {
        let exceeded = max_percent.map(|max| self.frames.unresolved_percent > max);
        self.max_unresolved_percent = max_percent;
        self.max_unresolved_exceeded = exceeded;
        exceeded.unwrap_or(false)
    }

    /// Samples dropped because a map of counts was at its max_entries (not
    /// recorded at all).
    pub fn map_full(&self) -> u64 {
        self.samples.lost_by_cause.counts_map_full + self.samples.lost_by_cause.scratch_unavailable
    }

    /// Samples dropped because a map of counts could not allocate an entry.
    pub fn map_no_memory(&self) -> u64 {
        self.samples.lost_by_cause.counts_map_no_memory
    }

    /// The health lines every output carries: the one-line summary (the SVG
    /// subtitle), then what is incomplete.
    pub fn health_lines(&self) -> Vec<String> {
        let mut lines = vec![self.one_line()];
        if self.mode != Mode::OffCpu {
            lines.push(format!(
                "{:.1}% of samples with a complete stack ({} kernel and {} user stack faults, {} at the depth limit)",
                self.samples.complete_stack_percent,
                self.samples.kernel_stack_faults,
                self.samples.user_stack_faults,
                self.samples.stacks_at_depth_limit
            ));
        }
        lines
    }

    fn one_line(&self) -> String {
        let mut parts = vec![format!("{:.1} s", self.duration_seconds)];
        if self.mode != Mode::OffCpu {
            parts.push(format!("{} samples, {} lost", self.samples.taken, self.samples.lost));
        }
        if self.mode != Mode::OnCpu {
            parts.push(format!(
                "{} context switches, {} blocks lost",
                self.off_cpu.context_switches, self.off_cpu.blocks_lost
            ));
        }
        parts.push(format!("{:.1}% of frames unresolved", self.frames.unresolved_percent));
        parts.join(", ")
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// Percentages in the JSON carry 4 decimals.
fn percent_4<S: Serializer>(percent: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64((percent * 1e4).round() / 1e4)
}

fn walk_name<S: Serializer>(walk: &UserWalk, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match walk {
        UserWalk::FramePointers | UserWalk::Best => "fp",
        UserWalk::StackCopy => "dwarf",
        UserWalk::Tables => "table",
    })
}

fn event_name<S: Serializer>(event: &Option<SamplingEvent>, serializer: S) -> Result<S::Ok, S::Error> {
    match event {
        Some(event) => serializer.serialize_str(event.name()),
        None => serializer.serialize_none(),
    }
}

fn mode_name<S: Serializer>(mode: &Mode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match mode {
        Mode::OnCpu => "on-cpu",
        Mode::OffCpu => "off-cpu",
        Mode::Wall => "wall",
    })
}

fn stop_reason_name<S: Serializer>(reason: &StopReason, serializer: S) -> Result<S::Ok, S::Error> {
    match reason {
        StopReason::Duration => serializer.serialize_str("duration"),
        StopReason::Signal(signal) => serializer.collect_str(&format_args!("signal {signal}")),
        StopReason::TargetEnded => serializer.serialize_str("target ended"),
    }
}

/// The summary's name of an unresolved frame's cause.
fn cause_name(cause: UnresolvedReason) -> &'static str {
    match cause {
        UnresolvedReason::NoSymbol => "no_symbol",
        UnresolvedReason::NoMapping => "no_mapping",
        UnresolvedReason::AnonymousMapping => "anonymous_mapping",
        UnresolvedReason::JitWithoutMapEntry => "jit_without_map_entry",
        UnresolvedReason::NotExecutable => "not_executable",
        UnresolvedReason::FileUnreadable => "file_unreadable",
        UnresolvedReason::Malformed => "malformed",
        UnresolvedReason::ProcessGone => "process_gone",
        UnresolvedReason::KernelSymbolsUnavailable => "kernel_symbols_unavailable",
        UnresolvedReason::Unsupported => "unsupported",
        UnresolvedReason::NoDebugInfo => "no_debug_info",
    }
}

/// The `n` largest counts, largest first (ties by name).
fn top_modules(by_module: &std::collections::HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = by_module.iter().map(|(m, c)| (m.clone(), *c)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    all.truncate(n);
    all
}
