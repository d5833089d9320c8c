//! Loading, configuring and attaching the BPF programs, and reading back what
//! they counted. Everything loaded is owned by `Probes`: dropping it (on any
//! exit path, panics included) detaches and unloads every program and map.
mod btf;
mod counters;
mod stacks;

use std::{os::fd::AsRawFd, path::Path};

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, ProgramArray, RingBuf, StackTraceMap},
    programs::{
        BtfTracePoint, PerfEvent,
        perf_event::{PerfEventConfig, PerfEventScope, SamplePolicy, SoftwareEvent},
    },
};
use profiler_ebpf::{BlockedThread, Config, STACK_IN_FULL_MAP, StackKey, StartedBlock, capture, names};
use stacks::StackExpander;

pub use counters::Counters;
pub use stacks::whole_stack;

use crate::{
    error::{BpfError, Error, Result, one_line},
    recording::{
        proc,
        unwind_tables::{MappedRows, UnwindTables},
    },
    settings::UserWalk,
};

/// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a live timespec that clock_gettime fills in.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// The BPF object, built by build.rs and carried inside the binary.
static BPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/flameprof.bpf.o"));

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// What the probes record and for whom.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub on_cpu_frequency: Option<u64>,
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
    pub min_block_ns: u64,
    pub max_block_ns: Option<u64>,
    /// Buckets of the stack-id map (tests shrink it to force collisions).
    pub stack_map_entries: Option<u32>,
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
}

impl Probes {
    /// Loads the object and writes its settings; nothing runs until `attach`.
    pub fn load(settings: ProbeSettings) -> Result<Self> {
        let needs_btf = settings.off_cpu || settings.follow_forks;
        let kernel_btf = Path::new(KERNEL_BTF);
        if needs_btf && !kernel_btf.exists() {
            return Err(Error::KernelFeature {
                feature: format!("BTF ({KERNEL_BTF})"),
                hint: "off-CPU profiling and following a command's children need a kernel built with CONFIG_DEBUG_INFO_BTF=y (5.5 or later)".into(),
            });
        }
        raise_memlock_limit();
        let mut loader = EbpfLoader::new();
        if let Some(entries) = settings.stack_map_entries {
            loader.map_max_entries(names::STACKS, entries);
        }
        loader.map_max_entries(
            names::USER_STACK_COPIES,
            user_stack_copies_bytes(settings.user_walk == UserWalk::StackCopy),
        );
        // Preallocated: one row unless tables are used.
        let rows = if settings.user_walk == UserWalk::Tables { settings.table_rows } else { 1 };
        loader.map_max_entries(names::UNWIND_ROWS, rows);
        let ebpf = loader.load(BPF_OBJECT).map_err(classify_load_error)?;
        let mut probes = Probes { ebpf, settings };
        let config = probes.config(kernel_btf)?;
        let mut map: Array<_, Config> = probes.map_mut(names::CONFIG)?;
        map.set(0, config, 0).map_err(|e| Error::bpf("writing the settings", e))?;
        Ok(probes)
    }

