//! `--wakers`: at each wakeup of a blocked target thread (sched_waking,
//! which runs in the waker's context), record who woke it: the waker's
//! name, kernel stack and user stack, under the wakee's thread id. The
//! wakee's switch-in (off_cpu.rs) joins its wait with this record.
use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{btf_tracepoint, map},
    maps::ProgramArray,
    programs::BtfTracePointContext,
};
use profiler_ebpf::{Config, MAX_STACK_DEPTH, StackKey, WakerRecord, capture, counter, waker};

use super::{
    filter::admit,
    leaf,
    maps::{OFF_CPU_STARTS, WAKER_SCRATCH, WAKERS, bump, config},
    process::Process,
    registers::LeafRegisters,
    stack::{FaultCounters, read_stack},
    unwind::{WALKER, capture_task_and_kernel, continue_walk, finish, start_user_walk, walk_tid},
};

const FAULTS: FaultCounters = FaultCounters { kernel: counter::WAKER_STACK_FAULT, user: counter::WAKER_STACK_FAULT };

/// The waker walker's program array: its own, as a program array serves one
/// attach point of tracing programs (recent kernels refuse tail calls
/// between sched_waking and sched_switch programs).
#[map]
pub static WAKER_WALKERS: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// sched_waking(struct task_struct *p), user stacks by frame pointers.
#[btf_tracepoint(function = "sched_waking")]
pub fn waker_stack(ctx: BtfTracePointContext) -> i32 {
    try_waker_stack(&ctx, false);
    0
}

/// The same with user stacks walked with the unwind tables (a program of
/// its own: bpf_task_pt_regs needs Linux 5.15).
#[btf_tracepoint(function = "sched_waking")]
pub fn waker_stack_table(ctx: BtfTracePointContext) -> i32 {
    try_waker_stack(&ctx, true);
    0
}

#[inline(always)]
fn try_waker_stack(ctx: &BtfTracePointContext, tables: bool) {
    let Some(config) = config() else { return };
    let wakee: *const u8 = ctx.arg(0);
    // SAFETY: `wakee` is the tracepoint's `struct task_struct *p`, a valid
    // task; `pointer::add` stays inside it because `task_pid_offset` is the
    // offset of `task_struct::pid` from this kernel's BTF (filled whenever
    // off-CPU is on, and this program is attached only then): an assumption
    // about user space, not checked here.
    let pid_field = unsafe { wakee.add(config.task_pid_offset as usize) } as *const u32;
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault:
    // it fails instead of faulting at any address; any u32 is valid.
    let Ok(tid) = (unsafe { bpf_probe_read_kernel(pid_field) }) else { return };
    let pid_tgid = bpf_get_current_pid_tgid();
    let (waker_tid, waker_tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    // Only waits being timed; a task waking itself (the one call site where
    // interrupts may be on, see maps.rs point 2) is no wait's end.
    if tid == 0 || tid == waker_tid || OFF_CPU_STARTS.get_ptr(&tid).is_none() {
        return;
    }
    let Some(scratch) = WAKER_SCRATCH.get_ptr_mut(0) else {
        bump(counter::SCRATCH_UNAVAILABLE);
        return;
    };
    // SAFETY: this CPU's WAKER_SCRATCH slot: non-null, aligned and alive for
    // the run (point 1 in maps.rs); only the sched_waking programs use it,
    // with interrupts off, so never two at once on a CPU (point 2), and user
    // space never touches it: the only reference while it lives. Any bytes
    // are a valid WakerRecord.
    let record = unsafe { &mut *scratch };
    // SAFETY: bpf_ktime_get_ns takes no argument and touches no memory.
    record.woken_ns = unsafe { bpf_ktime_get_ns() };
    // The kernel stack always: it tells whether an interrupt is waking.
    // The waker is the current task (sched_waking runs in its context).
    let waker_process = Process::current(config, waker_tgid);
    capture_task_and_kernel(ctx, &mut record.stack, waker_process, capture::KERNEL, true, &FAULTS);
    let interrupt = through_interrupt_entry(config, &record.stack);
    record.stack.marker = if interrupt { waker::INTERRUPT } else { waker::TASK };
    if interrupt {
        bump(counter::WAKEUPS_FROM_INTERRUPT);
    }
    if config.capture & capture::KERNEL == 0 {
        record.stack.kernel_depth = 0;
        record.stack.kernel = [0; MAX_STACK_DEPTH];
    }
    // An interrupt's user stack would be the interrupted task's; a process
    // that is not a target is named, not walked.
    let user = config.capture & capture::USER != 0 && !interrupt && admit(config, waker_process);
    if user {
        if tables {
            let regs = LeafRegisters::SavedByKernel;
            if start_user_walk(ctx, &mut record.stack, config.capture, regs, tid, &FAULTS) {
                // SAFETY: a tail call into the waker walker (same program
                // type and attach point, slot filled by user space); it does
                // not return on success.
                unsafe { WAKER_WALKERS.tail_call(ctx, WALKER) };
                finish(&mut record.stack, 0, counter::UNWIND_TAIL_CALL_FAILED);
            }
        } else {
            let user_frames = record.stack.user.as_mut_ptr();
            record.stack.user_depth = read_stack(ctx, user_frames, BPF_F_USER_STACK as u64, FAULTS.user);
            // The leaf fix-up's words, as for every frame-pointer stack.
            if config.keep_leaf_words != 0 {
                leaf::return_addresses_at(leaf::saved_user_sp(config), &mut record.stack.leaf_words);
            }
        }
    }
    record_waker(tid, record);
}

/// The waker's walker (`--call-graph table`): walks some frames, tail-calls
/// itself until the walk ends, then records the waker. Loaded on
/// sched_waking, never attached.
#[btf_tracepoint(function = "sched_waking")]
pub fn waker_walk(ctx: BtfTracePointContext) -> i32 {
    let Some(scratch) = WAKER_SCRATCH.get_ptr_mut(0) else { return 0 };
    // SAFETY: this CPU's WAKER_SCRATCH slot (points 1 and 2 in maps.rs): the
    // sched_waking run that filled it tail-called this program, so the walk
    // owns it until it ends.
    let record = unsafe { &mut *scratch };
    if !continue_walk(&mut record.stack) {
        // SAFETY: a tail call into this same program (WAKER_WALKERS); it
        // does not return on success.
        unsafe { WAKER_WALKERS.tail_call(&ctx, WALKER) };
        finish(&mut record.stack, MAX_STACK_DEPTH as u32, counter::UNWIND_DEPTH_LIMIT);
    }
    record_waker(walk_tid(), record);
    0
}

#[inline(always)]
fn record_waker(wakee_tid: u32, record: &WakerRecord) {
    if wakee_tid == 0 {
        return;
    }
    if WAKERS.insert(&wakee_tid, record, 0).is_ok() {
        bump(counter::WAKEUPS_RECORDED);
    } else {
        bump(counter::WAKERS_FULL);
    }
}

/// True when the kernel stack passes through hardware-interrupt entry code:
/// an interrupt (a timer, a device, an IPI) is doing the wakeup, on top of
/// whatever task it interrupted. A bounded scan, no helper calls.
#[inline(always)]
fn through_interrupt_entry(config: &Config, stack: &StackKey) -> bool {
    let (start, end) = (config.irq_entry_start, config.irq_entry_end);
    if start == 0 || end <= start {
        return false;
    }
    let depth = stack.kernel_depth as usize;
    for index in 0..MAX_STACK_DEPTH {
        if index >= depth {
            break;
        }
        let address = stack.kernel[index];
        if address >= start && address < end {
            return true;
        }
    }
    false
}
