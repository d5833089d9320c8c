//! Symbolization of file offsets inside one ELF file, through blazesym,
//! and for PLT stubs (which have no symbol) from the relocations.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use blazesym::ErrorKind;
use blazesym::symbolize::source::Source;
use blazesym::symbolize::{self as bz, Input, Reason};
use object::ReadCache;

use crate::debuginfo::{DebugFiles, ElfFacts};
use crate::frame::{Frame, Resolution, Symbolized, UnresolvedReason};
use crate::heap;
use crate::inflation::{self, Oversized};
use crate::parsed_files::{DEFAULT_MAX_HEAP_BYTES, DEFAULT_MAX_PARSED_BYTES, DEFAULT_MAX_PARSED_FILES, ParsedFiles};
use crate::plt::PltStubs;

/// Identity of a file as blazesym caches it: device, inode, size, mtime
/// (seconds and nanoseconds). Paths are not identities: `/proc/self/fd/N`
/// names another file once N is closed and reused.
type FileIdentity = (u64, u64, u64, i64, i64);

/// Wraps blazesym's symbolizer, which caches parsed files by identity
/// (device, inode, size, mtime), so each ELF/DWARF is parsed once; and
/// names PLT stubs, whose table is likewise read once per file, as is the
/// check of its compressed sections.
pub(crate) struct ElfSymbolizer {
    inner: bz::Symbolizer,
    checks: HashMap<FileIdentity, FileChecks>,
    /// Symbols or not, build-id, debug link, segments: read once per file.
    facts: HashMap<FileIdentity, Option<ElfFacts>>,
    pub debug_files: DebugFiles,
    /// Every (file, offset) symbolized, with the module it was named after:
    /// the processes of one binary look each of its addresses up once.
    remembered: HashMap<(FileIdentity, u64), (Box<str>, Symbolized)>,
    /// Offsets the processes' calls looked up.
    looked_up: u64,
    /// Offsets not answered from `remembered`: read from their files.
    read_from_files: u64,
    /// The files blazesym holds parsed, least recently used evicted.
    pub parsed: ParsedFiles,
}

/// What is read of a file before blazesym sees it.
#[derive(Default)]
struct FileChecks {
    plt: PltStubs,
    oversized: Oversized,
}

/// How many file offsets were looked up, and how many of those were
/// answered from what an earlier lookup (of any process) found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    pub looked_up: u64,
    pub remembered: u64,
    /// Offsets read from their files (by lookups, or ahead of them).
    pub read_from_files: u64,
}

/// Results kept at most; past it the memory starts over (a bound, not an
/// LRU). A few hundred bytes each (names, files): about 40 MiB at most. A
/// system-wide recording with compilers running meets millions of distinct
/// addresses; the processes of one binary share most of theirs.
const MAX_REMEMBERED: usize = 1 << 17;

impl std::fmt::Debug for ElfSymbolizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElfSymbolizer").finish_non_exhaustive()
    }
}

fn new_inner() -> bz::Symbolizer {
    bz::Symbolizer::builder().enable_code_info(true).enable_inlined_fns(true).enable_demangling(true).build()
}

/// Outcome of one blazesym pass: per-offset results, or a whole-file failure.
type Pass = Result<Vec<Option<Symbolized>>, UnresolvedReason>;

impl ElfSymbolizer {
    pub fn new() -> Self {
        Self {
            inner: new_inner(),
            checks: HashMap::new(),
            facts: HashMap::new(),
            debug_files: DebugFiles::default(),
            remembered: HashMap::new(),
            looked_up: 0,
            read_from_files: 0,
            parsed: ParsedFiles::new(DEFAULT_MAX_PARSED_BYTES, DEFAULT_MAX_PARSED_FILES, DEFAULT_MAX_HEAP_BYTES),
        }
    }

    /// Drops what blazesym holds of the file at `path` (its descriptor is
    /// about to be closed, and its number may name another file next).
    pub fn forget_file(&mut self, path: &Path) {
        self.parsed.forget(path);
        let _ = self.inner.evict(&bz::evict::Elf::new(path).into());
    }

    /// Evicts parsed files, least recently used first and never `keep`,
    /// while the heap in use is above its bound; then hands the freed pages
    /// back.
    pub fn evict_for_heap(&mut self, keep: Option<&Path>) {
        let mut evicted = false;
        while let Some(oldest) = self.parsed.next_for_heap(keep, heap::in_use()) {
            let _ = self.inner.evict(&bz::evict::Elf::new(oldest).into());
            evicted = true;
        }
        if evicted {
            heap::give_back();
        }
    }

