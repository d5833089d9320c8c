//! Checks up front that we may load BPF programs and open perf events, so
//! the user gets one clear line instead of a verifier or EPERM message, and
//! tells root from a user given capabilities.
use crate::error::{Error, Result};

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Who is recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    Root,
    /// Not root, but with CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): for
    /// example a binary given file capabilities. Such a run profiles only
    /// processes its user could ptrace, unless `--other-users` says otherwise.
    Capabilities,
}

pub fn check() -> Result<Privilege> {
    let effective = effective_capabilities().unwrap_or(0);
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if !(has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))) {
        return Err(Error::NotPrivileged);
    }
    // SAFETY: geteuid has no preconditions.
    Ok(if unsafe { libc::geteuid() } == 0 { Privilege::Root } else { Privilege::Capabilities })
}

/// The capabilities flameprof needs that it does not have (CAP_SYS_ADMIN
/// alone would also do).
pub fn missing_capabilities() -> Vec<&'static str> {
    let effective = effective_capabilities().unwrap_or(0);
    [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| effective & (1u64 << cap) == 0)
        .map(|(_, name)| name)
        .collect()
}

/// CapEff from /proc/self/status.
fn effective_capabilities() -> Option<u64> {
    capabilities_in(&std::fs::read_to_string("/proc/self/status").ok()?)
}

/// CapEff of a `status` text.
pub(crate) fn capabilities_in(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}
