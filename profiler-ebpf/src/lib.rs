//! Types and constants shared by flameprof's BPF programs and its user space.
//!
//! This is the only definition of the layouts that cross the kernel boundary:
//! the BPF side (built for `bpfel-unknown-none`) and the `flameprof` binary both
//! compile this file. No `bool`s, explicit padding, `#[repr(C)]` throughout, so
//! both sides agree byte for byte.
#![no_std]

/// Frames kept per stack: the kernel's default `perf_event_max_stack`.
pub const MAX_STACK_DEPTH: usize = 127;

/// Words above the user stack pointer kept for the leaf fix-up of
/// frame-pointer walks: enough for libc's syscall wrappers, whose slow paths
/// keep up to 64 bytes of frame (Debian 12: read, poll, epoll_wait 48; the
/// futex wait 64).
pub const LEAF_WORDS: usize = 8;

/// The leaf fix-up's test of one candidate return address: 1 if `code`,
/// the 8 bytes that end at the address (read as a little-endian u64), ends
/// with a call instruction, `call rel32` (E8, 5 bytes) or `call r/m64`
/// (FF /2, 2 to 7 bytes with prefixes, ModRM and displacement), else 0.
#[inline(always)]
pub fn call_before(code: u64) -> u64 {
    (call_mark(code) >> 7) & 1
}

/// `call_before` as bit 7 of the result (the other bits are noise), for
/// the BPF side, which hides the value from the compiler before it takes
/// the bit.
///
/// Without a comparison on purpose: in BPF each one is a branch, and a kept
/// word (an unknown value) or a 0 stored on the two sides of a branch are
/// stack slots of different kinds to the verifier. Linux 6.1's does not
/// prune such paths, so 8 words of branches multiplied the paths through
/// the rest of the sched_switch program. Byte tests are done on all 8
/// bytes at once: 0x80 marks a byte that matched.
#[inline(always)]
pub fn call_mark(code: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // 0x80 in each zero byte of `v`, 0 elsewhere (no carry crosses a byte).
    let zero_bytes = |v: u64| !((v & LOW7).wrapping_add(LOW7) | v | LOW7);
    // E8 at byte 3: a 5-byte call ends at the address.
    let e8 = zero_bytes(code ^ 0xe8e8_e8e8_e8e8_e8e8) & (0x80 << 24);
    // FF at byte i (1..=6) followed by a ModRM with reg = 2 (bits 3-5) at byte i + 1.
    let ff = zero_bytes(!code);
    let reg2 = zero_bytes((code & 0x3838_3838_3838_3838) ^ 0x1010_1010_1010_1010);
    let ff_reg2 = (ff << 8) & reg2 & 0x8080_8080_8080_0000;
    // Any marked byte: fold the marks into bit 7.
    let mut any = e8 | ff_reg2;
    any |= any >> 32;
    any |= any >> 16;
    any |= any >> 8;
    any
}
/// Length of a task's `comm` (thread name), including the trailing NUL.
pub const TASK_COMM_LEN: usize = 16;

/// Names of the maps and programs in the BPF object.
pub mod names {
    pub const ON_CPU_PROGRAM: &str = "on_cpu_sample";
    pub const ON_CPU_DWARF_PROGRAM: &str = "on_cpu_sample_dwarf";
    pub const OFF_CPU_PROGRAM: &str = "off_cpu_switch";
    pub const FORK_PROGRAM: &str = "follow_fork";
    pub const EXEC_PROGRAM: &str = "reannounce_on_exec";
    /// The read-only global saying whether sched_switch passes prev_state.
    pub const SWITCH_HAS_PREV_STATE: &str = "SWITCH_HAS_PREV_STATE";
    /// Per process, when it last unmapped code (`CodeUnmap`).
    pub const CODE_UNMAPS: &str = "CODE_UNMAPS";
    /// fentry on `vm_area_free`: a process unmapped file-backed code.
    pub const CODE_UNMAP_PROGRAM: &str = "note_code_unmap";
    /// The function it attaches to (6.1 to 6.18 at least: kernel/fork.c,
    /// then mm/vma_init.c; one argument, the mapping freed).
    pub const CODE_UNMAP_FUNCTION: &str = "vm_area_free";
    pub const STACKS: &str = "STACKS";
    pub const ON_CPU_COUNTS: &str = "ON_CPU_COUNTS";
    pub const ON_CPU_FULL_COUNTS: &str = "ON_CPU_FULL_COUNTS";
    pub const OFF_CPU_TIMES: &str = "OFF_CPU_TIMES";
    pub const OFF_CPU_FULL_TIMES: &str = "OFF_CPU_FULL_TIMES";
    pub const OFF_CPU_STARTS: &str = "OFF_CPU_STARTS";
    pub const OFF_CPU_FULL_STARTS: &str = "OFF_CPU_FULL_STARTS";
    pub const TARGETS: &str = "TARGETS";
    pub const CONFIG: &str = "CONFIG";
    pub const COUNTERS: &str = "COUNTERS";
    pub const NEW_PROCESSES: &str = "NEW_PROCESSES";
    pub const USER_STACK_COPIES: &str = "USER_STACK_COPIES";
    pub const WAITING_AT_START: &str = "WAITING_AT_START";
    pub const ANNOUNCED: &str = "ANNOUNCED";
    pub const LAST_SAMPLE: &str = "LAST_SAMPLE";
    pub const ON_CPU_TABLE_PROGRAM: &str = "on_cpu_sample_table";
    pub const OFF_CPU_TABLE_PROGRAM: &str = "off_cpu_switch_table";
    pub const UNWIND_ROWS: &str = "UNWIND_ROWS";
    pub const PROCESS_MAPPINGS: &str = "PROCESS_MAPPINGS";
    pub const BROKEN_CHAINS: &str = "BROKEN_CHAINS";
    pub const ON_CPU_WALKER_PROGRAM: &str = "on_cpu_walk";
    pub const OFF_CPU_WALKER_PROGRAM: &str = "off_cpu_walk";
    /// Program arrays of the walkers (one slot each; one array per program type).
    pub const ON_CPU_WALKERS: &str = "ON_CPU_WALKERS";
    pub const OFF_CPU_WALKERS: &str = "OFF_CPU_WALKERS";
    /// `--wakers`: the sched_waking programs (frame pointers, tables), the
    /// table walker they tail-call and its program array.
    pub const WAKER_PROGRAM: &str = "waker_stack";
    pub const WAKER_TABLE_PROGRAM: &str = "waker_stack_table";
    pub const WAKER_WALKER_PROGRAM: &str = "waker_walk";
    pub const WAKER_WALKERS: &str = "WAKER_WALKERS";
    /// Wakee thread id -> the waker's stacks and name.
    pub const WAKERS: &str = "WAKERS";
    /// Nanoseconds off CPU per (wakee stack, waker stack).
    pub const WOKEN_TIMES: &str = "WOKEN_TIMES";
}

