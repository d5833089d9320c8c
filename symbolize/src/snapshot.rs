//! Per-process snapshots: the memory map plus open handles to the mapped files,
//! so that addresses stay symbolizable after the process exits or its binaries
//! are deleted or replaced.

use std::cell::OnceCell;
use std::collections::HashMap;
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

/// A mapped file kept open for as long as some snapshot refers to it.
#[derive(Debug)]
pub(crate) struct OpenFile {
    /// Held only to keep the inode (and so `fd_path`) alive.
    _file: File,
    /// `/proc/self/fd/N`: reopens this very file even when deleted, and is what
    /// blazesym caches its parsed ELF/DWARF under.
    pub fd_path: PathBuf,
    pub build_id: OnceCell<Option<Vec<u8>>>,
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
}

impl Snapshot {
    pub fn file(&self, entry: &MapEntry) -> Option<&FileState> {
        self.files.get(&(entry.dev, entry.inode))
    }
}

/// Files open across all snapshots: libc is opened once, not once per process.
#[derive(Debug, Default)]
pub(crate) struct FileTable {
    open: HashMap<FileKey, Weak<OpenFile>>,
}

impl FileTable {
    fn get_or_open(&mut self, pid: u32, entry: &MapEntry) -> Result<Rc<OpenFile>, Error> {
        let key = (entry.dev, entry.inode);
        if let Some(file) = self.open.get(&key).and_then(Weak::upgrade) {
            return Ok(file);
        }
        let file = Rc::new(open_mapped(pid, entry)?);
        self.open.insert(key, Rc::downgrade(&file));
        Ok(file)
    }

    /// Forgets files no snapshot uses any more (their handles are already closed).
    pub fn sweep(&mut self) {
        self.open.retain(|_, f| f.strong_count() > 0);
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
            if meta.ino() != entry.inode {
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
        _file: file,
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
    Ok(Snapshot { entries, files })
}