    /// Drops every parsed file and remembered result (see
    /// `Symbolizer::release_parsed_files`).
    pub fn release(&mut self) {
        self.inner = new_inner();
        self.remembered = HashMap::new();
        self.checks = HashMap::new();
        self.parsed.forget_all();
    }

    /// Symbolizes `offsets` (file offsets, sorted and unique) of the ELF file
    /// at `path`, naming frames after `module`, from memory where an
    /// earlier call (for any process) found them already.
    pub fn symbolize(&mut self, path: &Path, module: &str, offsets: &[u64]) -> Vec<Symbolized> {
        self.looked_up += offsets.len() as u64;
        self.look_up(path, module, offsets)
    }

    /// Looks `offsets` of the file at `path` up now, so that the
    /// processes' own calls of [`Self::symbolize`] are answered from
    /// memory: one pass over each file for the offsets of every process,
    /// then the file can go (see [`crate::Symbolizer::prefetch_user`]).
    pub fn prefetch(&mut self, path: &Path, module: &str, offsets: &[u64]) {
        self.look_up(path, module, offsets);
    }

    /// How many of `offsets` of the file at `path` are not remembered.
    pub fn not_remembered(&self, path: &Path, module: &str, offsets: &[u64]) -> usize {
        let Some(identity) = identity_of(path) else { return offsets.len() };
        offsets.iter().filter(|&&offset| self.remembered_as(identity, offset, module).is_none()).count()
    }

    /// Makes room to remember `offsets` more results at once (forgetting
    /// the results remembered so far if need be); false if that many would
    /// not fit even then.
    pub fn make_room(&mut self, offsets: usize) -> bool {
        if offsets > MAX_REMEMBERED / 2 {
            return false;
        }
        if self.remembered.len() + offsets > MAX_REMEMBERED {
            self.remembered.clear();
        }
        true
    }

    /// How many lookups there were, and how many were answered from memory.
    pub fn lookup_stats(&self) -> LookupStats {
        LookupStats {
            looked_up: self.looked_up,
            remembered: self.looked_up.saturating_sub(self.read_from_files),
            read_from_files: self.read_from_files,
        }
    }

    /// What an earlier lookup found at `offset` of the file, if it named
    /// the frames after `module` too.
    fn remembered_as(&self, identity: FileIdentity, offset: u64, module: &str) -> Option<&Symbolized> {
        match self.remembered.get(&(identity, offset)) {
            Some((named, sym)) if &**named == module => Some(sym),
            _ => None,
        }
    }

    fn look_up(&mut self, path: &Path, module: &str, offsets: &[u64]) -> Vec<Symbolized> {
        let Some(identity) = identity_of(path) else {
            self.read_from_files += offsets.len() as u64;
            return self.symbolize_uncached(path, module, offsets);
        };
        let mut results: Vec<Option<Symbolized>> =
            offsets.iter().map(|&offset| self.remembered_as(identity, offset, module).cloned()).collect();
        let missing: Vec<usize> = (0..offsets.len()).filter(|&i| results[i].is_none()).collect();
        self.read_from_files += missing.len() as u64;
        if !missing.is_empty() {
            let wanted: Vec<u64> = missing.iter().map(|&i| offsets[i]).collect();
            let found = self.symbolize_uncached(path, module, &wanted);
            if self.remembered.len() + found.len() > MAX_REMEMBERED {
                self.remembered.clear();
            }
            for (&i, sym) in missing.iter().zip(found) {
                self.remembered.insert((identity, offsets[i]), (module.into(), sym.clone()));
                results[i] = Some(sym);
            }
        }
        results.into_iter().map(|r| r.expect("every offset filled")).collect()
    }

    /// One result per offset: `NAME@plt` for offsets inside PLT stubs (see
    /// [`crate::plt`]), else what the symbol tables and DWARF say.
    fn symbolize_uncached(&mut self, path: &Path, module: &str, offsets: &[u64]) -> Vec<Symbolized> {
        let mut results: Vec<Option<Symbolized>> = vec![None; offsets.len()];
        // (index in `offsets`, offset) of the offsets outside PLT stubs.
        let mut rest: Vec<(usize, u64)> = Vec::with_capacity(offsets.len());
        let Some(checks) = self.checks(path) else {
            return self.symbolize_symbols(path, module, offsets, true);
        };
        if checks.oversized.other {
            let reason = UnresolvedReason::Malformed;
            return offsets.iter().map(|&off| Symbolized::unresolved_in(module, off, reason)).collect();
        }
        let dwarf = !checks.oversized.debug;
        for (i, &offset) in offsets.iter().enumerate() {
            match checks.plt.name_at(offset) {
                Some(name) => results[i] = Some(plt_frame(name, module)),
                None => rest.push((i, offset)),
            }
        }
        if rest.len() == offsets.len() {
            return self.symbolize_stripped_or_not(path, module, offsets, dwarf);
        }
        if !rest.is_empty() {
            let wanted: Vec<u64> = rest.iter().map(|&(_, offset)| offset).collect();
            let symbolized = self.symbolize_stripped_or_not(path, module, &wanted, dwarf);
            for ((i, _), sym) in rest.into_iter().zip(symbolized) {
                results[i] = Some(sym);
            }
        }
        results.into_iter().map(|r| r.expect("every offset filled")).collect()
    }

