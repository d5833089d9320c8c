//! Every map of the BPF object, with the helpers that update them.
//!
//! # Who can touch a map value at the same time
//!
//! The `// SAFETY:` comments of the BPF side rely on these three facts.
//!
//! 1. **A value's memory outlives the program run that looked it up.** Array
//!    slots (per-CPU or not) live as long as the map, and the running program
//!    holds the map. A deleted hash-map element goes back to the map's free
//!    list, or to the allocator only after an RCU grace period, and a program
//!    runs inside an RCU read-side section. Deletion does allow the element
//!    to be reused *at once* for another key (in preallocated maps, and since
//!    Linux 6.1 in `BPF_F_NO_PREALLOC` maps too), so a pointer is only
//!    dereferenced while nobody else can delete that entry (point 3).
//! 2. **Per-CPU values (COUNTERS, LAST_ADMITTED, SCRATCH) have one user at a
//!    time.** Only runs on that CPU see that CPU's copy (user space only
//!    reads COUNTERS, and never the other two), and a run does not migrate.
//!    Runs on one CPU could still nest if one interrupted another, but the
//!    on-CPU samplers run in the cpu-clock hrtimer's hard interrupt, the
//!    sched_switch program runs inside `__schedule` with interrupts
//!    disabled, and the kernel does not start a perf_event program while
//!    another perf_event or kprobe program runs on that CPU
//!    (`bpf_prog_active`). So samplers and the off-CPU program never overlap
//!    on a CPU, and they alone use LAST_ADMITTED and SCRATCH. A hardware
//!    event (`-e cycles`) overflows in an NMI instead, which could interrupt
//!    the sched_switch program in the middle of using them: user space
//!    attaches one only to on-CPU recordings (it refuses `-e cycles` with
//!    --off-cpu and --wall), where no sched_switch program is loaded. An NMI
//!    can also land while the exec program holds ANNOUNCED's bucket lock
//!    (interrupts off): the kernel sees the lock held on its CPU and fails
//!    the sampler's insert there, counted as a dropped notice
//!    (NEW_PROCESS_DROPPED). The
//!    fork and exec programs run with interrupts enabled (a sampler can
//!    interrupt them); of the per-CPU values they touch only COUNTERS, and
//!    fork bumps only TARGETS_FULL, which no sampler bumps. The code-unmap
//!    program (fentry, in the unmapping task, preemptible) bumps
//!    CODE_UNMAPS, which no other bumps, and NEW_PROCESS_DROPPED when the
//!    ring is full, as the samplers do: one count of a dropped notice
//!    could be lost if a sampler lands between its load and its store.
//!    The sched_waking programs (`--wakers`) use LAST_ADMITTED, WALK_STATE,
//!    LOOKUP_CACHE and WAKER_SCRATCH, and only with interrupts disabled (try_to_wake_up
//!    holds the wakee's pi_lock with interrupts off from before the
//!    tracepoint; its one other call site, a task waking itself, is left
//!    before any of them is touched), so no sampler or other sched_waking
//!    run can interrupt them on that CPU, and they cannot interrupt a
//!    sampler (hard interrupt) or the sched_switch program (interrupts off).
//!    JOIN_SCRATCH is used by the sched_switch program alone.
//! 3. **Entries keyed by a thread id (OFF_CPU_STARTS, OFF_CPU_FULL_STARTS,
//!    WAITING_AT_START, LAST_SAMPLE) are touched by that thread's own events
//!    only, one at a time.** Those are its switch-out (on the CPU it leaves,
//!    while it is still current there), its switch-in (on the CPU it enters:
//!    a CPU can switch a task in only once its switch-out elsewhere has
//!    finished, `task_struct::on_cpu`) and its samples (taken while it is current, on its CPU). During a
//!    recording user space only reads these maps, except that it inserts each
//!    WAITING_AT_START entry once, before any program writes it. Thread id 0,
//!    the idle tasks (one per CPU, all current at once), is never a key: the
//!    programs skip it and user space lists only real threads.
//!
//! WAKERS is the exception to point 3: its entry for a thread is written by
//! whoever wakes that thread (on any CPU) and read and deleted by the
//! thread's switch-in. A wakeup and the switch-in it allows do not overlap
//! (the switch-in follows the wakeup), but a later, spurious wakeup may
//! replace the entry while a switch-in reads it: the switch-in copies it
//! with bpf_probe_read_kernel (no Rust reference, no data race in Rust's
//! sense), and the worst outcome is a wait joined with the later waker.
use aya_ebpf::{
    bindings::{BPF_F_MMAPABLE, BPF_F_NO_PREALLOC},
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf, StackTrace},
};
use profiler_ebpf::{
    BlockedThread, CodeUnmap, Config, MAX_BLOCKED_THREADS, MAX_DISTINCT_STACKS, MAX_TARGETS, NEW_PROCESSES_BYTES,
    ProcessMappings, STACK_MAP_ENTRIES, SampleKey, StackKey, StartedBlock, USER_STACK_COPIES_BYTES, UnwindRow,
    WakerRecord, WokenKey, counter, unwind,
};

