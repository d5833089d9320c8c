//! Off-CPU time: on each context switch, remember when and where the task
//! going out blocked, and when a remembered task comes back, add the time it
//! was away to its stack's total. All in the kernel: no per-switch traffic to
//! user space.
use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel,
        generated::bpf_probe_read_kernel as bpf_probe_read_kernel_raw,
    },
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use profiler_ebpf::{
    BlockedThread, Config, LEAF_WORDS, MAX_STACK_DEPTH, STACK_IN_FULL_MAP, SampleKey, StartedBlock, WokenKey, capture,
    counter, marker,
};

use super::{
    filter::admit,
    leaf,
    maps::{
        JOIN_SCRATCH, OFF_CPU_FULL_STARTS, OFF_CPU_FULL_TIMES, OFF_CPU_STARTS, OFF_CPU_TIMES, SCRATCH,
        WAITING_AT_START, WAKERS, WOKEN_TIMES, add_to, bump, config, counter_value,
    },
    process::Process,
    registers::LeafRegisters,
    stack::{Collision, FaultCounters, capture_ids, capture_whole},
    unwind::{OFF_CPU_WALKERS, WALKER, capture_task_and_kernel, continue_walk, finish, start_user_walk, walk_tid},
};

const FAULTS: FaultCounters =
    FaultCounters { kernel: counter::OFF_CPU_STACK_FAULT, user: counter::OFF_CPU_STACK_FAULT };

/// Bits of `task_struct::__state` (include/linux/sched.h).
const TASK_RUNNING: u32 = 0;
const TASK_INTERRUPTIBLE: u32 = 0x1;
const TASK_UNINTERRUPTIBLE: u32 = 0x2;
/// Set for a task's last switch-out: it never comes back, so it is no wait.
const TASK_DEAD: u32 = 0x80;

/// 1 where sched_switch passes `prev_state` (Linux 5.18+), 0 before; user
/// space sets it before loading, from the tracepoint's BTF. Read-only data:
/// the verifier knows its value and skips the branch that would read a
/// fourth argument the older tracepoint does not have.
#[unsafe(no_mangle)]
static SWITCH_HAS_PREV_STATE: u32 = 1;

#[btf_tracepoint(function = "sched_switch")]
pub fn off_cpu_switch(ctx: BtfTracePointContext) -> i32 {
    try_off_cpu_switch(&ctx, false);
    0
}

/// `--call-graph table`: user stacks walked with the unwind tables. A
/// program of its own: bpf_task_pt_regs (Linux 5.15) must not keep the
/// frame-pointer program from loading on older kernels.
#[btf_tracepoint(function = "sched_switch")]
pub fn off_cpu_switch_table(ctx: BtfTracePointContext) -> i32 {
    try_off_cpu_switch(&ctx, true);
    0
}

#[inline(always)]
fn try_off_cpu_switch(ctx: &BtfTracePointContext, tables: bool) {
    let Some(config) = config() else { return };
    // sched_switch(bool preempt, task_struct *prev, task_struct *next, unsigned int prev_state)
    let preempt: u64 = ctx.arg(0);
    let prev: *const u8 = ctx.arg(1);
    let next: *const u8 = ctx.arg(2);
    // SAFETY: a read of a live, aligned u32 static; volatile, so that the
    // load stays for the verifier to resolve (see SWITCH_HAS_PREV_STATE).
    let prev_state = if unsafe { core::ptr::read_volatile(&SWITCH_HAS_PREV_STATE) } != 0 {
        ctx.arg::<u64>(3)
    } else {
        u64::from(task_state(config, prev, preempt != 0))
    };
    // SAFETY: aya's generated helper bindings are all `unsafe fn`; this
    // helper takes no argument, touches no memory and is allowed in every
    // program type.
    let now = unsafe { bpf_ktime_get_ns() };
    if tables {
        // The table walk ends in tail calls that do not come back: the
        // switch-in is done first.
        switch_in(config, next, now);
        switch_out(ctx, config, prev, preempt != 0, prev_state as u32, now, true);
    } else {
        switch_out(ctx, config, prev, preempt != 0, prev_state as u32, now, false);
        switch_in(config, next, now);
    }
}

