//! The leaf fix-up of frame-pointer walks. A leaf function that has not set
//! up its frame (libc's syscall wrappers; leaves built without frame
//! pointers) leaves rbp pointing at its caller's frame, so the kernel's walk
//! goes from the leaf straight to the caller's caller. The return address
//! into the skipped caller is then one of the first words above the user
//! stack pointer: those that look like return addresses are kept with the
//! stack, and user space, which has the leaf's CFI, picks the right one.
use aya_ebpf::{
    bindings::pt_regs,
    cty::c_void,
    helpers::{bpf_get_current_task, bpf_probe_read_kernel, generated::bpf_probe_read_user},
};
use profiler_ebpf::{Config, LEAF_WORDS, call_mark};

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
///
/// Straight-line code, for the verifier (see `call_mark`): a failed
/// read is not tested for, since the helper zeroes its destination on
/// failure, and 0 (sp unknown, a word below 8) reads as no call.
#[inline(always)]
pub fn return_addresses_at(sp: u64, words: &mut [u64; LEAF_WORDS]) {
    let mut found = [0u64; LEAF_WORDS];
    // SAFETY: `found` is LEAF_WORDS * 8 bytes of this program's stack, all
    // the helper writes; it copies from any user address without faulting
    // (an unmapped page or a kernel address is an error, with `found`
    // zeroed); any bits are valid u64s.
    unsafe { read_user(found.as_mut_ptr().cast(), size_of_val(&found) as u32, sp) };
    for (slot, &word) in words.iter_mut().zip(found.iter()) {
        let mut code = 0u64;
        // SAFETY: as above, into the 8 bytes of `code`; they end where the
        // candidate return address points (a word below 8 wraps to a
        // kernel address: an error, zeros).
        unsafe { read_user((&mut code as *mut u64).cast(), 8, word.wrapping_sub(8)) };
        let call = (opaque(call_mark(code)) >> 7) & 1;
        *slot = word & opaque(0u64.wrapping_sub(call));
    }
}

/// `value`, which the compiler can no longer reason about. Without it LLVM
/// turns the mark's bit into `mark & 0x8080 != 0`, and `word & (0 - bit)`
/// into `if bit { word } else { 0 }`: branches again.
#[inline(always)]
fn opaque(value: u64) -> u64 {
    let mut cell = value;
    // SAFETY: a volatile write and read of a local u64.
    unsafe {
        core::ptr::write_volatile(&mut cell, value);
        core::ptr::read_volatile(&cell)
    }
}

/// bpf_probe_read_user, its result ignored (the destination is zeroed on failure).
///
/// # Safety
/// `dst` must be `size` writable bytes.
#[inline(always)]
unsafe fn read_user(dst: *mut c_void, size: u32, src: u64) {
    // SAFETY: the caller's; the helper only writes `size` bytes at `dst`.
    unsafe { bpf_probe_read_user(dst, size, src as *const c_void) };
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
