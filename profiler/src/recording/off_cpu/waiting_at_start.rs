//! Off-CPU of running processes (`-p`, `-a`): threads that were already
//! blocked when the recording started. The off-CPU program never saw them
//! switch out, so it cannot time their first wait. Their stacks are read
//! here from /proc at the start (kernel stack by name from `stack`, user
//! registers from `syscall`, the user stack from `mem`, unwound with the
//! binaries' call-frame information), the program notes when each first runs
//! again, and the wait is counted from the start of the recording.
use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::os::unix::fs::FileExt;

use profiler_ebpf::{MAX_STACK_DEPTH, StackKey, TASK_COMM_LEN, USER_STACK_COPY_BYTES, marker};
use symbolize::{Symbolizer, UserRegisters};

use crate::recording::{bpf::whole_stack, proc};

const PAGE: u64 = 4096;

/// A thread found blocked at the start, with its stack then.
pub struct WaitingThread {
    tgid: u32,
    tid: u32,
    stack: StackKey,
    /// Times it had run (`schedstat`'s third field) when found.
    runs: u64,
    /// The same, read at the stop (`None`: gone by then).
    runs_at_stop: Option<u64>,
}

/// What became of the threads blocked at the start.
#[derive(Debug, Default, Clone, Copy)]
pub struct WaitingAtStart {
    /// Their first waits, counted from the start (within the block limits).
    pub counted: u64,
    /// Ran again before they were watched, or without a switch-in the
    /// program saw, or could not be watched (map full): not counted.
    pub not_counted: u64,
    /// /proc would not show their stacks (e.g. a protected init): not counted.
    pub unreadable: u64,
}

/// Threads found blocked, and how many of them could not be read or kept.
pub struct Found {
    threads: Vec<WaitingThread>,
    unreadable: u64,
    dropped: u64,
}

/// What to read for each thread.
pub struct Capture {
    pub kernel: bool,
    pub user: bool,
    pub state_marker: bool,
}

/// Threads of `pids` (every process when `None`, except flameprof itself)
/// that are blocked now, with their stacks.
pub fn find(pids: Option<&[u32]>, capture: &Capture, symbolizer: &mut Symbolizer) -> Found {
    let own = std::process::id();
    let tgids: Vec<u32> = match pids {
        Some(pids) => pids.to_vec(),
        None => proc::process_ids().into_iter().filter(|&p| p != own).collect(),
    };
    let mut found = Found { threads: Vec::new(), unreadable: 0, dropped: 0 };
    for tgid in tgids {
        for tid in proc::thread_ids(tgid) {
            match read_thread(tgid, tid, capture, symbolizer) {
                Some(Ok(thread)) => found.threads.push(thread),
                Some(Err(Unreadable)) => found.unreadable += 1,
                None => {}
            }
        }
    }
    found
}

/// /proc refused to show a blocked thread's stack.
struct Unreadable;

/// `None` for a thread that is not blocked (or is gone).
fn read_thread(
    tgid: u32,
    tid: u32,
    capture: &Capture,
    symbolizer: &mut Symbolizer,
) -> Option<Result<WaitingThread, Unreadable>> {
    // Read before the state and checked after the stacks: a thread that
    // ran meanwhile is not one blocked throughout.
    let runs = run_count(tgid, tid)?;
    let marker = match proc::thread_state(tgid, tid)? {
        'S' => marker::SLEEPING,
        'D' | 'I' => marker::UNINTERRUPTIBLE,
        _ => return None,
    };
    let dir = format!("/proc/{tgid}/task/{tid}");
    // Both files are root-readable, except for tasks the kernel protects
    // (the read, not the open, is refused).
    let (stack, syscall) =
        (std::fs::read_to_string(format!("{dir}/stack")), std::fs::read_to_string(format!("{dir}/syscall")));
    if stack.is_err() && syscall.is_err() {
        return Some(Err(Unreadable));
    }
    let kernel = match (capture.kernel, stack) {
        (true, Ok(text)) => kernel_stack(&text, symbolizer),
        _ => Vec::new(),
    };
    let user = match (capture.user, syscall) {
        (true, Ok(text)) => user_stack(tgid, &text, symbolizer),
        _ => Vec::new(),
    };
    if run_count(tgid, tid) != Some(runs) {
        return None;
    }
    let marker = if capture.state_marker { marker } else { marker::NONE };
    // Its start is not read here (0): it is the process that had the pid
    // when the recording started.
    let stack = whole_stack((tgid, 0), marker, comm(tgid, tid), &kernel, &user);
    Some(Ok(WaitingThread { tgid, tid, stack, runs, runs_at_stop: None }))
}

/// A `/proc/.../stack` text, lines `[<0>] name+0x62/0x90 [module]`,
/// innermost first, as return addresses (the kernel hides the addresses
/// themselves). A frame whose name is not in kallsyms ends the stack there:
/// a gap would draw a call chain that never was.
fn kernel_stack(text: &str, symbolizer: &mut Symbolizer) -> Vec<u64> {
    text.lines()
        .map_while(|line| {
            let (name, offset, module) = parse_stack_line(line)?;
            symbolizer.kernel_address(name, offset, module)
        })
        .take(MAX_STACK_DEPTH)
        .collect()
}

