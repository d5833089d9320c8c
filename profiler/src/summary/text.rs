//! The summary as people read it, on stderr at the end of a run.
use std::fmt::Write;

use crate::{recording::StopReason, settings::Mode, summary::RunSummary};

/// The multi-line summary; lines about problems appear only when they happened.
pub fn render(summary: &RunSummary) -> String {
    let mut s = String::new();
    let why = match summary.stopped_by {
        StopReason::Duration => "duration reached".to_string(),
        StopReason::Signal(signal) => format!("stopped by signal {signal}"),
        StopReason::TargetEnded => "target ended".to_string(),
    };
    let _ = writeln!(s, "flameprof: recorded {:.2} s ({why})", summary.duration_seconds);
    if summary.mode != Mode::OffCpu {
        on_cpu_lines(&mut s, summary);
    }
    if summary.mode != Mode::OnCpu {
        off_cpu_lines(&mut s, summary);
    }
    if let Some(f) = &summary.leaf_fixup {
        let (on, off) = (&f.on_cpu_samples, &f.off_cpu_ns);
        if on.callers_inserted + on.callers_missing + off.callers_inserted + off.callers_missing > 0 {
            let _ = writeln!(
                s,
                "  leaf fix-up: callers skipped by the frame-pointer walk put back in {} samples and {:.3} s off CPU; still missing in {} samples and {:.3} s (the leaf had moved its stack pointer)",
                on.callers_inserted,
                off.callers_inserted as f64 / 1e9,
                on.callers_missing,
                off.callers_missing as f64 / 1e9,
            );
        }
    }
    if let Some(t) = &summary.table_unwinding {
        let tables = &t.tables;
        let _ = writeln!(
            s,
            "  table unwinding: {} user stacks, {} complete to the outermost frame; cut short: {} at the {}-frame limit, {} at code without unwind info, {} at a bad frame ({} at a CFA from a register not known there); before their process's tables were loaded: {} on-CPU stacks copied and unwound in user space, {} walked with frame pointers; {} on-CPU walks cut at code outside every known mapping copied and unwound in user space instead ({} left cut: the copy ring was full); {} frames found by frame pointer (code without tables)",
            t.user_stacks,
            t.complete,
            t.at_depth_limit,
            profiler_ebpf::MAX_STACK_DEPTH,
            t.cut_at_code_without_unwind_info,
            t.cut_at_bad_frame,
            t.bad_frames_at_unknown_register,
            t.copied_before_tables_loaded,
            t.before_tables_loaded,
            t.copied_at_code_outside_known_mappings,
            t.not_copied_ring_full,
            t.frames_by_frame_pointer,
        );
        let _ = writeln!(
            s,
            "  unwind tables: {} files ({} without call-frame information, {} did not fit), {} rows, {:.1} of {:.1} MiB, {} processes, built in {:.3} s",
            tables.files_loaded,
            tables.files_without_tables,
            tables.files_not_fitting,
            tables.rows,
            tables.bytes as f64 / (1 << 20) as f64,
            tables.capacity_bytes as f64 / (1 << 20) as f64,
            tables.processes,
            tables.build_seconds,
        );
        if !tables.broken_chains.is_empty() {
            let worst: Vec<String> = tables
                .broken_chains
                .iter()
                .map(|(file, walks)| format!("{} ({walks})", file.rsplit('/').next().unwrap_or(file)))
                .collect();
            let _ = writeln!(s, "  walks cut short most in: {}", worst.join(", "));
        }
    }
    let _ = writeln!(
        s,
        "  stack ids: {} captures took the full-stack path (a stack-id bucket held another stack; counted exactly, not lost)",
        summary.samples.full_stack_path_captures
    );
    let frames = &summary.frames;
    let _ = writeln!(
        s,
        "  processes: {}, distinct stacks: {}, unresolved frames: {:.2}% (weighted by {})",
        frames.processes,
        frames.distinct_stacks,
        frames.unresolved_percent,
        if summary.mode == Mode::OnCpu { "samples" } else { "time" }
    );
    if frames.weighted_unresolved > 0 {
        let causes: Vec<String> = frames.unresolved_by_cause.iter().map(|(cause, n)| format!("{cause} {n}")).collect();
        let modules: Vec<String> = frames.unresolved_top_modules.iter().map(|(m, n)| format!("{m} {n}")).collect();
        let _ = writeln!(s, "  unresolved frames by cause: {}; most in: {}", causes.join(", "), modules.join(", "));
    }
    let debug = &summary.debug_info;
    if debug.stripped_files > 0 {
        let _ = writeln!(
            s,
            "  stripped files: {}, debug files found here {}, through debuginfod {} ({} misses, {:.3} s{}){}",
            debug.stripped_files,
            debug.found_locally,
            debug.found_by_debuginfod,
            debug.debuginfod_misses,
            debug.debuginfod_seconds,
            if debug.debuginfod_gave_up { "; a request ran into the timeout, no more asked" } else { "" },
            match debug.files_without_debug_info.is_empty() {
                true => String::new(),
                false => format!("; without debug info: {}", debug.files_without_debug_info.join(", ")),
            }
        );
    }
    let jit = &summary.jit;
    let perf_map_trouble = jit.perf_map_malformed_lines + jit.perf_maps_cut_at_limit + jit.perf_maps_refused;
    if jit.weighted_frames_named + jit.weighted_frames_without_map_entry + jit.perf_maps_read + perf_map_trouble > 0 {
        let _ = writeln!(
            s,
            "  JIT code: {} frames named through perf maps, {} without a perf map entry (weighted); perf maps: {} read, {} entries, {} malformed lines skipped, {} cut at the size limit, {} refused (symlink, not a regular file, another user's)",
            jit.weighted_frames_named,
            jit.weighted_frames_without_map_entry,
            jit.perf_maps_read,
            jit.perf_map_entries,
            jit.perf_map_malformed_lines,
            jit.perf_maps_cut_at_limit,
            jit.perf_maps_refused,
        );
    }
    let processes = &summary.processes;
    if let Some(reported) = &processes.reported_by_kernel {
        let records = &reported.records;
        let _ = writeln!(
            s,
            "  mappings from the kernel: {} processes symbolized from them; read (of every process, the targets' kept): {} mappings, {} execs, {} forks, {} exits; {} records lost (a ring was full), {} malformed",
            reported.processes_from_reports,
            records.mappings,
            records.execs,
            records.forks,
            records.exits,
            records.lost,
            records.malformed,
        );
    }
    if let Some(unmaps) = processes.code_unmaps.filter(|unmaps| unmaps.reported > 0 || unmaps.seen > 0) {
        let _ = writeln!(
            s,
            "  mapping generations: {} begun (code unmapped: {} seen by the kernel; {} code replacements read from the side-band, at most {:.1} ms late), {} forgotten past the bound: samples are named from the mappings of their time",
            unmaps.reported, unmaps.seen, unmaps.from_sideband, unmaps.from_sideband_max_delay_ms, unmaps.forgotten,
        );
    }
    let counted_lines = [
        (processes.ended_before_snapshot, "processes ended before their mappings could be read"),
        (
            processes.not_announced,
            "processes were not announced while recording (their mappings were read at the end, if they still ran)",
        ),
        (processes.children_not_followed, "child processes of the command were not followed: the target set was full"),
        (frames.stack_ids_not_read_back, "stack ids could not be read back: those stacks show empty"),
        (
            processes.other_users_left_out,
            "processes became another user's (a set-id program) and were left out: run as root or add --other-users",
        ),
    ];
    for (count, what) in counted_lines {
        if count > 0 {
            let _ = writeln!(s, "  {count} {what}");
        }
    }
    if let (Some(status), Some(cpu)) = (summary.command_exit_status, summary.command_cpu_seconds) {
        let _ = writeln!(
            s,
            "  command exit status: {status}, CPU time {cpu:.3} s (user + system, with the children it waited for)"
        );
    }
    s
}

