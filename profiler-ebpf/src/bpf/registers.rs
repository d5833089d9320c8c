//! A table walk's first-frame registers: all of the user's general-purpose
//! registers, so that a CFA from any of them (a stack probe's r11, ld.so's
//! rbx) is known at the frame the sample interrupted.
use aya_ebpf::{
    bindings::pt_regs,
    helpers::{bpf_get_current_task_btf, generated::bpf_probe_read_kernel},
};
use profiler_ebpf::unwind::PT_REGS_WORDS;

/// Words of `pt_regs` the walk starts from.
pub const PT_REGS_RBP: usize = 4;
pub const PT_REGS_RIP: usize = 16;
pub const PT_REGS_RSP: usize = 19;

const _: () = assert!(core::mem::size_of::<pt_regs>() == 8 * PT_REGS_WORDS);

/// Where the user registers of a walk's first frame are.
pub enum LeafRegisters<'a> {
    /// A sample taken in user mode: the interrupted registers, in the
    /// perf_event program's context.
    Interrupted(&'a pt_regs),
    /// The registers saved at the top of the current task's kernel stack
    /// when it entered the kernel (a sample in kernel mode, a switch-out,
    /// a wakeup). Needs bpf_task_pt_regs (Linux 5.15).
    SavedByKernel,
}

impl LeafRegisters<'_> {
    /// Copies the registers into `words` (zeroes when there are none: a
    /// kernel thread, an unreadable save area).
    #[inline(always)]
    pub fn copy_to(&self, words: &mut [u64; PT_REGS_WORDS]) {
        match self {
            // Field by field: the verifier allows a perf_event context's
            // registers to be loaded, not passed to a helper.
            LeafRegisters::Interrupted(regs) => {
                *words = [
                    regs.r15,
                    regs.r14,
                    regs.r13,
                    regs.r12,
                    regs.rbp,
                    regs.rbx,
                    regs.r11,
                    regs.r10,
                    regs.r9,
                    regs.r8,
                    regs.rax,
                    regs.rcx,
                    regs.rdx,
                    regs.rsi,
                    regs.rdi,
                    regs.orig_rax,
                    regs.rip,
                    regs.cs,
                    regs.eflags,
                    regs.rsp,
                    regs.ss,
                ];
            }
            LeafRegisters::SavedByKernel => {
                let saved = task_user_registers();
                // SAFETY: bpf_probe_read_kernel copies exactly size_of(words)
                // bytes into `words`, which holds them, and copes with any
                // source address (a null or stale one fails, zeroing `words`).
                let failed = unsafe {
                    bpf_probe_read_kernel(
                        words.as_mut_ptr().cast(),
                        core::mem::size_of::<[u64; PT_REGS_WORDS]>() as u32,
                        saved.cast(),
                    )
                };
                if failed != 0 {
                    *words = [0; PT_REGS_WORDS];
                }
            }
        }
    }
}

/// The current task's user registers as saved when it entered the kernel
/// (bpf_task_pt_regs); null if the helper found none.
#[inline(always)]
pub fn task_user_registers() -> *const pt_regs {
    // bpf_task_pt_regs (helper 175, Linux 5.15) is not in aya-ebpf's list.
    // SAFETY: the same trick as aya-ebpf's generated helper bindings: on the
    // BPF target a call through a function pointer whose value is a constant
    // N compiles to `call N`, a helper call; nothing jumps to address 175.
    // 175 is BPF_FUNC_task_pt_regs (aya-ebpf-bindings' bpf_func_id), and the
    // signature matches the kernel's `long bpf_task_pt_regs(struct
    // task_struct *task)`, whose result is the address of the task's pt_regs.
    let task_pt_regs: unsafe extern "C" fn(*mut core::ffi::c_void) -> *const pt_regs =
        unsafe { core::mem::transmute(175usize) };
    // SAFETY: bpf_get_current_task_btf takes no argument and returns the
    // current task as a trusted BTF pointer, the argument type
    // bpf_task_pt_regs requires (the verifier checks it). Neither call
    // dereferences anything on our side; both are allowed in perf_event and
    // tracing programs from Linux 5.15 (where not, the program that calls
    // this is refused at load, so this never runs).
    unsafe { task_pt_regs(bpf_get_current_task_btf().cast()) }
}
