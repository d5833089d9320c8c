//! The leaf fix-up of frame-pointer walks. A leaf function that has not set
//! up its frame (libc's syscall wrappers; leaves built without frame
//! pointers) leaves rbp pointing at its caller's frame, so the kernel's walk
//! goes from the leaf straight to the caller's caller. The return address
//! into the skipped caller is then one of the first words above the user
//! stack pointer: those that look like return addresses are kept with the
//! stack, and user space, which has the leaf's CFI, picks the right one.
use aya_ebpf::{
    bindings::pt_regs,
    helpers::{bpf_get_current_task, bpf_probe_read_kernel, bpf_probe_read_user},
};
use profiler_ebpf::{Config, LEAF_WORDS};

/// x86-64's user code and stack segment selectors (`__USER_CS`, `__USER_DS`):
/// what a task's saved registers hold when it entered the kernel from user mode.
const USER_CS: u64 = 0x33;
const USER_SS: u64 = 0x2b;
/// x86-64's kernel stack size (THREAD_SIZE without KASAN).
const THREAD_SIZE: u64 = 16 << 10;
/// Bytes kept free above the saved registers: 0, or 16 with FRED (Linux 6.9+).
const TOP_PADDINGS: [u64; 2] = [0, 16];

/// The LEAF_WORDS words from `sp` up, each kept only if the instruction
/// before the address it holds is a call (a return address, then), else 0:
/// arbitrary data there (a leaf's locals) stays out of the count keys.
#[inline(always)]
pub fn return_addresses_at(sp: u64, words: &mut [u64; LEAF_WORDS]) {
    if sp == 0 {
        return;
    }
    // SAFETY: bpf_probe_read_user copies from any user address without
    // faulting (an unmapped page is an error); any bits are valid u64s.
    let Ok(found) = (unsafe { bpf_probe_read_user(sp as *const [u64; LEAF_WORDS]) }) else { return };
    for (slot, &word) in words.iter_mut().zip(found.iter()) {
        *slot = if word >= 8 && follows_call_at(word) { word } else { 0 };
    }
}

/// Whether the code just before `address` ends with a call instruction.
#[inline(always)]
fn follows_call_at(address: u64) -> bool {
    // SAFETY: as above; the 8 bytes end where the candidate return address points.
    match unsafe { bpf_probe_read_user((address - 8) as *const [u8; 8]) } {
        Ok(code) => follows_call(&code),
        Err(_) => false,
    }
}

/// Whether `code` (the 8 bytes before an address) ends with a call
/// instruction: `call rel32` (E8, 5 bytes) or `call r/m64` (FF /2, 2 to 7
/// bytes with prefixes, ModRM and displacement).
#[inline(always)]
fn follows_call(code: &[u8; 8]) -> bool {
    if code[3] == 0xe8 {
        return true;
    }
    // FF with ModRM.reg = 2 at 2..=7 bytes before the end.
    let mut at = 1;
    while at <= 6 {
        if code[at] == 0xff && (code[at + 1] >> 3) & 7 == 2 {
            return true;
        }
        at += 1;
    }
    false
}

/// The current task's user stack pointer as saved when it entered the
/// kernel, found at the top of its kernel stack (`task_struct::stack`, an
/// offset read from BTF) without bpf_task_pt_regs (Linux 5.15), so the
/// frame-pointer programs keep loading on older kernels. The saved code and
/// stack selectors tell which of the possible paddings this kernel uses.
/// 0 when unknown.
#[inline(always)]
pub fn saved_user_sp(config: &Config) -> u64 {
    if config.task_stack_offset == 0 {
        return 0;
    }
    // SAFETY: the helper takes no argument and returns the current task's
    // address as a plain integer; nothing is dereferenced.
    let task = unsafe { bpf_get_current_task() };
    // SAFETY: bpf_probe_read_kernel copies through copy_from_kernel_nofault:
    // any address gives an error, not a fault; any bits are a valid u64.
    let Ok(stack) = (unsafe { bpf_probe_read_kernel((task + config.task_stack_offset as u64) as *const u64) }) else {
        return 0;
    };
    if stack == 0 {
        return 0;
    }
    let regs_size = size_of::<pt_regs>() as u64;
    let (cs, sp, ss) =
        (core::mem::offset_of!(pt_regs, cs), core::mem::offset_of!(pt_regs, rsp), core::mem::offset_of!(pt_regs, ss));
    for padding in TOP_PADDINGS {
        let regs = stack + THREAD_SIZE - padding - regs_size;
        // SAFETY: as above: reads that cannot fault, of plain integers.
        let read = |offset: usize| unsafe { bpf_probe_read_kernel((regs + offset as u64) as *const u64) }.unwrap_or(0);
        if read(cs) == USER_CS && read(ss) == USER_SS {
            return read(sp);
        }
    }
    0
}
