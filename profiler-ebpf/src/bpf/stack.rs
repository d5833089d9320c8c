//! Capturing the current task's identity and stacks: by id in the STACKS
//! map (fast, small keys), or whole into a StackKey when a stack's bucket in
//! STACKS is taken by another stack.
use aya_ebpf::{
    EbpfContext,
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_comm, generated::bpf_get_stack},
    programs::tracing::StackIdContext,
};
use profiler_ebpf::{LEAF_WORDS, MAX_STACK_DEPTH, NO_STACK, SampleKey, StackKey, capture, marker};

use super::{
    maps::{STACKS, bump},
    process::Process,
};

const STACK_BYTES: u32 = (MAX_STACK_DEPTH * 8) as u32;
const EEXIST: i32 = 17;
const EFAULT: i32 = 14;

/// Which counter to bump when a stack cannot be read.
pub struct FaultCounters {
    pub kernel: u32,
    pub user: u32,
}

/// The bucket of one of the stacks holds another stack.
pub struct Collision;

/// Fills `key` with the current task and the ids of its stacks.
#[inline(always)]
pub fn capture_ids<C: StackIdContext>(
    ctx: &C,
    key: &mut SampleKey,
    process: Process,
    capture_bits: u32,
    faults: &FaultCounters,
) -> Result<(), Collision> {
    key.tgid = process.tgid;
    key.started_ns = process.started_ns;
    key.mappings_since_ns = process.mappings_since_ns;
    key.marker = marker::NONE;
    key.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    key.leaf_words = [0; LEAF_WORDS];
    key.kernel_stack_id = NO_STACK;
    key.user_stack_id = NO_STACK;
    if capture_bits & capture::KERNEL != 0 {
        key.kernel_stack_id = stack_id(ctx, 0, faults.kernel)?;
    }
    if capture_bits & capture::USER != 0 {
        key.user_stack_id = stack_id(ctx, BPF_F_USER_STACK as u64, faults.user)?;
    }
    Ok(())
}

#[inline(always)]
fn stack_id<C: StackIdContext>(ctx: &C, flags: u64, fault_counter: u32) -> Result<i32, Collision> {
    match ctx.get_stackid(&STACKS, flags) {
        Ok(id) => Ok(id as i32),
        Err(e) if e == -EEXIST => Err(Collision),
        // No frames: a kernel thread's user stack, or a sample in user mode.
        Err(e) if e == -EFAULT => Ok(NO_STACK),
        Err(_) => {
            bump(fault_counter);
            Ok(NO_STACK)
        }
    }
}

/// Fills `key` with the whole stacks. Parts not captured (per `capture`) are
/// left as they are: the per-CPU scratch starts zeroed and a recording never
/// changes what it captures, so they stay zero. The caller counts why the
/// full path was taken.
#[inline(always)]
pub fn capture_whole<C: EbpfContext>(
    ctx: &C,
    key: &mut StackKey,
    process: Process,
    capture_bits: u32,
    faults: &FaultCounters,
) {
    key.tgid = process.tgid;
    key.started_ns = process.started_ns;
    key.mappings_since_ns = process.mappings_since_ns;
    key.marker = marker::NONE;
    key.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    key.leaf_words = [0; LEAF_WORDS];
    if capture_bits & capture::KERNEL != 0 {
        key.kernel_depth = read_stack(ctx, key.kernel.as_mut_ptr(), 0, faults.kernel);
    }
    if capture_bits & capture::USER != 0 {
        key.user_depth = read_stack(ctx, key.user.as_mut_ptr(), BPF_F_USER_STACK as u64, faults.user);
    }
}

/// Returns the number of frames written; the kernel zeroes the rest of the
/// buffer (all of it on error), which keeps keys comparable byte for byte.
#[inline(always)]
pub fn read_stack<C: EbpfContext>(ctx: &C, buf: *mut u64, flags: u64, fault_counter: u32) -> u32 {
    // SAFETY: this relies on the callers, as this function is not `unsafe`
    // although the helper writes through `buf`: its calls (in
    // `capture_whole` and the table samplers) pass the `kernel` or `user` array ([u64;
    // MAX_STACK_DEPTH]) of a StackKey held as `&mut`, exactly STACK_BYTES of
    // writable memory, and the helper writes at most
    // STACK_BYTES there (the verifier also checks that those bytes are the
    // program's writable memory). `ctx.as_ptr()` is the context pointer the
    // kernel passed to the running program, which is what the helper (and
    // the verifier, which checks the argument is the context) expects.
    let written = unsafe { bpf_get_stack(ctx.as_ptr(), buf.cast(), STACK_BYTES, flags) };
    if written < 0 {
        bump(fault_counter);
        return 0;
    }
    (written as u32) / 8
}