fn on_cpu_lines(s: &mut String, summary: &RunSummary) {
    let samples = &summary.samples;
    let _ = writeln!(
        s,
        "  samples: {} recorded on {}, {} lost ({:.3}%: {} map full, {} map entry not allocated{})",
        samples.recorded,
        summary.event.map_or("-", |event| event.name()),
        samples.lost,
        100.0 * if samples.taken == 0 { 0.0 } else { samples.lost as f64 / samples.taken as f64 },
        summary.map_full(),
        summary.map_no_memory(),
        match &summary.dwarf_unwinding {
            Some(unwinding) => format!(", {} stack copies not drained in time", unwinding.copies_lost),
            None => String::new(),
        },
    );
    let _ = writeln!(
        s,
        "  stacks: {} kernel and {} user stacks unreadable (frames dropped, sample kept); {} at the {}-frame limit",
        samples.kernel_stack_faults,
        samples.user_stack_faults,
        samples.stacks_at_depth_limit,
        profiler_ebpf::MAX_STACK_DEPTH
    );
    if let Some(u) = &summary.dwarf_unwinding {
        let _ = writeln!(
            s,
            "  dwarf unwinding: {} user stacks, {} complete to the outermost frame; cut short: {} at the end of the stack copy, {} at code without unwind info, {} at a bad frame; {} frames found by frame pointer (code without usable call-frame information)",
            u.user_stacks,
            u.complete,
            u.cut_at_stack_copy_end,
            u.cut_at_code_without_unwind_info,
            u.cut_at_bad_frame,
            u.frames_by_frame_pointer
        );
    }
    if samples.second_timer_ticks_dropped > 0 {
        let _ = writeln!(
            s,
            "  {} ticks of a thread's second timer dropped (a thread started while timers were opened inherited one)",
            samples.second_timer_ticks_dropped
        );
    }
    if samples.other_processes_interrupted > 0 {
        let _ = writeln!(
            s,
            "  other processes: interrupted {} times by the sampler (filtered out in the kernel)",
            samples.other_processes_interrupted
        );
    }
}

