//! Which tasks a recording is about: decided here, in the kernel, so samples
//! of other processes never cost a stack walk or a map entry.
use profiler_ebpf::Config;

use super::maps::TARGETS;

/// True when samples of process `tgid` are recorded. The idle task (0) never is.
#[inline(always)]
pub fn is_target(config: &Config, tgid: u32) -> bool {
    if tgid == 0 {
        return false;
    }
    config.filter_targets == 0 || unsafe { TARGETS.get(&tgid) }.is_some()
}
