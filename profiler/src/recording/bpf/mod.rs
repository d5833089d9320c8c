//! Loading, configuring and attaching the BPF programs, and reading back what
//! they counted. Everything loaded is owned by `Probes`: dropping it (on any
//! exit path, panics included) detaches and unloads every program and map.
mod attach;
pub(crate) mod btf;
mod counters;
mod drain;
pub(crate) mod preallocated;
mod read_back;
mod stacks;
pub(crate) mod verdict;

use std::{os::fd::AsRawFd, path::Path};

use aya::{
    Ebpf, EbpfLoader, VerifierLogLevel,
    maps::{Array, HashMap, MapData, RingBuf},
};
use profiler_ebpf::{CodeUnmap, Config, StackKey, capture, names};

pub use counters::Counters;
pub use drain::DrainPass;
pub use stacks::whole_stack;

use crate::{
    error::{BpfError, Error, Result, one_line},
    recording::{
        kernel::features::{Feature, KERNEL_BTF, KernelFeatures},
        unwind_tables::{MappedRows, UnwindTables},
    },
    settings::{SamplingEvent, UserWalk},
};

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The BPF object, carried inside the binary: built from source or the
/// committed one (build.rs says which).
static BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(env!("FLAMEPROF_BPF_OBJECT"));

/// A hash of the BPF object this binary carries: what depends on its
/// layouts (the cached unwind rows) is valid for this build only.
pub fn object_fingerprint() -> u64 {
    use std::hash::{Hash, Hasher};
    static FINGERPRINT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *FINGERPRINT.get_or_init(|| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        BPF_OBJECT.hash(&mut hasher);
        hasher.finish()
    })
}

/// What the probes record and for whom.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub on_cpu_frequency: Option<u64>,
    /// What the samplers count (cpu-clock unless `-e` says otherwise).
    pub event: SamplingEvent,
    pub off_cpu: bool,
    /// Only processes added with `add_target` (else every process).
    pub filter_targets: bool,
    pub follow_forks: bool,
    pub kernel_frames: bool,
    pub user_frames: bool,
    /// How user stacks are walked (which sampler and off-CPU program run).
    pub user_walk: UserWalk,
    /// Capacity of UNWIND_ROWS when `user_walk` is Tables.
    pub table_rows: u32,
    pub keep_preempted: bool,
    pub record_state: bool,
    /// `--wakers`: waits joined with who woke them (sched_waking).
    pub wakers: bool,
    pub min_block_ns: u64,
    pub max_block_ns: Option<u64>,
    /// Buckets of the stack-id map (tests shrink it to force collisions).
    pub stack_map_entries: Option<u32>,
    /// Entries of each map of counts (tests shrink them to force losses).
    pub count_map_entries: Option<u32>,
    /// The samplers' hash maps preallocated: kernels before 6.1 refuse them
    /// allocated as used (see `preallocated`).
    pub preallocate_maps: bool,
    pub sampling: SamplingScope,
    /// Tests only: ignore every Nth switch-in (see Config).
    pub ignore_switch_in_every: Option<u32>,
    /// Off-CPU of running processes (-p, -a): time the first wait of
    /// threads already blocked at the start (see WAITING_AT_START).
    pub waiting_at_start: bool,
}

/// What the off-CPU maps hold at the end of a recording.
pub struct OffCpuMaps {
    /// Nanoseconds off CPU per whole stack, of the waits that ended.
    pub times: Vec<(StackKey, u64)>,
    /// `--wakers`: nanoseconds off CPU per wait joined with its waker.
    pub woken: Vec<WokenTime>,
    /// Waits still open when the probes stopped.
    pub open_waits: Vec<OpenWait>,
    /// Stack ids that could not be read back (their stacks show empty).
    pub missing_stack_ids: u64,
}

