//! Types and constants shared by flameprof's BPF programs and its user space.
//!
//! This is the only definition of the layouts that cross the kernel boundary:
//! the BPF side (built for `bpfel-unknown-none`) and the `flameprof` binary both
//! compile this file. No `bool`s, explicit padding, `#[repr(C)]` throughout, so
//! both sides agree byte for byte.
#![no_std]

/// Frames kept per stack: the kernel's default `perf_event_max_stack`.
pub const MAX_STACK_DEPTH: usize = 127;
/// Length of a task's `comm` (thread name), including the trailing NUL.
pub const TASK_COMM_LEN: usize = 16;

/// Names of the maps and programs in the BPF object.
pub mod names {
    pub const ON_CPU_PROGRAM: &str = "on_cpu_sample";
    pub const OFF_CPU_PROGRAM: &str = "off_cpu_switch";
    pub const FORK_PROGRAM: &str = "follow_fork";
    pub const EXEC_PROGRAM: &str = "reannounce_on_exec";
    pub const ON_CPU_COUNTS: &str = "ON_CPU_COUNTS";
    pub const OFF_CPU_TIMES: &str = "OFF_CPU_TIMES";
    pub const OFF_CPU_STARTS: &str = "OFF_CPU_STARTS";
    pub const TARGETS: &str = "TARGETS";
    pub const CONFIG: &str = "CONFIG";
    pub const COUNTERS: &str = "COUNTERS";
    pub const NEW_PROCESSES: &str = "NEW_PROCESSES";
}

/// Capacity of the map of distinct stacks (per mode). Entries are allocated on
/// use (BPF_F_NO_PREALLOC), so a large bound costs nothing until it is used.
pub const MAX_DISTINCT_STACKS: u32 = 1 << 17;
/// Capacity of the target process set (`-p`, `-- CMD` and their children).
pub const MAX_TARGETS: u32 = 8192;
/// Capacity of the set of threads currently off CPU.
pub const MAX_BLOCKED_THREADS: u32 = 1 << 16;
/// Size of the ring buffer announcing processes seen for the first time.
pub const NEW_PROCESSES_BYTES: u32 = 1 << 18;

/// One stack as the kernel captured it, with whom it belongs to. Used as the
/// key of the count maps: counts are aggregated by the whole stack itself, so
/// two different stacks never merge (unlike a hashed stack-id map).
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
    /// Kernel return addresses, leaf first; unused entries are zero.
    pub kernel: [u64; MAX_STACK_DEPTH],
    /// User return addresses, leaf first; unused entries are zero.
    pub user: [u64; MAX_STACK_DEPTH],
}

/// What the off-CPU program stores for a thread while it is switched out.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlockedThread {
    /// `bpf_ktime_get_ns()` when it was switched out.
    pub since_ns: u64,
    pub stack: StackKey,
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
    pub _pad: u32,
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
    /// Samples dropped because the map of distinct stacks was full.
    pub const COUNTS_MAP_FULL: u32 = 3;
    /// Samples whose kernel stack filled all MAX_STACK_DEPTH entries (may be cut).
    pub const KERNEL_STACK_FULL_DEPTH: u32 = 4;
    /// Samples whose user stack filled all MAX_STACK_DEPTH entries (may be cut).
    pub const USER_STACK_FULL_DEPTH: u32 = 5;
    /// New processes not announced to user space because the ring buffer was full.
    pub const NEW_PROCESS_DROPPED: u32 = 6;
    /// Targets not added on fork because TARGETS was full.
    pub const TARGETS_FULL: u32 = 7;
    /// Off-CPU: context switches of target threads seen.
    pub const OFF_CPU_SWITCHES: u32 = 8;
    /// Off-CPU: blocked threads not tracked because OFF_CPU_STARTS was full.
    pub const OFF_CPU_STARTS_FULL: u32 = 9;
    /// Off-CPU: blocks dropped because the map of distinct stacks was full.
    pub const OFF_CPU_MAP_FULL: u32 = 10;
    /// Off-CPU: stack faults while switching out.
    pub const OFF_CPU_STACK_FAULT: u32 = 11;
    /// Internal: per-CPU scratch space unavailable (should never happen).
    pub const SCRATCH_UNAVAILABLE: u32 = 12;
    /// Number of counters.
    pub const COUNT: u32 = 13;
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain #[repr(C)] data of integers and integer arrays, no padding.
    unsafe impl aya::Pod for super::StackKey {}
    unsafe impl aya::Pod for super::BlockedThread {}
    unsafe impl aya::Pod for super::Config {}
}

// Both sides rely on these sizes; a change of layout must be deliberate.
const _: () = assert!(core::mem::size_of::<StackKey>() == 32 + 8 * 2 * MAX_STACK_DEPTH);
const _: () = assert!(core::mem::size_of::<Config>() == 48);
