//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Errors returned by the fallible entry points of this crate.
///
/// Per-address failures are not errors: they come back as unresolved frames
/// (see [`crate::UnresolvedReason`]) so that one bad binary never spoils a batch.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `/proc/PID/maps` is gone: the process exited (or never existed).
    #[error("process {pid} is gone")]
    ProcessGone {
        pid: u32,
        #[source]
        source: io::Error,
    },
    /// `/proc/PID/maps` exists but could not be read.
    #[error("cannot read /proc/{pid}/maps")]
    ReadMaps {
        pid: u32,
        #[source]
        source: io::Error,
    },
    /// A line of `/proc/PID/maps` did not have the expected layout.
    #[error("malformed line {line_no} of /proc/{pid}/maps: {line:?}")]
    ParseMaps { pid: u32, line_no: usize, line: String },
    /// A mapped file could be opened neither through `map_files` nor by path.
    #[error("cannot open mapped file {path}")]
    OpenFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The kernel symbol table could not be read.
    #[error("cannot read kernel symbols from {path}")]
    ReadKallsyms {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// kallsyms is readable but every address is zero (`kptr_restrict`, not root).
    #[error("kernel symbol addresses are hidden (kptr_restrict); run as root")]
    KallsymsHidden,
    /// blazesym failed on a whole file (unreadable, malformed ELF/DWARF...).
    #[error("cannot symbolize {path}")]
    Symbolize {
        path: PathBuf,
        #[source]
        source: blazesym::Error,
    },
    /// A file's call-frame information (for unwinding) is missing or malformed.
    #[error("no usable call-frame information in {path}: {detail}")]
    CallFrameInfo { path: PathBuf, detail: String },
}