/// A thread recorded as blocked when the probes stopped.
pub struct OpenWait {
    pub tgid: u32,
    pub tid: u32,
    pub stack: StackKey,
    /// When it blocked (CLOCK_MONOTONIC ns).
    pub since_ns: u64,
    /// Its CPU time (ns) when it blocked.
    pub ran_ns: u64,
    /// `--wakers`: who woke it during this wait (it had not run again yet).
    pub waker: Option<StackKey>,
}

/// `--wakers`: a wait's stack joined with its waker's, and their time.
#[derive(Clone, Copy)]
pub struct WokenTime {
    pub wakee: StackKey,
    pub waker: StackKey,
    pub ns: u64,
}

/// Where the on-CPU timers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SamplingScope {
    /// One timer per online CPU, whoever runs there; the kernel-side filter
    /// picks the targets. Catches every thread of a running process,
    /// including those it starts, with no race at attach time.
    EveryCpu,
    /// One timer per task of this process and of everything it starts later
    /// (inherited at fork), ticking only while such a task runs: other
    /// processes are never interrupted. For a command we start ourselves,
    /// attached before it runs.
    ProcessTree(u32),
    /// One timer per thread of these running processes, inherited by the
    /// threads they start. Threads are listed again until no new one
    /// appears; a thread created from one already timed while this runs may
    /// get a second timer, whose ticks the program drops
    /// (Config::min_sample_gap_ns). With timers per thread (tests: more
    /// than 1 forces such seconds).
    Threads(Vec<u32>, u32),
}

pub struct Probes {
    ebpf: Ebpf,
    settings: ProbeSettings,
    /// Entries each map of on-CPU counts holds (fewer where preallocated).
    count_map_capacity: u32,
    /// When the counts of exited processes are next moved out of the kernel.
    drained: drain::Drained,
    /// Whether unmapped code is noticed (attach.rs): each process's samples
    /// are then keyed by mapping generation.
    pub code_unmaps_watched: bool,
}

impl Probes {
    /// Loads the object and writes its settings; nothing runs until `attach`.
    pub fn load(settings: ProbeSettings) -> Result<Self> {
        let needs_btf = settings.off_cpu || settings.follow_forks;
        let kernel_btf = Path::new(KERNEL_BTF);
        if needs_btf && !kernel_btf.exists() {
            return Err(Error::MissingFeature(Feature::Btf));
        }
        raise_memlock_limit();
        // Before Linux 6.1: the samplers' hash maps preallocated, smaller.
        let preallocated = match settings.preallocate_maps {
            true => {
                let object = preallocated::preallocate(BPF_OBJECT)
                    .map_err(|detail| Error::bpf("preallocating the samplers' maps", BpfError::Object(detail)))?;
                if KernelFeatures::get().lacks(Feature::AllocatedMapsInSamplers) {
                    eprintln!("flameprof: warning: {}", Feature::AllocatedMapsInSamplers.missing_line());
                }
                Some(object)
            }
            false => None,
        };
        let mut loader = EbpfLoader::new();
        // aya loads once without a log and, on failure, again with one; at
        // its default level (every instruction) the log overflows and each
        // larger retry verifies again: minutes for a walker a kernel
        // rejects. The statistics level still gives the verifier's reason.
        loader.verifier_log_level(VerifierLogLevel::STATS);
        if let Some(entries) = settings.stack_map_entries {
            loader.map_max_entries(names::STACKS, entries);
        }
        if let Some(entries) = settings.count_map_entries {
            for map in
                [names::ON_CPU_COUNTS, names::ON_CPU_FULL_COUNTS, names::OFF_CPU_TIMES, names::OFF_CPU_FULL_TIMES]
            {
                loader.map_max_entries(map, entries);
            }
        }
        let mut count_map_capacity = settings.count_map_entries.unwrap_or(profiler_ebpf::MAX_DISTINCT_STACKS);
        for map in preallocated.iter().flat_map(|object| &object.maps) {
            let count_map = [names::ON_CPU_COUNTS, names::ON_CPU_FULL_COUNTS].contains(&map.name.as_str());
            let entries = match (count_map, settings.count_map_entries) {
                (true, Some(asked)) => asked.min(map.max_entries),
                _ => map.max_entries,
            };
            if map.name == names::ON_CPU_COUNTS {
                count_map_capacity = entries;
            }
            loader.map_max_entries(&map.name, entries);
        }
        loader.map_max_entries(names::USER_STACK_COPIES, user_stack_copies_bytes(settings.user_walk));
        // Preallocated: one row unless tables are used.
        let rows = if settings.user_walk == UserWalk::Tables { settings.table_rows } else { 1 };
        loader.map_max_entries(names::UNWIND_ROWS, rows);
        // sched_switch passes prev_state from Linux 5.18; before, the
        // program reads the task's state (Config::task_state_offset).
        let switch_has_prev_state = match settings.off_cpu && kernel_btf.exists() {
            true => {
                btf::tracepoint_arguments(kernel_btf, "sched_switch").map_err(|detail| Error::KernelFeature {
                    feature: "a usable sched_switch tracepoint".into(),
                    hint: detail,
                })? >= 4
            }
            false => true,
        };
        let has_prev_state = u32::from(switch_has_prev_state);
        loader.override_global(names::SWITCH_HAS_PREV_STATE, &has_prev_state, true);
        let object = preallocated.as_ref().map_or(BPF_OBJECT, |object| object.bytes());
        let ebpf = loader.load(object).map_err(classify_load_error)?;
        let mut probes = Probes {
            ebpf,
            settings,
            count_map_capacity,
            drained: drain::Drained::default(),
            code_unmaps_watched: false,
        };
        let config = probes.config(kernel_btf, switch_has_prev_state)?;
        let mut map: Array<_, Config> = probes.map_mut(names::CONFIG)?;
        map.set(0, config, 0).map_err(|e| Error::bpf("writing the settings", e))?;
        Ok(probes)
    }