/// (name, offset, module) of one `stack` line; `None` for a line without
/// a `name+offset` (the kernel hides them from all but root).
pub(crate) fn parse_stack_line(line: &str) -> Option<(&str, u64, Option<&str>)> {
    let mut fields = line.split_whitespace().skip(1);
    let (name, rest) = fields.next()?.split_once('+')?;
    let module = fields.next().and_then(|m| m.strip_prefix('[')?.strip_suffix(']'));
    let offset = u64::from_str_radix(rest.split('/').next()?.trim_start_matches("0x"), 16).ok()?;
    Some((name, offset, module))
}

/// The user stack from the registers the kernel shows for a blocked thread
/// (a `syscall` text: "NR ARGS... SP PC"; pc 0 for kernel threads).
fn user_stack(tgid: u32, text: &str, symbolizer: &mut Symbolizer) -> Vec<u64> {
    let Some((sp, ip)) = parse_syscall(text) else { return Vec::new() };
    let bytes = read_stack(tgid, sp);
    symbolizer.unwind_user(tgid, UserRegisters { ip, sp, bp: None }, &bytes, MAX_STACK_DEPTH).frames
}

/// (sp, pc) of a `syscall` text; `None` for a kernel thread (pc 0) or a
/// text without them (a running thread's `running`).
pub(crate) fn parse_syscall(text: &str) -> Option<(u64, u64)> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    let hex = |s: &&str| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok();
    let (sp, ip) = (fields.iter().rev().nth(1).and_then(hex)?, fields.last().and_then(hex)?);
    (ip != 0 && fields.len() >= 3).then_some((sp, ip))
}

/// Up to USER_STACK_COPY_BYTES of `tgid`'s memory from `sp`, page by page
/// until one cannot be read (the top of the stack).
fn read_stack(tgid: u32, sp: u64) -> Vec<u8> {
    let Ok(mem) = std::fs::File::open(format!("/proc/{tgid}/mem")) else { return Vec::new() };
    let mut bytes = Vec::with_capacity(USER_STACK_COPY_BYTES);
    let mut at = sp;
    while bytes.len() < USER_STACK_COPY_BYTES {
        let chunk = ((PAGE - at % PAGE) as usize).min(USER_STACK_COPY_BYTES - bytes.len());
        let mut buf = vec![0u8; chunk];
        if mem.read_exact_at(&mut buf, at).is_err() {
            break;
        }
        bytes.extend_from_slice(&buf);
        at += chunk as u64;
    }
    bytes
}

/// The thread's name as the kernel keeps it (NUL padded).
fn comm(tgid: u32, tid: u32) -> [u8; TASK_COMM_LEN] {
    let name = proc::thread_name(tgid, tid).unwrap_or_default();
    let mut comm = [0u8; TASK_COMM_LEN];
    let n = name.len().min(TASK_COMM_LEN - 1);
    comm[..n].copy_from_slice(&name.as_bytes()[..n]);
    comm
}

fn run_count(tgid: u32, tid: u32) -> Option<u64> {
    proc::schedstat(tgid, tid).map(|s| s.runs)
}

impl Found {
    pub fn tids(&self) -> Vec<u32> {
        self.threads.iter().map(|t| t.tid).collect()
    }

    /// After the first `watched` threads were handed to the program: keeps
    /// those the program does not already time (they blocked again after
    /// the attach: `timed`) and that have not run since they were found
    /// (they may have woken before the program watched them; their first
    /// switch-in would be missed and a later one taken for it).
    pub fn confirm(mut self, watched: usize, timed: &std::collections::HashSet<u32>) -> Self {
        self.dropped += self.threads.len().saturating_sub(watched) as u64;
        self.threads.truncate(watched);
        self.threads.retain(|t| !timed.contains(&t.tid));
        let before = self.threads.len();
        self.threads.retain(|t| run_count(t.tgid, t.tid) == Some(t.runs));
        self.dropped += (before - self.threads.len()) as u64;
        self
    }

    /// Reads every thread's run count at the stop, so a thread that runs
    /// after it is not taken for one that ran during the recording.
    pub fn note_runs_at_stop(&mut self) {
        for t in &mut self.threads {
            t.runs_at_stop = run_count(t.tgid, t.tid);
        }
    }
}

/// Each thread's first wait, from `start_ns` to its first switch-in (from
/// `ends`) or to `stop_ns` if it is still blocked, within the --min/--max
/// block limits (ns).
pub fn waits(
    found: Found,
    ends: &HashMap<u32, u64>,
    start_ns: u64,
    stop_ns: u64,
    limits: RangeInclusive<u64>,
) -> (Vec<(StackKey, u64)>, WaitingAtStart) {
    let mut outcome = WaitingAtStart { unreadable: found.unreadable, not_counted: found.dropped, ..Default::default() };
    let mut times = Vec::new();
    for thread in found.threads {
        let end = match ends.get(&thread.tid).copied().unwrap_or(0) {
            0 if thread.runs_at_stop == Some(thread.runs) => stop_ns,
            // Ran again, but no switch-in was seen (or it has exited).
            0 => {
                outcome.not_counted += 1;
                continue;
            }
            end => end.min(stop_ns),
        };
        let waited = end.saturating_sub(start_ns);
        // Like any wait, one outside --min-block/--max-block is left out.
        if limits.contains(&waited) {
            outcome.counted += 1;
            times.push((thread.stack, waited));
        }
    }
    (times, outcome)
}
