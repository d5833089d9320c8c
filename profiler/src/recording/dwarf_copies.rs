//! `--call-graph dwarf`: the kernel sends each sample's user registers and
//! a copy of its user stack; they are unwound here as they arrive (while
//! the process's mappings are known) and counted per whole stack.
use std::collections::HashMap;

use profiler_ebpf::{MAX_STACK_DEPTH, StackKey, TASK_COMM_LEN, UserStackCopy, marker};
use symbolize::{Symbolizer, UnwindEnd, UserRegisters};

use super::copy_reader::{CopyReader, Taken};
use crate::recording::{bpf::whole_stack, sideband::boottime_ns};

/// How the unwinds went: every sample is counted under exactly one end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnwindStats {
    pub samples: u64,
    /// Reached the outermost frame.
    pub complete: u64,
    /// Stopped where the stack copy ended.
    pub at_copy_end: u64,
    /// Stopped at code with neither CFI nor a usable frame pointer.
    pub at_missing_info: u64,
    /// Stopped at a return address outside executable code, or a loop.
    pub at_bad_frame: u64,
    /// Stopped at the 127-frame limit.
    pub at_depth_limit: u64,
    /// No stack could be copied (counted as unreadable user stacks).
    pub unreadable: u64,
    /// Frames found through a frame pointer because the code had no CFI.
    pub frames_by_frame_pointer: u64,
    /// Records of an unexpected size (never expected; counted, not used).
    pub malformed: u64,
}

/// (pid, process start), thread name, kernel and user stacks.
type Key = ((u32, u64), [u8; TASK_COMM_LEN], Vec<u64>, Vec<u64>);

#[derive(Default)]
pub struct UnwoundStacks {
    counts: HashMap<Key, u64>,
    /// Copies taken from the ring, not unwound yet, with when they were
    /// taken (CLOCK_BOOTTIME ns; see `collect`).
    pending: Vec<(u64, Box<UserStackCopy>)>,
    pub stats: UnwindStats,
}

impl UnwoundStacks {
    /// Takes the copies read so far without unwinding them. Taken before
    /// the side-band records are read, they are unwound after them
    /// (`unwind_pending`): the mappings a copy's stack runs through were
    /// reported before the sample was taken, so by then the symbolizer
    /// knows them all, also for a process that exec'd a moment ago.
    pub fn collect(&mut self, reader: &CopyReader) {
        self.keep(reader.take());
    }

    fn keep(&mut self, taken: Taken) {
        let taken_ns = boottime_ns();
        self.pending.extend(taken.copies.into_iter().map(|copy| (taken_ns, copy)));
        self.stats.malformed += taken.malformed;
    }

    /// Unwinds and counts the copies collected before `mapped_until_ns`:
    /// the side-band's records up to then are applied, so every mapping
    /// their stacks run through is known. The side-band holds its newest
    /// records back a moment, and the recording loop wakes as soon as a
    /// process maps its libraries: a copy taken in the same turn, unwound
    /// then, would have met `main`'s caller in a libc not known yet.
    pub fn unwind_pending(&mut self, symbolizer: &mut Symbolizer, mapped_until_ns: u64) {
        let (ready, waiting) =
            std::mem::take(&mut self.pending).into_iter().partition(|(taken_ns, _)| *taken_ns <= mapped_until_ns);
        self.pending = waiting;
        for (_, copy) in ready {
            self.add(&copy, symbolizer);
        }
    }

    /// Stops the reader, then unwinds and counts every copy left, and those
    /// collected before: for when every side-band record is applied (the
    /// end).
    pub fn drain(&mut self, reader: CopyReader, symbolizer: &mut Symbolizer) {
        self.keep(reader.finish());
        self.unwind_pending(symbolizer, u64::MAX);
    }

    fn add(&mut self, copy: &UserStackCopy, symbolizer: &mut Symbolizer) {
        let kernel_depth = (copy.kernel_depth as usize).min(MAX_STACK_DEPTH);
        let kernel = copy.kernel[..kernel_depth].to_vec();
        // No user context (a kernel thread): no user stack to unwind.
        if copy.ip == 0 {
            *self.counts.entry(((copy.tgid, copy.started_ns), copy.comm, kernel, Vec::new())).or_insert(0) += 1;
            return;
        }
        let stack_len = (copy.stack_len as usize).min(copy.stack.len());
        let regs = UserRegisters { ip: copy.ip, sp: copy.sp, bp: Some(copy.bp) };
        let unwound = symbolizer.unwind_user(copy.tgid, regs, &copy.stack[..stack_len], MAX_STACK_DEPTH);
        let s = &mut self.stats;
        s.samples += 1;
        s.frames_by_frame_pointer += u64::from(unwound.by_frame_pointer);
        *match unwound.end {
            UnwindEnd::Complete => &mut s.complete,
            // No copy at all: already counted as an unreadable user stack.
            UnwindEnd::StackCopyEnd if stack_len == 0 => &mut s.unreadable,
            UnwindEnd::StackCopyEnd => &mut s.at_copy_end,
            UnwindEnd::NoUnwindInfo => &mut s.at_missing_info,
            UnwindEnd::BadReturnAddress | UnwindEnd::NoProgress => &mut s.at_bad_frame,
            UnwindEnd::DepthLimit => &mut s.at_depth_limit,
        } += 1;
        let key = ((copy.tgid, copy.started_ns), copy.comm, kernel, unwound.frames);
        *self.counts.entry(key).or_insert(0) += 1;
    }

    /// The counts in the form the kernel's own maps give them.
    pub fn into_counts(mut self) -> Vec<(StackKey, u64)> {
        self.take_counts()
    }

    /// The counts so far (each final: a copy is unwound once), leaving none.
    pub fn take_counts(&mut self) -> Vec<(StackKey, u64)> {
        std::mem::take(&mut self.counts)
            .into_iter()
            .map(|((process, comm, kernel, user), count)| {
                (whole_stack(process, marker::NONE, comm, &kernel, &user), count)
            })
            .collect()
    }
}
