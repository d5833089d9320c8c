//! Address symbolization for flameprof: kernel addresses through
//! `/proc/kallsyms`, user addresses through a snapshot of the process's memory
//! map and the mapped ELF files (symbol tables, and DWARF for inlined frames and
//! file:line). Rust and C++ names come out demangled. Addresses in PLT stubs
//! are named `NAME@plt` after the symbol the stub jumps to, as perf does.
//! JIT code (anonymous executable memory) is named through the process's
//! perf map (`/tmp/perf-PID.map`), as perf does; such frames are marked
//! [`Frame::jit`].
//!
//! The caller passes addresses as they should be looked up: return addresses of
//! non-leaf frames are expected to be already decremented.

mod debuginfo;
mod elf;
mod error;
mod frame;
#[doc(hidden)]
pub mod fuzzing;
mod heap;
mod inflation;
mod jitdump;
mod kernel;
mod maps;
mod parsed_files;
mod perf_map;
mod plt;
mod proc_view;
mod snapshot;
#[cfg(test)]
mod test_elf;
mod unwind;
mod user;
mod vdso;
pub use proc_view::{live_task_dir, memory_view};
pub use vdso::VdsoImage;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use debuginfo::{DebugInfoStats, DebuginfodSettings};
pub use error::Error;
pub use frame::{Frame, Resolution, Stats, Symbolized, UnresolvedReason};
pub use inflation::MAX_INFLATED_BYTES;
pub use parsed_files::ParsedFilesStats;
pub use perf_map::PerfMapStats;
pub use snapshot::MAX_OPEN_HANDLES;
pub use unwind::{LeafFrame, UnwindEnd, Unwound, UserRegisters};
// Compiling a file's call-frame information for the in-kernel unwinder.
pub use unwind::{
    CfaRule, KERNEL_ROW_BYTES, MAX_CFI_SECTION_BYTES, MAX_UNWIND_ROWS, RbpRule, RbxRule, RowKinds, UnsupportedRules,
    UnwindRow, UnwindTable, UnwindTableStats, compile_unwind_table,
};

use elf::ElfSymbolizer;
pub use elf::LookupStats;
use kernel::KernelSymbols;
use maps::Backing;
use snapshot::{FileState, FileTable, Snapshot};

/// Above every pid (the kernel's PID_MAX_LIMIT, 2^22): ids from here on name
/// processes whose pid went to another process ([`Symbolizer::rename_process`]).
pub const PID_LIMIT: u32 = 1 << 22;

/// CLOCK_BOOTTIME now, in ns: the clock of the kernel's process starts and
/// side-band records, and of what is read when (see
/// [`Symbolizer::rename_process`]).
pub fn boottime_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which `now` is.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut now) };
    (now.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(now.tv_nsec as u64)
}

/// An executable file mapping of a process, as needed by pprof's mapping table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub file_offset: u64,
    /// Path as the process mapped it (the file may since have been deleted).
    pub path: String,
    /// GNU build-id note, when the file has one and could be read.
    pub build_id: Option<Vec<u8>>,
}

/// An executable mapping as the kernel reported it when it was made (a
/// perf MMAP2 record), not as /proc shows it later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedMapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub file_offset: u64,
    /// Device (major << 32 | minor) and inode of the file; for a mapping
    /// reported with a build-id instead, any pair unique to it, with inode 0
    /// (the file opened by path is then not checked).
    pub dev: u64,
    pub inode: u64,
    /// The kernel's name for it: a path, `//anon`, `[vdso]`...
    pub name: String,
    /// When it was made (the record's CLOCK_BOOTTIME stamp).
    pub mapped_ns: u64,
}

impl ReportedMapping {
    fn entry(&self) -> maps::MapEntry {
        maps::MapEntry {
            start: self.start,
            end: self.end,
            executable: true,
            offset: self.file_offset,
            dev: self.dev,
            inode: self.inode,
            backing: Backing::from_reported_name(&self.name),
            mapped_ns: self.mapped_ns,
        }
    }
}

