//! A process that execs becomes another program: forget that it was
//! announced, so its next sample announces it again and user space takes a
//! fresh snapshot of its new mappings.
use aya_ebpf::{helpers::bpf_get_current_pid_tgid, macros::btf_tracepoint, programs::BtfTracePointContext};

use super::maps::ANNOUNCED;

#[btf_tracepoint(function = "sched_process_exec")]
pub fn reannounce_on_exec(_ctx: BtfTracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let _ = ANNOUNCED.remove(&tgid);
    0
}
