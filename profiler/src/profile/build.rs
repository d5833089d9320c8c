//! From raw kernel counts to a symbolized profile: stacks of addresses become
//! stacks of frames, root first, under a frame naming their process.
use std::collections::{BTreeMap, HashMap, HashSet};

use profiler_ebpf::{StackKey, marker, waker};
use symbolize::{Resolution, Symbolized, Symbolizer, UnresolvedReason};

use super::symbolized::{NameCache, StackFacts, SymbolizedCounts};
use crate::{
    formats::ModuleInfo,
    profile::{Frame, FrameKind, Profile, Stack, Unit},
    recording::{Recording, WokenTime, packed, pids},
    settings::Mode,
};

/// How a set of raw stacks is turned into frames.
#[derive(Debug, Clone)]
pub struct Shape {
    /// A frame with the thread name under each process frame.
    pub per_thread: bool,
    /// Root frame above the process (for --wall: `[on-cpu]` / `[off-cpu]`).
    pub root_marker: Option<&'static str>,
    /// Name process frames `name-PID` (the graph shows several processes).
    pub several_processes: bool,
}

/// Frame counts that went into a profile, for the health summary.
#[derive(Debug, Clone, Default)]
pub struct FrameStats {
    /// Frames in the profile, each counted with its stack's weight (in the
    /// profile's unit), so the unresolved share is a share of what is shown.
    pub frames: u64,
    pub unresolved_frames: u64,
    /// JIT code named through perf maps (weighted as `frames`).
    pub jit_frames: u64,
    /// JIT code (anonymous executable memory) no perf map entry named;
    /// part of `unresolved_frames`.
    pub jit_frames_unnamed: u64,
    /// Stacks the profile gained (symbolized stacks, not raw kernel keys).
    pub distinct_stacks: u64,
    /// Processes in the whole profile (set by the caller, which sees every part).
    pub processes: u64,
    /// Unresolved frames (weighted as `frames`) by why, and by module.
    pub unresolved_by_cause: BTreeMap<UnresolvedReason, u64>,
    pub unresolved_by_module: HashMap<String, u64>,
}

impl FrameStats {
    pub fn add(&mut self, other: FrameStats) {
        self.frames += other.frames;
        self.unresolved_frames += other.unresolved_frames;
        self.jit_frames += other.jit_frames;
        self.jit_frames_unnamed += other.jit_frames_unnamed;
        self.distinct_stacks += other.distinct_stacks;
        for (cause, n) in other.unresolved_by_cause {
            *self.unresolved_by_cause.entry(cause).or_default() += n;
        }
        for (module, n) in other.unresolved_by_module {
            *self.unresolved_by_module.entry(module).or_default() += n;
        }
    }
}

/// One raw stack: its count, and with `--wakers` the stack of the waker
/// that ended the wait.
pub struct RawStack<'a> {
    pub key: &'a StackKey,
    pub waker: Option<&'a StackKey>,
    pub count: u64,
}