/// Symbolizes kernel and user addresses, caching parsed files and snapshots.
///
/// Not `Send`: blazesym's caches are single-threaded. Create it on the thread
/// that symbolizes.
#[derive(Debug)]
pub struct Symbolizer {
    elf: ElfSymbolizer,
    files: FileTable,
    processes: HashMap<u32, Snapshot>,
    /// `None` until first needed; `Some(None)` if loading failed (not retried
    /// implicitly: kallsyms does not appear later).
    kernel: Option<Option<KernelSymbols>>,
    /// Copy of the vDSO, made on first need; `Some(None)` if that failed.
    vdso: Option<Option<vdso::VdsoImage>>,
    stats: Stats,
    /// Call-frame information per file, and rules per code address.
    cfi: unwind::CfiFiles,
    rules: unwind::RuleCache,
    /// When each process's map was last re-read for an unmapped sample address.
    remapped: HashMap<u32, Instant>,
    /// What the perf maps of processes with JIT code named.
    perf_maps: perf_map::PerfMaps,
}

impl Default for Symbolizer {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbolizer {
    pub fn new() -> Self {
        Self {
            elf: ElfSymbolizer::new(),
            files: FileTable::default(),
            processes: HashMap::new(),
            kernel: None,
            vdso: None,
            stats: Stats::default(),
            cfi: HashMap::new(),
            rules: unwind::RuleCache::default(),
            remapped: HashMap::new(),
            perf_maps: perf_map::PerfMaps::default(),
        }
    }

    /// Records what is needed to symbolize `pid`'s user addresses later, even
    /// after it exits or its binaries are deleted/replaced: its memory map and
    /// open handles to its executable mapped files (through
    /// `/proc/PID/map_files/START-END`, falling back to the path). Idempotent per
    /// pid: an existing snapshot is kept (see [`Self::forget_process`]).
    pub fn snapshot_process(&mut self, pid: u32) -> Result<(), Error> {
        if !self.processes.contains_key(&pid) {
            let snap = snapshot::take(pid, &mut self.files, None);
            self.evict_closed();
            self.processes.insert(pid, snap?);
        }
        Ok(())
    }

    /// Re-reads `pid`'s memory map into its snapshot, keeping what the old
    /// snapshot knew of since-unmapped code: libraries loaded after the first
    /// snapshot (by the dynamic loader or dlopen) resolve too. A process with
    /// anonymous executable memory (JIT code) also has what its perf map
    /// gained read, so that its JIT code is named after it exits even if the
    /// map is deleted. A snapshot made from the kernel's reports is not
    /// re-read (only its perf map is).
    pub fn refresh_process(&mut self, pid: u32) -> Result<(), Error> {
        if let Some(snapshot) = self.processes.get(&pid).filter(|snapshot| snapshot.sealed) {
            // Its mappings come from the kernel's reports; its JIT code's
            // perf map is still read while the process lives.
            if snapshot.entries.iter().any(maps::MapEntry::is_anonymous_code) {
                let dump = user::jitdump_path(snapshot);
                self.perf_maps.update(pid, dump.as_deref());
            }
            return Ok(());
        }
        let snap = snapshot::take(pid, &mut self.files, self.processes.get(&pid));
        self.evict_closed();
        let snap = snap?;
        let jit = snap.entries.iter().any(maps::MapEntry::is_anonymous_code);
        self.processes.insert(pid, snap);
        if jit {
            let dump = user::jitdump_path(&self.processes[&pid]);
            self.perf_maps.update(pid, dump.as_deref());
        }
        Ok(())
    }

    /// Opens the file of a mapping `pid` just made, through the process's
    /// own view of it while it lives, and keeps it open: a snapshot made
    /// from the kernel's reports later (the process may be gone, the file
    /// deleted) finds it open.
    pub fn hold_reported_file(&mut self, pid: u32, mapping: &ReportedMapping) {
        let entry = mapping.entry();
        if matches!(entry.backing, Backing::File { .. }) {
            self.files.hold(pid, &entry);
            self.evict_closed();
        }
    }

