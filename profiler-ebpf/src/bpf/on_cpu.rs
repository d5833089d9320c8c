//! On-CPU sampling: a perf_event program on cpu-clock timers (one per CPU,
//! or one per task of a command), counting samples per stack in the kernel.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_ns},
    macros::perf_event,
    programs::PerfEventContext,
};
use profiler_ebpf::{Config, LEAF_WORDS, MAX_STACK_DEPTH, SampleKey, StackKey, capture, counter};

use super::{
    filter::admit,
    leaf,
    maps::{LAST_SAMPLE, ON_CPU_COUNTS, ON_CPU_FULL_COUNTS, SCRATCH, add_to, bump, config},
    process::Process,
    registers::LeafRegisters,
    stack::{FaultCounters, capture_ids, capture_whole},
    unwind::{
        ON_CPU_WALKERS, WALKER, Walked, capture_task_and_kernel, finish, start_user_walk, tables_loaded, walk_on,
    },
    user_copy::{CopyOutcome, send_user_copy},
};

const FAULTS: FaultCounters = FaultCounters { kernel: counter::KERNEL_STACK_FAULT, user: counter::USER_STACK_FAULT };

/// How a sampler walks user stacks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Walk {
    /// The kernel's frame-pointer walk (bpf_get_stackid).
    FramePointers,
    /// A copy of the stack sent to user space (`--call-graph dwarf`).
    Copy,
    /// The unwind tables, in the kernel (`--call-graph table`).
    Tables,
}

#[perf_event]
pub fn on_cpu_sample(ctx: PerfEventContext) -> u32 {
    try_on_cpu_sample(&ctx, Walk::FramePointers);
    0
}

/// `--call-graph dwarf`. A program of its own: its helpers
/// (bpf_task_pt_regs, Linux 5.15; a BTF task pointer) must not keep the
/// frame-pointer sampler from loading on kernels without them.
#[perf_event]
pub fn on_cpu_sample_dwarf(ctx: PerfEventContext) -> u32 {
    try_on_cpu_sample(&ctx, Walk::Copy);
    0
}

/// `--call-graph table`, a program of its own for the same reason.
#[perf_event]
pub fn on_cpu_sample_table(ctx: PerfEventContext) -> u32 {
    try_on_cpu_sample(&ctx, Walk::Tables);
    0
}

#[inline(always)]
fn try_on_cpu_sample(ctx: &PerfEventContext, walk: Walk) {
    let Some(config) = config() else { return };
    let pid_tgid = bpf_get_current_pid_tgid();
    let tgid = (pid_tgid >> 32) as u32;
    let process = Process::current(config, tgid);
    if !admit(config, process) {
        if tgid != 0 {
            bump(counter::ON_CPU_OTHERS_INTERRUPTED);
        }
        return;
    }
    if config.min_sample_gap_ns != 0 && second_timer(pid_tgid as u32, config.min_sample_gap_ns) {
        bump(counter::ON_CPU_DUPLICATE_TICKS);
        return;
    }
    bump(counter::ON_CPU_SAMPLES);
    let user_mode = in_user_mode(ctx);
    if walk == Walk::Copy {
        if send_user_copy(ctx, process, config.capture, user_mode, false) == CopyOutcome::RingFull {
            bump(counter::USER_COPIES_FULL);
        }
        return;
    }
    if walk == Walk::Tables {
        // A process's first milliseconds, before user space has loaded its
        // tables: a frame-pointer walk would lose most of a stack built
        // without them, so the stack is copied and unwound in user space.
        // A full ring or no user code: the frame-pointer walk below.
        if config.capture & capture::USER != 0
            && !tables_loaded(process.tgid, process.started_ns)
            && send_user_copy(ctx, process, config.capture, user_mode, true) == CopyOutcome::Sent
        {
            bump(counter::UNWIND_COPIED_BEFORE_TABLES);
            return;
        }
        let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
            bump(counter::SCRATCH_UNAVAILABLE);
            return;
        };
        // SAFETY: as for the full-stack path below: this CPU's SCRATCH slot,
        // valid for the run and used by one program at a time (points 1 and
        // 2 in maps.rs); any byte pattern is a valid StackKey.
        let whole = unsafe { &mut (*scratch).stack };
        let regs = if user_mode {
            // SAFETY: `ctx.ctx` is this perf_event program's
            // `bpf_perf_event_data`, valid for the run; the verifier allows
            // loads from its `regs`, the interrupted (user) registers.
            LeafRegisters::Interrupted(unsafe { &(*ctx.ctx).regs })
        } else {
            LeafRegisters::SavedByKernel
        };
        capture_task_and_kernel(ctx, whole, process, config.capture, !user_mode, &FAULTS);
        if start_user_walk(ctx, whole, config.capture, regs, 0, &FAULTS) {
            // SAFETY: a tail call into the walker (same program type, slot
            // filled by user space); it does not return on success.
            unsafe { ON_CPU_WALKERS.tail_call(ctx, WALKER) };
            // Only reached if the tail call failed (an empty slot).
            finish(whole, 0, counter::UNWIND_TAIL_CALL_FAILED);
        }
        record_sample(whole);
        return;
    }
    let mut key = SampleKey {
        tgid,
        kernel_stack_id: 0,
        user_stack_id: 0,
        marker: 0,
        comm: [0; 16],
        started_ns: 0,
        mappings_since_ns: 0,
        leaf_words: [0; LEAF_WORDS],
    };
    // A sample taken in user mode has no kernel stack: skip asking for it.
    let mut capture_bits = config.capture;
    if user_mode {
        capture_bits &= !capture::KERNEL;
    }
    let mut leaf_words = [0; LEAF_WORDS];
    keep_leaf_words(ctx, config, capture_bits, user_mode, &mut leaf_words);
    let recorded = match capture_ids(ctx, &mut key, process, capture_bits, &FAULTS) {
        Ok(()) => {
            key.leaf_words = leaf_words;
            add_to(&ON_CPU_COUNTS, &key, 1)
        }
        Err(_collision) => {
            let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
                bump(counter::SCRATCH_UNAVAILABLE);
                return;
            };
            // SAFETY: `scratch` is this CPU's SCRATCH slot: non-null, aligned
            // and alive for the run (point 1 in maps.rs). Its only users,
            // this program (perf_event programs do not nest on a CPU) and the
            // sched_switch program (which runs with interrupts off, so this
            // cpu-clock interrupt cannot land inside it), never overlap (point
            // 2 in maps.rs), and user space never touches it: this is the
            // only reference to it while it lives. Any bytes are a valid
            // StackKey.
            let whole = unsafe { &mut (*scratch).stack };
            bump(counter::STACK_ID_COLLISIONS);
            capture_whole(ctx, whole, process, config.capture, &FAULTS);
            whole.leaf_words = leaf_words;
            add_to(&ON_CPU_FULL_COUNTS, whole, 1)
        }
    };
    recorded.bump_on_cpu_loss();
}