/// Buckets of the STACKS stack-trace map (kernel and user stacks by id).
/// It is direct-mapped: a stack whose bucket holds another stack cannot get
/// an id (-EEXIST), and that sample takes the full-stack path instead.
pub const STACK_MAP_ENTRIES: u32 = 1 << 15;
/// Capacity of each map of counts (per mode and path). The full-stack maps
/// are allocated on use (BPF_F_NO_PREALLOC), so their bound costs nothing
/// until used.
pub const MAX_DISTINCT_STACKS: u32 = 1 << 17;
/// Capacity of the target process set (`-p`, `-- CMD` and their children).
pub const MAX_TARGETS: u32 = 8192;
/// Capacity of the set of threads currently off CPU.
pub const MAX_BLOCKED_THREADS: u32 = 1 << 16;
/// Size of the ring buffer announcing processes seen for the first time.
pub const NEW_PROCESSES_BYTES: u32 = 1 << 18;
/// Bytes of user stack copied per sample for DWARF unwinding (`--call-graph
/// dwarf`), as perf's default: enough for a few dozen ordinary frames.
pub const USER_STACK_COPY_BYTES: usize = 8192;
/// The copy is read up to the next page boundary, then in whole pages: no
/// read crosses the top of the stack (a read that faults copies nothing),
/// and a copy takes at most three reads (8 to 12 KiB).
pub const USER_STACK_CHUNK: usize = 4096;
/// Default size of the ring buffer of user-stack copies (user space sizes
/// it by the number of CPUs): a record is about 13 KiB, so 8 MiB holds
/// about 0.3 s of samples at 999 Hz on 2 CPUs; user space drains it every
/// 50 ms.
pub const USER_STACK_COPIES_BYTES: u32 = 8 << 20;
/// A stack id meaning "no stack": not captured, or empty (a kernel thread's
/// user stack, the kernel stack of a sample taken in user mode).
pub const NO_STACK: i32 = -1;
/// In an off-CPU start record: this block took the full-stack path and its
/// stack is in OFF_CPU_FULL_STARTS (one lookup on switch-in finds either).
pub const STACK_IN_FULL_MAP: i32 = -2;

/// The fast path's count key: stacks by their id in the STACKS map.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SampleKey {
    /// Process id (the kernel's tgid).
    pub tgid: u32,
    pub kernel_stack_id: i32,
    pub user_stack_id: i32,
    /// A `marker` value (0 = none).
    pub marker: u32,
    /// Thread name, NUL padded.
    pub comm: [u8; TASK_COMM_LEN],
    /// As `StackKey::started_ns`.
    pub started_ns: u64,
    /// As `StackKey::mappings_since_ns`.
    pub mappings_since_ns: u64,
    /// As `StackKey::leaf_words`.
    pub leaf_words: [u64; LEAF_WORDS],
}

/// A value of CODE_UNMAPS: when process (tgid, `started_ns`) last unmapped
/// file-backed code, or replaced it (`StackKey::mappings_since_ns`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CodeUnmap {
    /// As `StackKey::started_ns`: a later process with the pid, or the
    /// program it exec'd, has another and ignores the entry.
    pub started_ns: u64,
    /// CLOCK_BOOTTIME ns: bpf_ktime_get_boot_ns() at the unmap, or, written
    /// by user space where the kernel side cannot see unmaps, the time of
    /// the side-band record of the mapping that replaced code.
    pub unmapped_ns: u64,
}