    /// Makes `pid`'s snapshot the mappings the kernel reported, in the
    /// order they were made (a later one replaces what it overlaps): every
    /// mapping of a program run during the recording. It is never re-read
    /// from /proc; [`Self::add_reported_mapping`] adds what it maps later.
    pub fn install_reported(&mut self, pid: u32, mappings: &[ReportedMapping]) {
        let mut snapshot = Snapshot { sealed: true, ..Snapshot::default() };
        for mapping in mappings {
            snapshot::add_reported(&mut snapshot, pid, &mut self.files, mapping.entry());
        }
        self.processes.insert(pid, snapshot);
        self.remapped.remove(&pid);
        self.evict_closed();
        for closed in self.files.sweep() {
            self.elf.forget_file(&closed);
        }
    }

    /// Adds a mapping the kernel reported to `pid`'s snapshot (one made
    /// with [`Self::install_reported`], or read from /proc).
    pub fn add_reported_mapping(&mut self, pid: u32, mapping: &ReportedMapping) {
        let snapshot = self.processes.entry(pid).or_default();
        snapshot::add_reported(snapshot, pid, &mut self.files, mapping.entry());
        self.evict_closed();
    }

    /// `pid` runs another program from now on: its snapshot, of the
    /// earlier one, is not re-read from /proc any more.
    pub fn seal_process(&mut self, pid: u32) {
        if let Some(snapshot) = self.processes.get_mut(&pid) {
            snapshot.sealed = true;
        }
    }

    /// Keeps the snapshot of `pid` (and what its perf map named) under `id`,
    /// a number no live process has (at least [`PID_LIMIT`]): the pid now
    /// belongs to another process, started at `new_start_ns`
    /// (CLOCK_BOOTTIME), and what the earlier one ran must still resolve
    /// against its own mappings. Nothing is read from /proc for such an id
    /// again.
    pub fn rename_process(&mut self, pid: u32, id: u32, new_start_ns: u64) {
        debug_assert!(id >= PID_LIMIT);
        if let Some(snapshot) = self.processes.remove(&pid) {
            self.processes.insert(id, snapshot);
        }
        self.perf_maps.rename(pid, id, new_start_ns);
        self.remapped.remove(&pid);
    }

    /// Drops the snapshot of `pid` (e.g. when the pid is about to be reused),
    /// closing files no other snapshot needs, and what its perf map named.
    pub fn forget_process(&mut self, pid: u32) {
        self.perf_maps.forget(pid);
        self.remapped.remove(&pid);
        if self.processes.remove(&pid).is_some() {
            for closed in self.files.sweep() {
                self.elf.forget_file(&closed);
            }
        }
    }

    /// Symbolizes user-space addresses of `pid`, snapshotting it first if not
    /// done yet. One [`Symbolized`] per input address, in order.
    ///
    /// If some address is outside every known mapping and the process is still
    /// alive, its memory map is re-read once (it may have loaded code since).
    pub fn symbolize_user(&mut self, pid: u32, addrs: &[u64]) -> Vec<Symbolized> {
        let fresh = !self.processes.contains_key(&pid);
        if let Err(err) = self.snapshot_process(pid) {
            let reason = match err {
                Error::ProcessGone { .. } => UnresolvedReason::ProcessGone,
                _ => UnresolvedReason::NoMapping,
            };
            let one = Symbolized::unresolved("[unknown]".into(), None, reason);
            return self.counted(vec![one; addrs.len()]);
        }
        let sealed = self.processes[&pid].sealed;
        if !fresh && !sealed && pid < PID_LIMIT && user::any_unmapped(&self.processes[&pid], addrs) {
            // Failure means the process is gone: the old snapshot is all there is.
            let snap = snapshot::take(pid, &mut self.files, self.processes.get(&pid));
            self.evict_closed();
            if let Ok(snap) = snap {
                self.processes.insert(pid, snap);
            }
        }
        let snap = &self.processes[&pid];
        if pid < PID_LIMIT && user::any_in_anonymous_code(snap, addrs) {
            // JIT code: its perf map (or jitdump) may have grown since it was last read.
            let dump = user::jitdump_path(snap);
            self.perf_maps.update(pid, dump.as_deref());
        }
        let perf_map = self.perf_maps.get(pid);
        let result = user::symbolize(&mut self.elf, snap, perf_map, &mut self.vdso, addrs);
        self.counted(result)
    }