impl<'a> RawStack<'a> {
    pub fn plain(raw: &'a [(StackKey, u64)]) -> impl Iterator<Item = RawStack<'a>> {
        raw.iter().map(|(key, count)| RawStack { key, waker: None, count: *count })
    }

    pub fn woken(woken: &'a [WokenTime]) -> impl Iterator<Item = RawStack<'a>> {
        woken.iter().map(|w| RawStack { key: &w.wakee, waker: Some(&w.waker), count: w.ns })
    }
}

/// The frame between a wait and its waker (bcc's offwaketime folds the same).
pub const WAKER_SEPARATOR: &str = "--";
/// Before the waker's name when an interrupt woke the thread.
pub const INTERRUPT_WAKER: &str = "[in interrupt]";

/// Symbolizes every address once (per process for user space), then adds
/// each stack, below its process and thread frames, to `counts`.
pub fn symbolize_into(counts: &mut SymbolizedCounts, raw: &[RawStack], symbolizer: &mut Symbolizer) {
    let symbols = Symbols::resolve(raw.iter().flat_map(|r| std::iter::once(r.key).chain(r.waker)), symbolizer);
    for entry in raw {
        let key = entry.key;
        let names = &mut counts.names;
        let mut stack: Stack = Vec::with_capacity((key.kernel_depth + key.user_depth) as usize + 2);
        let mut facts = StackFacts::default();
        let user_leaf_is_return = key.kernel_depth > 0;
        for (index, &address) in user_addresses(key).iter().enumerate().rev() {
            let symbolized = &symbols.user[&(user_view(key), adjust_user(address, index, user_leaf_is_return))];
            push_frames(&mut stack, symbolized, FrameKind::User, names, &mut facts);
        }
        let kernel = kernel_addresses(key);
        let glue = tracing_glue_depth(kernel, &symbols.kernel);
        for (index, &address) in kernel.iter().enumerate().skip(glue).rev() {
            let symbolized = &symbols.kernel[&adjust(address, index)];
            push_frames(&mut stack, symbolized, FrameKind::Kernel, names, &mut facts);
        }
        if let Some(label) = marker_label(key.marker) {
            stack.push(names.marker(label));
        }
        facts.addresses = (key.user_depth + key.kernel_depth) as u64;
        if let Some(waker) = entry.waker {
            push_waker(&mut stack, waker, &symbols, names, &mut facts);
            facts.addresses += (waker.user_depth + waker.kernel_depth) as u64;
        }
        counts.add((key.tgid, key.started_ns), &comm(key), stack, facts, entry.count);
    }
}

/// Adds the stacks of `counts` to `profile` under their process frame (and
/// thread frame, and root marker, as `shape` says), each weighted by
/// `weight` of its count; returns what the frames were.
pub fn finish(
    counts: SymbolizedCounts,
    profile: &mut Profile,
    process_names: &HashMap<u32, String>,
    shape: &Shape,
    weight: impl Fn(u64) -> u64,
) -> FrameStats {
    let mut names = NameCache::default();
    let head = |process: u32, thread: &str| {
        let mut head = Vec::with_capacity(3);
        if let Some(marker) = shape.root_marker {
            head.push(names.marker(marker));
        }
        let name = process_names.get(&process).map_or(thread, String::as_str);
        match shape.several_processes {
            true => head.push(names.task(&pids::label(name, process))),
            false => head.push(names.task(name)),
        }
        if shape.per_thread {
            head.push(names.task(thread));
        }
        head
    };
    let mut stats = FrameStats::default();
    let before = profile.stacks.len();
    for (stack, count, facts) in counts.drain_stacks(head) {
        let weight = weight(count);
        stats.frames += facts.addresses * weight;
        stats.unresolved_frames += facts.unresolved * weight;
        stats.jit_frames += facts.jit * weight;
        stats.jit_frames_unnamed += facts.jit_unnamed * weight;
        for (cause, module) in facts.causes {
            *stats.unresolved_by_cause.entry(cause).or_default() += weight;
            let module = module.map_or_else(|| "[unknown]".to_string(), |m| m.to_string());
            *stats.unresolved_by_module.entry(module).or_default() += weight;
        }
        profile.add(stack, weight);
    }
    stats.distinct_stacks = (profile.stacks.len() - before) as u64;
    stats
}

/// The waker part, as bcc's offwaketime folds it: the separator, then the
/// waker's stack leaf first (kernel, then user), then its name; so the
/// wakeup call sits next to the wait it ended.
fn push_waker(stack: &mut Stack, waker: &StackKey, symbols: &Symbols, names: &mut NameCache, counts: &mut StackFacts) {
    stack.push(names.marker(WAKER_SEPARATOR));
    let kernel = kernel_addresses(waker);
    let glue = tracing_glue_depth(kernel, &symbols.kernel);
    for (index, &address) in kernel.iter().enumerate().skip(glue) {
        let symbolized = &symbols.kernel[&adjust(address, index)];
        push_frames_leaf_first(stack, symbolized, FrameKind::Kernel, names, counts);
    }
    let user_leaf_is_return = waker.kernel_depth > 0;
    for (index, &address) in user_addresses(waker).iter().enumerate() {
        let symbolized = &symbols.user[&(user_view(waker), adjust_user(address, index, user_leaf_is_return))];
        push_frames_leaf_first(stack, symbolized, FrameKind::User, names, counts);
    }
    if waker.marker == waker::INTERRUPT {
        stack.push(names.marker(INTERRUPT_WAKER));
    }
    stack.push(names.task(&comm(waker)));
}

/// As `push_frames`, innermost (inlined) frame first.
fn push_frames_leaf_first(
    stack: &mut Stack,
    symbolized: &Symbolized,
    kind: FrameKind,
    names: &mut NameCache,
    counts: &mut StackFacts,
) {
    let start = stack.len();
    push_frames(stack, symbolized, kind, names, counts);
    stack[start..].reverse();
}

/// Return addresses point after the call; the call itself is one byte back.
/// Index 0 is the leaf: an exact instruction pointer, left as is.
fn adjust(address: u64, index: usize) -> u64 {
    if index == 0 { address } else { address.saturating_sub(1) }
}

/// A stack read from a tracepoint program starts inside flameprof's own BPF
/// program and the tracepoint machinery that called it; those leaf frames say
/// nothing about the traced task, so they are left out.
fn tracing_glue_depth(kernel: &[u64], symbols: &HashMap<u64, Symbolized>) -> usize {
    const GLUE: [&str; 5] = ["bpf_prog_", "bpf_trampoline_", "bpf_trace_run", "__bpf_trace_", "__traceiter_"];
    kernel
        .iter()
        .enumerate()
        .take_while(|&(index, address)| {
            symbols[&adjust(*address, index)]
                .frames
                .first()
                .is_some_and(|f| GLUE.iter().any(|g| f.function.starts_with(g)))
        })
        .count()
}

/// A user stack under kernel frames was interrupted by a syscall or fault:
/// its leaf is the return address after the `syscall` instruction, not an
/// instruction being executed, so it moves back too.
fn adjust_user(address: u64, index: usize, leaf_is_return: bool) -> u64 {
    if leaf_is_return { address.saturating_sub(1) } else { adjust(address, index) }
}

fn user_addresses(key: &StackKey) -> &[u64] {
    &key.user[..(key.user_depth as usize).min(key.user.len())]
}

fn kernel_addresses(key: &StackKey) -> &[u64] {
    &key.kernel[..(key.kernel_depth as usize).min(key.kernel.len())]
}

fn comm(key: &StackKey) -> String {
    let end = key.comm.iter().position(|&b| b == 0).unwrap_or(key.comm.len());
    String::from_utf8_lossy(&key.comm[..end]).into_owned()
}

fn marker_label(value: u32) -> Option<&'static str> {
    match value {
        marker::SLEEPING => Some("[sleeping]"),
        marker::UNINTERRUPTIBLE => Some("[uninterruptible]"),
        marker::PREEMPTED => Some("[preempted]"),
        marker::OTHER => Some("[other state]"),
        _ => None,
    }
}

/// Appends the frames of one address (outermost first) and counts it. A
/// frame the symbolizer marks as JIT code becomes a `Jit` frame.
fn push_frames(
    stack: &mut Stack,
    symbolized: &Symbolized,
    kind: FrameKind,
    names: &mut NameCache,
    counts: &mut StackFacts,
) {
    let first = symbolized.frames.first();
    counts.unresolved += u64::from(symbolized.frames.iter().any(|f| f.resolved != Resolution::Resolved));
    counts.jit += u64::from(first.is_some_and(|f| f.jit && f.resolved == Resolution::Resolved));
    let unnamed = Resolution::Unresolved(UnresolvedReason::JitWithoutMapEntry);
    counts.jit_unnamed += u64::from(first.is_some_and(|f| f.resolved == unnamed));
    if let Some(frame) = symbolized.frames.iter().find(|f| f.resolved != Resolution::Resolved)
        && let Resolution::Unresolved(cause) = frame.resolved
    {
        counts.causes.push((cause, frame.module.as_deref().map(|m| names.intern(m))));
    }
    for frame in &symbolized.frames {
        let frame = Frame {
            name: names.intern(&frame.function),
            kind: if frame.jit { FrameKind::Jit } else { kind },
            module: frame.module.as_deref().map(|m| names.intern(m)),
            file: frame.file.as_deref().map(|f| names.intern(f)),
            line: frame.line,
            inlined: frame.inlined,
        };
        stack.push(names.frame(frame));
    }
}

/// Every distinct address symbolized once.
/// Whose mappings a key's user addresses are symbolized against: its
/// process's, as they were before the end of the key's mapping generation
/// (`StackKey::mappings_since_ns` once bounded, mapping_generations.rs; 0:
/// as they are).
type UserView = (u32, u64);

fn user_view(key: &StackKey) -> UserView {
    (key.tgid, key.mappings_since_ns)
}

struct Symbols {
    user: HashMap<(UserView, u64), Symbolized>,
    kernel: HashMap<u64, Symbolized>,
}

impl Symbols {
    fn resolve<'a>(keys: impl Iterator<Item = &'a StackKey>, symbolizer: &mut Symbolizer) -> Self {
        let mut wanted = WantedAddresses::default();
        keys.for_each(|key| wanted.add(key));
        let user_by_view = wanted.user_by_view();
        prefetch(&user_by_view, symbolizer);
        let mut user = HashMap::new();
        for (view, addresses) in user_by_view {
            let (pid, before_ns) = view;
            let symbolized = symbolizer.symbolize_user_before(pid, (before_ns != 0).then_some(before_ns), &addresses);
            user.extend(addresses.into_iter().zip(symbolized).map(|(a, s)| ((view, a), s)));
        }
        let mut kernel: Vec<u64> = wanted.kernel.into_iter().collect();
        kernel.sort_unstable();
        let symbolized = symbolizer.symbolize_kernel(&kernel);
        Symbols { user, kernel: kernel.into_iter().zip(symbolized).collect() }
    }
}

