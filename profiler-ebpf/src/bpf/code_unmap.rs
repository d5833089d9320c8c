//! A process that unmaps file-backed code (a `dlclose`, a `munmap`, a
//! mapping made over code) begins a new mapping generation: from then on
//! its keys carry the unmap's time (CODE_UNMAPS, read in process.rs), and
//! user space hears of it (a CODE_UNMAPPED notice). Code mapped later at
//! the same addresses is then never taken for the code sampled before.
//! Seen at `vm_area_free`, which every removal of a mapping goes through;
//! the mapping is still intact there.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_get_current_task, bpf_ktime_get_boot_ns, bpf_probe_read_kernel},
    macros::fentry,
    programs::FEntryContext,
};
use profiler_ebpf::{CodeUnmap, Config, ProcessNotice, counter, notice};

use super::{
    maps::{CODE_UNMAPS, NEW_PROCESSES, TARGETS, bump, config},
    process::current_process_start,
};

/// `vm_flags` bit of executable mappings.
const VM_EXEC: u64 = 0x4;

#[fentry(function = "vm_area_free")]
pub fn note_code_unmap(ctx: FEntryContext) -> i32 {
    let vma: *const u8 = ctx.arg(0);
    if let Some(config) = config() {
        try_note_code_unmap(config, vma);
    }
    0
}

#[inline(always)]
fn try_note_code_unmap(config: &Config, vma: *const u8) {
    if config.vma_flags_offset == 0 || config.vma_file_offset == 0 || config.vma_mm_offset == 0 {
        return;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    // SAFETY: only whether an entry exists is used, never its value.
    if tgid == 0 || (config.filter_targets != 0 && unsafe { TARGETS.get(&tgid) }.is_none()) {
        return;
    }
    // File-backed executable mappings only: anonymous code (JIT) is named
    // through perf maps, where later entries win.
    let flags = read_field::<u64>(vma, config.vma_flags_offset).unwrap_or(0);
    let file = read_field::<u64>(vma, config.vma_file_offset).unwrap_or(0);
    if flags & VM_EXEC == 0 || file == 0 {
        return;
    }
    // A mapping of the current process's own memory: not one freed at an
    // exit or an exec (the task's `mm` is gone or is the new program's by
    // then), nor another process's memory released from here.
    // SAFETY: the helper takes no argument and returns the current task's address.
    let task = unsafe { bpf_get_current_task() } as *const u8;
    let task_mm = read_field::<u64>(task, config.task_mm_offset).unwrap_or(0);
    if task_mm == 0 || read_field::<u64>(vma, config.vma_mm_offset) != Some(task_mm) {
        return;
    }
    let started_ns = current_process_start(config, tgid);
    // SAFETY: the helper takes no argument and only reads a clock.
    let unmapped_ns = unsafe { bpf_ktime_get_boot_ns() };
    // Not recorded (the update failed): later samples keep the earlier
    // generation, as before this program existed.
    let _ = CODE_UNMAPS.insert(&tgid, &CodeUnmap { started_ns, unmapped_ns }, 0);
    bump(counter::CODE_UNMAPS);
    let notice = ProcessNotice { tgid, kind: notice::CODE_UNMAPPED, started_ns, at_ns: unmapped_ns };
    if NEW_PROCESSES.output::<ProcessNotice>(&notice, 0).is_err() {
        bump(counter::NEW_PROCESS_DROPPED);
    }
}

/// A field at `offset` bytes into a kernel structure; None when the read
/// fails.
#[inline(always)]
fn read_field<T>(base: *const u8, offset: u32) -> Option<T> {
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault:
    // at any address it returns an error instead of faulting, and writes
    // only its own result; the callers read integers, valid for any bits.
    // `wrapping_add`: the offsets come from this kernel's BTF (user space),
    // but nothing here relies on them being right.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize) as *const T) }.ok()
}
