//! UNWIND_ROWS mapped into flameprof's memory, so rows are copied in
//! rather than written one syscall at a time.
use aya::maps::MapData;
use profiler_ebpf::UnwindRow;

/// UNWIND_ROWS, mapped into this process (the map is BPF_F_MMAPABLE): rows
/// are copied in with memcpy instead of one syscall each.
pub struct MappedRows {
    base: *mut UnwindRow,
    bytes: usize,
    pub(super) capacity: u32,
    /// Keeps the map (and so the mapping's object) alive.
    _map: MapData,
}

impl MappedRows {
    /// Maps `capacity` rows of `map` read-write.
    pub fn new(map: MapData, capacity: u32) -> std::io::Result<Self> {
        use std::os::fd::{AsFd, AsRawFd};
        let page = 4096;
        let bytes = (capacity as usize * std::mem::size_of::<UnwindRow>()).div_ceil(page) * page;
        let fd = map.fd().as_fd().as_raw_fd();
        // SAFETY: a fresh shared mapping of the map's fd, at an address the
        // kernel picks; no existing memory is affected. The map was created
        // BPF_F_MMAPABLE with `capacity` 16-byte values, which is exactly
        // what the kernel lets us map.
        let base = unsafe {
            libc::mmap(std::ptr::null_mut(), bytes, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(MappedRows { base: base.cast(), bytes, capacity, _map: map })
    }

    /// Copies `rows` to slots `first..first + rows.len()`, which the caller
    /// keeps within `capacity` and which no process entry points to yet.
    pub(super) fn write(&mut self, first: u32, rows: &[UnwindRow]) {
        assert!(first as usize + rows.len() <= self.capacity as usize, "rows past the table's capacity");
        // SAFETY: the destination is inside the mapping (checked above) and
        // does not overlap `rows` (ours, on the heap). The BPF side reads
        // only rows a process entry points to, and entries point here only
        // after this copy: nothing reads these slots meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(rows.as_ptr(), self.base.add(first as usize), rows.len()) };
    }
}

impl Drop for MappedRows {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`, once.
        unsafe { libc::munmap(self.base.cast(), self.bytes) };
    }
}