/// The current task is `prev`, the one leaving the CPU.
#[inline(always)]
fn switch_out(
    ctx: &BtfTracePointContext,
    config: &Config,
    prev: *const u8,
    preempt: bool,
    state: u32,
    now: u64,
    tables: bool,
) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let (tid, tgid) = (pid_tgid as u32, (pid_tgid >> 32) as u32);
    let process = Process::current(config, tgid);
    if tid == 0 || !admit(config, process) {
        return;
    }
    bump(counter::OFF_CPU_SWITCHES);
    let ran_ns = cpu_time(config, prev);
    // A start still recorded means no tracepoint reported this thread's
    // switch-in (it happens: some tasks' switches are invisible to every
    // tracepoint consumer). It waited from its start until that unseen
    // switch-in, and has run since for ran_ns - started.ran_ns: the wait is
    // the rest.
    if let Some(started) = OFF_CPU_STARTS.get_ptr(&tid) {
        // SAFETY: a pointer just returned by the lookup: non-null, aligned
        // and alive for the run (point 1 in maps.rs). The entry is this
        // thread's, and only this thread's own switch-out (this run) and
        // switch-in, which cannot overlap, write or delete it (point 3 in
        // maps.rs): nothing changes it while the reference lives. The
        // reference is last used before the `remove` below.
        let started = unsafe { &*started };
        let ran_since = ran_ns.saturating_sub(started.ran_ns);
        end_block(config, tid, started, now.saturating_sub(started.since_ns).saturating_sub(ran_since));
        bump(counter::OFF_CPU_SWITCH_IN_UNSEEN);
        let _ = OFF_CPU_STARTS.remove(&tid);
    }
    if state & TASK_DEAD != 0 {
        return;
    }
    let involuntary = preempt || state == TASK_RUNNING;
    if involuntary && config.keep_preempted == 0 {
        bump(counter::OFF_CPU_PREEMPTIONS);
        return;
    }
    let marker = if config.record_state == 0 {
        marker::NONE
    } else if involuntary {
        marker::PREEMPTED
    } else if state & TASK_UNINTERRUPTIBLE != 0 {
        marker::UNINTERRUPTIBLE
    } else if state & TASK_INTERRUPTIBLE != 0 {
        marker::SLEEPING
    } else {
        marker::OTHER
    };
    let mut started = StartedBlock {
        since_ns: now,
        ran_ns,
        key: SampleKey {
            tgid,
            kernel_stack_id: 0,
            user_stack_id: 0,
            marker: 0,
            comm: [0; 16],
            started_ns: 0,
            mappings_since_ns: 0,
            leaf_words: [0; LEAF_WORDS],
        },
    };
    // Table walks have no stack ids, and a wait joined with its waker needs
    // its whole stack in the kernel: both take the full path.
    let full_only = tables || config.wakers != 0;
    let ids =
        if full_only { Err(Collision) } else { capture_ids(ctx, &mut started.key, process, config.capture, &FAULTS) };
    // Frame-pointer walks: the return address a syscall wrapper's caller
    // left on the stack (the wrapper keeps no frame pointer).
    let mut leaf_words = [0; LEAF_WORDS];
    if config.keep_leaf_words != 0 && config.capture & capture::USER != 0 && !tables {
        leaf::return_addresses_at(leaf::saved_user_sp(config), &mut leaf_words);
    }
    let tracked = match ids {
        Ok(()) => {
            started.key.marker = marker;
            started.key.leaf_words = leaf_words;
            OFF_CPU_STARTS.insert(&tid, &started, 0).is_ok()
        }
        Err(_) => {
            let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
                bump(counter::SCRATCH_UNAVAILABLE);
                return;
            };
            // SAFETY: `scratch` is this CPU's SCRATCH slot: non-null, aligned
            // and alive for the run (point 1 in maps.rs). Its only users, the
            // samplers and this program, never overlap on a CPU (point 2 in
            // maps.rs, which assumes a cpu-clock sampler), and user space
            // never touches it: this is the only reference to it while it
            // lives. Any byte pattern is a valid BlockedThread.
            let blocked = unsafe { &mut *scratch };
            blocked.since_ns = now;
            blocked.ran_ns = ran_ns;
            blocked.preempted = involuntary as u32;
            blocked._pad = 0;
            if tables {
                capture_task_and_kernel(ctx, &mut blocked.stack, process, config.capture, true, &FAULTS);
                blocked.stack.marker = marker;
                let regs = LeafRegisters::SavedByKernel;
                if start_user_walk(ctx, &mut blocked.stack, config.capture, regs, tid, &FAULTS) {
                    // SAFETY: a tail call into the off-CPU walker (same
                    // program type, slot filled by user space); it does not
                    // return on success.
                    unsafe { OFF_CPU_WALKERS.tail_call(ctx, WALKER) };
                    finish(&mut blocked.stack, 0, counter::UNWIND_TAIL_CALL_FAILED);
                }
                record_full_block(tid, blocked);
                return;
            } else {
                if !full_only {
                    bump(counter::STACK_ID_COLLISIONS);
                }
                capture_whole(ctx, &mut blocked.stack, process, config.capture, &FAULTS);
            }
            blocked.stack.marker = marker;
            blocked.stack.leaf_words = leaf_words;
            // A stub in the fast map points to the whole record.
            started.key.kernel_stack_id = STACK_IN_FULL_MAP;
            OFF_CPU_FULL_STARTS.insert(&tid, &*blocked, 0).is_ok() && OFF_CPU_STARTS.insert(&tid, &started, 0).is_ok()
        }
    };
    bump(if tracked { counter::OFF_CPU_BLOCKS_STARTED } else { counter::OFF_CPU_STARTS_FULL });
}

