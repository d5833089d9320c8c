//! `-- CMD` profiles the command and every process it starts: a fork by a
//! target makes the child a target, in the kernel, before it can run.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use profiler_ebpf::counter;

use super::maps::{TARGETS, bump, config};

#[btf_tracepoint(function = "sched_process_fork")]
pub fn follow_fork(ctx: BtfTracePointContext) -> i32 {
    try_follow_fork(&ctx);
    0
}

#[inline(always)]
fn try_follow_fork(ctx: &BtfTracePointContext) {
    let Some(config) = config() else { return };
    if config.follow_forks == 0 {
        return;
    }
    // The current task is the parent.
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only whether an entry exists is used, its value is never read,
    // so a concurrent reuse of the element for another key cannot matter.
    if unsafe { TARGETS.get(&parent_tgid) }.is_none() {
        return;
    }
    let child: *const u8 = ctx.arg(1);
    // SAFETY: `child` is the tracepoint's `struct task_struct *child`, a
    // valid task. `pointer::add` requires the result to stay inside that
    // task_struct: it does only because `task_tgid_offset` is the offset of
    // `task_struct::tgid` that user space read from this kernel's BTF
    // (filled whenever follow_forks is set, and this program is attached
    // only then). That is an assumption about user space, not checked here;
    // `wrapping_add` would not need it.
    let tgid_field = unsafe { child.add(config.task_tgid_offset as usize) } as *const u32;
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault:
    // at any address (unmapped, user, non-canonical) it returns an error
    // instead of faulting, so even a wrong offset cannot crash; it writes
    // only the 4 bytes of its own result, and every bit pattern is a u32.
    let Ok(child_tgid) = (unsafe { bpf_probe_read_kernel(tgid_field) }) else {
        return;
    };
    if child_tgid == parent_tgid {
        return; // a new thread: already covered by its process
    }
    if TARGETS.insert(&child_tgid, &1, 0).is_err() {
        bump(counter::TARGETS_FULL);
    }
}
