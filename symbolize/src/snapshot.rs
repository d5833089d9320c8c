//! Per-process snapshots: the memory map plus open handles to the mapped files,
//! so that addresses stay symbolizable after the process exits or its binaries
//! are deleted or replaced.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};

use crate::error::Error;
use crate::frame::UnresolvedReason;
use crate::maps::{self, Backing, MapEntry};

/// Identity of a mapped file as given by the maps file: (device, inode).
pub(crate) type FileKey = (u64, u64);

/// Open handles kept at most across all snapshots: with blazesym's own
/// (`parsed_files::DEFAULT_MAX_PARSED_FILES`) and flameprof's BPF maps and
/// events, well under the default `ulimit -n` of 1024 whatever the
/// number of files mapped.
pub const MAX_OPEN_HANDLES: usize = 128;

/// A mapped file, known for as long as some snapshot refers to it. Its
/// handle may be closed to bound the open descriptors: it is then read
/// through its path, as long as that still names the very file.
#[derive(Debug)]
pub(crate) struct OpenFile {
    /// Keeps the inode (and so `fd_path`) alive; `None` once closed.
    handle: RefCell<Option<File>>,
    /// `/proc/self/fd/N`: reopens this very file even when deleted, and is what
    /// blazesym caches its parsed ELF/DWARF under (while the handle is open).
    fd_path: PathBuf,
    /// The path it was mapped from, and its inode.
    mapped_path: PathBuf,
    inode: u64,
    pub build_id: OnceCell<Option<Vec<u8>>>,
}

impl OpenFile {
    /// Where to read the file: through its handle while open, else through
    /// the path it was mapped from if that still names it; `None` when
    /// neither can (a deleted or replaced file whose handle was closed).
    pub fn read_path(&self) -> Option<PathBuf> {
        if self.handle.borrow().is_some() {
            return Some(self.fd_path.clone());
        }
        let same = std::fs::metadata(&self.mapped_path).is_ok_and(|meta| meta.ino() == self.inode);
        same.then(|| self.mapped_path.clone())
    }

    /// Closes the handle; returns the path it was read through (which may
    /// name another file from now on).
    fn close(&self) -> Option<PathBuf> {
        self.handle.borrow_mut().take().map(|_| self.fd_path.clone())
    }
}

/// Outcome of opening one mapped file.
#[derive(Clone, Debug)]
pub(crate) enum FileState {
    Open(Rc<OpenFile>),
    Failed(UnresolvedReason),
}

/// What is kept about one process.
#[derive(Clone, Debug, Default)]
pub(crate) struct Snapshot {
    /// Sorted by start, non-overlapping.
    pub entries: Vec<MapEntry>,
    /// One state per distinct executable file mapping.
    pub files: HashMap<FileKey, FileState>,
    /// What the kernel reported as it happened, not /proc: never re-read
    /// from /proc (the pid may run another program by then).
    pub sealed: bool,
    /// Reported mappings a later one replaced (code loaded where other
    /// code was), oldest first, at most MAX_REPLACED: what samples taken
    /// before the replacement resolve against (see [`view_before`]).
    pub replaced: Vec<MapEntry>,
}

/// Replaced mappings kept per process; past this the oldest go (a process
/// that loads and unloads code in a loop), and its oldest samples resolve
/// against what came later.
const MAX_REPLACED: usize = 4096;

impl Snapshot {
    pub fn file(&self, entry: &MapEntry) -> Option<&FileState> {
        self.files.get(&(entry.dev, entry.inode))
    }
}

/// Files open across all snapshots: libc is opened once, not once per process.
#[derive(Debug)]
pub(crate) struct FileTable {
    /// Handles kept open at most (MAX_OPEN_HANDLES; tests lower it).
    max_handles: usize,
    /// Each file with the path it is read through (`OpenFile::fd_path`).
    open: HashMap<FileKey, (Weak<OpenFile>, PathBuf)>,
    /// Files with an open handle by when a snapshot last took them, oldest
    /// first; and the reverse.
    handles: BTreeMap<u64, FileKey>,
    last_taken: HashMap<FileKey, u64>,
    tick: u64,
    /// Paths of handles closed since the last `take_closed`.
    closed: Vec<PathBuf>,
    /// Handles closed to stay within MAX_OPEN_HANDLES.
    pub handles_closed: u64,
    /// Files opened when the kernel reported their mapping, while the
    /// process still lived, kept for the snapshot made later (their
    /// handles count against MAX_OPEN_HANDLES like any other).
    held: HashMap<FileKey, Rc<OpenFile>>,
}

