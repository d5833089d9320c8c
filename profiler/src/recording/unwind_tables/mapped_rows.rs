//! UNWIND_ROWS, written through short-lived mappings of the part being
//! written, so rows are copied in rather than written one syscall at a
//! time. The kernel maps a BPF array's pages all at once (its memory is
//! allocated already), and they count in our RSS for as long as they are
//! mapped: the whole table (64 MiB by default) would stay in flameprof's
//! resident memory for the run. Mapping at most `WINDOW_BYTES` at a time
//! keeps that to a few MiB while a file's rows are copied, none after.
use std::ops::Range;

use aya::maps::MapData;
use profiler_ebpf::UnwindRow;

const PAGE: usize = 4096;
const ROW_BYTES: usize = std::mem::size_of::<UnwindRow>();
/// The most of the table mapped at once (a multiple of the page size).
pub(super) const WINDOW_BYTES: usize = 4 << 20;

/// UNWIND_ROWS (BPF_F_MMAPABLE), `capacity` rows.
pub struct MappedRows {
    map: MapData,
    pub(super) capacity: u32,
}

/// One mapping to make: `bytes` of the table from `offset` (both page
/// aligned), holding `rows` (indexes into the slice being written) from
/// `first_byte` into the mapping.
#[derive(Debug, PartialEq, Eq)]
struct Window {
    offset: usize,
    bytes: usize,
    first_byte: usize,
    rows: Range<usize>,
}

impl MappedRows {
    /// The table of `map`; maps its first page once to find out early
    /// whether the kernel lets us (the recording refuses to start if not).
    pub fn new(map: MapData, capacity: u32) -> std::io::Result<Self> {
        let rows = MappedRows { map, capacity };
        let first = rows.map_window(0, PAGE)?;
        // SAFETY: unmaps exactly the mapping just made.
        unsafe { libc::munmap(first, PAGE) };
        Ok(rows)
    }

    /// Copies `rows` to slots `first..first + rows.len()`, which the caller
    /// keeps within `capacity` and which no process entry points to yet.
    pub(super) fn write(&mut self, first: u32, rows: &[UnwindRow]) -> std::io::Result<()> {
        assert!(first as usize + rows.len() <= self.capacity as usize, "rows past the table's capacity");
        for window in windows(first as usize, rows.len()) {
            let base = self.map_window(window.offset, window.bytes)?;
            let part = &rows[window.rows];
            // SAFETY: the destination, `first_byte` into a fresh mapping of
            // `bytes`, holds `part` (windows() keeps every row inside its
            // window; the kernel refused a mapping past the table) and does
            // not overlap `rows` (ours, on the heap). The BPF side reads
            // only rows a process entry points to, and entries point here
            // only after this copy: nothing reads these slots meanwhile.
            // The mapping is unmapped right after, once.
            unsafe {
                let to = base.cast::<u8>().add(window.first_byte).cast::<UnwindRow>();
                std::ptr::copy_nonoverlapping(part.as_ptr(), to, part.len());
                libc::munmap(base, window.bytes);
            }
        }
        Ok(())
    }

    /// Maps `bytes` of the table from `offset` (page aligned) read-write.
    fn map_window(&self, offset: usize, bytes: usize) -> std::io::Result<*mut libc::c_void> {
        use std::os::fd::{AsFd, AsRawFd};
        let fd = self.map.fd().as_fd().as_raw_fd();
        // SAFETY: a fresh shared mapping of the map's fd, at an address the
        // kernel picks; no existing memory is affected. The kernel checks
        // the range against the map's size (BPF_F_MMAPABLE array).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(base)
    }
}

/// The mappings that write `count` rows at slot `first`: each at most
/// `WINDOW_BYTES` long, page aligned, holding whole rows.
fn windows(first: usize, count: usize) -> impl Iterator<Item = Window> {
    // Rows per window: what fits after the worst misalignment of its start.
    let per_window = (WINDOW_BYTES - PAGE) / ROW_BYTES;
    (0..count).step_by(per_window).map(move |start| {
        let end = (start + per_window).min(count);
        let (from, to) = ((first + start) * ROW_BYTES, (first + end) * ROW_BYTES);
        let offset = from / PAGE * PAGE;
        Window { offset, bytes: to.div_ceil(PAGE) * PAGE - offset, first_byte: from - offset, rows: start..end }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bound holds by construction: every window is page aligned, at
    /// most WINDOW_BYTES, holds its rows, and the windows cover the rows
    /// written exactly once, in order.
    #[test]
    fn windows_are_bounded_and_cover_the_rows() {
        for (first, count) in [(0, 0), (0, 1), (3, 1), (255, 1 << 20), (7, 4 << 20), (1 << 20, 3_300_000)] {
            let mut next = 0;
            for window in windows(first, count) {
                assert_eq!(window.offset % PAGE, 0);
                assert_eq!(window.bytes % PAGE, 0);
                assert!(window.bytes <= WINDOW_BYTES, "{window:?}");
                assert_eq!(window.rows.start, next);
                next = window.rows.end;
                let end_byte = window.first_byte + window.rows.len() * ROW_BYTES;
                assert!(end_byte <= window.bytes);
                assert_eq!(window.offset + window.first_byte, (first + window.rows.start) * ROW_BYTES);
            }
            assert_eq!(next, count);
        }
    }
}