    /// The PLT stubs and oversized sections of the file at `path`, read on
    /// first need for each file identity; `None` if the file cannot even be
    /// stat'ed.
    fn checks(&mut self, path: &Path) -> Option<&FileChecks> {
        let identity = identity_of(path)?;
        Some(self.checks.entry(identity).or_insert_with(|| read_checks(path)))
    }

    /// A stripped file is symbolized through its debug file, by address;
    /// what that leaves unresolved (or every offset, without a debug file)
    /// goes through the file's own symbols (`.dynsym`). DWARF is read
    /// unless `dwarf` is false.
    fn symbolize_stripped_or_not(
        &mut self,
        path: &Path,
        module: &str,
        offsets: &[u64],
        dwarf: bool,
    ) -> Vec<Symbolized> {
        // The vDSO exports all it has: its dynamic symbols name everything.
        let stripped = module != "[vdso]";
        let Some(facts) = self.facts_of(path).filter(|facts| stripped && !facts.has_symbols) else {
            return self.symbolize_symbols(path, module, offsets, dwarf);
        };
        let Some(debug_file) = self.debug_files.find(&facts, module) else {
            let mut results = self.symbolize_symbols(path, module, offsets, dwarf);
            for (result, &offset) in results.iter_mut().zip(offsets) {
                if !result.is_resolved() {
                    *result = Symbolized::unresolved_in(module, offset, UnresolvedReason::NoDebugInfo);
                }
            }
            return results;
        };
        let addresses: Vec<u64> = offsets.iter().map(|&offset| facts.address_of(offset).unwrap_or(0)).collect();
        // The debug file is outside data too: its sections are checked as the file's.
        let readable = self.checks(&debug_file).is_some_and(|c| c.oversized == Oversized::default());
        let by_address =
            match readable.then(|| self.pass(&debug_file, module, &addresses, Input::VirtOffset(&addresses), true)) {
                Some(Ok(results)) => results,
                _ => vec![None; offsets.len()],
            };
        let mut results: Vec<Option<Symbolized>> =
            by_address.into_iter().map(|r| r.filter(Symbolized::is_resolved)).collect();
        let missing: Vec<usize> = (0..offsets.len()).filter(|&i| results[i].is_none()).collect();
        if !missing.is_empty() {
            let retry: Vec<u64> = missing.iter().map(|&i| offsets[i]).collect();
            for (&i, sym) in missing.iter().zip(self.symbolize_symbols(path, module, &retry, dwarf)) {
                results[i] = Some(sym);
            }
        }
        results.into_iter().map(|r| r.expect("every offset filled")).collect()
    }

    /// What [`ElfFacts`] says of the file at `path`, read once per identity.
    fn facts_of(&mut self, path: &Path) -> Option<ElfFacts> {
        let identity = identity_of(path)?;
        self.facts.entry(identity).or_insert_with(|| ElfFacts::read(path)).clone()
    }

    /// [`Self::symbolize`] through blazesym alone; with its DWARF, unless
    /// `dwarf` is false.
    fn symbolize_symbols(&mut self, path: &Path, module: &str, offsets: &[u64], dwarf: bool) -> Vec<Symbolized> {
        // First with DWARF (names of inlined functions, file:line)...
        let first = match dwarf {
            true => self.pass(path, module, offsets, Input::FileOffset(offsets), true),
            false => Err(UnresolvedReason::Malformed),
        };
        let mut results = match first {
            Ok(results) => results,
            // ...and if the DWARF is what breaks, the symbol tables may still do.
            Err(_) => match self.pass(path, module, offsets, Input::FileOffset(offsets), false) {
                Ok(results) => results,
                Err(reason) => {
                    offsets.iter().map(|&off| Some(Symbolized::unresolved_in(module, off, reason))).collect()
                }
            },
        };
        // Offsets whose DWARF lookup failed individually get the symbol-table pass.
        let failed: Vec<usize> = (0..offsets.len()).filter(|&i| results[i].is_none()).collect();
        if !failed.is_empty() {
            let retry: Vec<u64> = failed.iter().map(|&i| offsets[i]).collect();
            let second = self.pass(path, module, &retry, Input::FileOffset(&retry), false);
            for (k, &i) in failed.iter().enumerate() {
                let again = match &second {
                    Ok(r) => r[k].clone(),
                    Err(_) => None,
                };
                results[i] = Some(
                    again.unwrap_or_else(|| Symbolized::unresolved_in(module, offsets[i], UnresolvedReason::Malformed)),
                );
            }
        }
        results.into_iter().map(|r| r.expect("every offset filled")).collect()
    }