/// Kernel and user stacks by id (the fast path).
#[map]
pub static STACKS: StackTrace = StackTrace::with_max_entries(STACK_MAP_ENTRIES, 0);

/// Samples per (process, thread name, kernel stack id, user stack id).
#[map]
pub static ON_CPU_COUNTS: HashMap<SampleKey, u64> = HashMap::with_max_entries(MAX_DISTINCT_STACKS, BPF_F_NO_PREALLOC);

/// Samples per whole stack, for stacks that could not get an id.
#[map]
pub static ON_CPU_FULL_COUNTS: HashMap<StackKey, u64> =
    HashMap::with_max_entries(MAX_DISTINCT_STACKS, BPF_F_NO_PREALLOC);

/// Nanoseconds off CPU per (process, thread name, stack ids, marker).
#[map]
pub static OFF_CPU_TIMES: HashMap<SampleKey, u64> = HashMap::with_max_entries(MAX_DISTINCT_STACKS, BPF_F_NO_PREALLOC);

/// Nanoseconds off CPU per whole stack, for stacks that could not get an id.
#[map]
pub static OFF_CPU_FULL_TIMES: HashMap<StackKey, u64> =
    HashMap::with_max_entries(MAX_DISTINCT_STACKS, BPF_F_NO_PREALLOC);

/// Threads currently switched out (fast path), by thread id. Preallocated:
/// an insert and a delete per context switch must not allocate.
#[map]
pub static OFF_CPU_STARTS: HashMap<u32, StartedBlock> = HashMap::with_max_entries(MAX_BLOCKED_THREADS, 0);

/// Threads currently switched out whose stack could not get an id.
#[map]
pub static OFF_CPU_FULL_STARTS: HashMap<u32, BlockedThread> =
    HashMap::with_max_entries(MAX_BLOCKED_THREADS, BPF_F_NO_PREALLOC);

/// Threads that were already blocked when the recording started (tid ->
/// 0), filled by user space; the first switch-in of each writes its time.
#[map]
pub static WAITING_AT_START: HashMap<u32, u64> = HashMap::with_max_entries(MAX_BLOCKED_THREADS, BPF_F_NO_PREALLOC);

/// Per thread, when it was last sampled (Config::min_sample_gap_ns).
#[map]
pub static LAST_SAMPLE: HashMap<u32, u64> = HashMap::with_max_entries(MAX_BLOCKED_THREADS, BPF_F_NO_PREALLOC);

/// Target processes (tgid -> 1) when Config::filter_targets is set.
#[map]
pub static TARGETS: HashMap<u32, u8> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Processes already announced on NEW_PROCESSES: pid -> its start
/// (`StackKey::started_ns`; 0 when user space marked it, not knowing it).
#[map]
pub static ANNOUNCED: HashMap<u32, u64> = HashMap::with_max_entries(1 << 16, BPF_F_NO_PREALLOC);

/// Tells user space the tgid of each process seen for the first time, so it
/// can snapshot its mappings before the process goes away.
#[map]
pub static NEW_PROCESSES: RingBuf = RingBuf::with_byte_size(NEW_PROCESSES_BYTES, 0);