    fn config(&self, kernel_btf: &Path, switch_has_prev_state: bool) -> Result<Config> {
        let s = &self.settings;
        let (task_pid_offset, task_tgid_offset, task_runtime_offset) = if s.off_cpu || s.follow_forks {
            let found = btf::members_of(
                kernel_btf,
                &[("task_struct", &["pid", "tgid", "se"]), ("sched_entity", &["sum_exec_runtime"])],
            )
            .map_err(|detail| Error::KernelFeature {
                feature: "usable BTF for struct task_struct".into(),
                hint: detail,
            })?;
            (found[0][0], found[0][1], found[0][2] + found[1][0])
        } else {
            (0, 0, 0)
        };
        // Each process's start tells it from a later one with the same pid;
        // without BTF (or these fields) every start reads 0, as before.
        let (task_group_leader_offset, task_start_offset) = if kernel_btf.exists() {
            btf::members_of(kernel_btf, &[("task_struct", &["group_leader", "start_boottime"])])
                .map_or((0, 0), |found| (found[0][0], found[0][1]))
        } else {
            (0, 0)
        };
        // Unmapped code begins a new mapping generation of its process; the
        // fentry program that sees it reads these (all 0 without BTF: off).
        let unmap_offsets = match kernel_btf.exists() {
            true => btf::members_of(
                kernel_btf,
                &[("task_struct", &["mm"]), ("vm_area_struct", &["vm_mm", "vm_flags", "vm_file"])],
            )
            .map_or([0; 4], |found| [found[0][0], found[1][0], found[1][1], found[1][2]]),
            false => [0; 4],
        };
        // Frame-pointer walks keep the words at the user sp for the leaf
        // fix-up; outside user mode that sp is found through the task's
        // kernel stack, whose offset needs BTF (without it: no fix-up there).
        let keep_leaf_words = s.user_walk == UserWalk::FramePointers && s.user_frames;
        let task_stack_offset = match keep_leaf_words {
            true => btf::member_offsets(kernel_btf, "task_struct", &["stack"]).map_or(0, |found| found[0]),
            false => 0,
        };
        // `__state` from Linux 5.14, `state` before.
        let task_state_offset = match switch_has_prev_state {
            true => 0,
            false => btf::member_offsets(kernel_btf, "task_struct", &["__state"])
                .or_else(|_| btf::member_offsets(kernel_btf, "task_struct", &["state"]))
                .map_err(|detail| Error::KernelFeature {
                    feature: "usable BTF for struct task_struct".into(),
                    hint: detail,
                })?[0],
        };
        let irq_entry = match s.wakers {
            true => crate::recording::kernel::interrupt_entry_range().unwrap_or((0, 0)),
            false => (0, 0),
        };
        let mut capture_bits = 0;
        if s.kernel_frames {
            capture_bits |= capture::KERNEL;
        }
        if s.user_frames {
            capture_bits |= capture::USER;
        }
        Ok(Config {
            filter_targets: s.filter_targets as u32,
            follow_forks: s.follow_forks as u32,
            capture: capture_bits,
            keep_preempted: s.keep_preempted as u32,
            min_block_ns: s.min_block_ns,
            max_block_ns: s.max_block_ns.unwrap_or(0),
            task_pid_offset,
            task_tgid_offset,
            record_state: s.record_state as u32,
            task_runtime_offset,
            task_stack_offset,
            keep_leaf_words: keep_leaf_words as u32,
            ignore_switch_in_every: s.ignore_switch_in_every.unwrap_or(0),
            track_waiting_at_start: s.waiting_at_start as u32,
            min_sample_gap_ns: match (&s.sampling, s.on_cpu_frequency) {
                (SamplingScope::Threads(..), Some(hz)) if hz > 0 => 1_000_000_000 / hz / 2,
                _ => 0,
            },
            wakers: (s.off_cpu && s.wakers) as u32,
            task_state_offset,
            irq_entry_start: irq_entry.0,
            irq_entry_end: irq_entry.1,
            task_group_leader_offset,
            task_start_offset,
            task_mm_offset: unmap_offsets[0],
            vma_mm_offset: unmap_offsets[1],
            vma_flags_offset: unmap_offsets[2],
            vma_file_offset: unmap_offsets[3],
        })
    }