    fn config(&self, kernel_btf: &Path) -> Result<Config> {
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
            ignore_switch_in_every: s.ignore_switch_in_every.unwrap_or(0),
            track_waiting_at_start: s.waiting_at_start as u32,
            min_sample_gap_ns: match (&s.sampling, s.on_cpu_frequency) {
                (SamplingScope::Threads(..), Some(hz)) if hz > 0 => 1_000_000_000 / hz / 2,
                _ => 0,
            },
        })
    }

    /// Adds a process to the target set (before or while recording).
    pub fn add_target(&mut self, tgid: u32) -> Result<()> {
        let mut targets: HashMap<_, u32, u8> = self.map_mut(names::TARGETS)?;
        targets.insert(tgid, 1, 0).map_err(|e| Error::bpf("adding a target process", e))
    }

    /// Tells the kernel side that user space already announced `tgid` (a
    /// `-p` target, snapshotted up front): only an exec announces it again.
    pub fn mark_announced(&mut self, tgid: u32) -> Result<()> {
        let mut announced: HashMap<_, u32, u8> = self.map_mut(names::ANNOUNCED)?;
        announced.insert(tgid, 1, 0).map_err(|e| Error::bpf("marking a process as announced", e))
    }

    /// Starts recording: loads the programs into the kernel, calls
    /// `loaded` (their symbols are in kallsyms from then on), then attaches
    /// them; the recording starts when this returns.
    pub fn attach(&mut self, loaded: impl FnOnce()) -> Result<()> {
        let needs_btf = self.settings.off_cpu || self.settings.follow_forks;
        let btf = if needs_btf || Path::new(KERNEL_BTF).exists() {
            Some(Btf::from_sys_fs().map_err(|e| Error::bpf("reading the kernel's BTF", e))?)
        } else {
            None
        };
        let mut tracepoints = Vec::new();
        if let Some(btf) = &btf {
            // Optional: without it a process that execs keeps its first snapshot.
            tracepoints.push((names::EXEC_PROGRAM, "sched_process_exec"));
            if self.settings.follow_forks {
                tracepoints.push((names::FORK_PROGRAM, "sched_process_fork"));
            }
            if self.settings.off_cpu {
                let program = match self.settings.user_walk {
                    UserWalk::Tables => names::OFF_CPU_TABLE_PROGRAM,
                    _ => names::OFF_CPU_PROGRAM,
                };
                tracepoints.push((program, "sched_switch"));
            }
            for &(program, tracepoint) in &tracepoints {
                self.tracepoint(program)?.load(tracepoint, btf).map_err(|e| tracepoint_error(tracepoint, e))?;
            }
        }
        if self.settings.on_cpu_frequency.is_some() {
            self.sampler()?.load().map_err(|e| Error::bpf("loading the sampler", e))?;
        }
        if self.settings.user_walk == UserWalk::Tables {
            self.load_walkers(btf.as_ref())?;
        }
        loaded();
        for &(program, tracepoint) in &tracepoints {
            self.tracepoint(program)?.attach().map_err(|e| tracepoint_error(tracepoint, e))?;
        }
        if let Some(frequency) = self.settings.on_cpu_frequency {
            self.attach_sampler(frequency)?;
        }
        Ok(())
    }

    /// `--call-graph table`: the walker programs the samplers tail-call,
    /// loaded (not attached) and put in their program arrays.
    fn load_walkers(&mut self, btf: Option<&Btf>) -> Result<()> {
        let mut walkers = Vec::new();
        if self.settings.on_cpu_frequency.is_some() {
            let program: &mut PerfEvent = self
                .ebpf
                .program_mut(names::ON_CPU_WALKER_PROGRAM)
                .ok_or(Error::bpf(
                    "finding a program",
                    BpfError::Missing { kind: "program", name: names::ON_CPU_WALKER_PROGRAM },
                ))?
                .try_into()
                .map_err(|e| Error::bpf("finding a program", e))?;
            program.load().map_err(|e| Error::bpf("loading the on-CPU stack walker", e))?;
            walkers.push((names::ON_CPU_WALKERS, names::ON_CPU_WALKER_PROGRAM));
        }
        if let (true, Some(btf)) = (self.settings.off_cpu, btf) {
            self.tracepoint(names::OFF_CPU_WALKER_PROGRAM)?
                .load("sched_switch", btf)
                .map_err(|e| Error::bpf("loading the off-CPU stack walker", e))?;
            walkers.push((names::OFF_CPU_WALKERS, names::OFF_CPU_WALKER_PROGRAM));
        }
        for (array, name) in walkers {
            let fd = self
                .ebpf
                .program(name)
                .ok_or(Error::bpf("finding a program", BpfError::Missing { kind: "program", name }))?
                .fd()
                .map_err(|e| Error::bpf("finding a program", e))?
                .try_clone()
                .map_err(|e| Error::bpf("finding a program", aya::programs::ProgramError::from(e)))?;
            let mut slots: ProgramArray<_> = self.map_mut(array)?;
            slots.set(0, &fd, 0).map_err(|e| Error::bpf("installing a stack walker", e))?;
        }
        Ok(())
    }

    fn tracepoint(&mut self, program: &'static str) -> Result<&mut BtfTracePoint> {
        self.ebpf
            .program_mut(program)
            .ok_or(Error::bpf("finding a program", BpfError::Missing { kind: "program", name: program }))?
            .try_into()
            .map_err(|e| Error::bpf("finding a program", e))
    }

    fn sampler(&mut self) -> Result<&mut PerfEvent> {
        let name = match self.settings.user_walk {
            UserWalk::FramePointers | UserWalk::Best => names::ON_CPU_PROGRAM,
            UserWalk::StackCopy => names::ON_CPU_DWARF_PROGRAM,
            UserWalk::Tables => names::ON_CPU_TABLE_PROGRAM,
        };
        self.ebpf
            .program_mut(name)
            .ok_or(Error::bpf("finding a program", BpfError::Missing { kind: "program", name }))?
            .try_into()
            .map_err(|e| Error::bpf("finding a program", e))
    }

    /// The cpu-clock samplers, per `SamplingScope`. cpu-clock is a software
    /// timer: it exists on every machine (VMs and containers included, where
    /// there is often no PMU), and it ticks in time, so N samples at F Hz mean
    /// N/F seconds on CPU, which --wall relies on.
    fn attach_sampler(&mut self, frequency: u64) -> Result<()> {
        // (where, inherited by new tasks, how an error names it)
        let scopes = match &self.settings.sampling {
            &SamplingScope::ProcessTree(pid) => {
                vec![(PerfEventScope::OneProcess { pid, cpu: None }, true, format!("for pid {pid}"))]
            }
            SamplingScope::Threads(pids, timers) => {
                let (pids, timers) = (pids.clone(), *timers);
                return self.attach_thread_samplers(frequency, &pids, timers);
            }
            SamplingScope::EveryCpu => aya::util::online_cpus()
                .map_err(|(what, source)| Error::OnlineCpus { what: what.to_string(), source })?
                .into_iter()
                .map(|cpu| (PerfEventScope::AllProcessesOneCpu { cpu }, false, format!("on CPU {cpu}")))
                .collect(),
        };
        let prog = self.sampler()?;
        for (scope, inherit, place) in scopes {
            prog.attach(
                PerfEventConfig::Software(SoftwareEvent::CpuClock),
                scope,
                SamplePolicy::Frequency(frequency),
                inherit,
            )
            .map_err(|e| perf_event_error(format!("perf_event_open {place}"), e))?;
        }
        Ok(())
    }

    /// One inherited timer per thread of `pids`, listing the threads again
    /// until a pass finds none new (threads started meanwhile by a timed
    /// thread inherit its timer; the rest are caught by the next pass).
    fn attach_thread_samplers(&mut self, frequency: u64, pids: &[u32], timers: u32) -> Result<()> {
        raise_open_files_limit();
        let mut timed = std::collections::HashSet::new();
        for _pass in 0..10 {
            let fresh: Vec<u32> =
                pids.iter().flat_map(|pid| proc::thread_ids(*pid)).filter(|tid| !timed.contains(tid)).collect();
            if fresh.is_empty() {
                return Ok(());
            }
            let prog = self.sampler()?;
            for tid in fresh.iter().flat_map(|&tid| std::iter::repeat_n(tid, timers as usize)) {
                let attached = prog.attach(
                    PerfEventConfig::Software(SoftwareEvent::CpuClock),
                    PerfEventScope::OneProcess { pid: tid, cpu: None },
                    SamplePolicy::Frequency(frequency),
                    true,
                );
                match attached {
                    Ok(_) => {}
                    // The thread ended since it was listed.
                    Err(_) if !Path::new(&format!("/proc/{tid}")).exists() => {}
                    Err(e) => {
                        return Err(perf_event_error(format!("perf_event_open for thread {tid}"), e));
                    }
                }
                timed.insert(tid);
            }
        }
        Ok(())
    }

    /// Stops every program (links detached, programs unloaded) so the maps
    /// can be read as a consistent final state. Maps stay readable.
    pub fn stop(&mut self) {
        for (_, program) in self.ebpf.programs_mut() {
            match program {
                aya::programs::Program::PerfEvent(p) => drop(p.unload()),
                aya::programs::Program::BtfTracePoint(p) => drop(p.unload()),
                _ => {}
            }
        }
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

    /// Samples per whole stack, from both paths, and how many stack ids
    /// could not be read back (their stacks show empty).
    pub fn on_cpu_counts(&self) -> Result<(Vec<(StackKey, u64)>, u64)> {
        let mut expander = self.expander()?;
        let mut counts = stacks::read_fast(&self.map(names::ON_CPU_COUNTS)?, &mut expander)?;
        counts.extend(stacks::read_full(&self.map(names::ON_CPU_FULL_COUNTS)?)?);
        Ok((counts, expander.missing_ids))
    }

    /// What the off-CPU maps hold: nanoseconds per whole stack of the waits
    /// that ended, and the waits still open.
    pub fn off_cpu_maps(&self) -> Result<OffCpuMaps> {
        let mut expander = self.expander()?;
        let mut times = stacks::read_fast(&self.map(names::OFF_CPU_TIMES)?, &mut expander)?;
        times.extend(stacks::read_full(&self.map(names::OFF_CPU_FULL_TIMES)?)?);
        let mut open_waits = Vec::new();
        let starts: HashMap<_, u32, StartedBlock> = self.map(names::OFF_CPU_STARTS)?;
        for entry in starts.iter() {
            let (tid, started) = entry.map_err(|e| Error::bpf("reading blocked threads", e))?;
            // A stub of a full-stack record: read from that map below.
            if started.key.kernel_stack_id == STACK_IN_FULL_MAP {
                continue;
            }
            open_waits.push(OpenWait {
                tgid: started.key.tgid,
                tid,
                stack: expander.expand(&started.key),
                since_ns: started.since_ns,
                ran_ns: started.ran_ns,
            });
        }
        let full_starts: HashMap<_, u32, BlockedThread> = self.map(names::OFF_CPU_FULL_STARTS)?;
        for entry in full_starts.iter() {
            let (tid, blocked) = entry.map_err(|e| Error::bpf("reading blocked threads", e))?;
            open_waits.push(OpenWait {
                tgid: blocked.stack.tgid,
                tid,
                stack: blocked.stack,
                since_ns: blocked.since_ns,
                ran_ns: blocked.ran_ns,
            });
        }
        Ok(OffCpuMaps { times, open_waits, missing_stack_ids: expander.missing_ids })
    }

    /// Off-CPU waits kept (ns): --min-block to --max-block. The program
    /// applies the same to the waits it ends (`within_limits`).
    pub fn block_limits(&self) -> std::ops::RangeInclusive<u64> {
        self.settings.min_block_ns..=self.settings.max_block_ns.unwrap_or(u64::MAX)
    }

    /// Threads with a wait recorded by the off-CPU program (switched out
    /// since the start).
    pub fn threads_with_open_waits(&self) -> Result<std::collections::HashSet<u32>> {
        let starts: HashMap<_, u32, StartedBlock> = self.map(names::OFF_CPU_STARTS)?;
        starts.keys().map(|tid| tid.map_err(|e| Error::bpf("reading blocked threads", e))).collect()
    }

    /// Asks the off-CPU program to note when these threads first run
    /// again; returns how many of them (in order) fit in its map.
    pub fn watch_waiting_at_start(&mut self, tids: &[u32]) -> Result<usize> {
        let mut map: HashMap<_, u32, u64> = self.map_mut(names::WAITING_AT_START)?;
        Ok(tids.iter().take_while(|&&tid| map.insert(tid, 0, 0).is_ok()).count())
    }

    /// When each watched thread first ran again (0: not yet).
    pub fn waiting_at_start_ends(&self) -> Result<std::collections::HashMap<u32, u64>> {
        let map: HashMap<_, u32, u64> = self.map(names::WAITING_AT_START)?;
        map.iter().map(|entry| entry.map_err(|e| Error::bpf("reading threads blocked at the start", e))).collect()
    }

    fn expander(&self) -> Result<StackExpander<'_>> {
        Ok(StackExpander::new(self.map::<StackTraceMap<_>>(names::STACKS)?))
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

/// File descriptor of the ring buffer, for poll(2).
pub fn ring_fd(ring: &RingBuf<MapData>) -> i32 {
    ring.as_raw_fd()
}

fn perf_event_error(attempt: String, source: aya::programs::ProgramError) -> Error {
    Error::Attach {
        feature: "the cpu-clock perf event".into(),
        attempt,
        needs: "a kernel with CONFIG_PERF_EVENTS is needed",
        source: Box::new(source.into()),
    }
}

fn tracepoint_error(tracepoint: &str, source: aya::programs::ProgramError) -> Error {
    Error::Attach {
        feature: format!("the BTF tracepoint {tracepoint}"),
        attempt: "attaching".into(),
        needs: "tp_btf programs need Linux 5.5 or later with BTF",
        source: Box::new(source.into()),
    }
}

fn classify_load_error(error: aya::EbpfError) -> Error {
    let text = one_line(&error);
    if text.contains("Operation not permitted") || text.contains("EPERM") {
        Error::NotPrivileged
    } else {
        Error::bpf("loading the BPF object", error)
    }
}

/// Bytes of the ring buffer of user-stack copies: one page when unused;
/// else 4 MiB per CPU (about 0.3 s of copies at 999 Hz), at least the
/// default and at most 64 MiB (a power of two, as ring buffers must be).
/// Copies that do not fit are counted as lost samples.
fn user_stack_copies_bytes(used: bool) -> u32 {
    if !used {
        return 4096;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    cpus.saturating_mul(4 << 20).next_power_of_two().clamp(profiler_ebpf::USER_STACK_COPIES_BYTES, 64 << 20)
}

/// One perf event descriptor per thread: a process with thousands of
/// threads needs more than the usual soft limit of 1024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a live rlimit that getrlimit fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 && limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit; raising the soft limit to the hard one needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) };
    }
}

/// Kernels before 5.11 charge BPF maps to RLIMIT_MEMLOCK.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: `unlimited` is a valid rlimit; setrlimit only reads it (and fails harmlessly without
    // privilege).
    unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
}
