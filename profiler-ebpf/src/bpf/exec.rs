//! A process that execs becomes another program: from the exec on, its
//! events carry the exec's time as the process's start (EXEC_STARTS, read
//! in process.rs), so user space takes it for a new process with the same
//! pid: what ran before keeps the old program's mappings, what runs after
//! gets the new one's. Forgetting that it was announced makes its next
//! event announce it (with the new start) at once.
use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_ktime_get_boot_ns},
    macros::btf_tracepoint,
    programs::BtfTracePointContext,
};

use super::{
    maps::{ANNOUNCED, EXEC_GENERATION, EXEC_STARTS, ExecStart, atomic_add, config},
    process::leader_start,
};

#[btf_tracepoint(function = "sched_process_exec")]
pub fn reannounce_on_exec(_ctx: BtfTracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if let Some(config) = config() {
        let leader_started_ns = leader_start(config);
        if leader_started_ns != 0 {
            // SAFETY: the helper takes no argument and only reads a clock.
            let exec_ns = unsafe { bpf_ktime_get_boot_ns() };
            // Not recorded (map update failed): the process keeps its
            // start, and its two programs share a tower, as before.
            let _ = EXEC_STARTS.insert(&tgid, &ExecStart { leader_started_ns, exec_ns }, 0);
        }
    }
    let _ = ANNOUNCED.remove(&tgid);
    // After the removal: a CPU that sees the new generation re-checks.
    if let Some(generation) = EXEC_GENERATION.get_ptr_mut(0) {
        atomic_add(generation, 1);
    }
    0
}