    /// One blazesym call; `None` entries are per-address errors. `offsets`
    /// name unresolved frames; `input` is what blazesym looks up.
    fn pass(&mut self, path: &Path, module: &str, offsets: &[u64], input: Input<&[u64]>, debug_syms: bool) -> Pass {
        let mut src = bz::source::Elf::new(path);
        src.debug_syms = debug_syms;
        let src = Source::Elf(src);
        let inner = &self.inner;
        // blazesym is meant not to panic on bad input; if it does anyway, the
        // file counts as malformed and the (possibly inconsistent) cache is reset.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            inner
                .symbolize(&src, input)
                .map(|syms| syms.iter().zip(offsets).map(|(sym, &off)| convert(sym, module, off)).collect::<Vec<_>>())
        }));
        let bytes = identity_of(path).map_or(0, |identity| identity.2);
        for oldest in self.parsed.used(path, bytes) {
            let _ = self.inner.evict(&bz::evict::Elf::new(oldest).into());
        }
        self.evict_for_heap(Some(path));
        match outcome {
            Ok(Ok(results)) => Ok(results),
            Ok(Err(err)) => Err(match err.kind() {
                ErrorKind::NotFound | ErrorKind::PermissionDenied => UnresolvedReason::FileUnreadable,
                ErrorKind::Unsupported => UnresolvedReason::Unsupported,
                _ => UnresolvedReason::Malformed,
            }),
            Err(_panic) => {
                self.inner = new_inner();
                Err(UnresolvedReason::Malformed)
            }
        }
    }
}

/// The file's identity (`None` if it cannot be stat'ed).
fn identity_of(path: &Path) -> Option<FileIdentity> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()))
}

/// The PLT stubs and oversized sections of the file at `path` (none if it
/// cannot be read: blazesym then says why).
fn read_checks(path: &Path) -> FileChecks {
    let Ok(file) = std::fs::File::open(path) else { return FileChecks::default() };
    // Read, not mapped (a file truncated under a mapping raises SIGBUS);
    // only the headers and the few sections needed are read.
    let cache = ReadCache::new(file);
    FileChecks { plt: PltStubs::from_cache(&cache), oversized: inflation::oversized(&cache) }
}

/// blazesym result to frames; `None` for a per-address error worth a retry.
fn convert(sym: &bz::Symbolized<'_>, module: &str, offset: u64) -> Option<Symbolized> {
    let reason = match sym {
        bz::Symbolized::Sym(sym) => return Some(frames(sym, module)),
        bz::Symbolized::Unknown(Reason::IgnoredError) => return None,
        bz::Symbolized::Unknown(Reason::UnknownAddr | Reason::MissingSyms) => UnresolvedReason::NoSymbol,
        bz::Symbolized::Unknown(Reason::InvalidFileOffset | Reason::Unmapped) => UnresolvedReason::NoMapping,
        bz::Symbolized::Unknown(_) => UnresolvedReason::Unsupported,
    };
    Some(Symbolized::unresolved_in(module, offset, reason))
}

/// A PLT stub: its name, no source location.
fn plt_frame(name: &str, module: &str) -> Symbolized {
    Symbolized {
        frames: vec![Frame {
            function: name.to_owned(),
            module: Some(module.to_owned()),
            file: None,
            line: None,
            inlined: false,
            jit: false,
            resolved: Resolution::Resolved,
        }],
    }
}

fn frames(sym: &bz::Sym<'_>, module: &str) -> Symbolized {
    let frame = |name: &str, code_info: Option<&bz::CodeInfo<'_>>, inlined: bool| Frame {
        function: name.to_owned(),
        module: Some(module.to_owned()),
        file: code_info.map(|c| c.to_path().to_string_lossy().into_owned()),
        line: code_info.and_then(|c| c.line),
        inlined,
        jit: false,
        resolved: Resolution::Resolved,
    };
    // blazesym already orders inlined functions outermost first, each with
    // its own location (the call site of the next one, or the address itself).
    let mut frames = Vec::with_capacity(1 + sym.inlined.len());
    frames.push(frame(&sym.name, sym.code_info.as_deref(), false));
    frames.extend(sym.inlined.iter().map(|f| frame(&f.name, f.code_info.as_ref(), true)));
    Symbolized { frames }
}
