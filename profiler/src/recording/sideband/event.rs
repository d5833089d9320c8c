//! One side-band perf event on one CPU: a software "dummy" event that never
//! samples but makes the kernel write a record for every executable
//! mapping, name change (exec), fork and exit of any task on that CPU, into
//! a ring buffer mapped here. Its descriptor and mapping are released when
//! it is dropped.
use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    ptr::NonNull,
    sync::atomic::{AtomicU64, Ordering},
};

use perf_event_open_sys::{bindings, perf_event_open};

use super::ring::{Pass, read_records};

/// Pages of each CPU's data area (a power of two): 256 KiB, some 2000
/// mapping records, read every 50 ms at the latest.
const DATA_PAGES: usize = 64;
/// CLOCK_BOOTTIME: the clock of a task's `start_boottime` and of the BPF
/// side's exec stamps, so record times compare with process starts.
const CLOCK_BOOTTIME: i32 = 7;

pub struct SidebandEvent {
    fd: OwnedFd,
    /// The metadata page followed by the data area.
    base: NonNull<u8>,
    len: usize,
    data_offset: usize,
    data_size: usize,
}

impl SidebandEvent {
    /// Opens and enables the event on `cpu`, for every task there.
    pub fn open(cpu: u32) -> io::Result<Self> {
        let page = page_size();
        // SAFETY: perf_event_attr is plain integers and unions of integers,
        // for which all zeroes is valid (and means "unset").
        let mut attr: bindings::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.type_ = bindings::PERF_TYPE_SOFTWARE;
        attr.size = std::mem::size_of::<bindings::perf_event_attr>() as u32;
        attr.config = u64::from(bindings::PERF_COUNT_SW_DUMMY);
        attr.sample_type = u64::from(bindings::PERF_SAMPLE_TID | bindings::PERF_SAMPLE_TIME);
        attr.set_sample_id_all(1);
        // mmap2 records, of executable mappings only (mmap_data stays off).
        attr.set_mmap(1);
        attr.set_mmap2(1);
        attr.set_comm(1);
        attr.set_comm_exec(1);
        attr.set_task(1);
        attr.set_use_clockid(1);
        attr.clockid = CLOCK_BOOTTIME;
        // Wake a poller once a quarter of the area is filled.
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = (DATA_PAGES * page / 4) as u32;
        // SAFETY: `attr` is a live, initialized perf_event_attr whose `size`
        // says how much of it the kernel may read; pid -1 with a cpu is
        // every task on that CPU; no group.
        let fd = unsafe { perf_event_open(&mut attr, -1, cpu as i32, -1, bindings::PERF_FLAG_FD_CLOEXEC as _) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let len = (1 + DATA_PAGES) * page;
        // SAFETY: a new shared mapping of the event's ring (the kernel
        // checks the length: one page plus a power of two of them); read
        // and write, so the kernel never overwrites what was not read.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(base.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        let mut event = SidebandEvent { fd, base, len, data_offset: page, data_size: DATA_PAGES * page };
        // Kernels since 4.1 say where the data area is; older ones put it
        // right after the first page.
        let (offset, size) = (
            event.page_field(DATA_OFFSET).load(Ordering::Relaxed),
            event.page_field(DATA_SIZE).load(Ordering::Relaxed),
        );
        if size != 0 && offset as usize + size as usize <= len && (size as usize).is_power_of_two() {
            (event.data_offset, event.data_size) = (offset as usize, size as usize);
        }
        Ok(event)
    }

    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// Hands every record written since the last call to `each`, then
    /// frees their room for the kernel.
    pub fn drain(&mut self, scratch: &mut Vec<u8>, each: impl FnMut(&[u8])) -> Pass {
        // Acquire: the records before `head` are written once it is seen.
        let head = self.page_field(DATA_HEAD).load(Ordering::Acquire);
        let tail = self.page_field(DATA_TAIL).load(Ordering::Relaxed);
        // SAFETY: the data area lies inside the mapping (checked in open)
        // and stays mapped while `self` lives; the kernel writes only the
        // part between head and tail's wrap, which is not read here.
        let data = unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().add(self.data_offset).cast_const(), self.data_size)
        };
        let pass = read_records(data, tail, head, scratch, each);
        // Release: the reads above are done before the kernel may reuse the room.
        self.page_field(DATA_TAIL).store(pass.tail, Ordering::Release);
        pass
    }

    /// A u64 of the metadata page at byte `offset`, shared with the kernel.
    fn page_field(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: the offsets are within the first page (perf_event_mmap_page
        // layout), 8-byte aligned in a page-aligned mapping that lives as
        // long as `self`; the kernel and this reader access them atomically.
        unsafe { &*self.base.as_ptr().add(offset).cast::<AtomicU64>() }
    }
}

impl Drop for SidebandEvent {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `open`, once; nothing
        // borrowed from it outlives `self`. The descriptor closes after.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// Offsets of perf_event_mmap_page's ring fields.
const DATA_HEAD: usize = std::mem::offset_of!(bindings::perf_event_mmap_page, data_head);
const DATA_TAIL: usize = std::mem::offset_of!(bindings::perf_event_mmap_page, data_tail);
const DATA_OFFSET: usize = std::mem::offset_of!(bindings::perf_event_mmap_page, data_offset);
const DATA_SIZE: usize = std::mem::offset_of!(bindings::perf_event_mmap_page, data_size);

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}