    /// Begins a new mapping generation of process (tgid, start) at `at_ns`
    /// (where the kernel side cannot see unmaps: see `code_unmaps_watched`).
    pub fn begin_mapping_generation(&mut self, tgid: u32, started_ns: u64, at_ns: u64) -> Result<()> {
        let mut unmaps: HashMap<_, u32, CodeUnmap> = self.map_mut(names::CODE_UNMAPS)?;
        let unmap = CodeUnmap { started_ns, unmapped_ns: at_ns };
        unmaps.insert(tgid, unmap, 0).map_err(|e| Error::bpf("beginning a mapping generation", e))
    }

    /// Adds a process to the target set (before or while recording).
    pub fn add_target(&mut self, tgid: u32) -> Result<()> {
        let mut targets: HashMap<_, u32, u8> = self.map_mut(names::TARGETS)?;
        targets.insert(tgid, 1, 0).map_err(|e| Error::bpf("adding a target process", e))
    }

    /// Tells the kernel side that user space already announced `tgid` (a
    /// `-p` target, snapshotted up front): only an exec announces it again.
    pub fn mark_announced(&mut self, tgid: u32) -> Result<()> {
        // Its start is not known here (0): its first event fills it in.
        let mut announced: HashMap<_, u32, u64> = self.map_mut(names::ANNOUNCED)?;
        announced.insert(tgid, 0, 0).map_err(|e| Error::bpf("marking a process as announced", e))
    }

    /// The ring buffer announcing new processes; taken once.
    pub fn take_new_processes(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(names::NEW_PROCESSES)
    }

    /// The ring buffer of user-stack copies (`--call-graph dwarf`); taken once.
    pub fn take_user_stack_copies(&mut self) -> Result<RingBuf<MapData>> {
        self.take_ring(names::USER_STACK_COPIES)
    }

