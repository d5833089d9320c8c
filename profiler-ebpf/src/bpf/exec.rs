//! A process that execs becomes another program: forget that it was
//! announced, so its next event announces it again and user space takes a
//! fresh snapshot of its new mappings.
use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::btf_tracepoint, programs::BtfTracePointContext};

use super::maps::{ANNOUNCED, EXEC_GENERATION, atomic_add};

#[btf_tracepoint(function = "sched_process_exec")]
pub fn reannounce_on_exec(_ctx: BtfTracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let _ = ANNOUNCED.remove(&tgid);
    // After the removal: a CPU that sees the new generation re-checks.
    if let Some(generation) = EXEC_GENERATION.get_ptr_mut(0) {
        atomic_add(generation, 1);
    }
    0
}