fn off_cpu_lines(s: &mut String, summary: &RunSummary) {
    let off = &summary.off_cpu;
    let _ = writeln!(
        s,
        "  off-CPU: {} context switches of targets, {} blocks lost; {} blocks started, {} ended, {} preemptions left out",
        off.context_switches, off.blocks_lost, off.blocks_started, off.blocks_ended, off.preemptions_left_out,
    );
    let waiting = off.threads_waiting_at_start_counted
        + off.threads_waiting_at_start_not_counted
        + off.threads_waiting_at_start_unreadable;
    if waiting > 0 {
        let _ = writeln!(
            s,
            "  off-CPU: {} threads were already waiting at the start: their first waits count from the start (stacks read from /proc); not counted: {} that ran again before they were watched or unseen, {} whose stacks /proc would not show",
            off.threads_waiting_at_start_counted,
            off.threads_waiting_at_start_not_counted,
            off.threads_waiting_at_start_unreadable
        );
    }
    if let Some(w) = &summary.wakers {
        let _ = writeln!(
            s,
            "  wakers: {} waits joined with their waker ({} woken but not run again by the end); {} wakeups recorded, {} of them from interrupts; {} waker stacks unreadable (joined with what was read); {} waits ended with no wakeup recorded, {} preemptions (nothing wakes them); {} wakeups lost (map of wakers full)",
            w.waits_joined,
            w.woken_not_run_again_at_end,
            w.wakeups_recorded,
            w.wakeups_from_interrupts,
            w.waker_stacks_unreadable,
            w.waits_without_waker,
            w.waits_preempted,
            w.waker_records_lost
        );
        if let Some(f) = &w.waker_leaf_fixup {
            let s_of = |ns: u64| ns as f64 / 1e9;
            let _ = writeln!(
                s,
                "  wakers: leaf fix-up of the wakers' stacks: callers put back in {:.3} s of waits, still missing in {:.3} s",
                s_of(f.callers_inserted),
                s_of(f.callers_missing)
            );
        }
    }
    if off.switch_ins_not_traced_recovered > 0 {
        let _ = writeln!(
            s,
            "  off-CPU: {} switch-ins were not reported by the kernel's tracepoint; those waits were recovered from the threads' CPU time",
            off.switch_ins_not_traced_recovered
        );
    }
}
