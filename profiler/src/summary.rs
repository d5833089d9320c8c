//! The end-of-run summary on stderr, and the one-line health note that
//! outputs carry: how far the profile can be trusted.
use std::fmt::Write;

use profiler_ebpf::counter;

use crate::{
    aggregate::FrameStats,
    session::{Mode, Recording, StopReason},
};

/// Losses and totals of a run, derived from the kernel counters.
pub struct Health {
    pub samples: u64,
    pub kernel_stack_faults: u64,
    pub user_stack_faults: u64,
    pub map_full: u64,
    /// `--call-graph dwarf`: samples lost because the stack-copy ring buffer
    /// was full, or whose copy could not be read back.
    pub copies_lost: u64,
    /// `--call-graph dwarf`: user stacks whose unwind stopped before the
    /// outermost frame (other than at the depth limit).
    pub unwinds_cut: u64,
    /// On-CPU samples with a stack at the depth limit (possibly cut).
    pub full_depth: u64,
    /// Samples or blocks whose stack took the full-stack path (not a loss).
    pub full_stack_path: u64,
    pub off_cpu_switches: u64,
    pub off_cpu_lost: u64,
    pub frames: FrameStats,
}

impl Health {
    pub fn new(recording: &Recording, frames: FrameStats) -> Self {
        let c = &recording.counters;
        Health {
            samples: c.get(counter::ON_CPU_SAMPLES),
            kernel_stack_faults: c.get(counter::KERNEL_STACK_FAULT),
            user_stack_faults: c.get(counter::USER_STACK_FAULT) + c.get(counter::USER_COPY_FAULT),
            map_full: c.get(counter::COUNTS_MAP_FULL) + c.get(counter::SCRATCH_UNAVAILABLE),
            copies_lost: c.get(counter::USER_COPIES_FULL) + recording.unwind_stats.map_or(0, |u| u.malformed),
            unwinds_cut: recording.unwind_stats.map_or(0, |u| u.at_copy_end + u.at_missing_info + u.at_bad_frame),
            full_depth: samples_at_depth_limit(&recording.on_cpu),
            full_stack_path: c.get(counter::STACK_ID_COLLISIONS),
            off_cpu_switches: c.get(counter::OFF_CPU_SWITCHES),
            off_cpu_lost: c.get(counter::OFF_CPU_STARTS_FULL) + c.get(counter::OFF_CPU_MAP_FULL),
            frames,
        }
    }

    /// Samples dropped whole (not recorded at all).
    pub fn lost_samples(&self) -> u64 {
        self.map_full + self.copies_lost
    }

    pub fn unresolved_share(&self) -> f64 {
        ratio(self.frames.unresolved_frames, self.frames.frames)
    }

    /// Share of recorded on-CPU samples whose stacks are complete: no stack
    /// read fault and not cut at the depth limit (a lower bound when a sample
    /// has several problems).
    pub fn complete_stack_share(&self) -> f64 {
        let recorded = self.samples.saturating_sub(self.lost_samples());
        let incomplete = self.kernel_stack_faults + self.user_stack_faults + self.full_depth + self.unwinds_cut;
        if recorded == 0 { 1.0 } else { 1.0 - ratio(incomplete.min(recorded), recorded) }
    }

    /// The health lines every output carries: the one-line summary, then what
    /// is incomplete.
    pub fn lines(&self, recording: &Recording, mode: Mode) -> Vec<String> {
        let mut lines = vec![self.one_line(recording, mode)];
        if mode != Mode::OffCpu {
            lines.push(format!(
                "{:.1}% of samples with a complete stack ({} kernel and {} user stack faults, {} at the depth limit)",
                100.0 * self.complete_stack_share(),
                self.kernel_stack_faults,
                self.user_stack_faults,
                self.full_depth
            ));
        }
        lines
    }

    /// One line for the SVG subtitle.
    pub fn one_line(&self, recording: &Recording, mode: Mode) -> String {
        let mut line = format!("{:.1} s", recording.elapsed.as_secs_f64());
        if mode != Mode::OffCpu {
            let _ = write!(line, ", {} samples, {} lost", self.samples, self.lost_samples());
        }
        if mode != Mode::OnCpu {
            let _ = write!(line, ", {} context switches, {} blocks lost", self.off_cpu_switches, self.off_cpu_lost);
        }
        let _ = write!(line, ", {:.1}% of frames unresolved", 100.0 * self.unresolved_share());
        line
    }
}

