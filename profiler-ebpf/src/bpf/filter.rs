//! Which tasks a recording is about: decided here, in the kernel, so events
//! of other processes never cost a stack walk or a map entry. Admitting a
//! process also announces it to user space the first time.
use profiler_ebpf::{Config, ProcessNotice, counter, notice};

use super::maps::{ANNOUNCED, Admitted, EXEC_GENERATION, LAST_ADMITTED, NEW_PROCESSES, TARGETS, bump};

/// True when events of process `tgid` are recorded. The idle task (0) never
/// is. Consecutive events on a CPU mostly come from one process, so the last
/// admitted one is remembered per CPU: two hash lookups become array reads.
/// TARGETS only grows during a recording, so remembering a yes is safe; an
/// exec changes the generation and forgets it (the process must be announced
/// again).
#[inline(always)]
pub fn admit(config: &Config, tgid: u32) -> bool {
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
        if last.tgid == tgid && last.exec_generation == generation {
            return true;
        }
    }
    // SAFETY: `HashMap::get` is unsafe because the value it returns may be
    // reused for another key if the entry is deleted meanwhile; only whether
    // an entry exists is used here, its value is never read.
    if config.filter_targets != 0 && unsafe { TARGETS.get(&tgid) }.is_none() {
        return false;
    }
    announce_process(tgid);
    if let Some(last) = last {
        // SAFETY: the same slot as above, with the same single user; no
        // reference to it is alive any more. A plain store of a `Copy` value.
        unsafe { *last = Admitted { tgid, _pad: 0, exec_generation: generation } };
    }
    true
}

const EEXIST: i32 = 17;

/// Tells user space about a process the first time one of its events is
/// seen, so its mappings are snapshotted while it still exists.
#[inline(always)]
fn announce_process(tgid: u32) {
    // SAFETY: only whether an entry exists is used, its value is never read
    // (see TARGETS in `admit`).
    if unsafe { ANNOUNCED.get(&tgid) }.is_some() {
        return;
    }
    match ANNOUNCED.insert(&tgid, &1, aya_ebpf::bindings::BPF_NOEXIST as u64) {
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
    let notice = ProcessNotice { tgid, kind: notice::ANNOUNCE };
    if NEW_PROCESSES.output::<ProcessNotice>(&notice, 0).is_err() {
        bump(counter::NEW_PROCESS_DROPPED);
    }
}