/// The addresses stacks need symbolized, as they are looked up: user ones
/// per process view, kernel ones together.
#[derive(Default)]
struct WantedAddresses {
    user: HashMap<UserView, HashSet<u64>>,
    kernel: HashSet<u64>,
}

impl WantedAddresses {
    fn add(&mut self, key: &StackKey) {
        let pid_addresses = self.user.entry(user_view(key)).or_default();
        for (index, &address) in user_addresses(key).iter().enumerate() {
            pid_addresses.insert(adjust_user(address, index, key.kernel_depth > 0));
        }
        for (index, &address) in kernel_addresses(key).iter().enumerate() {
            self.kernel.insert(adjust(address, index));
        }
    }

    /// Each view's user addresses, sorted.
    fn user_by_view(&mut self) -> Vec<(UserView, Vec<u64>)> {
        std::mem::take(&mut self.user)
            .into_iter()
            .map(|(view, addresses)| {
                let mut addresses: Vec<u64> = addresses.into_iter().collect();
                addresses.sort_unstable();
                (view, addresses)
            })
            .collect()
    }
}

/// Looks the user addresses up file by file first, each file parsed once
/// for every process (see `Symbolizer::prefetch_user`).
fn prefetch(user_by_view: &[(UserView, Vec<u64>)], symbolizer: &mut Symbolizer) {
    let views: Vec<(u32, Option<u64>, &[u64])> = user_by_view
        .iter()
        .map(|&((pid, before_ns), ref addresses)| (pid, (before_ns != 0).then_some(before_ns), &addresses[..]))
        .collect();
    symbolizer.prefetch_user(&views);
}

