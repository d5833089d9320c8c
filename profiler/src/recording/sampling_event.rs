//! `-e`: the perf event the on-CPU samplers attach to, and whether this
//! machine can sample on it, checked before anything starts (a command is
//! not even spawned when it cannot).
use std::{io, os::fd::FromRawFd};

use aya::programs::perf_event::{HardwareEvent, PerfEventConfig, SoftwareEvent};
use perf_event_open_sys::{bindings, perf_event_open};

use crate::{
    error::{Error, Result},
    settings::SamplingEvent,
};

/// The perf event a sampler is attached to for `event`.
pub fn perf_config(event: SamplingEvent) -> PerfEventConfig {
    match event {
        SamplingEvent::CpuClock => PerfEventConfig::Software(SoftwareEvent::CpuClock),
        SamplingEvent::Cycles => PerfEventConfig::Hardware(HardwareEvent::CpuCycles),
    }
}

/// Opens (disabled, so it never fires) and closes a sampling event of this
/// kind for this process: the kernel answers as it would for the samplers.
/// cpu-clock is a software timer every kernel with perf events has.
pub fn check_available(event: SamplingEvent, frequency: u64) -> Result<()> {
    let (type_, config) = match event {
        SamplingEvent::CpuClock => return Ok(()),
        SamplingEvent::Cycles => (bindings::PERF_TYPE_HARDWARE, bindings::PERF_COUNT_HW_CPU_CYCLES),
    };
    // SAFETY: perf_event_attr is plain integers and unions of integers, for
    // which all zeroes is valid (and means "unset" to the kernel).
    let mut attr: bindings::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = type_;
    attr.size = std::mem::size_of::<bindings::perf_event_attr>() as u32;
    attr.config = config as u64;
    attr.__bindgen_anon_1.sample_freq = frequency;
    attr.set_freq(1);
    attr.set_disabled(1);
    // SAFETY: `attr` is a live, initialized perf_event_attr whose `size`
    // says how much of it the kernel may read; pid 0, cpu -1 is this
    // process on any CPU, with no group.
    let fd = unsafe { perf_event_open(&mut attr, 0, -1, -1, bindings::PERF_FLAG_FD_CLOEXEC as _) };
    if fd >= 0 {
        // SAFETY: the kernel just returned this descriptor and nothing else
        // owns it: the OwnedFd closes it when dropped, here.
        drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        return Ok(());
    }
    let error = io::Error::last_os_error();
    let why = match error.raw_os_error() {
        // No PMU claims the event: a VM without a virtual PMU, or no PMU driver.
        Some(libc::ENOENT | libc::ENODEV) => "there is no hardware PMU here (usual in VMs)".to_string(),
        // A PMU that counts but cannot interrupt on overflow.
        Some(libc::EOPNOTSUPP) => "this machine's PMU cannot sample (it counts, but has no overflow interrupt)".into(),
        Some(libc::EINVAL) => {
            format!("the kernel refused -F {frequency} for it ({error}; see kernel.perf_event_max_sample_rate)")
        }
        _ => format!("perf_event_open failed: {error}"),
    };
    Err(Error::EventUnavailable { event: event.name(), why })
}