/// The walker of off-CPU stacks (`--call-graph table`): walks some frames,
/// then tail-calls itself until the walk ends, then records the block.
/// Loaded on sched_switch like the program that starts the walk (a tail
/// call stays within one program type), never attached.
#[btf_tracepoint(function = "sched_switch")]
pub fn off_cpu_walk(ctx: BtfTracePointContext) -> i32 {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else { return 0 };
    // SAFETY: this CPU's SCRATCH slot, valid for the run and used by one
    // program at a time (points 1 and 2 in maps.rs): the switch-out that
    // filled it tail-called this program, so the walk owns it until it ends.
    let blocked = unsafe { &mut *scratch };
    if !continue_walk(&mut blocked.stack) {
        // SAFETY: a tail call into this same program (OFF_CPU_WALKERS);
        // it does not return on success.
        unsafe { OFF_CPU_WALKERS.tail_call(&ctx, WALKER) };
        finish(&mut blocked.stack, MAX_STACK_DEPTH as u32, counter::UNWIND_DEPTH_LIMIT);
    }
    record_full_block(walk_tid(), blocked);
    0
}

/// Records thread `tid` as blocked with the whole stack in `blocked`: the
/// record in OFF_CPU_FULL_STARTS and a stub pointing to it in OFF_CPU_STARTS
/// (one lookup on switch-in finds either kind).
#[inline(always)]
fn record_full_block(tid: u32, blocked: &BlockedThread) {
    let stub = StartedBlock {
        since_ns: blocked.since_ns,
        ran_ns: blocked.ran_ns,
        key: SampleKey {
            tgid: blocked.stack.tgid,
            kernel_stack_id: STACK_IN_FULL_MAP,
            user_stack_id: 0,
            marker: 0,
            comm: [0; 16],
            started_ns: blocked.stack.started_ns,
            mappings_since_ns: blocked.stack.mappings_since_ns,
            leaf_words: [0; LEAF_WORDS],
        },
    };
    let tracked = tid != 0
        && OFF_CPU_FULL_STARTS.insert(&tid, blocked, 0).is_ok()
        && OFF_CPU_STARTS.insert(&tid, &stub, 0).is_ok();
    bump(if tracked { counter::OFF_CPU_BLOCKS_STARTED } else { counter::OFF_CPU_STARTS_FULL });
}

