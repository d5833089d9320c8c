//! What the running kernel offers, checked before loading programs that
//! would otherwise fail with a verifier message.
use std::path::Path;

/// The first kernel with bpf_task_pt_regs, which the table walker needs to
/// find a task's user registers from the kernel.
const TABLE_WALKER_KERNEL: (u32, u32) = (5, 15);

/// Why this kernel cannot run the table walker (`--call-graph table`), or
/// None when it can.
pub fn table_walker_missing() -> Option<String> {
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("BTF (/sys/kernel/btf/vmlinux; CONFIG_DEBUG_INFO_BTF=y) for the table unwinder".into());
    }
    match release() {
        Some(version) if version >= TABLE_WALKER_KERNEL => None,
        Some((major, minor)) => Some(format!(
            "bpf_task_pt_regs for the table unwinder (Linux {}.{} or later; this is {major}.{minor})",
            TABLE_WALKER_KERNEL.0, TABLE_WALKER_KERNEL.1
        )),
        None => None,
    }
}

/// (major, minor) of the running kernel, from /proc/sys/kernel/osrelease.
fn release() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let mut parts = text.trim().split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}
