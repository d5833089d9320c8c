//! Filling a StackKey with the current task's identity and stacks.
use aya_ebpf::{
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_comm, generated::bpf_get_stack},
    EbpfContext,
};
use profiler_ebpf::{capture, counter, StackKey, MAX_STACK_DEPTH};

use super::maps::bump;

const STACK_BYTES: u32 = (MAX_STACK_DEPTH * 8) as u32;

/// Which counters to bump when a stack cannot be read.
pub struct FaultCounters {
    pub kernel: u32,
    pub user: u32,
}

/// Fills `key` for the current task. Parts not captured (per `capture`) are
/// left as they are: the per-CPU scratch starts zeroed and a recording never
/// changes what it captures, so they stay zero.
#[inline(always)]
pub fn capture_current<C: EbpfContext>(
    ctx: &C,
    key: &mut StackKey,
    tgid: u32,
    capture_bits: u32,
    faults: &FaultCounters,
) {
    key.tgid = tgid;
    key.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    if capture_bits & capture::KERNEL != 0 {
        key.kernel_depth = read_stack(ctx, key.kernel.as_mut_ptr(), 0, faults.kernel);
        if key.kernel_depth as usize == MAX_STACK_DEPTH {
            bump(counter::KERNEL_STACK_FULL_DEPTH);
        }
    }
    if capture_bits & capture::USER != 0 {
        key.user_depth =
            read_stack(ctx, key.user.as_mut_ptr(), BPF_F_USER_STACK as u64, faults.user);
        if key.user_depth as usize == MAX_STACK_DEPTH {
            bump(counter::USER_STACK_FULL_DEPTH);
        }
    }
}

/// Returns the number of frames written; the kernel zeroes the rest of the
/// buffer (all of it on error), which keeps keys comparable byte for byte.
#[inline(always)]
fn read_stack<C: EbpfContext>(ctx: &C, buf: *mut u64, flags: u64, fault_counter: u32) -> u32 {
    let written = unsafe { bpf_get_stack(ctx.as_ptr(), buf.cast(), STACK_BYTES, flags) };
    if written < 0 {
        bump(fault_counter);
        return 0;
    }
    (written as u32) / 8
}
