//! Whether this kernel's verifier accepts the frame-pointer off-CPU
//! program. Only loading it tells: Linux 5.15's verifier gives up on it at
//! its budget of a million instructions processed (it takes the table
//! walker's), 6.1's accepts it. `flameprof doctor` asks here; a recording
//! finds out as it loads (`verifier_gave_up`).
use aya::Btf;
use profiler_ebpf::names;

use super::{KERNEL_BTF, ProbeSettings, Probes, SamplingScope};
use crate::settings::{SamplingEvent, UserWalk};

/// Whether the frame-pointer off-CPU program loads here; None when that
/// cannot be told (no BTF, no privileges, another failure).
pub fn off_cpu_program_loads() -> Option<bool> {
    if !std::path::Path::new(KERNEL_BTF).exists() {
        return None;
    }
    let settings = ProbeSettings {
        on_cpu_frequency: None,
        event: SamplingEvent::CpuClock,
        off_cpu: true,
        filter_targets: true,
        follow_forks: false,
        kernel_frames: true,
        user_frames: true,
        user_walk: UserWalk::FramePointers,
        table_rows: 1,
        keep_preempted: false,
        record_state: false,
        wakers: false,
        min_block_ns: 0,
        max_block_ns: None,
        stack_map_entries: Some(1),
        count_map_entries: Some(1),
        preallocate_maps: false,
        sampling: SamplingScope::EveryCpu,
        ignore_switch_in_every: None,
        waiting_at_start: false,
    };
    let mut probes = Probes::load(settings).ok()?;
    let btf = Btf::from_sys_fs().ok()?;
    match probes.tracepoint(names::OFF_CPU_PROGRAM).ok()?.load("sched_switch", &btf) {
        Ok(()) => Some(true),
        Err(error) if verifier_gave_up(&error) => Some(false),
        Err(_) => None,
    }
}

/// Whether a program's load failed because the verifier reached its budget
/// (E2BIG, "BPF program is too large").
pub fn verifier_gave_up(error: &aya::programs::ProgramError) -> bool {
    matches!(error, aya::programs::ProgramError::LoadError { io_error, .. } if io_error.raw_os_error() == Some(libc::E2BIG))
}
