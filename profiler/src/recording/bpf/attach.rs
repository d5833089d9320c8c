//! Starting the recording: loading the programs into the kernel (the
//! samplers, the tracepoints, the table walkers) and attaching them.
use std::path::Path;

use aya::{
    Btf,
    maps::ProgramArray,
    programs::{
        BtfTracePoint, FEntry, PerfEvent,
        perf_event::{PerfEventScope, SamplePolicy},
    },
};
use profiler_ebpf::names;

use super::{KERNEL_BTF, Probes, SamplingScope};
use crate::{
    error::{BpfError, Error, Result},
    recording::{kernel::features::Feature, proc, sampling_event},
    settings::UserWalk,
};

impl Probes {
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
                if self.settings.wakers {
                    let program = match self.settings.user_walk {
                        UserWalk::Tables => names::WAKER_TABLE_PROGRAM,
                        _ => names::WAKER_PROGRAM,
                    };
                    tracepoints.push((program, "sched_waking"));
                }
            }
            for &(program, tracepoint) in &tracepoints {
                self.tracepoint(program)?.load(tracepoint, btf).map_err(|e| match e {
                    // Linux 5.15's verifier gives up on the frame-pointer
                    // switch programs.
                    e if (program == names::OFF_CPU_PROGRAM || program == names::WAKER_PROGRAM)
                        && super::verdict::verifier_gave_up(&e) =>
                    {
                        Error::MissingFeature(Feature::OffCpuVerifier)
                    }
                    // The verifier said no (a kernel whose verifier gives up
                    // sooner): not a missing tracepoint.
                    e @ aya::programs::ProgramError::LoadError { .. } => {
                        Error::bpf("the kernel's verifier refused a scheduler tracepoint program", e)
                    }
                    e => tracepoint_error(tracepoint, e),
                })?;
            }
        }
        if self.settings.on_cpu_frequency.is_some() {
            self.sampler()?.load().map_err(|e| Error::bpf("loading the sampler", e))?;
        }
        if self.settings.user_walk == UserWalk::Tables {
            self.load_walkers(btf.as_ref())?;
        }
        let code_unmaps = btf.as_ref().and_then(|btf| self.load_code_unmap_watch(btf));
        loaded();
        for &(program, tracepoint) in &tracepoints {
            self.tracepoint(program)?.attach().map_err(|e| tracepoint_error(tracepoint, e))?;
        }
        if code_unmaps.is_some() {
            self.code_unmaps_watched = self.attach_code_unmap_watch();
        }
        if let Some(frequency) = self.settings.on_cpu_frequency {
            self.attach_sampler(frequency)?;
        }
        Ok(())
    }

    /// Loads the fentry program that notices unmapped code (optional: where
    /// `vm_area_free` cannot be traced, user space begins mapping
    /// generations from the side-band, with a warning).
    fn load_code_unmap_watch(&mut self, btf: &Btf) -> Option<()> {
        let loaded = self
            .ebpf
            .program_mut(names::CODE_UNMAP_PROGRAM)
            .and_then(|program| <&mut FEntry>::try_from(program).ok())
            .ok_or_else(|| "the program is missing".to_string())
            .and_then(|program| program.load(names::CODE_UNMAP_FUNCTION, btf).map_err(|e| short_reason(&e)));
        loaded.map_err(|e| warn_unwatched(&e)).ok()
    }

    fn attach_code_unmap_watch(&mut self) -> bool {
        let attached = self
            .ebpf
            .program_mut(names::CODE_UNMAP_PROGRAM)
            .and_then(|program| <&mut FEntry>::try_from(program).ok())
            .map(|program| program.attach().map(|_| ()).map_err(|e| short_reason(&e)));
        match attached {
            Some(Ok(())) => true,
            Some(Err(e)) => warn_unwatched(&e),
            None => warn_unwatched("the program is missing"),
        }
    }

    /// Empties the walkers' program arrays (see `stop`).
    pub(super) fn release_walkers(&mut self) {
        for array in [names::ON_CPU_WALKERS, names::OFF_CPU_WALKERS, names::WAKER_WALKERS] {
            if let Ok(mut slots) = self.map_mut::<ProgramArray<_>>(array) {
                let _ = slots.clear_index(&0);
            }
        }
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
            // Its own walker: tracing programs tail-call only programs of
            // their own attach point.
            if self.settings.wakers {
                self.tracepoint(names::WAKER_WALKER_PROGRAM)?
                    .load("sched_waking", btf)
                    .map_err(|e| Error::bpf("loading the waker stack walker", e))?;
                walkers.push((names::WAKER_WALKERS, names::WAKER_WALKER_PROGRAM));
            }
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

    pub(super) fn tracepoint(&mut self, program: &'static str) -> Result<&mut BtfTracePoint> {
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

    /// The samplers, per `SamplingScope`, on the event `-e` picked. The
    /// default, cpu-clock, is a software timer: it exists on every machine
    /// (VMs and containers included, where there is often no PMU), and it
    /// ticks in time, so N samples at F Hz mean N/F seconds on CPU, which
    /// --wall relies on (the command line allows cycles for on-CPU only).
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
        let event = self.settings.event;
        let prog = self.sampler()?;
        for (scope, inherit, place) in scopes {
            prog.attach(sampling_event::perf_config(event), scope, SamplePolicy::Frequency(frequency), inherit)
                .map_err(|e| perf_event_error(event.name(), format!("perf_event_open {place}"), e))?;
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
            let event = self.settings.event;
            let prog = self.sampler()?;
            for tid in fresh.iter().flat_map(|&tid| std::iter::repeat_n(tid, timers as usize)) {
                let attached = prog.attach(
                    sampling_event::perf_config(event),
                    PerfEventScope::OneProcess { pid: tid, cpu: None },
                    SamplePolicy::Frequency(frequency),
                    true,
                );
                match attached {
                    Ok(_) => {}
                    // The thread ended since it was listed: gone, or exited
                    // and not yet reaped (its /proc entry stays, and the
                    // kernel answers ESRCH).
                    Err(e) if thread_ended(tid, &e) => {}
                    Err(e) => {
                        return Err(perf_event_error(event.name(), format!("perf_event_open for thread {tid}"), e));
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
        // The walkers and their program arrays hold each other (a walker
        // tail-calls itself through its array): the kernel breaks that cycle
        // only in a deferred work item after the last map descriptor closes.
        // Emptied here (and on every other exit path, by Drop), the walkers
        // go with the rest, as soon as they unload. After the samplers are
        // unloaded: a sample between the two would find no walker.
        for (_, program) in self.ebpf.programs_mut() {
            match program {
                aya::programs::Program::PerfEvent(p) => drop(p.unload()),
                aya::programs::Program::BtfTracePoint(p) => drop(p.unload()),
                _ => {}
            }
        }
        self.release_walkers();
    }
}

/// Whether opening a timer for `tid` failed because the thread has ended.
fn thread_ended(tid: u32, error: &aya::programs::ProgramError) -> bool {
    errno(error) == Some(libc::ESRCH) || !Path::new(&format!("/proc/{tid}")).exists()
}

fn perf_event_error(event: &str, attempt: String, source: aya::programs::ProgramError) -> Error {
    let hint = match errno(&source) {
        Some(libc::EMFILE | libc::ENFILE) => {
            "too many open files: one timer is opened per thread of the targets; raise the limit (`ulimit -n`)"
        }
        Some(libc::EACCES | libc::EPERM) => "not allowed: run as root, or see `flameprof doctor`",
        Some(libc::ENOMEM) => "the kernel is out of memory for perf events",
        // No such event: the kernel lacks it.
        _ => {
            return Error::Attach {
                feature: format!("the {event} perf event"),
                attempt,
                needs: "a kernel with CONFIG_PERF_EVENTS is needed",
                source: Box::new(source.into()),
            };
        }
    };
    Error::SamplingTimer { attempt, hint, source: Box::new(source.into()) }
}

/// The errno of a failed system call behind `error`, if that is what it is.
fn errno(error: &aya::programs::ProgramError) -> Option<i32> {
    match error {
        aya::programs::ProgramError::SyscallError(aya::sys::SyscallError { io_error, .. }) => io_error.raw_os_error(),
        _ => None,
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

/// Says that unmapped code goes unnoticed; returns false.
fn warn_unwatched(reason: &str) -> bool {
    eprintln!(
        "flameprof: note: cannot trace {} ({reason}): code loaded where other code was unloaded is told \
         apart through the side-band instead, up to 50 ms late",
        names::CODE_UNMAP_FUNCTION
    );
    false
}

/// What the kernel said, without aya's wrapping (an empty verifier log
/// after a refusal says nothing to a user).
fn short_reason(error: &aya::programs::ProgramError) -> String {
    use aya::programs::ProgramError;
    match error {
        ProgramError::LoadError { io_error, verifier_log } if verifier_log.to_string().trim().is_empty() => {
            format!("the kernel refused the fentry program: {io_error}")
        }
        ProgramError::SyscallError(e) => format!("{}: {}", e.call, e.io_error),
        other => other.to_string(),
    }
}
