//! Which files blazesym holds parsed, within a memory bound. blazesym keeps
//! every file it parsed (its mapping, symbol tables, DWARF indexes, and an
//! open descriptor) for as long as its symbolizer lives; a long recording
//! of a changing system would keep them all. Here each file's use is noted,
//! and past the bound the least recently used are named for eviction (the
//! caller evicts them from blazesym; a later lookup parses the file again).
//! Two bounds: files counted by their size (blazesym maps each whole, and
//! holds a descriptor), and the process's heap in use (what blazesym builds
//! of a file, line tables and decompressed DWARF, has little to do with its
//! size: a 150 MiB library with symbols only costs less than a 60 MiB
//! binary with DWARF).
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Bytes of parsed files kept by default: the largest libraries profiled
/// here (rustc's driver, 150 MiB with its DWARF) still fit with the rest.
pub const DEFAULT_MAX_PARSED_BYTES: u64 = 512 << 20;

/// Files kept by default whatever their size: each holds a descriptor.
pub const DEFAULT_MAX_PARSED_FILES: usize = 64;

/// Heap in use (the whole process's) above which parsed files are evicted
/// by default: with the rest of a recording's memory it keeps flameprof
/// near the 128 MiB of RSS it aims at, while a compiler's libraries
/// still fit.
pub const DEFAULT_MAX_HEAP_BYTES: u64 = 64 << 20;

#[derive(Debug)]
pub(crate) struct ParsedFiles {
    /// Per path: when last used (a tick) and its bytes.
    files: HashMap<PathBuf, (u64, u64)>,
    /// Paths by when last used, oldest first.
    by_use: BTreeMap<u64, PathBuf>,
    bytes: u64,
    tick: u64,
    max_bytes: u64,
    max_files: usize,
    max_heap: u64,
    /// Peak of `bytes`, for the summary.
    pub peak_bytes: u64,
    /// Files evicted to stay within the bounds.
    pub evictions: u64,
}

impl ParsedFiles {
    pub fn new(max_bytes: u64, max_files: usize, max_heap: u64) -> Self {
        ParsedFiles {
            files: HashMap::new(),
            by_use: BTreeMap::new(),
            bytes: 0,
            tick: 0,
            max_bytes,
            max_files: max_files.max(1),
            max_heap,
            peak_bytes: 0,
            evictions: 0,
        }
    }

    /// Notes that the file at `path` (of `bytes`) was just used; returns
    /// the least recently used files to evict to stay within the bounds
    /// (never `path` itself).
    pub fn used(&mut self, path: &Path, bytes: u64) -> Vec<PathBuf> {
        self.tick += 1;
        match self.files.get_mut(path) {
            Some((last, _)) => {
                let path = self.by_use.remove(last).expect("every file has its use");
                *last = self.tick;
                self.by_use.insert(self.tick, path);
            }
            None => {
                self.files.insert(path.to_path_buf(), (self.tick, bytes));
                self.by_use.insert(self.tick, path.to_path_buf());
                self.bytes += bytes;
                self.peak_bytes = self.peak_bytes.max(self.bytes);
            }
        }
        let mut evicted = Vec::new();
        while (self.bytes > self.max_bytes || self.files.len() > self.max_files) && self.files.len() > 1 {
            let (_, oldest) = self.by_use.pop_first().expect("more than one file");
            let (_, bytes) = self.files.remove(&oldest).expect("every use has its file");
            self.bytes -= bytes;
            self.evictions += 1;
            evicted.push(oldest);
        }
        evicted
    }

    /// The least recently used file to evict (other than `keep`) while the
    /// heap in use, `heap_in_use` now, is above the bound; the caller
    /// evicts it, measures again and asks again.
    pub fn next_for_heap(&mut self, keep: Option<&Path>, heap_in_use: u64) -> Option<PathBuf> {
        if heap_in_use <= self.max_heap {
            return None;
        }
        let (&tick, _) = self.by_use.iter().find(|(_, path)| Some(path.as_path()) != keep)?;
        let oldest = self.by_use.remove(&tick).expect("found just now");
        let (_, bytes) = self.files.remove(&oldest).expect("every use has its file");
        self.bytes -= bytes;
        self.evictions += 1;
        Some(oldest)
    }