/// A thread switched out on the fast path: when, and where.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StartedBlock {
    /// `bpf_ktime_get_ns()` when it was switched out.
    pub since_ns: u64,
    /// The thread's CPU time then (`se.sum_exec_runtime`, ns): if its
    /// switch-in is never seen, the time it ran since tells how long it
    /// really waited.
    pub ran_ns: u64,
    pub key: SampleKey,
}

/// One stack as the kernel captured it, with whom it belongs to: the key of
/// the full-stack path, taken when a stack could not get an id in STACKS.
/// Counts are aggregated by the whole stack itself, so two different stacks
/// never merge and no sample is lost to a bucket collision.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StackKey {
    /// Process id (the kernel's tgid).
    pub tgid: u32,
    /// Number of valid entries in `kernel`.
    pub kernel_depth: u32,
    /// Number of valid entries in `user`.
    pub user_depth: u32,
    /// A `MarkerFrame` value (0 = none): what the off-CPU program knows of why
    /// the thread blocked.
    pub marker: u32,
    /// Thread name, NUL padded.
    pub comm: [u8; TASK_COMM_LEN],
    /// When the process started (its leader's `start_boottime`, ns; 0 when
    /// unknown): with `tgid`, tells a process from a later one that got
    /// the same pid.
    pub started_ns: u64,
    /// When the process last unmapped file-backed code (`CODE_UNMAPS`; 0:
    /// never during the recording): its mapping generation. Samples taken
    /// before and after a `dlclose` get different keys, so code mapped
    /// later at the same addresses does not name the earlier samples.
    /// User space replaces it by the end of that generation before
    /// symbolizing (see profiler/src/recording/mapping_generations.rs).
    pub mappings_since_ns: u64,
    /// Frame-pointer walks only (zero otherwise): the words at the user
    /// stack pointer and above, each kept only when it follows a call
    /// instruction (zero otherwise). In a leaf that has not set up its frame
    /// (libc's syscall wrappers) one of them is the return address into the
    /// caller the walk skips: user space inserts it where the leaf's CFI
    /// says the return address is.
    pub leaf_words: [u64; LEAF_WORDS],
    /// Kernel return addresses, leaf first; unused entries are zero.
    pub kernel: [u64; MAX_STACK_DEPTH],
    /// User return addresses, leaf first; unused entries are zero.
    pub user: [u64; MAX_STACK_DEPTH],
}

/// A thread switched out on the full-stack path.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockedThread {
    /// `bpf_ktime_get_ns()` when it was switched out.
    pub since_ns: u64,
    /// As `StartedBlock::ran_ns`.
    pub ran_ns: u64,
    /// 1: switched out still runnable (preempted): no wakeup will end it.
    pub preempted: u32,
    pub _pad: u32,
    pub stack: StackKey,
}

/// `--wakers`: who last woke a blocked target thread, recorded by the
/// sched_waking program in the waker's context, under the wakee's thread id.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WakerRecord {
    /// `bpf_ktime_get_ns()` at the wakeup: a record older than the wakee's
    /// current wait belongs to an earlier one and is not joined.
    pub woken_ns: u64,
    /// The waker: its process, name, kernel stack, and user stack (empty for
    /// an interrupt or a process that is not a target). `marker` is a
    /// `waker::*` value.
    pub stack: StackKey,
}

/// The key of WOKEN_TIMES: a wait's stack joined with its waker's.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WokenKey {
    pub wakee: StackKey,
    pub waker: StackKey,
}

/// Values of `WakerRecord::stack.marker`.
pub mod waker {
    /// A task woke it from its own context (a syscall, a kernel thread).
    pub const TASK: u32 = 0;
    /// An interrupt woke it (a timer, a device): the name is that of the
    /// task it interrupted, and there is no user stack.
    pub const INTERRUPT: u32 = 1;
}

/// One on-CPU sample for DWARF unwinding in user space: the kernel stack
/// as walked, the user registers an unwinder starts from, and a copy of the
/// user stack from the stack pointer up.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UserStackCopy {
    /// Process id (the kernel's tgid).
    pub tgid: u32,
    /// Number of valid entries in `kernel`.
    pub kernel_depth: u32,
    /// Bytes of `stack` copied (from `sp` up; shorter near the stack's top).
    pub stack_len: u32,
    pub _pad: u32,
    /// Thread name, NUL padded.
    pub comm: [u8; TASK_COMM_LEN],
    /// As `StackKey::started_ns`.
    pub started_ns: u64,
    /// User instruction, stack and frame pointers when the sample was taken.
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// Kernel return addresses, leaf first.
    pub kernel: [u64; MAX_STACK_DEPTH],
    /// Room for the first, partial page (up to the next page boundary) and
    /// then whole pages up to USER_STACK_COPY_BYTES.
    pub stack: [u8; USER_STACK_COPY_BYTES + USER_STACK_CHUNK],
}

