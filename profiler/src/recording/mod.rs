//! One recording, from attaching the probes to reading back their counts:
//! when to stop (duration, Ctrl-C, the target's end) and snapshotting each
//! new process so it can be symbolized even after it exits.
pub(crate) mod bpf;
mod command;
mod copy_reader;
mod drained;
mod dwarf_copies;
pub mod kernel;
mod leaf_fixup;
mod mapping_generations;
pub mod off_cpu;
pub mod packed;
pub mod pids;
pub mod privileges;
pub(crate) mod proc;
mod reported_mappings;
mod sampling_event;
pub(crate) mod sideband;
mod snapshots;
pub(crate) mod unwind_tables;

use std::{
    collections::HashMap,
    io::IsTerminal,
    time::{Duration, Instant},
};

use profiler_ebpf::{StackKey, counter, notice};
use symbolize::Symbolizer;

pub use bpf::Counters;
pub use command::CommandExit;
pub use dwarf_copies::UnwindStats;
pub use leaf_fixup::LeafFixups;
pub use off_cpu::{WokenTime, waiting_at_start::WaitingAtStart};
pub use unwind_tables::TableStats;

use crate::{
    error::{Error, Result},
    profile::symbolized::SymbolizedCounts,
    settings::{Mode, RecordSettings, SamplingEvent, Target, UserWalk},
    signals,
};
use bpf::{ProbeSettings, Probes, SamplingScope};
use command::GatedCommand;
use copy_reader::CopyReader;
pub use drained::DrainStats;
use drained::DrainedCounts;
use dwarf_copies::UnwoundStacks;
use kernel::features::{Feature, KernelFeatures};
use mapping_generations::MappingGenerations;
use off_cpu::{OffCpu, waiting_at_start};
use packed::PackedStack;
use pids::Seen;
use reported_mappings::ReportedMappings;
use sideband::timeline::Follow;
use snapshots::Snapshots;

/// Whose processes a recording may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    AllProcesses,
    /// Only processes the user running flameprof could ptrace (a run with
    /// capabilities, not as root, without --other-users): -p of another
    /// user's process and -a are refused, and the stacks of a command's
    /// descendants that became another user's (a set-id exec) are left out.
    OwnProcesses,
}

/// How often the recording loop looks at its stop conditions and snapshots.
const POLL: Duration = Duration::from_millis(50);

/// What the kernel side counted, before symbolization.
pub struct Recording {
    /// Counts read at the end (the drained ones are in `on_cpu_symbolized`).
    pub on_cpu: Vec<(PackedStack, u64)>,
    /// Counts drained while recording, symbolized (process ids final).
    pub on_cpu_symbolized: SymbolizedCounts,
    /// As `on_cpu_symbolized`, in nanoseconds off CPU.
    pub off_cpu_symbolized: SymbolizedCounts,
    /// On-CPU samples whose stack reached the frame limit (drained or not).
    pub samples_at_depth_limit: u64,
    /// The processes of `on_cpu` and `off_cpu`, whose raw keys (2 KiB
    /// each) are dropped once symbolized (`profile::build`).
    pub raw_processes: Vec<u32>,
    /// The executable mappings of processes forgotten while recording.
    pub modules_of_ended: HashMap<String, symbolize::Mapping>,
    /// What the drain passes did.
    pub drain: DrainStats,
    /// Nanoseconds off CPU per stack.
    pub off_cpu: Vec<(StackKey, u64)>,
    /// `--wakers`: off-CPU waits joined with their wakers (the rest are in `off_cpu`).
    pub woken: Vec<WokenTime>,
    /// `--wakers` was on.
    pub wakers: bool,
    /// `--wakers`: threads woken before the stop that had not run again
    /// (their waits are joined with that waker, up to the stop).
    pub woken_not_run_at_end: u64,
    pub counters: Counters,
    pub elapsed: Duration,
    pub process_names: HashMap<u32, String>,
    /// How `-- CMD` ended, once `wait_for_command` ran.
    pub command_exit: Option<CommandExit>,
    /// The command, possibly still running when the recording ended.
    command: Option<GatedCommand>,
    pub stopped_by: StopReason,
    /// Processes whose mappings could not be snapshotted (gone too soon).
    pub snapshot_failures: u64,
    /// What the side-band events reported (None: they could not be opened).
    pub sideband: Option<SidebandSummary>,
    /// Stack ids that could not be read back from the kernel.
    pub missing_stack_ids: u64,
    /// `--call-graph dwarf`: how the user-space unwinds went.
    pub unwind_stats: Option<UnwindStats>,
    /// Off-CPU waits still open at the stop whose thread had run since
    /// (switch-in unseen): corrected by its CPU time, at the end.
    pub open_waits_ended_unseen: u64,
    /// Off-CPU of running processes: threads already blocked at the start.
    pub waiting_at_start: WaitingAtStart,
    /// Processes left out because they became another user's (Access::OwnProcesses).
    pub other_users_left_out: u64,
    /// `--call-graph table`: what the unwind tables cover and cost.
    pub table_stats: Option<TableStats>,
    /// How user stacks were walked (the default resolved for this kernel).
    pub user_walk: UserWalk,
    /// `--call-graph fp`: callers put back above leaves (on-CPU, off-CPU).
    pub leaf_fixups: Option<(LeafFixups, LeafFixups)>,
    /// What the on-CPU samplers counted (None: off-CPU only, no sampler).
    pub event: Option<SamplingEvent>,
    /// `--wakers` with `--call-graph fp`: the leaf fix-up of the wakers'
    /// stacks (weighted by the time of the waits they ended).
    pub waker_leaf_fixups: Option<LeafFixups>,
    /// Code unmapped by targets, each a new mapping generation of its
    /// process (None: this kernel's unmaps cannot be traced).
    pub code_unmaps: Option<CodeUnmaps>,
}