fn samples_at_depth_limit(raw: &[(profiler_ebpf::StackKey, u64)]) -> u64 {
    let limit = profiler_ebpf::MAX_STACK_DEPTH as u32;
    raw.iter().filter(|(key, _)| key.kernel_depth >= limit || key.user_depth >= limit).map(|(_, n)| n).sum()
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

/// `--summary-json`: the run as a machine reads it. `outputs` are (path,
/// format) pairs; `max_unresolved` the threshold and whether it was exceeded.
pub fn json(
    recording: &Recording,
    health: &Health,
    mode: Mode,
    outputs: &[(String, &str)],
    max_unresolved: Option<(f64, bool)>,
) -> serde_json::Value {
    let c = &recording.counters;
    let stopped_by = match recording.stopped_by {
        StopReason::Duration => "duration".to_string(),
        StopReason::Signal(signal) => format!("signal {signal}"),
        StopReason::TargetEnded => "target ended".to_string(),
    };
    let round = |share: f64| (share * 1e6).round() / 1e4; // percent, 4 decimals
    serde_json::json!({
        "mode": match mode { Mode::OnCpu => "on-cpu", Mode::OffCpu => "off-cpu", Mode::Wall => "wall" },
        "duration_seconds": recording.elapsed.as_secs_f64(),
        "stopped_by": stopped_by,
        "command_exit_status": recording.command_exit.map(|exit| exit.status),
        "command_cpu_seconds": recording.command_exit.map(|exit| exit.cpu_time.as_secs_f64()),
        "samples": {
            "taken": health.samples,
            "recorded": health.samples.saturating_sub(health.lost_samples()),
            "lost": health.lost_samples(),
            "lost_by_cause": {
                "counts_map_full": c.get(counter::COUNTS_MAP_FULL),
                "scratch_unavailable": c.get(counter::SCRATCH_UNAVAILABLE),
                "stack_copies_not_drained": c.get(counter::USER_COPIES_FULL),
            },
            "complete_stack_percent": round(health.complete_stack_share()),
            "kernel_stack_faults": health.kernel_stack_faults,
            "user_stack_faults": health.user_stack_faults,
            "stacks_at_depth_limit": health.full_depth,
            "full_stack_path_captures": health.full_stack_path,
            "other_processes_interrupted": c.get(counter::ON_CPU_OTHERS_INTERRUPTED),
            "second_timer_ticks_dropped": c.get(counter::ON_CPU_DUPLICATE_TICKS),
        },
        "dwarf_unwinding": recording.unwind_stats.map(|u| serde_json::json!({
            "user_stacks": u.samples,
            "complete": u.complete,
            "cut_at_stack_copy_end": u.at_copy_end,
            "cut_at_code_without_unwind_info": u.at_missing_info,
            "cut_at_bad_frame": u.at_bad_frame,
            "at_depth_limit": u.at_depth_limit,
            "frames_by_frame_pointer": u.frames_by_frame_pointer,
            "copies_lost": health.copies_lost,
        })),
        "off_cpu": {
            "context_switches": health.off_cpu_switches,
            "blocks_lost": health.off_cpu_lost,
            "blocks_lost_by_cause": {
                "starts_map_full": c.get(counter::OFF_CPU_STARTS_FULL),
                "times_map_full": c.get(counter::OFF_CPU_MAP_FULL),
            },
            "threads_waiting_at_start_counted": recording.waiting_at_start.counted,
            "threads_waiting_at_start_not_counted": recording.waiting_at_start.not_counted,
            "threads_waiting_at_start_unreadable": recording.waiting_at_start.unreadable,
            "switch_ins_not_traced_recovered": c.get(counter::OFF_CPU_SWITCH_IN_UNSEEN) + recording.open_waits_ended_unseen,
        },
        "frames": {
            "weighted_total": health.frames.frames,
            "weighted_unresolved": health.frames.unresolved_frames,
            "unresolved_percent": round(health.unresolved_share()),
            "distinct_stacks": health.frames.distinct_stacks,
            "processes": health.frames.processes,
            "stack_ids_not_read_back": recording.missing_stack_ids,
        },
        "processes": {
            "ended_before_snapshot": recording.snapshot_failures,
            "not_announced": c.get(counter::NEW_PROCESS_DROPPED),
            "children_not_followed": c.get(counter::TARGETS_FULL),
        },
        "max_unresolved_percent": max_unresolved.map(|(pct, _)| pct),
        "max_unresolved_exceeded": max_unresolved.map(|(_, exceeded)| exceeded),
        "outputs": outputs.iter().map(|(path, format)| serde_json::json!({ "path": path, "format": format })).collect::<Vec<_>>(),
    })
}

/// The multi-line summary printed on stderr at the end.
pub fn render(recording: &Recording, health: &Health, mode: Mode) -> String {
    let mut s = String::new();
    let why = match recording.stopped_by {
        StopReason::Duration => "duration reached".to_string(),
        StopReason::Signal(signal) => format!("stopped by signal {signal}"),
        StopReason::TargetEnded => "target ended".to_string(),
    };
    let _ = writeln!(s, "flameprof: recorded {:.2} s ({why})", recording.elapsed.as_secs_f64());
    if mode != Mode::OffCpu {
        let _ = writeln!(
            s,
            "  samples: {} recorded, {} lost ({:.3}%: {} map full{})",
            health.samples - health.lost_samples(),
            health.lost_samples(),
            100.0 * ratio(health.lost_samples(), health.samples),
            health.map_full,
            match recording.unwind_stats {
                Some(_) => format!(", {} stack copies not drained in time", health.copies_lost),
                None => String::new(),
            },
        );
        let _ = writeln!(
            s,
            "  stacks: {} kernel and {} user stacks unreadable (frames dropped, sample kept); {} at the {}-frame limit",
            health.kernel_stack_faults,
            health.user_stack_faults,
            health.full_depth,
            profiler_ebpf::MAX_STACK_DEPTH
        );
        if let Some(u) = &recording.unwind_stats {
            let _ = writeln!(
                s,
                "  dwarf unwinding: {} user stacks, {} complete to the outermost frame; cut short: {} at the end of the stack copy, {} at code without unwind info, {} at a bad frame; {} frames found by frame pointer (code without usable call-frame information)",
                u.samples, u.complete, u.at_copy_end, u.at_missing_info, u.at_bad_frame, u.frames_by_frame_pointer
            );
        }
        let duplicates = recording.counters.get(counter::ON_CPU_DUPLICATE_TICKS);
        if duplicates > 0 {
            let _ = writeln!(
                s,
                "  {duplicates} ticks of a thread's second timer dropped (a thread started while timers were opened inherited one)"
            );
        }
        let others = recording.counters.get(counter::ON_CPU_OTHERS_INTERRUPTED);
        if others > 0 {
            let _ = writeln!(
                s,
                "  other processes: interrupted {others} times by the sampler (filtered out in the kernel)"
            );
        }
    }
    if mode != Mode::OnCpu {
        let _ = writeln!(
            s,
            "  off-CPU: {} context switches of targets, {} blocks lost; {} blocks started, {} ended, {} preemptions left out",
            health.off_cpu_switches,
            health.off_cpu_lost,
            recording.counters.get(counter::OFF_CPU_BLOCKS_STARTED),
            recording.counters.get(counter::OFF_CPU_BLOCKS_ENDED),
            recording.counters.get(counter::OFF_CPU_PREEMPTIONS),
        );
        let w = recording.waiting_at_start;
        if w.counted + w.not_counted + w.unreadable > 0 {
            let _ = writeln!(
                s,
                "  off-CPU: {} threads were already waiting at the start: their first waits count from the start (stacks read from /proc); not counted: {} that ran again before they were watched or unseen, {} whose stacks /proc would not show",
                w.counted, w.not_counted, w.unreadable
            );
        }
        let unseen = recording.counters.get(counter::OFF_CPU_SWITCH_IN_UNSEEN) + recording.open_waits_ended_unseen;
        if unseen > 0 {
            let _ = writeln!(
                s,
                "  off-CPU: {unseen} switch-ins were not reported by the kernel's tracepoint; those waits were recovered from the threads' CPU time"
            );
        }
    }
    let _ = writeln!(
        s,
        "  stack ids: {} captures took the full-stack path (a stack-id bucket held another stack; counted exactly, not lost)",
        health.full_stack_path
    );
    let _ = writeln!(
        s,
        "  processes: {}, distinct stacks: {}, unresolved frames: {:.2}% (weighted by {})",
        health.frames.processes,
        health.frames.distinct_stacks,
        100.0 * health.unresolved_share(),
        if mode == Mode::OnCpu { "samples" } else { "time" }
    );
    if recording.snapshot_failures > 0 {
        let _ = writeln!(s, "  {} processes ended before their mappings could be read", recording.snapshot_failures);
    }
    let not_announced = recording.counters.get(counter::NEW_PROCESS_DROPPED);
    if not_announced > 0 {
        let _ = writeln!(
            s,
            "  {not_announced} processes were not announced while recording (their mappings were read at the end, if they still ran)"
        );
    }
    let not_followed = recording.counters.get(counter::TARGETS_FULL);
    if not_followed > 0 {
        let _ =
            writeln!(s, "  {not_followed} child processes of the command were not followed: the target set was full");
    }
    if recording.missing_stack_ids > 0 {
        let _ =
            writeln!(s, "  {} stack ids could not be read back: those stacks show empty", recording.missing_stack_ids);
    }
    if let Some(exit) = recording.command_exit {
        let _ = writeln!(
            s,
            "  command exit status: {}, CPU time {:.3} s (user + system, with the children it waited for)",
            exit.status,
            exit.cpu_time.as_secs_f64()
        );
    }
    s
}
