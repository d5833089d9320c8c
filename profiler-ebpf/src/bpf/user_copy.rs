//! `--call-graph dwarf`: instead of walking user frame pointers in the
//! kernel, send the user registers and a copy of the user stack to user
//! space, which unwinds it with the binaries' call-frame information.
use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_comm, bpf_probe_read_kernel,
        generated::{bpf_get_stack, bpf_probe_read_user},
    },
    programs::PerfEventContext,
};
use profiler_ebpf::{MAX_STACK_DEPTH, USER_STACK_CHUNK, USER_STACK_COPY_BYTES, UserStackCopy, capture, counter};

use super::{
    maps::{USER_STACK_COPIES, bump},
    process::Process,
    registers::task_user_registers,
};

const CHUNKS: usize = USER_STACK_COPY_BYTES / USER_STACK_CHUNK;
const CHUNK_MASK: u64 = USER_STACK_CHUNK as u64 - 1;

/// What became of a sample offered to USER_STACK_COPIES.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum CopyOutcome {
    Sent,
    /// The ring buffer was full: not sent (the caller counts it as it sees fit).
    RingFull,
    /// No user context (a kernel thread), and the caller asked for one: not sent.
    NoUserContext,
}

/// Sends one sample of `process` to USER_STACK_COPIES, unless
/// `needs_user_context` and the task has no user code to unwind (then the
/// caller's own walk is as good, and cheaper).
#[inline(always)]
pub fn send_user_copy(
    ctx: &PerfEventContext,
    process: Process,
    capture_bits: u32,
    in_user_mode: bool,
    needs_user_context: bool,
) -> CopyOutcome {
    // SAFETY: `ctx` is the context of the perf_event program running
    // (send_user_copy is reached only from the on-CPU samplers that may call
    // bpf_task_pt_regs: the dwarf and table ones), as `user_registers` asks.
    let (ip, sp, bp) = unsafe { user_registers(ctx, in_user_mode) };
    if needs_user_context && ip == 0 {
        return CopyOutcome::NoUserContext;
    }
    let Some(mut entry) = USER_STACK_COPIES.reserve::<UserStackCopy>(0) else {
        return CopyOutcome::RingFull;
    };
    let copy = entry.as_mut_ptr();
    // SAFETY: `copy` points to the record just reserved in the ring buffer:
    // size_of::<UserStackCopy>() bytes, 8-byte aligned, ours alone until
    // `submit` (user space reads a record only once it is submitted). Its
    // bytes are stale (earlier records, or the ring's zeroed pages), which
    // every field, all plain integers, accepts: fields are assigned through
    // the raw pointer (nothing to drop), and `.as_mut_ptr()` takes only brief
    // `&mut` borrows of `kernel` and `stack`. bpf_get_stack gets this
    // program's context and `kernel`, which holds exactly `bytes`, the most
    // it writes. `copy_stack`'s contract holds: `stack` has
    // USER_STACK_COPY_BYTES + USER_STACK_CHUNK bytes that nothing else uses.
    unsafe {
        (*copy).tgid = process.tgid;
        (*copy).started_ns = process.started_ns;
        (*copy)._pad = 0;
        (*copy).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*copy).kernel_depth = 0;
        if capture_bits & capture::KERNEL != 0 && !in_user_mode {
            let bytes = (MAX_STACK_DEPTH * 8) as u32;
            let written = bpf_get_stack(ctx.as_ptr(), (*copy).kernel.as_mut_ptr().cast(), bytes, 0);
            if written > 0 {
                (*copy).kernel_depth = written as u32 / 8;
            } else if written < 0 {
                bump(counter::KERNEL_STACK_FAULT);
            }
        }
        (*copy).ip = ip;
        (*copy).sp = sp;
        (*copy).bp = bp;
        (*copy).stack_len = copy_stack((*copy).stack.as_mut_ptr(), sp);
        // ip 0: no user context at all (a kernel thread), as an empty stack
        // on the frame-pointer path; not a fault.
        if (*copy).stack_len == 0 && ip != 0 {
            bump(counter::USER_COPY_FAULT);
        }
    }
    entry.submit(0);
    CopyOutcome::Sent
}