/// `next` is the task about to run: if it was blocked, account the time.
#[inline(always)]
fn switch_in(config: &Config, next: *const u8, now: u64) {
    // SAFETY: `next` is the tracepoint's `struct task_struct *next`, a valid
    // task. `pointer::add` requires the result to stay inside that
    // task_struct: it does only because `task_pid_offset` is the offset of
    // `task_struct::pid` that user space read from this kernel's BTF (always
    // filled when off-CPU is on, and this program is attached only then).
    // That is an assumption about user space, not checked here.
    let pid_field = unsafe { next.add(config.task_pid_offset as usize) } as *const u32;
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault: at
    // any address it returns an error instead of faulting, so even a wrong
    // offset cannot crash; every bit pattern is a valid u32.
    let Ok(tid) = (unsafe { bpf_probe_read_kernel(pid_field) }) else { return };
    let Some(started) = OFF_CPU_STARTS.get_ptr(&tid) else {
        if config.track_waiting_at_start != 0 {
            end_wait_at_start(tid, now);
        }
        return;
    };
    if config.ignore_switch_in_every != 0 {
        let seen = counter_value(counter::OFF_CPU_BLOCKS_ENDED) + counter_value(counter::OFF_CPU_SWITCH_INS_IGNORED);
        if seen % config.ignore_switch_in_every as u64 == 0 {
            bump(counter::OFF_CPU_SWITCH_INS_IGNORED);
            return;
        }
    }
    // SAFETY: a pointer returned by the lookup above: non-null, aligned and
    // alive for the run (point 1 in maps.rs). The entry is `next`'s, and only
    // its own switch-in (this run) and switch-out, which cannot overlap,
    // write or delete it (point 3 in maps.rs; `tid` is never 0 here, as no
    // entry has that key). The reference is last used before the `remove`.
    let started = unsafe { &*started };
    bump(counter::OFF_CPU_BLOCKS_ENDED);
    end_block(config, tid, started, now.saturating_sub(started.since_ns));
    let _ = OFF_CPU_STARTS.remove(&tid);
}

/// A thread blocked since before the recording (its switch-out was never
/// seen) runs again: its first wait ends now. User space times it.
#[inline(always)]
fn end_wait_at_start(tid: u32, now: u64) {
    if let Some(end) = WAITING_AT_START.get_ptr_mut(&tid) {
        // SAFETY: a pointer just returned by the lookup: non-null, aligned
        // and alive for the run (point 1 in maps.rs). Only this thread's own
        // switch-ins write the entry, one at a time, and user space wrote it
        // once before it could be found here and never deletes it (point 3 in
        // maps.rs; tid 0 is never a key). Plain load and store, no reference.
        unsafe {
            if *end == 0 {
                *end = now;
            }
        }
    }
}

/// Adds a finished wait of `waited` ns to its stack's total (the fast map's
/// key, or the whole stack it points to); the caller removes `started`.
#[inline(always)]
fn end_block(config: &Config, tid: u32, started: &StartedBlock, waited: u64) {
    let recorded = if started.key.kernel_stack_id != STACK_IN_FULL_MAP {
        !within_limits(config, waited) || add_to(&OFF_CPU_TIMES, &started.key, waited).ok()
    } else {
        let recorded = match OFF_CPU_FULL_STARTS.get_ptr(&tid) {
            Some(blocked) => {
                // SAFETY: a pointer just returned by the lookup: non-null,
                // aligned and alive for the run (point 1 in maps.rs). Only
                // this thread's own switch-out and switch-in, one at a time,
                // write or delete its entry (point 3 in maps.rs), so the
                // borrowed record does not change while it is used here; it
                // is not used after the `remove` below.
                let blocked = unsafe { &*blocked };
                let joined = if config.wakers != 0 { join_waker(tid, blocked) } else { None };
                if !within_limits(config, waited) {
                    true
                } else if let Some(key) = joined {
                    add_to(&WOKEN_TIMES, key, waited).ok()
                } else {
                    add_to(&OFF_CPU_FULL_TIMES, &blocked.stack, waited).ok()
                }
            }
            None => true,
        };
        let _ = OFF_CPU_FULL_STARTS.remove(&tid);
        recorded
    };
    if !recorded {
        bump(counter::OFF_CPU_MAP_FULL);
    }
}