/// Unit of each mode's profile.
pub fn unit_for(mode: Mode, frequency_hz: u64) -> Unit {
    match mode {
        Mode::OnCpu => Unit::Samples { frequency_hz },
        _ => Unit::Microseconds,
    }
}

/// Symbolizes a recording into the profile its mode asks for: samples
/// on-CPU, microseconds off-CPU, both in microseconds for --wall. The
/// counts symbolized while recording (drained) are taken out of it.
pub fn from_recording(
    recording: &mut Recording,
    mode: Mode,
    frequency: u64,
    per_thread: bool,
    symbolizer: &mut Symbolizer,
) -> (Profile, FrameStats) {
    let mut profile = Profile::new(unit_for(mode, frequency));
    let mut frames = FrameStats::default();
    let mut on_cpu = std::mem::take(&mut recording.on_cpu_symbolized);
    let mut off_cpu = std::mem::take(&mut recording.off_cpu_symbolized);
    // The raw keys (2 KiB each) go once symbolized: only their processes
    // are needed after (`modules`), and the outputs are rendered next.
    let (raw_on_cpu, raw_off_cpu) = (std::mem::take(&mut recording.on_cpu), std::mem::take(&mut recording.off_cpu));
    recording.raw_processes =
        raw_on_cpu.iter().map(|(key, _)| key.tgid).chain(raw_off_cpu.iter().map(|(key, _)| key.tgid)).collect();
    recording.raw_processes.sort_unstable();
    recording.raw_processes.dedup();
    if mode != Mode::OffCpu {
        // The batches' files looked up together first: otherwise a file
        // evicted for the heap bound would be parsed again for each batch.
        let mut wanted = WantedAddresses::default();
        for batch in packed::unpacked(&raw_on_cpu) {
            batch.iter().for_each(|(key, _)| wanted.add(key));
        }
        prefetch(&wanted.user_by_view(), symbolizer);
        drop(wanted);
        for batch in packed::unpacked(&raw_on_cpu) {
            symbolize_into(&mut on_cpu, &RawStack::plain(&batch).collect::<Vec<_>>(), symbolizer);
        }
    }
    drop(raw_on_cpu);
    if mode != Mode::OnCpu {
        let raw: Vec<RawStack> = RawStack::plain(&raw_off_cpu).chain(RawStack::woken(&recording.woken)).collect();
        symbolize_into(&mut off_cpu, &raw, symbolizer);
    }
    drop(raw_off_cpu);
    // One naming rule for the whole graph: `name-PID` roots once several
    // processes appear anywhere in it.
    let mut processes = on_cpu.processes();
    processes.extend(off_cpu.processes());
    let shape = |root_marker| Shape { per_thread, root_marker, several_processes: processes.len() > 1 };
    let names = &recording.process_names;
    match mode {
        Mode::OnCpu => {
            frames.add(finish(on_cpu, &mut profile, names, &shape(None), |n| n));
        }
        Mode::OffCpu => {
            frames.add(finish(off_cpu, &mut profile, names, &shape(None), ns_to_us));
        }
        Mode::Wall => {
            // One unit for both halves: a sample at F Hz stands for 1/F s on CPU.
            let frequency = frequency.max(1);
            let on_cpu_us = |samples: u64| samples * 1_000_000 / frequency;
            frames.add(finish(on_cpu, &mut profile, names, &shape(Some("[on-cpu]")), on_cpu_us));
            frames.add(finish(off_cpu, &mut profile, names, &shape(Some("[off-cpu]")), ns_to_us));
        }
    }
    frames.processes = processes.len() as u64;
    (profile, frames)
}

