//! Reads the ring of user-stack copies (`--call-graph dwarf`, and under
//! `table` the samples its walker hands over) on a thread of its own. The
//! recording loop can be busy for a long moment (compiling a large file's
//! unwind tables: 0.6 s for libc under emulation, seconds for a compiler's
//! LLVM library), and a ring of 1 MiB per CPU holds only about 60 copies:
//! read only from that loop, it filled, and the kernel then fell back to
//! walks it could not finish (`table`) or dropped samples (`dwarf`). The
//! copies wait here until the loop takes them, at the point where it used
//! to read the ring, so the order with the side-band records holds.
use std::{
    os::fd::AsRawFd,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use profiler_ebpf::UserStackCopy;

/// Copies held here at most (about 16 MiB): past it the reader leaves the
/// rest in the ring, so the kernel falls back as it does with a full ring
/// (and counts it), and memory stays bounded.
const MAX_HELD: usize = (16 << 20) / size_of::<UserStackCopy>();
/// How long the reader waits for the ring between checks of `stop`.
const WAIT: Duration = Duration::from_millis(10);

/// Copies read from the ring and not taken yet.
#[derive(Default)]
pub struct Taken {
    pub copies: Vec<Box<UserStackCopy>>,
    /// Records of an unexpected size (never expected; counted, not used).
    pub malformed: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    held: Mutex<Taken>,
}

pub struct CopyReader {
    shared: Arc<Shared>,
    /// `None` once finished.
    thread: Option<JoinHandle<RingBuf<MapData>>>,
}

impl CopyReader {
    pub fn start(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("stack-copies".into()).spawn(move || read(ring, &theirs))?;
        Ok(CopyReader { shared, thread: Some(thread) })
    }

    /// The copies read so far.
    pub fn take(&self) -> Taken {
        std::mem::take(&mut *lock(&self.shared))
    }

    /// Stops the reader: the copies it read, then every one left in the ring.
    pub fn finish(mut self) -> Taken {
        let mut ring = match self.stop() {
            Some(Ok(ring)) => ring,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("finished once: `finish` takes the reader"),
        };
        let mut taken = std::mem::take(&mut *lock(&self.shared));
        read_available(&mut ring, &mut taken, usize::MAX);
        taken
    }

    fn stop(&mut self) -> Option<std::thread::Result<RingBuf<MapData>>> {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(JoinHandle::join)
    }
}

/// A recording that ends early (an error) stops the reader too: the ring
/// (a BPF map) is released with the rest, not held by a thread left running.
impl Drop for CopyReader {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Taken> {
    // A poisoned lock: the other side panicked, and that panic is resumed
    // where it is joined; what was held is still valid.
    shared.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn read(mut ring: RingBuf<MapData>, shared: &Shared) -> RingBuf<MapData> {
    while !shared.stop.load(Ordering::Relaxed) {
        let room = MAX_HELD.saturating_sub(lock(shared).copies.len());
        if room == 0 {
            // Full here: the ring keeps the rest until the loop takes some.
            std::thread::sleep(WAIT);
            continue;
        }
        super::wait_readable(std::iter::once(ring.as_raw_fd()), WAIT);
        let mut batch = Taken::default();
        read_available(&mut ring, &mut batch, room);
        if !batch.copies.is_empty() || batch.malformed != 0 {
            let mut held = lock(shared);
            held.copies.append(&mut batch.copies);
            held.malformed += batch.malformed;
        }
    }
    ring
}

/// Moves up to `most` copies from the ring into `taken`.
fn read_available(ring: &mut RingBuf<MapData>, taken: &mut Taken, most: usize) {
    while taken.copies.len() < most {
        let Some(item) = ring.next() else { break };
        if item.len() < size_of::<UserStackCopy>() {
            taken.malformed += 1;
            continue;
        }
        // SAFETY: the size was checked; UserStackCopy is plain integers.
        taken.copies.push(Box::new(unsafe { std::ptr::read_unaligned(item.as_ptr().cast()) }));
    }
}