/// On-CPU samples with a copy of the user stack, for DWARF unwinding in user
/// space (the `--call-graph dwarf` sampler). User space sizes it (one page when unused).
#[map]
pub static USER_STACK_COPIES: RingBuf = RingBuf::with_byte_size(USER_STACK_COPIES_BYTES, 0);

#[map]
pub static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

/// Processes that exec'd during the recording: tgid -> (its leader's
/// start, the exec's time). Keys carry the exec's time as the process's
/// start from then on (process.rs), so what ran before an exec and what
/// runs after it are two processes to user space, each symbolized with
/// its own program. LRU: never full; an evicted entry only merges a
/// long-gone exec's two halves again.
#[map]
pub static EXEC_STARTS: LruHashMap<u32, ExecStart> = LruHashMap::with_max_entries(1 << 14, 0);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecStart {
    /// The thread-group leader's `start_boottime` at the exec: a later
    /// process with the pid has another and ignores the entry.
    pub leader_started_ns: u64,
    /// bpf_ktime_get_boot_ns() at sched_process_exec (the clock of
    /// `start_boottime`).
    pub exec_ns: u64,
}

/// Processes that unmapped file-backed code during the recording (a
/// `dlclose`, a `munmap`): tgid -> (the process's start as keys carry it,
/// the last such unmap's time). Keys carry that time as their mapping
/// generation (`StackKey::mappings_since_ns`; code_unmap.rs, process.rs).
/// Written here, or by user space where this kernel does not let
/// code_unmap.rs attach. LRU: never full; an evicted entry only lets a
/// long-quiet process's later samples share keys with its earlier
/// generation again.
#[map]
pub static CODE_UNMAPS: LruHashMap<u32, CodeUnmap> = LruHashMap::with_max_entries(1 << 14, 0);

/// Bumped by every exec (see exec.rs), so per-CPU memories of "this process
/// was announced" know when to forget.
#[map]
pub static EXEC_GENERATION: Array<u64> = Array::with_max_entries(1, 0);

/// Per CPU: the last process admitted (a target, announced) and the exec
/// generation then.
#[map]
pub static LAST_ADMITTED: PerCpuArray<Admitted> = PerCpuArray::with_max_entries(1, 0);

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Admitted {
    pub tgid: u32,
    pub _pad: u32,
    pub exec_generation: u64,
    /// The process's start: another process with the same pid is not it.
    pub started_ns: u64,
}

#[map]
pub static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(counter::COUNT, 0);

/// Unwind rows of every loaded file (`--call-graph table`), written by user
/// space through a memory mapping (one syscall per row would take 100 ms
/// for python's 100k rows); it sizes the map (one entry when table
/// unwinding is off).
#[map]
pub static UNWIND_ROWS: Array<UnwindRow> = Array::with_max_entries(unwind::DEFAULT_MAX_ROWS, BPF_F_MMAPABLE);

/// Walks that stopped short, by where they stopped (`unwind::file_key`).
#[map]
pub static BROKEN_CHAINS: HashMap<u32, u64> = HashMap::with_max_entries(4096, BPF_F_NO_PREALLOC);

/// Per process (tgid): its executable mappings and their files' rows.
#[map]
pub static PROCESS_MAPPINGS: HashMap<u32, ProcessMappings> =
    HashMap::with_max_entries(unwind::MAX_PROCESSES, BPF_F_NO_PREALLOC);

/// Per-CPU room to build a key: 2 KiB does not fit on the 512-byte BPF stack.
#[map]
pub static SCRATCH: PerCpuArray<BlockedThread> = PerCpuArray::with_max_entries(1, 0);

/// `--wakers`: per wakee thread id, who last woke it while it was blocked.
/// Allocated on use: 2 KiB a record, only for waits being timed.
#[map]
pub static WAKERS: HashMap<u32, WakerRecord> = HashMap::with_max_entries(MAX_BLOCKED_THREADS, BPF_F_NO_PREALLOC);

/// `--wakers`: nanoseconds off CPU per wait stack joined with its waker's.
#[map]
pub static WOKEN_TIMES: HashMap<WokenKey, u64> = HashMap::with_max_entries(MAX_DISTINCT_STACKS, BPF_F_NO_PREALLOC);