/// `--wakers`: the wait of `tid` that just ended joined with the waker
/// recorded during it, built in JOIN_SCRATCH; None when there is none (the
/// wait then counts without a waker). Counts which, and removes the record.
#[inline(always)]
fn join_waker(tid: u32, blocked: &BlockedThread) -> Option<&'static WokenKey> {
    if blocked.preempted != 0 {
        // Still runnable when it left: no wakeup ends such a wait.
        bump(counter::WAITS_PREEMPTED);
        return None;
    }
    let Some(waker) = WAKERS.get_ptr(&tid) else {
        bump(counter::WAITS_WITHOUT_WAKER);
        return None;
    };
    let Some(scratch) = JOIN_SCRATCH.get_ptr_mut(0) else {
        bump(counter::SCRATCH_UNAVAILABLE);
        return None;
    };
    // SAFETY: this CPU's JOIN_SCRATCH slot: non-null, aligned and alive for
    // the run (point 1 in maps.rs); only the sched_switch program uses it,
    // which does not nest on a CPU (point 2), so this is the only reference
    // to it while it lives. Any bytes are a valid WokenKey. Returned as
    // 'static: the slot outlives the run, and the caller uses the key only
    // before the run ends.
    let key = unsafe { &mut *scratch };
    let mut woken_ns = 0u64;
    // SAFETY: `waker` was just returned by the lookup: it points to a live
    // WakerRecord (point 1 in maps.rs); a waker on another CPU may replace
    // the entry meanwhile (see WAKERS in maps.rs), so it is copied with the
    // helper, never referenced. Each destination is a live, writable object
    // of exactly the size given, and every byte pattern is valid for it.
    let copied = unsafe {
        probe_copy(&mut woken_ns, core::ptr::addr_of!((*waker).woken_ns))
            && probe_copy(&mut key.waker, core::ptr::addr_of!((*waker).stack))
    };
    let _ = WAKERS.remove(&tid);
    // A record from before this wait was for an earlier one.
    if !copied || woken_ns < blocked.since_ns {
        bump(counter::WAITS_WITHOUT_WAKER);
        return None;
    }
    // SAFETY: `blocked.stack` is a live StackKey borrowed from the caller and
    // `key.wakee` a live, writable one of the same size.
    if !unsafe { probe_copy(&mut key.wakee, &blocked.stack) } {
        bump(counter::WAITS_WITHOUT_WAKER);
        return None;
    }
    bump(counter::WAKEUPS_JOINED);
    Some(key)
}

/// Copies a `T` from `src` into `dst` with bpf_probe_read_kernel: one
/// helper call, where a 2 KiB assignment would become a copy loop the BPF
/// backend does not emit. False (and `dst` zeroed) if it failed.
///
/// # Safety
///
/// `dst` must be writable for size_of::<T>() bytes and hold no value that
/// any bit pattern would make invalid; `src` may be any address (the
/// helper fails instead of faulting).
#[inline(always)]
unsafe fn probe_copy<T>(dst: &mut T, src: *const T) -> bool {
    // SAFETY: per this function's contract; the helper writes exactly
    // size_of::<T>() bytes to `dst`.
    unsafe { bpf_probe_read_kernel_raw((dst as *mut T).cast(), core::mem::size_of::<T>() as u32, src.cast()) == 0 }
}

/// The task's CPU time so far (ns), 0 if unknown.
#[inline(always)]
fn cpu_time(config: &Config, task: *const u8) -> u64 {
    if config.task_runtime_offset == 0 {
        return 0;
    }
    // SAFETY: `task` is the tracepoint's `prev`, a valid task_struct.
    // `pointer::add` requires the result to stay inside it: it does only
    // because `task_runtime_offset` is the offset of `se` plus that of
    // `sched_entity::sum_exec_runtime`, which user space read from this
    // kernel's BTF (an assumption about user space, not checked here).
    let field = unsafe { task.add(config.task_runtime_offset as usize) } as *const u64;
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault: at
    // any address it returns an error instead of faulting; every bit pattern
    // is a valid u64.
    unsafe { bpf_probe_read_kernel(field) }.unwrap_or(0)
}

/// What an older sched_switch (before Linux 5.18) would have said of
/// `prev`'s state: running when preempted, else its `__state` (`state`
/// before 5.14) as it switches out.
#[inline(always)]
fn task_state(config: &Config, task: *const u8, preempt: bool) -> u32 {
    if preempt || config.task_state_offset == 0 {
        return TASK_RUNNING;
    }
    // SAFETY: `task` is the tracepoint's `prev`, a valid task_struct;
    // `task_state_offset` is the offset of its state member, which user
    // space read from this kernel's BTF (an assumption about user space, as
    // in `cpu_time`), so the result stays inside it.
    let field = unsafe { task.add(config.task_state_offset as usize) } as *const u32;
    // SAFETY: bpf_probe_read_kernel returns an error instead of faulting;
    // every bit pattern is a valid u32 (the low half of `state`, a long,
    // before 5.14: the bits that matter on a little-endian kernel).
    unsafe { bpf_probe_read_kernel(field) }.unwrap_or(TASK_RUNNING)
}

/// --min-block / --max-block.
#[inline(always)]
fn within_limits(config: &Config, elapsed: u64) -> bool {
    elapsed >= config.min_block_ns && (config.max_block_ns == 0 || elapsed <= config.max_block_ns)
}