    /// Symbolizes user-space addresses of `pid` sampled before `before_ns`
    /// (CLOCK_BOOTTIME), against the mappings made before then: code the
    /// kernel reported mapped later over the same addresses (a library
    /// loaded where an unloaded one was) does not name them. `None` is now:
    /// [`Self::symbolize_user`].
    pub fn symbolize_user_before(&mut self, pid: u32, before_ns: Option<u64>, addrs: &[u64]) -> Vec<Symbolized> {
        let view = match (before_ns, self.processes.get(&pid)) {
            (Some(before_ns), Some(snapshot)) => snapshot::view_before(snapshot, before_ns),
            _ => return self.symbolize_user(pid, addrs),
        };
        let perf_map = self.perf_maps.get(pid);
        let result = user::symbolize(&mut self.elf, &view, perf_map, &mut self.vdso, addrs);
        self.counted(result)
    }

    /// Looks up the user addresses of many processes, given as (pid, the
    /// time their samples were taken before or `None`, addresses), file by
    /// file: each file is parsed once for all of them, and can be evicted
    /// (the heap bound) before the next is parsed. The calls of
    /// [`Self::symbolize_user_before`] that follow for the same addresses
    /// are answered from memory. Processes not snapshotted yet are left to
    /// those calls; so is a batch too large to remember at once.
    pub fn prefetch_user(&mut self, views: &[(u32, Option<u64>, &[u64])]) {
        let mut wanted = HashMap::new();
        for &(pid, before_ns, addrs) in views {
            let Some(snapshot) = self.processes.get(&pid) else { continue };
            match before_ns {
                Some(before_ns) => {
                    user::add_file_offsets(&snapshot::view_before(snapshot, before_ns), addrs, &mut wanted)
                }
                None => user::add_file_offsets(snapshot, addrs, &mut wanted),
            }
        }
        // Per file: where it is read, its offsets, how many are new.
        let files: Vec<(PathBuf, user::FileOffsets, usize)> = wanted
            .into_values()
            .filter_map(|mut file| {
                file.offsets.sort_unstable();
                file.offsets.dedup();
                let path = file.file.read_path()?;
                let new = self.elf.not_remembered(&path, &file.module, &file.offsets);
                (new > 0).then_some((path, file, new))
            })
            .collect();
        if !self.elf.make_room(files.iter().map(|&(_, _, new)| new).sum()) {
            return;
        }
        for (path, file, _) in files {
            self.elf.prefetch(&path, &file.module, &file.offsets);
        }
    }

    /// Unwinds a user stack of `pid` from a sample's registers and a copy of
    /// its stack (`stack` starts at `regs.sp`), through the call-frame
    /// information of the mapped files (frame pointers where a function has
    /// none). At most `max_frames` addresses, leaf first, return addresses
    /// not decremented (as the kernel's stack walker gives them).
    pub fn unwind_user(&mut self, pid: u32, regs: UserRegisters, stack: &[u8], max_frames: usize) -> Unwound {
        if self.snapshot_process(pid).is_err() {
            return Unwound { frames: vec![regs.ip], end: UnwindEnd::NoUnwindInfo, by_frame_pointer: 0 };
        }
        // Code mapped since the snapshot (dlopen): the sampled address, or a
        // return address, outside every mapping. Re-read the map and retry,
        // at most every 100 ms per process (JIT code may stay unmapped).
        if maps::find(&self.processes[&pid].entries, regs.ip).is_none() {
            self.remap(pid);
        }
        let unwound = self.unwind_in_snapshot(pid, regs, stack, max_frames);
        if unwound.end == UnwindEnd::BadReturnAddress && self.remap(pid) {
            return self.unwind_in_snapshot(pid, regs, stack, max_frames);
        }
        unwound
    }