/// Unmaps of code, for the summary.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CodeUnmaps {
    /// Seen by the kernel side (0 where it cannot see them: see
    /// `from_sideband`).
    pub seen: u64,
    /// Generations begun: unmaps reported to user space (those lost with a
    /// full notice ring are counted in `processes.not_announced`: samples
    /// after them may be named from code mapped later), or mappings over
    /// code read from the side-band.
    pub reported: u64,
    /// Of those, begun by user space from the side-band, where the kernel
    /// side cannot see unmaps; and the longest delay from such a mapping
    /// to its generation's start (samples of the new code within it keep
    /// the earlier generation's names).
    pub from_sideband: u64,
    pub from_sideband_max_delay_ms: f64,
    /// Forgotten past the bound per process: samples of those generations
    /// were named from what was mapped later.
    pub forgotten: u64,
}

impl Recording {
    /// Waits for `-- CMD` to end (the recording may have stopped first, by
    /// -d or a signal) and keeps how it ended.
    pub fn wait_for_command(&mut self) {
        if let Some(command) = &mut self.command {
            if command.try_exit().is_none() {
                eprintln!("flameprof: profile written; waiting for the command (pid {}) to exit", command.pid);
            }
            self.command_exit = Some(command.wait_blocking());
        }
    }
}

/// The side-band's figures for the summary.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct SidebandSummary {
    #[serde(flatten)]
    pub records: sideband::SidebandStats,
    /// Processes symbolized from the mappings the kernel reported (the
    /// others, which ran before the recording, from /proc).
    pub processes_from_reports: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    Signal(i32),
    TargetEnded,
}