    /// Forgets the file at `path` (closed by its owner: evicted already).
    pub fn forget(&mut self, path: &Path) {
        if let Some((last, bytes)) = self.files.remove(path) {
            self.by_use.remove(&last);
            self.bytes -= bytes;
        }
    }

    /// Forgets every file (all evicted at once by their owner); the peak
    /// and the count of evictions stay.
    pub fn forget_all(&mut self) {
        self.files = HashMap::new();
        self.by_use = BTreeMap::new();
        self.bytes = 0;
    }

    /// Files held now.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn stats(&self) -> ParsedFilesStats {
        ParsedFilesStats { files: self.len(), peak_bytes: self.peak_bytes, evicted: self.evictions }
    }
}

/// What blazesym holds parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParsedFilesStats {
    /// Files held now.
    pub files: usize,
    /// Their bytes (file sizes) at most.
    pub peak_bytes: u64,
    /// Files evicted to stay within the bounds.
    pub evicted: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_files_go_first_past_the_bound() {
        let mut parsed = ParsedFiles::new(100, 10, u64::MAX);
        assert!(parsed.used(Path::new("a"), 40).is_empty());
        assert!(parsed.used(Path::new("b"), 40).is_empty());
        // a is used again: b is now the oldest.
        assert!(parsed.used(Path::new("a"), 40).is_empty());
        assert_eq!(parsed.used(Path::new("c"), 40), vec![PathBuf::from("b")]);
        assert_eq!((parsed.len(), parsed.bytes, parsed.peak_bytes, parsed.evictions), (2, 80, 120, 1));
        // A file larger than the bound alone evicts everything else, not itself.
        assert_eq!(parsed.used(Path::new("huge"), 500), vec![PathBuf::from("a"), PathBuf::from("c")]);
        parsed.forget(Path::new("huge"));
        assert_eq!((parsed.len(), parsed.bytes), (0, 0));
    }

    #[test]
    fn forgetting_all_keeps_the_figures() {
        let mut parsed = ParsedFiles::new(100, 10, u64::MAX);
        parsed.used(Path::new("a"), 40);
        parsed.used(Path::new("b"), 70);
        parsed.forget_all();
        assert_eq!((parsed.len(), parsed.bytes, parsed.peak_bytes, parsed.evictions), (0, 0, 110, 1));
        assert!(parsed.used(Path::new("a"), 40).is_empty());
    }

    #[test]
    fn past_the_heap_bound_the_oldest_files_go_until_the_heap_is_below_it() {
        let mut parsed = ParsedFiles::new(u64::MAX, 10, 100);
        for name in ["a", "b", "c"] {
            assert!(parsed.used(Path::new(name), 1).is_empty());
        }
        // The heap bound is not the file sizes': nothing goes below it.
        assert_eq!(parsed.next_for_heap(None, 100), None);
        // b is kept (in use now) even though it is not the newest.
        assert_eq!(parsed.next_for_heap(Some(Path::new("a")), 150), Some(PathBuf::from("b")));
        assert_eq!(parsed.next_for_heap(Some(Path::new("a")), 120), Some(PathBuf::from("c")));
        assert_eq!(parsed.next_for_heap(Some(Path::new("a")), 110), None);
        assert_eq!(parsed.next_for_heap(None, 110), Some(PathBuf::from("a")));
        assert_eq!((parsed.len(), parsed.bytes, parsed.evictions), (0, 0, 3));
    }

    #[test]
    fn the_count_of_files_is_bounded_too() {
        let mut parsed = ParsedFiles::new(u64::MAX, 2, u64::MAX);
        parsed.used(Path::new("a"), 1);
        parsed.used(Path::new("b"), 1);
        assert_eq!(parsed.used(Path::new("c"), 1), vec![PathBuf::from("a")]);
    }
}