/// Unwinding user stacks in the kernel from tables (`--call-graph table`):
/// user space compiles each mapped file's call-frame information
/// (`.eh_frame`, `.debug_frame`) into rows, once per file, appends them to
/// UNWIND_ROWS, and writes each process's executable mappings with the range
/// of rows of their file to PROCESS_MAPPINGS. The BPF programs walk a stack
/// frame by frame: find the mapping of the address, binary-search its
/// file's rows for the rule in force there, and apply it.
pub mod unwind {
    /// Default capacity of UNWIND_ROWS (16 bytes a row: 32 MiB). glibc has
    /// about 28k rows, libpython 74k; rustc's driver library about 1.1 million.
    pub const DEFAULT_MAX_ROWS: u32 = 1 << 21;
    /// Binary-search steps per frame: enough for any file within MAX_ROWS_PER_FILE.
    pub const SEARCH_STEPS: u32 = 22;
    /// Rows a single file may have (files with more fall back to frame pointers).
    pub const MAX_ROWS_PER_FILE: u32 = 1 << SEARCH_STEPS;
    /// Executable mappings kept per process (more: the rest fall back to
    /// frame pointers, counted).
    pub const MAX_MAPPINGS: usize = 128;
    /// Mapping-search steps: enough for MAX_MAPPINGS.
    pub const MAPPING_STEPS: u32 = 8;
    /// Processes with tables at once.
    pub const MAX_PROCESSES: u32 = 8192;
    /// A process is asked to be read again at most this often (ns): only a
    /// process that keeps meeting unknown code asks that often.
    pub const REFRESH_INTERVAL_NS: u64 = 10_000_000;

    /// Keys of BROKEN_CHAINS: where walks stopped short of the outermost
    /// frame (at code without unwind information, or at a bad frame).
    pub mod file_key {
        /// Code in no known mapping of the process.
        pub const OUTSIDE_MAPPINGS: u32 = u32::MAX;
        /// A mapping without a table (anonymous or JIT code, a file without
        /// call-frame information, or one that did not fit).
        pub const NO_TABLE: u32 = 0;
        // Otherwise: the file's first row in UNWIND_ROWS, plus one.
    }

    /// `UnwindRow::cfa_rule`: how to find the canonical frame address (the
    /// caller's stack pointer just before the call).
    pub mod cfa {
        /// No rule here: code without call-frame information (a gap between
        /// functions). The walk ends at a bad frame.
        pub const NONE: u8 = 0;
        /// CFA = rsp + offset.
        pub const RSP: u8 = 1;
        /// CFA = rbp + offset.
        pub const RBP: u8 = 2;
        /// A PLT stub: CFA = rsp + 8 + (((rip & 15) >= 11) ? 8 : 0) (the DWARF
        /// expression binutils emits for .plt).
        pub const PLT_11: u8 = 3;
        /// The same with 10 (other linkers).
        pub const PLT_10: u8 = 4;
        /// A signal trampoline (`__restore_rt`; CIE augmentation `S`): the
        /// interrupted registers are in the ucontext at rsp (x86-64:
        /// `uc_mcontext` at +40; rbp at +120, rsp at +160, rip at +168).
        pub const SIGNAL: u8 = 5;
        /// The return address is undefined: the outermost frame (`_start`,
        /// a thread's entry). The stack is complete.
        pub const OUTERMOST: u8 = 6;
        /// A rule the kernel-side walker does not handle (a DWARF expression
        /// other than the PLT ones, a CFA from a register it cannot read).
        pub const UNSUPPORTED: u8 = 7;
        /// CFA = a general-purpose register other than rsp and rbp, plus
        /// offset; `UnwindRow::cfa_register` names it by its word in
        /// `pt_regs` (`pt_regs_word`). Its value is known at the first frame
        /// (the sample's registers) and, for rbx, wherever the walk followed
        /// its saves (`UnwindRow::rbx_rule`): ld.so's lazy-binding
        /// trampolines (CFA = rbx + n mid-stack), stack probes (r11 + n in a
        /// prologue). Elsewhere the walk ends at a bad frame, counted.
        pub const REGISTER: u8 = 8;
    }

    /// Words of x86-64's `struct pt_regs` (the user registers the kernel
    /// saved, or a sample's): the walker keeps the first frame's copy.
    pub const PT_REGS_WORDS: usize = 21;
    /// rbx's word in `pt_regs`.
    pub const PT_REGS_RBX: u8 = 5;

    /// The word of `pt_regs` that holds DWARF register `dwarf` (x86-64
    /// numbering: rax, rdx, rcx, rbx, rsi, rdi, rbp, rsp, r8..r15); None
    /// for registers `pt_regs` does not hold (rip, vector registers).
    pub const fn pt_regs_word(dwarf: u16) -> Option<u8> {
        // pt_regs: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi
        // rdi orig_rax rip cs eflags rsp ss.
        const WORDS: [u8; 16] = [10, 12, 11, 5, 13, 14, 4, 19, 9, 8, 7, 6, 3, 2, 1, 0];
        if (dwarf as usize) < WORDS.len() { Some(WORDS[dwarf as usize]) } else { None }
    }