impl Default for FileTable {
    fn default() -> Self {
        FileTable {
            max_handles: MAX_OPEN_HANDLES,
            open: HashMap::new(),
            handles: BTreeMap::new(),
            last_taken: HashMap::new(),
            tick: 0,
            closed: Vec::new(),
            handles_closed: 0,
            held: HashMap::new(),
        }
    }
}

/// Files held open for later snapshots at most (the rest are opened by
/// path when the snapshot is made).
const MAX_HELD_FILES: usize = 4096;

impl FileTable {
    fn get_or_open(&mut self, pid: u32, entry: &MapEntry) -> Result<Rc<OpenFile>, Error> {
        let key = (entry.dev, entry.inode);
        if let Some(file) = self.open.get(&key).and_then(|(file, _)| file.upgrade()) {
            self.taken(key);
            return Ok(file);
        }
        let file = Rc::new(open_mapped(pid, entry)?);
        self.open.insert(key, (Rc::downgrade(&file), file.fd_path.clone()));
        self.taken(key);
        self.close_oldest();
        Ok(file)
    }

    /// Opens the file of a mapping just made (through its process's
    /// map_files while it lives) and keeps it.
    pub fn hold(&mut self, pid: u32, entry: &MapEntry) {
        let key = (entry.dev, entry.inode);
        if self.held.contains_key(&key) || self.held.len() >= MAX_HELD_FILES {
            return;
        }
        if let Ok(file) = self.get_or_open(pid, entry) {
            self.held.insert(key, file);
        }
    }

    /// Notes that a snapshot took the file of `key` now (if its handle is open).
    fn taken(&mut self, key: FileKey) {
        self.tick += 1;
        if let Some(last) = self.last_taken.get_mut(&key) {
            self.handles.remove(last);
            *last = self.tick;
        } else if self.open.get(&key).and_then(|(file, _)| file.upgrade()).is_some_and(|f| f.handle.borrow().is_some())
        {
            self.last_taken.insert(key, self.tick);
        } else {
            return;
        }
        self.handles.insert(self.tick, key);
    }

    /// Past `max_handles`, closes the handles taken least recently.
    fn close_oldest(&mut self) {
        while self.handles.len() > self.max_handles {
            let (_, key) = self.handles.pop_first().expect("over the bound");
            self.last_taken.remove(&key);
            if let Some(path) = self.open.get(&key).and_then(|(file, _)| file.upgrade()).and_then(|file| file.close()) {
                self.closed.push(path);
                self.handles_closed += 1;
            }
        }
    }

    /// Paths that named a handle closed since the last call.
    pub fn take_closed(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.closed)
    }

    /// Forgets files no snapshot uses any more (their handles are already
    /// closed); returns the paths they were read through, which name
    /// other files from now on.
    pub fn sweep(&mut self) -> Vec<PathBuf> {
        let mut closed = std::mem::take(&mut self.closed);
        let mut gone = Vec::new();
        self.open.retain(|key, (file, path)| {
            let open = file.strong_count() > 0;
            if !open {
                closed.push(std::mem::take(path));
                gone.push(*key);
            }
            open
        });
        for key in gone {
            if let Some(last) = self.last_taken.remove(&key) {
                self.handles.remove(&last);
            }
        }
        closed
    }
}

/// Opens a mapped file through `map_files` (works for deleted files, as root),
/// falling back to the path when that is not possible.
fn open_mapped(pid: u32, entry: &MapEntry) -> Result<OpenFile, Error> {
    let Backing::File { path, deleted } = &entry.backing else {
        unreachable!("only file mappings are opened");
    };
    let via_map_files = crate::memory_view(pid).join(format!("map_files/{:x}-{:x}", entry.start, entry.end));
    let file = match File::open(&via_map_files) {
        Ok(file) => file,
        // A deleted file's path may now name something else (or nothing).
        Err(err) if *deleted => {
            return Err(Error::OpenFile { path: via_map_files, source: err });
        }
        Err(_) => {
            let file = File::open(path).map_err(|source| Error::OpenFile { path: PathBuf::from(path), source })?;
            // The binary may have been replaced since it was mapped.
            let meta = file.metadata().map_err(|source| Error::OpenFile { path: PathBuf::from(path), source })?;
            // Inode 0: a mapping reported with a build-id instead (not checked here).
            if entry.inode != 0 && meta.ino() != entry.inode {
                return Err(Error::OpenFile {
                    path: PathBuf::from(path),
                    source: io::Error::other("file was replaced after it was mapped"),
                });
            }
            file
        }
    };
    Ok(OpenFile {
        fd_path: Path::new("/proc/self/fd").join(file.as_raw_fd().to_string()),
        handle: RefCell::new(Some(file)),
        mapped_path: PathBuf::from(path),
        inode: entry.inode,
        build_id: OnceCell::new(),
    })
}