/// Per-CPU room where the sched_waking programs build a waker record.
#[map]
pub static WAKER_SCRATCH: PerCpuArray<WakerRecord> = PerCpuArray::with_max_entries(1, 0);

/// Per-CPU room where a switch-in joins a wait with its waker (4 KiB).
#[map]
pub static JOIN_SCRATCH: PerCpuArray<WokenKey> = PerCpuArray::with_max_entries(1, 0);

const EEXIST: i32 = 17;
const E2BIG: i32 = 7;

/// What became of an addition to a map of counts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Yes,
    /// The map holds max_entries keys (E2BIG).
    MapFull,
    /// A new entry could not be allocated (ENOMEM, or another error).
    NoMemory,
}

impl Added {
    /// The counter of a failed addition to a map of on-CPU counts.
    #[inline(always)]
    pub fn bump_on_cpu_loss(self) {
        match self {
            Added::Yes => {}
            Added::MapFull => bump(counter::COUNTS_MAP_FULL),
            Added::NoMemory => bump(counter::COUNTS_MAP_NO_MEMORY),
        }
    }

    #[inline(always)]
    pub fn ok(self) -> bool {
        self == Added::Yes
    }
}

#[inline(always)]
pub fn config() -> Option<&'static Config> {
    CONFIG.get(0)
}

#[inline(always)]
pub fn bump(index: u32) {
    if let Some(slot) = COUNTERS.get_ptr_mut(index) {
        // SAFETY: `slot` is this CPU's copy of a COUNTERS slot, non-null,
        // aligned and alive for the whole run (point 1 at the top of this
        // file); the lookup returned None for an index out of range. No other
        // CPU writes this copy and user space only reads it. No reference is
        // made: a plain load, add and store. Two bumps of one slot could only
        // interleave if a run that bumps it were interrupted or preempted by
        // another that bumps the same index (point 2: no such pair today; fork
        // runs preempting each other, where tracepoints are preemptible, are
        // the one way left); that is a data race in Rust's model, and here
        // would at worst lose one count.
        unsafe { *slot += 1 };
    }
}

/// This CPU's value of a counter.
#[inline(always)]
pub fn counter_value(index: u32) -> u64 {
    COUNTERS.get(index).copied().unwrap_or(0)
}

/// Adds `amount` to the value of `key`, creating it if needed; says why
/// it could not.
#[inline(always)]
pub fn add_to<K>(map: &HashMap<K, u64>, key: &K, amount: u64) -> Added {
    if let Some(value) = map.get_ptr_mut(key) {
        atomic_add(value, amount);
        return Added::Yes;
    }
    match map.insert(key, amount, aya_ebpf::bindings::BPF_NOEXIST as u64) {
        Ok(()) => Added::Yes,
        // Another CPU created it between our lookup and insert.
        Err(e) if e == -EEXIST => match map.get_ptr_mut(key) {
            Some(value) => {
                atomic_add(value, amount);
                Added::Yes
            }
            None => Added::NoMemory,
        },
        Err(e) if e == -E2BIG => Added::MapFull,
        Err(_) => Added::NoMemory,
    }
}

/// Several CPUs may add to one value at once. core's AtomicU64 has no
/// fetch_add on the BPF target (no CAS), but BPF has an atomic add: reach it
/// through the intrinsic.
#[inline(always)]
pub fn atomic_add(value: *mut u64, amount: u64) {
    // SAFETY: this relies on the callers, as this function is not `unsafe`
    // although it writes through a raw pointer: both (`add_to` and exec.rs)
    // pass a value pointer just returned by a map lookup, so it is non-null,
    // 8-byte aligned (map values are) and alive for the run (point 1 at the
    // top of this file). The add is atomic (BPF_ATOMIC add), so other CPUs
    // adding to the same value at once are no data race; no reference to the
    // value is held meanwhile.
    unsafe { core::intrinsics::atomic_xadd::<u64, u64, { core::intrinsics::AtomicOrdering::Relaxed }>(value, amount) };
}