    /// `UnwindRow::rbp_rule`: where the caller's rbp is.
    pub mod rbp {
        /// Not saved here: the caller's rbp is the current rbp.
        pub const UNCHANGED: u8 = 0;
        /// Saved at CFA + rbp_offset.
        pub const AT_CFA_OFFSET: u8 = 1;
        /// Anything else (a register, an expression): unknown; the walk goes
        /// on with rbp = 0 and needs no frame pointer while tables cover it.
        pub const UNKNOWN: u8 = 2;
    }

    /// `UnwindRow::rbx_rule`: where the caller's rbx is (followed only for
    /// `cfa::REGISTER` rows based on rbx further up; the walker records
    /// where rbx was saved and reads it only if such a row needs it).
    pub mod rbx {
        /// Not saved here: the caller's rbx is the current rbx.
        pub const UNCHANGED: u8 = 0;
        /// Saved at CFA + rbx_offset.
        pub const AT_CFA_OFFSET: u8 = 1;
        /// Anything else: unknown from here on.
        pub const UNKNOWN: u8 = 2;
    }
}

/// The unwind rule from `pc` up to the next row's `pc` of the same file.
/// Rows of a file are sorted by `pc` with no duplicates; a row with
/// `cfa_rule == unwind::cfa::NONE` ends the range of the row before it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnwindRow {
    /// Address in the file's own virtual addresses (ELF `p_vaddr` space).
    pub pc: u32,
    /// For cfa::RSP and cfa::RBP.
    pub cfa_offset: i32,
    /// For rbp::AT_CFA_OFFSET.
    pub rbp_offset: i16,
    pub cfa_rule: u8,
    pub rbp_rule: u8,
    /// For cfa::REGISTER: the register's word in `pt_regs`.
    pub cfa_register: u8,
    pub rbx_rule: u8,
    /// For rbx::AT_CFA_OFFSET.
    pub rbx_offset: i16,
}

/// One executable mapping of a process, with its file's rows.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnwindMapping {
    /// Runtime addresses [start, end).
    pub start: u64,
    pub end: u64,
    /// Runtime address - file virtual address.
    pub load_bias: u64,
    /// The file's rows: UNWIND_ROWS[first_row .. first_row + rows]; rows = 0
    /// means no table (JIT code, a file without call-frame information):
    /// frames there are walked with the frame pointer.
    pub first_row: u32,
    pub rows: u32,
}

/// A process's executable mappings, sorted by start, not overlapping.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProcessMappings {
    pub count: u32,
    /// Changes with every write of the entry (never reused): the walker's
    /// cached lookups of an older version of the mappings are not used.
    pub generation: u32,
    /// When the BPF side last asked user space to read this process's
    /// mappings again (an address in none of them: code mapped since, such
    /// as libc right after exec, or a dlopen); 0 after each load.
    pub refresh_asked_ns: u64,
    /// The process these mappings are of (`StackKey::started_ns`; 0: any):
    /// a later process with the same pid is not walked with them.
    pub started_ns: u64,
    pub mappings: [UnwindMapping; unwind::MAX_MAPPINGS],
}

/// A record on NEW_PROCESSES: a process seen for the first time (or after
/// an exec), or a request to read its mappings again.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ProcessNotice {
    pub tgid: u32,
    /// `notice::*`.
    pub kind: u32,
    /// As `StackKey::started_ns`: a new value for a known pid is a new
    /// process that reuses the pid.
    pub started_ns: u64,
    /// `CODE_UNMAPPED`: when (`bpf_ktime_get_boot_ns`, the side-band's
    /// clock); 0 otherwise.
    pub at_ns: u64,
}

/// Values of `ProcessNotice::kind`.
pub mod notice {
    /// New, or exec'd: a fresh snapshot.
    pub const ANNOUNCE: u32 = 0;
    /// A table walk met an address outside the process's known mappings.
    pub const REFRESH: u32 = 1;
    /// The process unmapped file-backed code at `at_ns`: a new mapping
    /// generation begins (see `StackKey::mappings_since_ns`).
    pub const CODE_UNMAPPED: u32 = 2;
}

/// Values of `StackKey::marker`.
pub mod marker {
    pub const NONE: u32 = 0;
    /// TASK_INTERRUPTIBLE: sleeping, waiting for an event.
    pub const SLEEPING: u32 = 1;
    /// TASK_UNINTERRUPTIBLE: usually disk I/O or a kernel lock.
    pub const UNINTERRUPTIBLE: u32 = 2;
    /// Still runnable when switched out: preempted.
    pub const PREEMPTED: u32 = 3;
    /// Any other state.
    pub const OTHER: u32 = 4;
}

