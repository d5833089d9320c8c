//! The vDSO has no file behind it. Every (64-bit) process of a kernel maps the
//! same image, so a copy of our own, kept as an unlinked temp file, serves for
//! all of them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::maps::{self, Backing};

/// An open, unnamed copy of this process's vDSO image, readable as a file
/// through `fd_path` while this lives.
#[derive(Debug)]
pub struct VdsoImage {
    _file: File,
    pub fd_path: PathBuf,
}

impl VdsoImage {
    /// `None` when there is no vDSO or it cannot be copied.
    pub fn copy_own() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/maps").ok()?;
        let entries = maps::parse(std::process::id(), &text).ok()?;
        let vdso = entries.iter().find(|e| matches!(&e.backing, Backing::Special(name) if name == "[vdso]"))?;
        // Reading through /proc/self/mem needs no unsafe pointer access.
        let mut mem = File::open("/proc/self/mem").ok()?;
        mem.seek(SeekFrom::Start(vdso.start)).ok()?;
        let mut image = vec![0; (vdso.end - vdso.start) as usize];
        mem.read_exact(&mut image).ok()?;

        // A file without a name (O_TMPFILE, or created and unlinked at once):
        // no predictable path in a shared directory for anyone to plant a
        // link at, and nothing left behind.
        let mut file = tempfile::tempfile().ok()?;
        file.write_all(&image).ok()?;
        Some(Self { fd_path: Path::new("/proc/self/fd").join(file.as_raw_fd().to_string()), _file: file })
    }
}