    /// What the CFI of `pid`'s code at `pc` says about a frame-pointer walk
    /// through that frame: the leaf fix-up of `--call-graph fp`. `pc` is a
    /// leaf's next instruction, or a return address minus 1 (its call).
    pub fn leaf_frame(&mut self, pid: u32, pc: u64) -> LeafFrame {
        if self.snapshot_process(pid).is_err() {
            return LeafFrame::Unknown;
        }
        let mut code =
            unwind::ProcessCode { snapshot: &self.processes[&pid], cfi: &mut self.cfi, vdso: &mut self.vdso };
        unwind::leaf_frame(&mut code, &mut self.rules, pc)
    }

    fn unwind_in_snapshot(&mut self, pid: u32, regs: UserRegisters, stack: &[u8], max_frames: usize) -> Unwound {
        let mut code =
            unwind::ProcessCode { snapshot: &self.processes[&pid], cfi: &mut self.cfi, vdso: &mut self.vdso };
        unwind::unwind(&mut code, &mut self.rules, regs, stack, max_frames)
    }

    /// Re-reads `pid`'s map unless that was done in the last 100 ms;
    /// whether it was re-read.
    fn remap(&mut self, pid: u32) -> bool {
        if self.processes.get(&pid).is_some_and(|snapshot| snapshot.sealed) {
            return false;
        }
        if self.remapped.get(&pid).is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return false;
        }
        self.remapped.insert(pid, Instant::now());
        let snap = snapshot::take(pid, &mut self.files, self.processes.get(&pid));
        self.evict_closed();
        match snap {
            Ok(snap) => {
                self.processes.insert(pid, snap);
                true
            }
            Err(_) => false,
        }
    }

    /// Drops what blazesym holds under the paths of handles just closed
    /// (their numbers name other files next).
    fn evict_closed(&mut self) {
        for closed in self.files.take_closed() {
            self.elf.forget_file(&closed);
        }
    }

    /// Whether and how to fetch the debug files of stripped binaries from
    /// debuginfod servers (`DEBUGINFOD_URLS`); off until this is called.
    pub fn set_debuginfod(&mut self, settings: &DebuginfodSettings) {
        self.elf.debug_files.set_debuginfod(settings);
    }

    /// File offsets looked up, and how many of them an earlier lookup of
    /// the same file (for any process) answered.
    pub fn lookup_stats(&self) -> LookupStats {
        self.elf.lookup_stats()
    }

    /// How debug files of stripped binaries were found.
    pub fn debug_info_stats(&self) -> &DebugInfoStats {
        &self.elf.debug_files.stats
    }

    /// Symbolizes kernel addresses through kallsyms (loaded once, lazily).
    pub fn symbolize_kernel(&mut self, addrs: &[u64]) -> Vec<Symbolized> {
        let result = match self.kernel_symbols() {
            Some(ksyms) => {
                // Dedupe: stacks repeat the same few kernel addresses a lot.
                let mut unique: Vec<u64> = addrs.to_vec();
                unique.sort_unstable();
                unique.dedup();
                let syms: Vec<Symbolized> = unique.iter().map(|&a| ksyms.symbolize(a)).collect();
                addrs.iter().map(|a| syms[unique.binary_search(a).expect("address collected")].clone()).collect()
            }
            None => addrs
                .iter()
                .map(|&a| kernel::unresolved(a, None, None, UnresolvedReason::KernelSymbolsUnavailable))
                .collect(),
        };
        self.counted(result)
    }

    /// The address of kernel code `name+offset` (in `module`, if given), as
    /// `/proc/PID/task/TID/stack` prints frames; `None` when the symbol is
    /// unknown (or kallsyms is not).
    pub fn kernel_address(&mut self, name: &str, offset: u64, module: Option<&str>) -> Option<u64> {
        self.kernel_symbols()?.address_of(name, module).map(|addr| addr + offset)
    }

    /// kallsyms, loaded on first need (`None` if it could not be).
    fn kernel_symbols(&mut self) -> Option<&KernelSymbols> {
        if self.kernel.is_none() {
            let _ = self.load_kernel_symbols();
        }
        self.kernel.as_ref().and_then(Option::as_ref)
    }