/// Settings written by user space before the programs are attached.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Config {
    /// 1: only processes in TARGETS; 0: every process.
    pub filter_targets: u32,
    /// 1: a process forked by a target becomes a target (`-- CMD`).
    pub follow_forks: u32,
    /// Bit set of `capture::*`.
    pub capture: u32,
    /// 1: off-CPU keeps involuntary preemptions.
    pub keep_preempted: u32,
    /// Off-CPU blocks shorter than this are left out (ns).
    pub min_block_ns: u64,
    /// Off-CPU blocks longer than this are left out (ns; 0 = no limit).
    pub max_block_ns: u64,
    /// Byte offsets of `task_struct` fields, read from the kernel's BTF.
    pub task_pid_offset: u32,
    pub task_tgid_offset: u32,
    /// 1: record the thread state marker in off-CPU stacks.
    pub record_state: u32,
    /// Byte offset of `task_struct::se.sum_exec_runtime`.
    pub task_runtime_offset: u32,
    /// Tests only: ignore every Nth switch-in of a blocked thread (0 = none),
    /// to exercise the recovery of blocks whose switch-in is not seen.
    pub ignore_switch_in_every: u32,
    /// Byte offset of `task_struct::stack` (the kernel stack, whose top
    /// holds the user registers); 0 when unknown (no leaf fix-up then).
    pub task_stack_offset: u32,
    /// 1: frame-pointer walks keep `leaf_words`.
    pub keep_leaf_words: u32,
    /// 1: switch-ins of threads in WAITING_AT_START end their first wait.
    pub track_waiting_at_start: u32,
    /// On-CPU with one timer per thread: a thread can end up with two
    /// (inherited from its creator while its own was being opened); a
    /// sample of a thread sampled less than this many ns ago is such a
    /// second timer's and is dropped (0 = no check).
    pub min_sample_gap_ns: u64,
    /// 1: `--wakers` (full-stack off-CPU keys; waits joined with wakers).
    pub wakers: u32,
    /// Where sched_switch has no `prev_state` (before Linux 5.18): offset of
    /// task_struct's state (`__state`, `state` before 5.14) from BTF; 0
    /// otherwise.
    pub task_state_offset: u32,
    /// Kernel addresses [start, end) of the hardware-interrupt entry code
    /// (`asm_common_interrupt` .. `__irqentry_text_end` on x86-64): a waker
    /// kernel stack through it is an interrupt's. 0, 0: unknown.
    pub irq_entry_start: u64,
    pub irq_entry_end: u64,
    /// Byte offsets of `task_struct::group_leader` and
    /// `task_struct::start_boottime` (0: unknown; every process's start is
    /// then 0, and a reused pid is not told apart).
    pub task_group_leader_offset: u32,
    pub task_start_offset: u32,
    /// Byte offsets of `task_struct::mm` and of `vm_area_struct`'s
    /// `vm_mm`, `vm_flags` and `vm_file` (0: unknown; unmapped code is
    /// then not noticed, and code mapped where other code was resolves
    /// against the later mapping).
    pub task_mm_offset: u32,
    pub vma_mm_offset: u32,
    pub vma_flags_offset: u32,
    pub vma_file_offset: u32,
}

/// Bits of `Config::capture`.
pub mod capture {
    pub const KERNEL: u32 = 1;
    pub const USER: u32 = 2;
}

