//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz): each hands
//! arbitrary bytes to one family of flameprof's parsers of outside data.
//! Not an interface of flameprof: only the fuzz targets call these. The
//! parsers must return (an error or a value), never panic, whatever the input.

use crate::{doctor, formats, recording};

/// `diff` and `report`'s reader of profile files: folded text, pprof
/// protobuf, gzipped or not.
pub fn profile_file(bytes: &[u8]) {
    let _ = formats::parse(bytes);
}

/// Every reader of /proc (and /sys) text, on the same text: a task's `stat`,
/// `schedstat`, `status` (the `-p` check, capabilities), kernel `stack`,
/// `syscall`, `maps` (table loading, `doctor`).
pub fn proc_text(text: &str) {
    use recording::{off_cpu::waiting_at_start, privileges, proc};
    let _ = proc::parse_state(text);
    let _ = proc::parse_schedstat(text);
    let _ = proc::check_status(1, text);
    let _ = privileges::capabilities_in(text);
    let _ = text.lines().map(waiting_at_start::parse_stack_line).count();
    let _ = waiting_at_start::parse_syscall(text);
    let _ = text.lines().map(recording::unwind_tables::process_maps::MapsLine::parse).count();
    let _ = doctor::modules::executable_files(text);
}

/// The kernel's BTF (`/sys/kernel/btf/vmlinux`), as the table walker's
/// struct offsets and the tracepoints' arguments are read from it.
pub fn kernel_btf(bytes: &[u8]) {
    let _ = recording::bpf::btf::members_in(bytes, &[("task_struct", &["pid", "tgid"]), ("pt_regs", &["sp"])]);
    let _ = recording::bpf::btf::tracepoint_arguments_in(bytes, "sched_switch");
}

/// The side-band's perf records, as the kernel writes them into the ring:
/// decoded one by one from the bytes, and read out of a ring's data area
/// with the first 16 bytes as tail and head (wrapping records, bad sizes).
pub fn perf_records(bytes: &[u8]) {
    use recording::sideband::{record, ring};
    let _ = record::parse(bytes);
    if let Some((positions, data)) = bytes.split_at_checked(16) {
        let tail = u64::from_ne_bytes(positions[..8].try_into().unwrap_or_default());
        let head = u64::from_ne_bytes(positions[8..].try_into().unwrap_or_default());
        // A ring's area is a power of two: the largest that fits the input.
        let size = if data.is_empty() { 0 } else { 1usize << data.len().ilog2() };
        let _ = ring::read_records(&data[..size], tail, head, &mut Vec::new(), |bytes| drop(record::parse(bytes)));
    }
}