    /// The unwind-table maps (`--call-graph table`); taken once.
    pub fn take_unwind_tables(&mut self) -> Result<UnwindTables> {
        let aya::maps::Map::Array(rows) = self.take_map(names::UNWIND_ROWS)? else {
            return Err(Error::bpf(
                "opening the unwind rows",
                BpfError::Missing { kind: "array map", name: names::UNWIND_ROWS },
            ));
        };
        let rows = MappedRows::new(rows, self.settings.table_rows).map_err(|source| Error::TableMapping { source })?;
        let processes = self.take_map(names::PROCESS_MAPPINGS)?;
        let processes = HashMap::try_from(processes).map_err(|e| Error::bpf("opening the process mappings", e))?;
        let broken = self.take_map(names::BROKEN_CHAINS)?;
        let broken = HashMap::try_from(broken).map_err(|e| Error::bpf("opening the broken-chain counts", e))?;
        Ok(UnwindTables::new(rows, processes, broken))
    }

    fn take_map(&mut self, name: &'static str) -> Result<aya::maps::Map> {
        self.ebpf.take_map(name).ok_or(Error::bpf("finding a map", BpfError::Missing { kind: "map", name }))
    }

    fn take_ring(&mut self, name: &'static str) -> Result<RingBuf<MapData>> {
        let map =
            self.ebpf.take_map(name).ok_or(Error::bpf("finding a map", BpfError::Missing { kind: "map", name }))?;
        RingBuf::try_from(map).map_err(|e| Error::bpf("opening a ring buffer", e))
    }

    pub fn counters(&self) -> Result<Counters> {
        Counters::read(
            self.ebpf
                .map(names::COUNTERS)
                .ok_or(Error::bpf("finding a map", BpfError::Missing { kind: "map", name: names::COUNTERS }))?,
        )
    }

    fn map<'a, T>(&'a self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map = self.ebpf.map(name).ok_or(Error::bpf("finding a map", BpfError::Missing { kind: "map", name }))?;
        T::try_from(map).map_err(|e| Error::bpf("opening a map", e))
    }

    fn map_mut<'a, T>(&'a mut self, name: &'static str) -> Result<T>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let map =
            self.ebpf.map_mut(name).ok_or(Error::bpf("finding a map", BpfError::Missing { kind: "map", name }))?;
        T::try_from(map).map_err(|e| Error::bpf("opening a map", e))
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        self.release_walkers();
    }
}

/// File descriptor of the ring buffer, for poll(2).
pub fn ring_fd(ring: &RingBuf<MapData>) -> i32 {
    ring.as_raw_fd()
}

fn classify_load_error(error: aya::EbpfError) -> Error {
    let text = one_line(&error);
    if text.contains("Operation not permitted") || text.contains("EPERM") {
        Error::NotPrivileged
    } else {
        Error::bpf("loading the BPF object", error)
    }
}

/// Bytes of the ring buffer of user-stack copies (a power of two, as ring
/// buffers must be; copies that do not fit are counted). `dwarf` copies every
/// sample: 4 MiB per CPU (about 0.3 s of copies at 999 Hz), at least the
/// default and at most 64 MiB. `table` copies only the samples of a process
/// before its tables are loaded (its first milliseconds): 1 MiB per CPU, 2
/// to 16 MiB; one that does not fit is walked with frame pointers. One page
/// when unused.
fn user_stack_copies_bytes(walk: UserWalk) -> u32 {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let sized =
        |per_cpu: u32, least: u32, most: u32| cpus.saturating_mul(per_cpu).next_power_of_two().clamp(least, most);
    match walk {
        UserWalk::StackCopy => sized(4 << 20, profiler_ebpf::USER_STACK_COPIES_BYTES, 64 << 20),
        UserWalk::Tables => sized(1 << 20, 2 << 20, 16 << 20),
        UserWalk::FramePointers | UserWalk::Best => 4096,
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: `unlimited` is a valid rlimit; setrlimit only reads it (and fails harmlessly without
    // privilege).
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}