/// Indices into the per-CPU COUNTERS array: everything that happened to a
/// sample, so nothing is lost silently.
pub mod counter {
    /// On-CPU samples of target processes (recorded or lost).
    pub const ON_CPU_SAMPLES: u32 = 0;
    /// Samples whose kernel stack could not be read.
    pub const KERNEL_STACK_FAULT: u32 = 1;
    /// Samples whose user stack could not be read.
    pub const USER_STACK_FAULT: u32 = 2;
    /// Samples dropped because a map of counts was full: at its max_entries
    /// (E2BIG), distinct stacks outgrew it between two drains.
    pub const COUNTS_MAP_FULL: u32 = 3;
    /// Samples that took the full-stack path (their stack's STACKS bucket
    /// held another stack). Not a loss: counted to size STACKS.
    pub const STACK_ID_COLLISIONS: u32 = 4;
    /// New processes not announced to user space because the ring buffer was full.
    pub const NEW_PROCESS_DROPPED: u32 = 5;
    /// Targets not added on fork because TARGETS was full.
    pub const TARGETS_FULL: u32 = 6;
    /// Off-CPU: context switches of target threads seen.
    pub const OFF_CPU_SWITCHES: u32 = 7;
    /// Off-CPU: blocked threads not tracked because a starts map was full.
    pub const OFF_CPU_STARTS_FULL: u32 = 8;
    /// Off-CPU: blocks dropped because a map of times was full.
    pub const OFF_CPU_MAP_FULL: u32 = 9;
    /// Off-CPU: stack faults while switching out.
    pub const OFF_CPU_STACK_FAULT: u32 = 10;
    /// Internal: per-CPU scratch space unavailable (should never happen).
    pub const SCRATCH_UNAVAILABLE: u32 = 11;
    /// Off-CPU: blocks whose start was recorded at switch-out.
    pub const OFF_CPU_BLOCKS_STARTED: u32 = 12;
    /// Off-CPU: blocks ended by a switch-in (counted or filtered out).
    pub const OFF_CPU_BLOCKS_ENDED: u32 = 13;
    /// Off-CPU: switch-outs left out as involuntary (preempted, still runnable).
    pub const OFF_CPU_PREEMPTIONS: u32 = 14;
    /// Off-CPU: blocks whose switch-in no tracepoint reported (the thread
    /// was switched out again first; on some systems a task's switches are
    /// invisible to tracepoints). Not lost: their length is recovered from
    /// the thread's CPU time.
    pub const OFF_CPU_SWITCH_IN_UNSEEN: u32 = 15;
    /// Sampling interrupts that hit a process outside the targets and were
    /// filtered out in the kernel: what the recording cost everyone else.
    pub const ON_CPU_OTHERS_INTERRUPTED: u32 = 16;
    /// Tests only: switch-ins ignored on purpose (Config::ignore_switch_in_every).
    pub const OFF_CPU_SWITCH_INS_IGNORED: u32 = 17;
    /// On-CPU samples lost because the ring buffer of user-stack copies was
    /// full (user space did not drain it in time).
    pub const USER_COPIES_FULL: u32 = 18;
    /// On-CPU samples whose user stack could not be copied at all (the
    /// stack pointer did not point at readable memory). Sample kept.
    pub const USER_COPY_FAULT: u32 = 19;
    /// On-CPU ticks of a thread's second timer (see Config::min_sample_gap_ns),
    /// dropped so that no thread is sampled twice as often. Not samples.
    pub const ON_CPU_DUPLICATE_TICKS: u32 = 20;
    /// Table unwinding: how each user stack walk ended (one per walk).
    /// Reached the outermost frame (an outermost row, or a return address
    /// or frame pointer of 0).
    pub const UNWIND_COMPLETE: u32 = 21;
    /// Cut at the frame limit (MAX_STACK_DEPTH).
    pub const UNWIND_DEPTH_LIMIT: u32 = 22;
    /// Stopped at code no table covers, where the frame pointer did not go on.
    pub const UNWIND_NO_INFO: u32 = 23;
    /// Stopped at a frame that could not be read or made no sense (a rule
    /// the walker lacks, an unreadable or non-advancing stack).
    pub const UNWIND_BAD_FRAME: u32 = 24;
    /// The process had no tables yet (its first samples, before user space
    /// loaded them): walked with frame pointers instead.
    pub const UNWIND_NOT_LOADED: u32 = 25;
    /// Frames walked with the frame pointer (code without tables: JIT code,
    /// files whose tables did not fit), within table walks.
    pub const UNWIND_FP_FRAMES: u32 = 26;
    /// A table walk whose walker program could not be tail-called (an empty
    /// slot): its user stack is empty. Should not happen.
    pub const UNWIND_TAIL_CALL_FAILED: u32 = 27;
    /// `--wakers`: waker stacks recorded at the wakeup of a blocked target.
    pub const WAKEUPS_RECORDED: u32 = 28;
    /// `--wakers`: waker records not stored (WAKERS full): those waits show no waker.
    pub const WAKERS_FULL: u32 = 29;
    /// `--wakers`: waker stacks (kernel or user) that could not be read;
    /// the wakeup is still joined, with what was read.
    pub const WAKER_STACK_FAULT: u32 = 30;
    /// `--wakers`: waits ended and joined with their waker.
    pub const WAKEUPS_JOINED: u32 = 31;
    /// `--wakers`: waits that ended with no wakeup recorded (shown without
    /// a waker). Preemptions are counted apart: nothing wakes them.
    pub const WAITS_WITHOUT_WAKER: u32 = 32;
    /// `--wakers`: waits that were preemptions (--wall, --include-preempted).
    pub const WAITS_PREEMPTED: u32 = 33;
    /// `--wakers`: wakeups that came from an interrupt (part of WAKEUPS_RECORDED).
    pub const WAKEUPS_FROM_INTERRUPT: u32 = 34;
    /// Table unwinding: of the walks at a bad frame, those at a CFA from a
    /// register whose value the walk did not know there (not rbx, past the
    /// first frame; rbx saved where no rule said).
    pub const UNWIND_REGISTER_UNKNOWN: u32 = 35;
    /// Samples dropped because a map of counts could not allocate a new
    /// entry below its max_entries (ENOMEM, or any error but E2BIG): its
    /// entries are allocated on use (BPF_F_NO_PREALLOC), from per-CPU
    /// caches that an interrupt-context program cannot refill itself.
    pub const COUNTS_MAP_NO_MEMORY: u32 = 36;
    /// Table unwinding: on-CPU samples of a process whose tables were not
    /// loaded yet, sent with a copy of their user stack to be unwound in user
    /// space (as `--call-graph dwarf` does) instead of walked with frame
    /// pointers. Not table walks: UNWIND_NOT_LOADED counts those.
    pub const UNWIND_COPIED_BEFORE_TABLES: u32 = 37;
    /// Unmaps of file-backed code by target processes (a `dlclose`, a
    /// `munmap`): each begins a new mapping generation of its process.
    pub const CODE_UNMAPS: u32 = 38;
    /// Table unwinding: on-CPU walks cut at code outside every mapping the
    /// tables know (mostly a library whose tables were not loaded yet),
    /// sent with a copy of their user stack to be unwound in user space
    /// instead. Not table walks: no other UNWIND_ counter counts them.
    pub const UNWIND_COPIED_AT_UNKNOWN_CODE: u32 = 39;
    /// Of the walks UNWIND_COPIED_AT_UNKNOWN_CODE would have copied, those
    /// the copy ring had no room for: kept as cut walks (UNWIND_NO_INFO).
    pub const UNWIND_COPY_RING_FULL: u32 = 40;
    /// Number of counters.
    pub const COUNT: u32 = 41;
}