/// Reads `/proc/PID/maps` and opens the executable files it maps. With
/// `previous`, handles already open are reused and old mappings that do not
/// overlap new ones are kept (so addresses of since-unmapped code still resolve).
pub(crate) fn take(pid: u32, table: &mut FileTable, previous: Option<&Snapshot>) -> Result<Snapshot, Error> {
    let text = std::fs::read_to_string(crate::memory_view(pid).join("maps")).map_err(|source| {
        // ENOENT: no such pid; ESRCH: it died while we were reading.
        if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(3) {
            Error::ProcessGone { pid, source }
        } else {
            Error::ReadMaps { pid, source }
        }
    })?;
    let mut entries = maps::parse(pid, &text)?;
    let mut files = HashMap::new();
    if let Some(previous) = previous {
        let kept: Vec<MapEntry> = previous
            .entries
            .iter()
            .filter(|old| {
                // `entries` is sorted and non-overlapping: only the first new
                // entry ending after `old.start` can overlap it.
                let i = entries.partition_point(|new| new.end <= old.start);
                entries.get(i).is_none_or(|new| new.start >= old.end)
            })
            .cloned()
            .collect();
        entries.extend(kept);
        entries.sort_by_key(|e| e.start);
        files = previous.files.clone();
    }
    for entry in entries.iter().filter(|e| e.executable) {
        if !matches!(entry.backing, Backing::File { .. }) {
            continue;
        }
        let key = (entry.dev, entry.inode);
        // Retry files that failed before: they may be readable now.
        if matches!(files.get(&key), Some(FileState::Open(_))) {
            continue;
        }
        let state = match table.get_or_open(pid, entry) {
            Ok(file) => FileState::Open(file),
            Err(_) => FileState::Failed(UnresolvedReason::FileUnreadable),
        };
        files.insert(key, state);
    }
    let replaced = previous.map(|previous| previous.replaced.clone()).unwrap_or_default();
    Ok(Snapshot { entries, files, sealed: false, replaced })
}

/// Adds a mapping the kernel reported to a snapshot: it replaces what it
/// overlaps (a mapping made over older ones), and its file is opened.
pub(crate) fn add_reported(snapshot: &mut Snapshot, pid: u32, table: &mut FileTable, entry: MapEntry) {
    let overlapped = |old: &MapEntry| old.end > entry.start && old.start < entry.end;
    snapshot.replaced.extend(snapshot.entries.iter().filter(|old| overlapped(old)).cloned());
    let excess = snapshot.replaced.len().saturating_sub(MAX_REPLACED);
    snapshot.replaced.drain(..excess);
    snapshot.entries.retain(|old| !overlapped(old));
    if entry.executable && matches!(entry.backing, Backing::File { .. }) {
        let key = (entry.dev, entry.inode);
        if !matches!(snapshot.files.get(&key), Some(FileState::Open(_))) {
            let state = match table.get_or_open(pid, &entry) {
                Ok(file) => FileState::Open(file),
                Err(_) => FileState::Failed(UnresolvedReason::FileUnreadable),
            };
            snapshot.files.insert(key, state);
        }
    }
    let at = snapshot.entries.partition_point(|old| old.start < entry.start);
    snapshot.entries.insert(at, entry);
}