fn ns_to_us(ns: u64) -> u64 {
    ns / 1000
}

/// Module basename → path, build-id and range, from the snapshots of the
/// recorded processes and what was kept of the ended ones' (the first
/// process mapping a module wins).
pub fn modules(recording: &Recording, symbolizer: &Symbolizer) -> HashMap<String, ModuleInfo> {
    let mut pids: Vec<u32> = recording
        .on_cpu
        .iter()
        .map(|(key, _)| key.tgid)
        .chain(recording.off_cpu.iter().map(|(key, _)| key.tgid))
        .chain(recording.raw_processes.iter().copied())
        .chain(recording.woken.iter().flat_map(|w| [w.wakee.tgid, w.waker.tgid]))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    let mut modules = HashMap::new();
    let ended = recording.modules_of_ended.values();
    let mappings = ended.cloned().chain(pids.into_iter().flat_map(|pid| symbolizer.mappings(pid)));
    for mapping in mappings {
        let name = mapping.path.rsplit('/').next().unwrap_or(&mapping.path).to_string();
        modules.entry(name).or_insert_with(|| ModuleInfo {
            path: mapping.path.clone(),
            build_id: mapping.build_id.clone(),
            start: mapping.start,
            end: mapping.end,
            file_offset: mapping.file_offset,
        });
    }
    modules
}