impl RecordSettings {
    /// `command`: the pid of `-- CMD`, started gated.
    fn probe_settings(&self, command: Option<u32>) -> ProbeSettings {
        ProbeSettings {
            on_cpu_frequency: matches!(self.mode, Mode::OnCpu | Mode::Wall).then_some(self.frequency),
            event: self.event,
            off_cpu: matches!(self.mode, Mode::OffCpu | Mode::Wall),
            filter_targets: !matches!(self.target, Target::System),
            follow_forks: matches!(self.target, Target::Command(_)),
            kernel_frames: self.kernel_frames,
            user_frames: self.user_frames,
            user_walk: self.user_walk,
            table_rows: u32::try_from(self.table_memory_bytes / std::mem::size_of::<profiler_ebpf::UnwindRow>() as u64)
                .unwrap_or(u32::MAX)
                .max(1),
            // Wall-clock time includes waiting for a CPU: --wall keeps it.
            keep_preempted: self.include_preempted || self.mode == Mode::Wall,
            record_state: self.state_marker,
            wakers: self.wakers,
            min_block_ns: self.min_block_us.saturating_mul(1000),
            max_block_ns: self.max_block_us.map(|us| us.saturating_mul(1000)),
            stack_map_entries: self.stack_map_entries,
            count_map_entries: self.count_map_entries,
            // Only perf_event programs need them preallocated.
            preallocate_maps: matches!(self.mode, Mode::OnCpu | Mode::Wall)
                && (self.preallocate_maps || KernelFeatures::get().lacks(Feature::AllocatedMapsInSamplers)),
            // Timers on the targets' own tasks where there are targets (a
            // command from its first instruction; the threads of -p
            // processes), so nobody else is interrupted; one per CPU for -a.
            sampling: match (command, &self.target) {
                (Some(pid), _) => SamplingScope::ProcessTree(pid),
                (None, Target::Processes(pids)) => SamplingScope::Threads(pids.clone(), self.timers_per_thread),
                (None, _) => SamplingScope::EveryCpu,
            },
            ignore_switch_in_every: self.ignore_switch_in_every,
            // A command is held at our gate until we attach: nothing of it
            // waited before the recording.
            waiting_at_start: matches!(self.mode, Mode::OffCpu | Mode::Wall) && command.is_none(),
        }
    }
}