/// The mappings as they were before `before_ns`: those made before it,
/// each replacing what it overlaps in the order they were made. The files
/// are the snapshot's own (a replaced mapping's file stays open with it).
pub(crate) fn view_before(snapshot: &Snapshot, before_ns: u64) -> Snapshot {
    let mut made: Vec<&MapEntry> =
        snapshot.replaced.iter().chain(&snapshot.entries).filter(|entry| entry.mapped_ns < before_ns).collect();
    // Stable: /proc's entries (0) keep their order, before any reported one.
    made.sort_by_key(|entry| entry.mapped_ns);
    let mut entries: Vec<MapEntry> = Vec::with_capacity(made.len());
    for entry in made {
        entries.retain(|old| old.end <= entry.start || old.start >= entry.end);
        let at = entries.partition_point(|old| old.start < entry.start);
        entries.insert(at, entry.clone());
    }
    Snapshot { entries, files: snapshot.files.clone(), sealed: true, replaced: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the bound, the handles taken least recently are closed, and
    /// their files are read through the paths they were mapped from.
    #[test]
    fn handles_past_the_bound_are_closed_and_files_read_by_path() {
        let mut table = FileTable { max_handles: 2, ..FileTable::default() };
        let snap = take(std::process::id(), &mut table, None).expect("our own maps");
        let files: Vec<&Rc<OpenFile>> = snap
            .files
            .values()
            .filter_map(|state| match state {
                FileState::Open(file) => Some(file),
                FileState::Failed(_) => None,
            })
            .collect();
        assert!(files.len() > 2, "this test maps {} files; it needs more than 2", files.len());
        let open = files.iter().filter(|file| file.handle.borrow().is_some()).count();
        assert_eq!(open, 2);
        assert_eq!(table.handles_closed as usize, files.len() - 2);
        assert_eq!(table.take_closed().len(), files.len() - 2);
        for file in files {
            let path = file.read_path().expect("an undeleted file is read through its path");
            let inode = std::fs::metadata(&path).expect("readable").ino();
            assert_eq!(inode, file.inode, "{} names another file", path.display());
        }
    }

    fn anonymous(start: u64, end: u64) -> MapEntry {
        MapEntry {
            start,
            end,
            executable: true,
            offset: 0,
            dev: 0,
            inode: 0,
            backing: Backing::Anonymous,
            mapped_ns: 0,
        }
    }

    #[test]
    fn a_reported_mapping_replaces_what_it_overlaps_and_keeps_the_order() {
        let mut snapshot = Snapshot::default();
        let mut table = FileTable::default();
        for (start, end) in [(0x5000, 0x6000), (0x1000, 0x3000), (0x8000, 0x9000)] {
            add_reported(&mut snapshot, 1, &mut table, anonymous(start, end));
        }
        // Mapped over the first two: they are gone.
        add_reported(&mut snapshot, 1, &mut table, anonymous(0x2000, 0x5800));
        let ranges: Vec<(u64, u64)> = snapshot.entries.iter().map(|e| (e.start, e.end)).collect();
        assert_eq!(ranges, [(0x2000, 0x5800), (0x8000, 0x9000)]);
        // A file that cannot be opened is remembered as unreadable.
        let missing = MapEntry {
            dev: 1,
            inode: 2,
            backing: Backing::File { path: "/nonexistent/flameprof-test".into(), deleted: false },
            ..anonymous(0xa000, 0xb000)
        };
        add_reported(&mut snapshot, u32::MAX, &mut table, missing);
        assert!(matches!(snapshot.files.get(&(1, 2)), Some(FileState::Failed(UnresolvedReason::FileUnreadable))));
    }

    /// dlopen A, dlclose it, dlopen B where A was, then A again: the view
    /// before each later load holds what was mapped there until then.
    #[test]
    fn a_view_before_a_time_holds_what_was_mapped_there_then() {
        let mut snapshot = Snapshot::default();
        let mut table = FileTable::default();
        let at = |start, end, inode, mapped_ns| MapEntry { inode, mapped_ns, ..anonymous(start, end) };
        add_reported(&mut snapshot, 1, &mut table, at(0x1000, 0x2000, 1, 10));
        add_reported(&mut snapshot, 1, &mut table, at(0x5000, 0x6000, 2, 20));
        add_reported(&mut snapshot, 1, &mut table, at(0x4800, 0x5800, 3, 30));
        add_reported(&mut snapshot, 1, &mut table, at(0x5000, 0x6000, 2, 40));
        let inode_at = |view: &Snapshot, addr| maps::find(&view.entries, addr).map(|i| view.entries[i].inode);
        assert_eq!(inode_at(&view_before(&snapshot, 25), 0x5100), Some(2));
        assert_eq!(inode_at(&view_before(&snapshot, 35), 0x5100), Some(3));
        assert_eq!(inode_at(&view_before(&snapshot, 35), 0x5900), None);
        assert_eq!(inode_at(&view_before(&snapshot, 45), 0x5900), Some(2));
        assert_eq!(inode_at(&view_before(&snapshot, 5), 0x1100), None);
        assert_eq!(inode_at(&view_before(&snapshot, 45), 0x1100), Some(1));
        // The latest view is the snapshot itself.
        assert_eq!(view_before(&snapshot, u64::MAX).entries, snapshot.entries);
    }
}
