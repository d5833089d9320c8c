//! User-space addresses: map each to its mapping, then symbolize per file.

use std::collections::HashMap;
use std::rc::Rc;

use crate::elf::ElfSymbolizer;
use crate::frame::{Symbolized, UnresolvedReason};
use crate::maps::{self, Backing};
use crate::perf_map::PerfMap;
use crate::snapshot::{FileState, OpenFile, Snapshot};
use crate::vdso::VdsoImage;

/// Whether some address lies outside every known mapping (a hint that the
/// process mapped new code since the snapshot).
pub(crate) fn any_unmapped(snap: &Snapshot, addrs: &[u64]) -> bool {
    addrs.iter().any(|&a| maps::find(&snap.entries, a).is_none())
}

/// Whether some address lies in anonymous executable memory (JIT code:
/// its perf map, if any, names it).
/// Our handle on the jitdump file (`jit-PID.dump`) the process maps, if any:
/// JIT runtimes map it executable so that profilers find it.
pub(crate) fn jitdump_path(snap: &Snapshot) -> Option<std::path::PathBuf> {
    snap.entries.iter().find_map(|entry| match (&entry.backing, snap.file(entry)) {
        (Backing::File { path, .. }, Some(FileState::Open(file))) => {
            let name = path.rsplit('/').next().unwrap_or(path);
            (name.starts_with("jit-") && name.ends_with(".dump")).then(|| file.read_path()).flatten()
        }
        _ => None,
    })
}

pub(crate) fn any_in_anonymous_code(snap: &Snapshot, addrs: &[u64]) -> bool {
    addrs.iter().any(|&a| maps::find(&snap.entries, a).is_some_and(|i| snap.entries[i].is_anonymous_code()))
}

/// Addresses of one file, gathered so blazesym is called once per file.
struct FileBatch<'s> {
    file: &'s Rc<OpenFile>,
    module: String,
    /// (file offset, index of the input address).
    wanted: Vec<(u64, usize)>,
}

/// The offsets of mapped files that `addrs` of `snap` fall at, added to
/// `wanted` per file (by handle): what [`symbolize`] would look up in
/// files, for looking them all up file by file first.
pub(crate) fn add_file_offsets(snap: &Snapshot, addrs: &[u64], wanted: &mut HashMap<*const OpenFile, FileOffsets>) {
    for &addr in addrs {
        let Some(entry) = maps::find(&snap.entries, addr).map(|j| &snap.entries[j]) else { continue };
        if let (Backing::File { .. }, Some(FileState::Open(file)), true) =
            (&entry.backing, snap.file(entry), entry.executable)
        {
            let offset = entry.offset + (addr - entry.start);
            wanted
                .entry(Rc::as_ptr(file))
                .or_insert_with(|| FileOffsets { file: file.clone(), module: entry.module_name(), offsets: Vec::new() })
                .offsets
                .push(offset);
        }
    }
}

/// Offsets of one file, as [`add_file_offsets`] gathers them.
pub(crate) struct FileOffsets {
    pub file: Rc<OpenFile>,
    pub module: String,
    pub offsets: Vec<u64>,
}

/// `vdso`: a copy of the vDSO image, loaded on first need (see [`VdsoImage`]);
/// `perf_map`: what the process's perf map named, for its JIT code.
pub(crate) fn symbolize(
    elf: &mut ElfSymbolizer,
    snap: &Snapshot,
    perf_map: Option<&PerfMap>,
    vdso: &mut Option<Option<VdsoImage>>,
    addrs: &[u64],
) -> Vec<Symbolized> {
    let mut out: Vec<Option<Symbolized>> = vec![None; addrs.len()];
    let mut batches: HashMap<*const OpenFile, FileBatch<'_>> = HashMap::new();
    // (offset into the vDSO, index of the input address).
    let mut vdso_wanted: Vec<(u64, usize)> = Vec::new();

    for (i, &addr) in addrs.iter().enumerate() {
        let Some(entry) = maps::find(&snap.entries, addr).map(|j| &snap.entries[j]) else {
            out[i] = Some(Symbolized::unresolved("[unknown]".into(), None, UnresolvedReason::NoMapping));
            continue;
        };
        let module = entry.module_name();
        let in_mapping = addr - entry.start;
        let file_offset = entry.offset + in_mapping;
        let unresolved = |reason| Some(Symbolized::unresolved_in(&module, file_offset, reason));
        out[i] = match (&entry.backing, snap.file(entry)) {
            (Backing::File { .. }, _) if !entry.executable => unresolved(UnresolvedReason::NotExecutable),
            (Backing::File { .. }, Some(FileState::Open(file))) => {
                batches
                    .entry(Rc::as_ptr(file))
                    .or_insert_with(|| FileBatch { file, module, wanted: Vec::new() })
                    .wanted
                    .push((file_offset, i));
                None
            }
            (Backing::File { .. }, Some(FileState::Failed(reason))) => unresolved(*reason),
            (Backing::File { .. }, None) => unresolved(UnresolvedReason::FileUnreadable),
            (Backing::Special(name), _) if name == "[vdso]" => {
                vdso_wanted.push((in_mapping, i));
                None
            }
            // JIT code: named by the process's perf map, if it has an entry.
            (Backing::Special(_) | Backing::Anonymous, _) if entry.is_anonymous_code() => {
                match perf_map.and_then(|map| map.name(addr)) {
                    Some(name) => Some(Symbolized::jit(name)),
                    None => Some(Symbolized::unresolved_in(&module, in_mapping, UnresolvedReason::JitWithoutMapEntry)),
                }
            }
            // Heap, stack, other special mappings: the offset into the mapping is all we have.
            (Backing::Special(_) | Backing::Anonymous, _) => {
                Some(Symbolized::unresolved_in(&module, in_mapping, UnresolvedReason::AnonymousMapping))
            }
        };
    }

    for batch in batches.into_values() {
        let mut offsets: Vec<u64> = batch.wanted.iter().map(|&(off, _)| off).collect();
        offsets.sort_unstable();
        offsets.dedup();
        let results = match batch.file.read_path() {
            Some(path) => elf.symbolize(&path, &batch.module, &offsets),
            // Its handle was closed (the bound on open files) and its path
            // no longer names it: deleted or replaced since.
            None => offsets
                .iter()
                .map(|&off| Symbolized::unresolved_in(&batch.module, off, UnresolvedReason::FileUnreadable))
                .collect(),
        };
        for (off, i) in batch.wanted {
            let k = offsets.binary_search(&off).expect("offset was collected");
            out[i] = Some(results[k].clone());
        }
    }
    if !vdso_wanted.is_empty() {
        let image = vdso.get_or_insert_with(VdsoImage::copy_own);
        let mut offsets: Vec<u64> = vdso_wanted.iter().map(|&(off, _)| off).collect();
        offsets.sort_unstable();
        offsets.dedup();
        let results = match image {
            Some(image) => elf.symbolize(&image.fd_path, "[vdso]", &offsets),
            None => offsets
                .iter()
                .map(|&off| Symbolized::unresolved_in("[vdso]", off, UnresolvedReason::Unsupported))
                .collect(),
        };
        for (off, i) in vdso_wanted {
            out[i] = Some(results[offsets.binary_search(&off).expect("offset was collected")].clone());
        }
    }
    out.into_iter().map(|s| s.expect("every address handled")).collect()
}
