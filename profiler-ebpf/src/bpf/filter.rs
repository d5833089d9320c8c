//! Which tasks a recording is about: decided here, in the kernel, so events
//! of other processes never cost a stack walk or a map entry. Admitting a
//! process also announces it to user space the first time.
use profiler_ebpf::{Config, ProcessNotice, counter, notice};

use super::maps::{ANNOUNCED, Admitted, EXEC_GENERATION, LAST_ADMITTED, NEW_PROCESSES, TARGETS, bump};
use super::process::Process;

/// True when events of process `tgid` are recorded. The idle task (0) never
/// is. Consecutive events on a CPU mostly come from one process, so the last
/// admitted one is remembered per CPU: two hash lookups become array reads.
/// TARGETS only grows during a recording, so remembering a yes is safe; an
/// exec changes the generation and forgets it (the process must be announced
/// again); so does another process with the same pid (`started_ns`, its
/// start: see process.rs).
#[inline(always)]
pub fn admit(config: &Config, process: Process) -> bool {
    let Process { tgid, started_ns, .. } = process;
    if tgid == 0 {
        return false;
    }
    let generation = EXEC_GENERATION.get(0).copied().unwrap_or(0);
    let last = LAST_ADMITTED.get_ptr_mut(0);
    if let Some(last) = last {
        // SAFETY: `last` is this CPU's LAST_ADMITTED slot: non-null, 8-byte
        // aligned (as every map value) and alive for the run (point 1 in
        // maps.rs). Only the samplers and the sched_switch program use it,
        // never overlapping on a CPU (point 2 in maps.rs), and user space
        // never touches it, so nothing writes it while this reference lives;
        // the reference ends with this block, before the write below.
        let last = unsafe { &*last };
        if last.tgid == tgid && last.exec_generation == generation && last.started_ns == started_ns {
            return true;
        }
    }
    // SAFETY: `HashMap::get` is unsafe because the value it returns may be
    // reused for another key if the entry is deleted meanwhile; only whether
    // an entry exists is used here, its value is never read.
    if config.filter_targets != 0 && unsafe { TARGETS.get(&tgid) }.is_none() {
        return false;
    }
    announce_process(tgid, started_ns);
    if let Some(last) = last {
        // SAFETY: the same slot as above, with the same single user; no
        // reference to it is alive any more. A plain store of a `Copy` value.
        unsafe { *last = Admitted { tgid, _pad: 0, exec_generation: generation, started_ns } };
    }
    true
}

const EEXIST: i32 = 17;

/// Tells user space about a process the first time one of its events is
/// seen, so its mappings are snapshotted while it still exists; and about
/// a process that got the pid of an earlier one (another start).
#[inline(always)]
fn announce_process(tgid: u32, started_ns: u64) {
    // SAFETY: the value is copied out at once. If the entry is deleted (an
    // exec) or its element reused meanwhile, the copy is of another value:
    // at worst the process is announced once more, which user space takes
    // as an exec (it reads the mappings again).
    let known = unsafe { ANNOUNCED.get(&tgid) }.copied();
    let flags = match known {
        Some(known) if known == started_ns => return,
        // The pid now belongs to another process.
        Some(_) => aya_ebpf::bindings::BPF_ANY,
        None => aya_ebpf::bindings::BPF_NOEXIST,
    };
    match ANNOUNCED.insert(&tgid, &started_ns, flags as u64) {
        Ok(()) => {}
        // Announced by another CPU meanwhile.
        Err(e) if e == -EEXIST => return,
        // The set is full: user space snapshots it when symbolizing, if it
        // still lives; count it.
        Err(_) => {
            bump(counter::NEW_PROCESS_DROPPED);
            return;
        }
    }
    let notice = ProcessNotice { tgid, kind: notice::ANNOUNCE, started_ns, at_ns: 0 };
    if NEW_PROCESSES.output::<ProcessNotice>(&notice, 0).is_err() {
        bump(counter::NEW_PROCESS_DROPPED);
    }
}