/// The walker of on-CPU samples (`--call-graph table`): walks some frames,
/// then tail-calls itself until the walk ends, then counts the sample.
#[perf_event]
pub fn on_cpu_walk(ctx: PerfEventContext) -> u32 {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return 0 };
    // SAFETY: this CPU's SCRATCH slot, valid for the run and used by one
    // program at a time (points 1 and 2 in maps.rs): the sampler that filled
    // it tail-called this program, so the walk owns it until it ends.
    let whole = unsafe { &mut (*scratch).stack };
    let capture_bits = config().map_or(0, |config| config.capture);
    let walked = walk_on(whole, |key| {
        let process = Process { tgid: key.tgid, started_ns: key.started_ns, mappings_since_ns: key.mappings_since_ns };
        let outcome = send_user_copy(&ctx, process, capture_bits, in_user_mode(&ctx), true);
        if outcome == CopyOutcome::RingFull {
            bump(counter::UNWIND_COPY_RING_FULL);
        }
        outcome == CopyOutcome::Sent
    });
    match walked {
        Walked::Copied => return 0,
        Walked::Ended => {}
        Walked::Going => {
            // SAFETY: a tail call into this same program (ON_CPU_WALKERS);
            // it does not return on success.
            unsafe { ON_CPU_WALKERS.tail_call(&ctx, WALKER) };
            // The kernel's tail-call limit (33): more frames than it allows.
            finish(whole, MAX_STACK_DEPTH as u32, counter::UNWIND_DEPTH_LIMIT);
        }
    }
    record_sample(whole);
    0
}

/// The frame-pointer walk's leaf fix-up words (`StackKey::leaf_words`).
#[inline(always)]
fn keep_leaf_words(
    ctx: &PerfEventContext,
    config: &Config,
    capture_bits: u32,
    user_mode: bool,
    words: &mut [u64; LEAF_WORDS],
) {
    if config.keep_leaf_words == 0 || capture_bits & capture::USER == 0 {
        return;
    }
    let sp = if user_mode {
        // SAFETY: `ctx.ctx` is the `bpf_perf_event_data` the kernel passed to
        // this program (as in `in_user_mode`); in user mode its `regs` are the
        // interrupted user registers.
        unsafe { (*ctx.ctx).regs.rsp }
    } else {
        leaf::saved_user_sp(config)
    };
    leaf::return_addresses_at(sp, words);
}

/// Counts one sample of the whole stack `key`.
#[inline(always)]
fn record_sample(key: &StackKey) {
    add_to(&ON_CPU_FULL_COUNTS, key, 1).bump_on_cpu_loss();
}

/// With per-thread timers, whether this tick comes too soon after the
/// thread's last sample to be its own timer's (so it is a second timer's).
/// Records the sample otherwise.
#[inline(always)]
fn second_timer(tid: u32, min_gap_ns: u64) -> bool {
    // SAFETY: aya's generated helper bindings are all `unsafe fn`; this
    // helper takes no argument, touches no memory and is allowed in every
    // program type.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(last) = LAST_SAMPLE.get_ptr_mut(&tid) {
        // SAFETY: a pointer just returned by the lookup: non-null, aligned
        // and alive for the run (point 1 in maps.rs). The key is the current
        // thread, which is current on one CPU only (tid 0, current on every
        // idle CPU, never gets here: `admit` refuses tgid 0), and perf_event
        // programs do not nest on a CPU: only this thread's ticks touch its
        // entry, one at a time. Nothing deletes entries of this map. Plain
        // load and store, no reference.
        unsafe {
            if now.saturating_sub(*last) < min_gap_ns {
                return true;
            }
            *last = now;
        }
        return false;
    }
    let _ = LAST_SAMPLE.insert(&tid, &now, 0);
    false
}

/// The interrupted code ran at privilege level 3 (x86-64 `cs` low bits).
#[inline(always)]
fn in_user_mode(ctx: &PerfEventContext) -> bool {
    // SAFETY: `ctx.ctx` is the `bpf_perf_event_data` pointer the kernel
    // passed to this program (the `#[perf_event]` entry point wraps its
    // argument; nothing here builds another PerfEventContext). It is valid
    // for the run, and the verifier accepts the load only because it reads
    // the `regs` field of the context, rewriting it into a load from the
    // interrupted registers saved by the kernel.
    unsafe { (*ctx.ctx).regs.cs & 3 == 3 }
}