/// Runs the recording. `symbolizer` receives a snapshot of every process as
/// soon as it is seen.
pub fn record(settings: &RecordSettings, access: Access, symbolizer: &mut Symbolizer) -> Result<Recording> {
    if let Target::Processes(pids) = &settings.target {
        for &pid in pids {
            proc::check_pid(pid)?;
            if access == Access::OwnProcesses && proc::invoker_may_read(pid) == Some(false) {
                return Err(Error::OtherUsersProcess(pid));
            }
        }
    }
    if access == Access::OwnProcesses && matches!(settings.target, Target::System) {
        return Err(Error::SystemWideNeedsOtherUsers);
    }
    if matches!(settings.mode, Mode::OnCpu | Mode::Wall) {
        sampling_event::check_available(settings.event, settings.frequency)?;
    }
    // Before the command starts: what this kernel cannot run ends here.
    let settings = &RecordSettings { user_walk: walk_this_kernel_runs(settings)?, ..settings.clone() };
    // Processes found to be another user's (a command's child that ran a
    // set-id program): their stacks are left out at the end.
    let mut other_users = HashMap::new();
    let mut command = match &settings.target {
        Target::Command(argv) => Some(GatedCommand::start(argv)?),
        _ => None,
    };
    let probe_settings = settings.probe_settings(command.as_ref().map(|c| c.pid));
    let records_off_cpu = probe_settings.off_cpu;
    let watches_waiting_at_start = probe_settings.waiting_at_start;
    let records_wakers = probe_settings.off_cpu && probe_settings.wakers;
    let mut probes = Probes::load(probe_settings)?;
    let initial_targets: Vec<u32> = match (&settings.target, &command) {
        (Target::Processes(pids), _) => pids.clone(),
        (_, Some(command)) => vec![command.pid],
        _ => vec![],
    };
    for &pid in &initial_targets {
        probes.add_target(pid)?;
    }
    let mut tables = match settings.user_walk {
        UserWalk::Tables => Some(probes.take_unwind_tables()?),
        _ => None,
    };
    let mut process_names = HashMap::new();
    let mut snapshots = Snapshots::default();
    if let Target::Processes(pids) = &settings.target {
        for &pid in pids {
            if let Some(name) = proc::process_name(pid) {
                process_names.insert(pid, name);
            }
            // Its start is not known here (0): the kernel side's first event
            // of it tells it (and is not taken for an exec, which would drop
            // the snapshot: lost if the process has exited by then).
            if let Some(tables) = &mut tables {
                tables.load_process(pid, 0, None);
            }
            snapshots.announce(symbolizer, pid, 0, None);
            probes.mark_announced(pid)?;
        }
    }
    // Opened before the command is let go, so its exec is reported.
    let follow = match &settings.target {
        Target::System => Follow::Everything,
        _ => Follow::Descendants(initial_targets.iter().copied().collect()),
    };
    let mut reported = match ReportedMappings::open(follow) {
        Ok(reported) => Some(reported),
        Err(error) => {
            eprintln!(
                "flameprof: warning: {}; mappings are read from /proc (short-lived processes may stay unresolved)",
                crate::error::one_line(&error)
            );
            None
        }
    };
    let mut new_processes = probes.take_new_processes()?;
    // `table` copies the stacks of a process's first samples, before its
    // tables are loaded, and unwinds them as `dwarf` does all of them.
    let mut user_copies = match settings.user_walk {
        UserWalk::StackCopy | UserWalk::Tables => {
            let reader = CopyReader::start(probes.take_user_stack_copies()?)
                .map_err(|source| Error::Thread { what: "the reader of stack copies", source })?;
            Some((reader, UnwoundStacks::default()))
        }
        UserWalk::FramePointers | UserWalk::Best => None,
    };
    // Read kallsyms once our programs are loaded: their symbols let the
    // off-CPU stacks be cut where the tracing glue ends.
    probes.attach(|| drop(symbolizer.load_kernel_symbols()))?;
    let started = Instant::now();
    let start_ns = bpf::monotonic_ns();
    let mut waiting_threads = if watches_waiting_at_start {
        let pids = match &settings.target {
            Target::Processes(pids) => Some(&pids[..]),
            _ => None,
        };
        let capture = waiting_at_start::Capture {
            kernel: settings.kernel_frames,
            user: settings.user_frames,
            state_marker: settings.state_marker,
        };
        let found = waiting_at_start::find(pids, &capture, symbolizer);
        let watched = probes.watch_waiting_at_start(&found.tids())?;
        Some(found.confirm(watched, &probes.threads_with_open_waits()?))
    } else {
        None
    };
    if let (Some(tables), Some(command)) = (&mut tables, &command) {
        tables.preload(&command.path);
    }
    if let Some(command) = &mut command {
        command.release()?;
    }

    let fix_leaves = settings.user_walk == UserWalk::FramePointers && settings.user_frames;
    let forget_ended = !records_wakers && settings.user_walk != UserWalk::StackCopy;
    let mut drained = DrainedCounts::new(forget_ended, fix_leaves, user_copies.is_some());
    let mut generations = MappingGenerations::default();
    let progress = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    let mut last_progress = Instant::now();
    let mut last_cleanup = Instant::now();
    let mut deferred_notices: Vec<(u32, u32, u64)> = Vec::new();
    let stopped_by = loop {
        let until_deadline = settings.duration.map_or(POLL, |d| d.saturating_sub(started.elapsed()));
        let sideband_fds = reported.iter().flat_map(ReportedMappings::fds);
        wait_readable(std::iter::once(bpf::ring_fd(&new_processes)).chain(sideband_fds), POLL.min(until_deadline));
        // Stack copies first, the records of the mappings they need after.
        if let Some((reader, unwound)) = &mut user_copies {
            unwound.collect(reader);
        }
        // What the kernel reported first: a notice of a process is handled
        // with its mappings known.
        let mut changed = match &mut reported {
            Some(reported) => reported.update(symbolizer, &mut snapshots, false),
            None => Vec::new(),
        };
        if let Some(reported) = &mut reported {
            begin_generations(reported, &mut probes, &snapshots.pids, &mut generations);
        }
        // Tables first where their files are compiled already (a quick
        // write: until it is in, a process's stacks are walked with frame
        // pointers), then the snapshots of every notice waiting (a
        // millisecond each), then the tables that need compiling: a large
        // file takes seconds (a compiler's LLVM library), and a short-lived
        // process must be read before it ends.
        let mut notices = std::mem::take(&mut deferred_notices);
        while let Some(item) = new_processes.next() {
            if !generations.take_notice(&item) {
                notices.extend(notice_of(&item));
            }
        }
        // A process that began after the reports applied so far (within
        // the last millisecond) has its exec and mappings read a moment
        // later; if they are still not in, it waits for the next pass.
        if let Some(reported) = &mut reported {
            let waits = |reported: &ReportedMappings, &(_, kind, started_ns): &(u32, u32, u64)| {
                kind == notice::ANNOUNCE && reported.not_caught_up(started_ns)
            };
            if notices.iter().any(|notice| waits(reported, notice)) {
                std::thread::sleep(sideband::HOLD_BACK);
                changed.extend(reported.update(symbolizer, &mut snapshots, false));
                begin_generations(reported, &mut probes, &snapshots.pids, &mut generations);
            }
            (deferred_notices, notices) = notices.into_iter().partition(|notice| waits(reported, notice));
        }
        let mut to_compile = Vec::new();
        if let (Some(tables), Some(reported)) = (&mut tables, &reported) {
            // Tables for what just ran or mapped, before its first sample
            // is even announced, where its files are compiled already.
            for pid in changed {
                let announced = snapshots.pids.current_start(pid);
                if let Some((started_ns, image)) = reported.latest_image(pid, announced) {
                    tables.load_compiled_process(pid, started_ns, Some(&image));
                }
            }
        }
        if let Some(tables) = &mut tables {
            for &(pid, kind, started_ns) in &notices {
                // A refresh: a walk met code outside the mappings it has. The
                // live process's own view goes first: the kernel's reports of
                // a mapping just made may not have been read yet (seen on a
                // slow emulated kernel: a hundred samples walked without libc).
                let image = match kind {
                    notice::REFRESH if proc::is_alive(pid) => None,
                    _ => reported.as_ref().and_then(|reported| reported.complete_image(pid, started_ns)),
                };
                if !tables.load_compiled_process(pid, started_ns, image.as_deref()) {
                    to_compile.push((pid, started_ns, image));
                }
            }
        }
        for &(pid, kind, started_ns) in &notices {
            if kind == notice::REFRESH {
                snapshots.refresh(symbolizer, pid);
                continue;
            }
            let known = Known { snapshots: &mut snapshots, names: &mut process_names, other_users: &mut other_users };
            known.announce(symbolizer, pid, started_ns, access, reported.as_mut());
        }
        if let Some(tables) = &mut tables {
            for (pid, started_ns, image) in to_compile {
                tables.load_process(pid, started_ns, image.as_deref());
            }
        }
        snapshots.tick(symbolizer);
        // Ended: gone from /proc, or a later process has its pid (one that
        // was announced: a start not announced yet may be the live one's).
        for (pid, started_ns) in snapshots.take_ended() {
            drained.note_ended(pid, started_ns);
        }
        let pids = &snapshots.pids;
        if let Some(pass) = probes.drain_ended(|pid, started| !proc::is_alive(pid) || pids.superseded(pid, started))? {
            // Stacks unwound from copies go first: the pass may forget the
            // snapshots of ended processes they name.
            if let Some((_, unwound)) = &mut user_copies {
                unwound.unwind_pending(symbolizer, mapped_until(reported.as_ref()));
                drained.take_unwound(unwound.take_counts(), pids, symbolizer);
            }
            drained.take(pass, pids, &mut generations, symbolizer);
        }
        if let Some(tables) = &mut tables {
            // Follow-up reads (the loader mapping libraries after exec, a
            // dlopen): announced and refresh-asked processes were loaded above.
            for pid in snapshots.take_followed_up() {
                tables.load_process(pid, snapshots.pids.current_start(pid), None);
            }
            if last_cleanup.elapsed() >= Duration::from_secs(1) {
                last_cleanup = Instant::now();
                tables.forget_exited();
            }
        }
        if let Some((_, unwound)) = &mut user_copies {
            unwound.unwind_pending(symbolizer, mapped_until(reported.as_ref()));
        }
        if let Some(signal) = signals::received() {
            break StopReason::Signal(signal);
        }
        if settings.duration.is_some_and(|d| started.elapsed() >= d) {
            break StopReason::Duration;
        }
        if let Some(command) = &mut command {
            if command.try_exit().is_some() {
                break StopReason::TargetEnded;
            }
        } else if !initial_targets.is_empty() && !initial_targets.iter().any(|&pid| proc::is_alive(pid)) {
            break StopReason::TargetEnded;
        }
        if progress && last_progress.elapsed() >= Duration::from_millis(500) {
            last_progress = Instant::now();
            let samples = probes.counters().map(|c| c.get(counter::ON_CPU_SAMPLES)).unwrap_or(0);
            eprint!(
                "\rflameprof: recording {:.1} s, {samples} samples (Ctrl-C to stop) ",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let elapsed = started.elapsed();
    let now_ns = bpf::monotonic_ns();
    if let Some(found) = &mut waiting_threads {
        found.note_runs_at_stop();
    }
    probes.stop();
    if let Some(reported) = &mut reported {
        reported.update(symbolizer, &mut snapshots, true);
        begin_generations(reported, &mut probes, &snapshots.pids, &mut generations);
    }
    // Processes announced while the loop was busy (compiling a large file's
    // table) and not read yet: their names and mappings, if they still live.
    let mut late_notices = deferred_notices;
    while let Some(item) = new_processes.next() {
        if !generations.take_notice(&item) {
            late_notices.extend(notice_of(&item));
        }
    }
    for (pid, kind, started_ns) in late_notices {
        if kind == notice::ANNOUNCE {
            let known = Known { snapshots: &mut snapshots, names: &mut process_names, other_users: &mut other_users };
            known.announce(symbolizer, pid, started_ns, access, reported.as_mut());
        }
    }
    let sideband = reported.map(|reported| SidebandSummary {
        records: reported.stats(),
        processes_from_reports: reported.processes_installed,
    });
    let user_copies = user_copies.map(|(reader, mut unwound)| {
        unwound.drain(reader, symbolizer);
        unwound
    });
    snapshots.finish(symbolizer);
    if progress {
        eprint!("\r\x1b[K");
    }
    if let (StopReason::Signal(signal), Some(command)) = (stopped_by, &command) {
        // The command gets the signal that stopped us (Ctrl-C from a
        // terminal reached it already; a SIGTERM from a CI runner did not).
        command.signal(signal);
    }
    let (mut on_cpu, mut missing_stack_ids) = probes.on_cpu_counts()?;
    for (stack, _) in &mut on_cpu {
        stack.mappings_since_ns = generations.end_of(stack.tgid, stack.started_ns, stack.mappings_since_ns);
    }
    let unwind_stats = user_copies.map(|unwound| {
        let stats = unwound.stats;
        on_cpu.extend(unwound.into_counts().iter().map(|(key, n)| (PackedStack::pack(key), *n)));
        stats
    });
    let off_cpu = match records_off_cpu {
        true => off_cpu::collect(&probes, waiting_threads, start_ns, now_ns)?,
        false => OffCpu::default(),
    };
    missing_stack_ids += off_cpu.missing_stack_ids;
    let mut off_cpu_times = off_cpu.times;
    let mut woken = off_cpu.woken;
    let woken_keys = woken.iter_mut().flat_map(|w| [&mut w.wakee, &mut w.waker]);
    generations.bound(off_cpu_times.iter_mut().map(|(key, _)| key).chain(woken_keys));
    // From here on a key's tgid is its process's id: the pid, or for a
    // process whose pid was reused since, an id of its own (pids.rs).
    for (key, _) in &mut on_cpu {
        key.tgid = snapshots.pids.id(key.tgid, key.started_ns);
    }
    for (key, _) in &mut off_cpu_times {
        key.tgid = snapshots.pids.id(key.tgid, key.started_ns);
    }
    for symbolized in [&mut drained.on_cpu, &mut drained.off_cpu] {
        symbolized.rename_processes(|id, started_ns| snapshots.pids.id(id, started_ns));
        symbolized.retain_processes(|id| !other_users.contains_key(&id));
    }
    missing_stack_ids += drained.missing_stack_ids;
    on_cpu.retain(|(key, _)| !other_users.contains_key(&key.tgid));
    off_cpu_times.retain(|(key, _)| !other_users.contains_key(&key.tgid));
    woken.retain(|w| !other_users.contains_key(&w.wakee.tgid));
    // A waker that is another user's keeps its name and kernel stack, as
    // any process outside the targets, but not its user stack.
    for w in woken.iter_mut().filter(|w| other_users.contains_key(&w.waker.tgid)) {
        w.waker.user_depth = 0;
        w.waker.user = [0; profiler_ebpf::MAX_STACK_DEPTH];
    }
    let mut waker_leaf_fixups = None;
    let leaf_fixups = fix_leaves.then(|| {
        let mut off = leaf_fixup::apply(&mut off_cpu_times, symbolizer);
        let (waits, wakers) = leaf_fixup::apply_to_woken(&mut woken, symbolizer);
        off.add(waits);
        off.add(drained.leaf_fixups.1);
        waker_leaf_fixups = Some(wakers).filter(|_| records_wakers);
        let mut on = packed::fix_leaves(&mut on_cpu, symbolizer);
        on.add(drained.leaf_fixups.0);
        (on, off)
    });
    // Nothing is unwound from here on: what the unwinder read goes before
    // the end-of-run symbolization, the run's largest step.
    symbolizer.release_unwind_info();
    let counters = probes.counters()?;
    let samples_at_depth_limit = drained.samples_at_depth_limit
        + drained::samples_at_depth_limit(on_cpu.iter().map(|(k, n)| (k.kernel_depth, k.user_depth, *n)));
    let code_unmaps = (probes.code_unmaps_watched || sideband.is_some()).then(|| CodeUnmaps {
        seen: counters.get(counter::CODE_UNMAPS),
        reported: generations.noted,
        from_sideband: generations.from_sideband,
        from_sideband_max_delay_ms: generations.max_latency_ns as f64 / 1e6,
        forgotten: generations.forgotten,
    });
    Ok(Recording {
        on_cpu,
        on_cpu_symbolized: drained.on_cpu,
        off_cpu_symbolized: drained.off_cpu,
        samples_at_depth_limit,
        raw_processes: Vec::new(),
        modules_of_ended: drained.modules,
        drain: drained.stats,
        off_cpu: off_cpu_times,
        woken,
        wakers: records_wakers,
        woken_not_run_at_end: off_cpu.woken_not_run_at_end,
        other_users_left_out: other_users.len() as u64,
        table_stats: tables.as_ref().map(|tables| tables.stats()),
        user_walk: settings.user_walk,
        leaf_fixups,
        event: matches!(settings.mode, Mode::OnCpu | Mode::Wall).then_some(settings.event),
        waker_leaf_fixups,
        counters,
        elapsed,
        process_names,
        command_exit: None,
        command,
        stopped_by,
        snapshot_failures: snapshots.failures,
        sideband,
        missing_stack_ids,
        unwind_stats,
        open_waits_ended_unseen: off_cpu.open_waits_ended_unseen,
        waiting_at_start: off_cpu.waiting_at_start,
        code_unmaps,
    })
}

/// What the recording knows of each announced process.
struct Known<'a> {
    snapshots: &'a mut Snapshots,
    names: &'a mut HashMap<u32, String>,
    /// Processes found to be another user's (Access::OwnProcesses), with
    /// when that was found (CLOCK_BOOTTIME ns).
    other_users: &'a mut HashMap<u32, u64>,
}

impl Known<'_> {
    /// A process announced by the kernel side: its snapshot, name and owner.
    /// `reported`: what the kernel reported of it, if anything.
    fn announce(
        self,
        symbolizer: &mut Symbolizer,
        pid: u32,
        started_ns: u64,
        access: Access,
        reported: Option<&mut ReportedMappings>,
    ) {
        let image = reported.and_then(|reported| reported.take_image(pid, started_ns));
        let mappings = image.as_ref().map(|(mappings, _)| &mappings[..]);
        if let Seen::Reused { earlier } = self.snapshots.announce(symbolizer, pid, started_ns, mappings) {
            // The pid's earlier process keeps its name and verdict.
            if let Some(name) = self.names.remove(&pid) {
                self.names.insert(earlier, name);
            }
            // A verdict from a read after the new process started (an exec
            // noticed late: /proc already showed the set-id program) is the
            // new process's, not the earlier one's.
            if let Some(found_ns) = self.other_users.remove(&pid) {
                let owner = if found_ns < started_ns { earlier } else { pid };
                self.other_users.insert(owner, found_ns);
            }
        }
        // The name of a process is that of its main thread at exec time:
        // as the kernel reported it, else as /proc shows it now.
        if let Some(name) = image.and_then(|(_, name)| name).or_else(|| proc::process_name(pid)) {
            // After exec the child of `-- CMD` has the command's name: refresh.
            self.names.insert(pid, name);
        }
        if access == Access::OwnProcesses && proc::invoker_may_read(pid) == Some(false) {
            self.other_users.entry(pid).or_insert_with(sideband::boottime_ns);
        }
    }
}

/// The user-stack walk this recording uses on this kernel, or the one line
/// naming the kernel feature it lacks. `UserWalk::Best` is the table walker
/// where the kernel can run it and user frames are wanted, else frame
/// pointers (with one warning line naming what the kernel lacks); a walk
/// asked for by name that cannot run here is an error.
fn walk_this_kernel_runs(settings: &RecordSettings) -> Result<UserWalk> {
    let features = KernelFeatures::get();
    if let Some(missing) = Feature::ALL.into_iter().find(|&f| f.every_recording_needs() && features.lacks(f)) {
        return Err(Error::MissingFeature(missing));
    }
    let walker_needs = [Feature::Btf, Feature::TaskPtRegs];
    Ok(match settings.user_walk {
        UserWalk::Best if !settings.user_frames => UserWalk::FramePointers,
        UserWalk::Best => match features.first_missing(&walker_needs) {
            None => UserWalk::Tables,
            Some(missing) => {
                eprintln!("flameprof: warning: {}", missing.missing_line());
                UserWalk::FramePointers
            }
        },
        UserWalk::Tables | UserWalk::StackCopy => match features.first_missing(&walker_needs) {
            None => settings.user_walk,
            Some(missing) => return Err(Error::MissingFeature(missing)),
        },
        walk => walk,
    })
}

/// Where the kernel side cannot see unmaps, begins a mapping generation of
/// each process the side-band just showed mapping over a file's code (see
/// mapping_generations.rs); else the kernel's own notices did.
fn begin_generations(
    reported: &mut ReportedMappings,
    probes: &mut Probes,
    pids: &pids::Pids,
    generations: &mut MappingGenerations,
) {
    let replaced = reported.take_replaced_code();
    if probes.code_unmaps_watched {
        return;
    }
    for (pid, at_ns) in replaced {
        let started_ns = pids.current_start(pid);
        // After the stop the map is gone: the bound still serves symbolization.
        let _ = probes.begin_mapping_generation(pid, started_ns, at_ns);
        generations.begun_by_user_space(pid, started_ns, at_ns, sideband::boottime_ns());
    }
}

/// (pid, kind, process start) of a NEW_PROCESSES record (a ProcessNotice).
fn notice_of(item: &[u8]) -> Option<(u32, u32, u64)> {
    let word = |at: usize| item.get(at..at + 4).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(u32::from_ne_bytes);
    let started = item.get(8..16).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_ne_bytes)?;
    Some((word(0)?, word(4)?, started))
}

/// Up to when the mappings processes made are known: the side-band's
/// records applied so far (without a side-band, /proc is read at once:
/// nothing to wait for).
fn mapped_until(reported: Option<&ReportedMappings>) -> u64 {
    reported.map_or(u64::MAX, ReportedMappings::applied_until_ns)
}

/// Waits until one of `fds` is readable, or `timeout`.
fn wait_readable(fds: impl Iterator<Item = i32>, timeout: Duration) {
    let mut polls: Vec<libc::pollfd> = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `polls` is a live array of that many pollfds for the duration
    // of the call; an invalid fd only makes poll report POLLNVAL.
    unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout.as_millis() as i32) };
}