/// (ip, sp, bp) of the interrupted user code: the sample's own registers
/// in user mode, else those saved at the top of the task's kernel stack.
///
/// # Safety
///
/// `ctx` must be the context the kernel passed to the running perf_event
/// program (as the `#[perf_event]` entry point builds it): its `regs` are
/// read directly. Call it only from a perf_event program: bpf_task_pt_regs
/// is allowed there from Linux 5.15 (where it is not, the verifier refuses
/// to load the program, so this never runs).
#[inline(always)]
unsafe fn user_registers(ctx: &PerfEventContext, in_user_mode: bool) -> (u64, u64, u64) {
    if in_user_mode {
        // SAFETY: by the contract of this function `ctx.ctx` is this
        // program's `bpf_perf_event_data`, valid for the run and not written
        // by anyone meanwhile; the verifier allows reading its `regs` field
        // and rewrites those loads to the interrupted registers saved by the
        // kernel.
        let regs = unsafe { &(*ctx.ctx).regs };
        return (regs.rip, regs.rsp, regs.rbp);
    }
    saved_user_registers()
}

/// (ip, sp, bp) of the current task's user code as saved at the top of its
/// kernel stack when it entered the kernel (all 0 for a kernel thread).
/// Needs bpf_task_pt_regs (Linux 5.15): the verifier refuses a program
/// that calls it on older kernels, so only programs of their own call it.
#[inline(always)]
fn saved_user_registers() -> (u64, u64, u64) {
    let regs = task_user_registers();
    if regs.is_null() {
        return (0, 0, 0);
    }
    // SAFETY: bpf_probe_read_kernel reads through copy_from_kernel_nofault:
    // at any address it returns an error instead of faulting, so this
    // closure is sound for any pointer; every bit pattern is a valid u64.
    let read = |field: *const u64| unsafe { bpf_probe_read_kernel(field).unwrap_or(0) };
    // SAFETY: `regs` is non-null (checked above) and points to the current
    // task's saved `pt_regs` at the top of its kernel stack, which stays
    // allocated while the task runs (for this whole run): `addr_of!` only
    // computes field addresses inside that struct, making no reference, and
    // the fields are read with `read`, which copes with any address.
    unsafe {
        (
            read(core::ptr::addr_of!((*regs).rip)),
            read(core::ptr::addr_of!((*regs).rsp)),
            read(core::ptr::addr_of!((*regs).rbp)),
        )
    }
}

/// Copies the user stack from `sp` up into `dst`, first up to the next
/// page boundary, then whole pages until USER_STACK_COPY_BYTES of them or
/// the first that cannot be read (the top of the stack). Returns bytes
/// copied. Few large reads: each bpf_probe_read_user has a fixed cost.
///
/// # Safety
///
/// `dst` must point to at least USER_STACK_COPY_BYTES + USER_STACK_CHUNK
/// writable bytes that nothing else reads or writes during the call. `sp`
/// may be any value: it is only read through bpf_probe_read_user.
#[inline(always)]
unsafe fn copy_stack(dst: *mut u8, sp: u64) -> u32 {
    if sp == 0 {
        return 0;
    }
    let head = (USER_STACK_CHUNK as u64 - (sp & CHUNK_MASK)) & CHUNK_MASK;
    // SAFETY: `head` < USER_STACK_CHUNK, so the helper writes `dst[..head]`,
    // inside the buffer the caller guarantees. bpf_probe_read_user copies
    // from any user address without faulting (an unmapped or unreadable
    // page makes it return an error and zero the destination).
    if head > 0 && unsafe { bpf_probe_read_user(dst.cast(), head as u32, sp as *const _) } != 0 {
        return 0;
    }
    let mut copied = head;
    for _ in 0..CHUNKS {
        // Masked so the verifier sees every write inside the buffer.
        let at = copied & (USER_STACK_COPY_BYTES as u64 - 1);
        // SAFETY: `at` < USER_STACK_COPY_BYTES (masked), so `dst + at` and
        // the USER_STACK_CHUNK bytes written from there end within the
        // USER_STACK_COPY_BYTES + USER_STACK_CHUNK bytes the caller
        // guarantees: the `add` stays in bounds and so does the write. Any
        // source address is fine: the helper returns an error, not a fault.
        let read =
            unsafe { bpf_probe_read_user(dst.add(at as usize).cast(), USER_STACK_CHUNK as u32, (sp + at) as *const _) };
        if read != 0 {
            break;
        }
        copied = at + USER_STACK_CHUNK as u64;
    }
    copied as u32
}
