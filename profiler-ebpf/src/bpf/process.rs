//! Which process an event belongs to: its pid alone is not enough once a
//! pid is reused, so every key also carries when the process started (its
//! thread-group leader's `start_boottime`, the start /proc shows), or, once
//! it exec'd during the recording, the exec's time (exec.rs). Its mapping
//! generation (the time it last unmapped code, code_unmap.rs) goes with it.
use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use profiler_ebpf::Config;

use super::maps::{CODE_UNMAPS, EXEC_STARTS};

/// A process: its pid and when it started; and since when its mappings
/// are what they are (`StackKey::mappings_since_ns`).
#[derive(Clone, Copy)]
pub struct Process {
    pub tgid: u32,
    pub started_ns: u64,
    pub mappings_since_ns: u64,
}

impl Process {
    /// The current task's process (`tgid` from bpf_get_current_pid_tgid).
    #[inline(always)]
    pub fn current(config: &Config, tgid: u32) -> Self {
        let started_ns = current_process_start(config, tgid);
        Process { tgid, started_ns, mappings_since_ns: mappings_since(tgid, started_ns) }
    }
}

/// When process (tgid, start) last unmapped code; 0 if it did not.
#[inline(always)]
fn mappings_since(tgid: u32, started_ns: u64) -> u64 {
    // SAFETY: the value is copied out at once; an entry replaced meanwhile
    // (another unmap) gives that unmap's time, as valid for a sample taken
    // at its edge.
    match unsafe { CODE_UNMAPS.get(&tgid) } {
        Some(unmap) if unmap.started_ns == started_ns => unmap.unmapped_ns,
        _ => 0,
    }
}

/// The current process's start as keys carry it: its leader's start, or
/// the time of its exec when it exec'd during the recording.
#[inline(always)]
pub fn current_process_start(config: &Config, tgid: u32) -> u64 {
    let started_ns = leader_start(config);
    // SAFETY: the value is copied out at once; an entry replaced meanwhile
    // (the process exec'd again) gives the other exec's time, which is as
    // valid a start for an event at the exec's edge.
    match unsafe { EXEC_STARTS.get(&tgid) } {
        Some(exec) if started_ns != 0 && exec.leader_started_ns == started_ns => exec.exec_ns,
        _ => started_ns,
    }
}

/// Start time (ns since boot) of the current task's thread-group leader; 0
/// when the offsets are unknown or a read fails.
#[inline(always)]
pub fn leader_start(config: &Config) -> u64 {
    if config.task_group_leader_offset == 0 || config.task_start_offset == 0 {
        return 0;
    }
    // SAFETY: aya's generated helper bindings are all `unsafe fn`; this one
    // takes no argument and only returns the current task's address.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    // `wrapping_add`: the offsets come from this kernel's BTF (user space),
    // but nothing here relies on them being right.
    let leader_field = task.wrapping_add(config.task_group_leader_offset as usize) as *const *const u8;
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault:
    // at any address it returns an error instead of faulting, and it writes
    // only its own result; every bit pattern is a valid pointer value (it is
    // never dereferenced, only read through the same helper).
    let Ok(leader) = (unsafe { bpf_probe_read_kernel(leader_field) }) else { return 0 };
    let start_field = leader.wrapping_add(config.task_start_offset as usize) as *const u64;
    // SAFETY: as above; every bit pattern is a valid u64.
    unsafe { bpf_probe_read_kernel(start_field) }.unwrap_or(0)
}