#[cfg(feature = "user")]
mod pod {
    // Each type is plain #[repr(C)] data of integers and integer arrays with
    // no padding (the size asserts below pin the layouts), so every bit
    // pattern is a valid value and copying the bytes is copying the value.
    // SAFETY: see above.
    unsafe impl aya::Pod for super::StackKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::BlockedThread {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::WakerRecord {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::WokenKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::Config {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::SampleKey {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::StartedBlock {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::CodeUnmap {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::UserStackCopy {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::UnwindRow {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::UnwindMapping {}
    // SAFETY: see above.
    unsafe impl aya::Pod for super::ProcessMappings {}
}

// Both sides rely on these sizes; a change of layout must be deliberate.
const _: () = assert!(core::mem::size_of::<StackKey>() == 48 + 8 * LEAF_WORDS + 8 * 2 * MAX_STACK_DEPTH);
const _: () = assert!(core::mem::size_of::<Config>() == 120);
const _: () = assert!(core::mem::size_of::<BlockedThread>() == 24 + core::mem::size_of::<StackKey>());
const _: () = assert!(core::mem::size_of::<WakerRecord>() == 8 + core::mem::size_of::<StackKey>());
const _: () = assert!(core::mem::size_of::<WokenKey>() == 2 * core::mem::size_of::<StackKey>());
const _: () = assert!(core::mem::size_of::<UnwindRow>() == 16);
const _: () = assert!(core::mem::size_of::<UnwindMapping>() == 32);
const _: () = assert!(core::mem::size_of::<ProcessMappings>() == 24 + 32 * unwind::MAX_MAPPINGS);
const _: () = assert!(core::mem::size_of::<SampleKey>() == 48 + 8 * LEAF_WORDS);
const _: () = assert!(core::mem::size_of::<StartedBlock>() == 64 + 8 * LEAF_WORDS);
const _: () = assert!(core::mem::size_of::<ProcessNotice>() == 24);
const _: () = assert!(core::mem::size_of::<CodeUnmap>() == 16);
const _: () = assert!(
    core::mem::size_of::<UserStackCopy>() == 64 + 8 * MAX_STACK_DEPTH + USER_STACK_COPY_BYTES + USER_STACK_CHUNK
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The test as first written, one byte at a time with branches.
    fn follows_call(code: [u8; 8]) -> bool {
        code[3] == 0xe8 || (1..=6).any(|at| code[at] == 0xff && (code[at + 1] >> 3) & 7 == 2)
    }

    fn check(code: [u8; 8]) {
        assert_eq!(call_before(u64::from_le_bytes(code)), follows_call(code) as u64, "{code:02x?}");
    }

    #[test]
    fn call_before_agrees_with_the_byte_by_byte_test() {
        // Real call sites: call rel32, call *%rax, call *0x8(%rax), call *%r11 (41 ff d3).
        check([0x90, 0x90, 0x90, 0xe8, 0x10, 0x20, 0x30, 0x40]);
        check([0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0xd0]);
        check([0x90, 0x90, 0x90, 0x90, 0x90, 0xff, 0x50, 0x08]);
        check([0x90, 0x90, 0x90, 0x90, 0x90, 0x41, 0xff, 0xd3]);
        assert_eq!(call_before(u64::from_le_bytes([0x90, 0x90, 0x90, 0x90, 0x90, 0x41, 0xff, 0xd3])), 1);
        // Near misses: E8 elsewhere, FF /4 (jmp), FF at byte 0 or 7.
        check([0xe8, 0, 0, 0, 0, 0, 0, 0xe8]);
        check([0, 0, 0, 0, 0, 0, 0xff, 0xe0]);
        check([0xff, 0x10, 0, 0, 0, 0, 0, 0]);
        check([0, 0, 0, 0, 0, 0, 0, 0xff]);
        check([0; 8]);
        check([0xff; 8]);
        // Every byte value at every position, over a background of each byte value.
        for background in [0x00, 0x10, 0x7f, 0x80, 0xe8, 0xff] {
            for at in 0..8 {
                for byte in 0..=255u8 {
                    let mut code = [background; 8];
                    code[at] = byte;
                    check(code);
                    if at < 7 {
                        code[at + 1] = 0xff;
                        check(code);
                    }
                }
            }
        }
        // And pseudo-random codes, dense in E8, FF and ModRM bytes with reg = 2.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..1_000_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut code = state.to_le_bytes();
            for (i, byte) in code.iter_mut().enumerate() {
                *byte = match (state >> (56 + i % 8)) & 3 {
                    0 => 0xff,
                    1 => 0xe8,
                    2 => (*byte & !0x38) | 0x10,
                    _ => *byte,
                };
            }
            check(code);
        }
    }
}