    /// (Re)loads kallsyms now, to report why kernel symbols are unavailable.
    pub fn load_kernel_symbols(&mut self) -> Result<(), Error> {
        match KernelSymbols::load() {
            Ok(ksyms) => {
                self.kernel = Some(Some(ksyms));
                Ok(())
            }
            Err(err) => {
                self.kernel = Some(None);
                Err(err)
            }
        }
    }

    /// Symbolizes file offsets of the ELF file at `path` directly, without a
    /// process. Frames are named after the file's basename.
    pub fn symbolize_file(&mut self, path: impl AsRef<Path>, file_offsets: &[u64]) -> Vec<Symbolized> {
        let path = path.as_ref();
        let module = path.file_name().map_or_else(|| path.to_string_lossy(), |n| n.to_string_lossy());
        let mut unique = file_offsets.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let syms = self.elf.symbolize(path, &module, &unique);
        let result =
            file_offsets.iter().map(|o| syms[unique.binary_search(o).expect("offset collected")].clone()).collect();
        self.counted(result)
    }

    /// Executable file mappings of a snapshotted process, with build-ids.
    /// Empty if `pid` has no snapshot.
    pub fn mappings(&self, pid: u32) -> Vec<Mapping> {
        let Some(snap) = self.processes.get(&pid) else {
            return Vec::new();
        };
        snap.entries
            .iter()
            .filter(|e| e.executable)
            .filter_map(|e| {
                let Backing::File { path, .. } = &e.backing else {
                    return None;
                };
                let build_id = match snap.file(e) {
                    Some(FileState::Open(file)) => file
                        .build_id
                        .get_or_init(|| {
                            let path = file.read_path()?;
                            blazesym::helper::read_elf_build_id(&path).ok().flatten().map(|id| id.into_owned())
                        })
                        .clone(),
                    _ => None,
                };
                Some(Mapping { start: e.start, end: e.end, file_offset: e.offset, path: path.clone(), build_id })
            })
            .collect()
    }

    /// Build-id of the executable mapping of `pid` whose file basename is `module`.
    pub fn build_id(&self, pid: u32, module: &str) -> Option<Vec<u8>> {
        self.mappings(pid).into_iter().find(|m| maps::basename(&m.path) == module).and_then(|m| m.build_id)
    }

    /// Drops what symbolizing user addresses keeps to be fast next time:
    /// the files blazesym holds parsed (its mappings of them and the DWARF
    /// indexes it built, tens of MiB for a compiler's libraries), the
    /// results remembered per file offset, the call-frame information read
    /// for unwinding. For when symbolizing is over and the outputs are
    /// rendered next; a later lookup parses its files again. Snapshots,
    /// open files and the figures of [`Self::parsed_files`] are kept.
    pub fn release_parsed_files(&mut self) {
        self.elf.release();
        self.release_unwind_info();
    }

    /// Drops the call-frame information read for unwinding stack copies
    /// and fixing up leaves, and the rules computed from it (a copy of each
    /// file's `.eh_frame`: tens of MiB for a compiler's libraries). For when
    /// the recording is over: symbolizing needs none of it. A later unwind
    /// reads its files again.
    pub fn release_unwind_info(&mut self) {
        self.cfi = HashMap::new();
        self.rules = unwind::RuleCache::default();
    }

    /// Evicts parsed files while the heap is above its bound, the one used
    /// last too: for the end of a batch of lookups (a drain while
    /// recording), so what a recording holds between batches stays small.
    pub fn trim_parsed_files(&mut self) {
        self.elf.evict_for_heap(None);
    }

    /// What blazesym holds parsed, within its bound.
    pub fn parsed_files(&self) -> ParsedFilesStats {
        self.elf.parsed.stats()
    }

    /// Handles on mapped files closed to stay within `MAX_OPEN_HANDLES`.
    pub fn file_handles_closed(&self) -> u64 {
        self.files.handles_closed
    }

    /// Totals so far: addresses resolved and unresolved, by reason.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// What the perf maps of processes with JIT code held.
    pub fn perf_map_stats(&self) -> &PerfMapStats {
        self.perf_maps.stats()
    }

    fn counted(&mut self, result: Vec<Symbolized>) -> Vec<Symbolized> {
        result.iter().for_each(|s| self.stats.count(s));
        result
    }
}
