//! The vDSO has no file behind it. Every (64-bit) process of a kernel maps the
//! same image, so a copy of our own, kept as an unlinked temp file, serves for
//! all of them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::maps::{self, Backing};

/// An open, already unlinked copy of this process's vDSO image.
#[derive(Debug)]
pub(crate) struct VdsoImage {
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

        let path = std::env::temp_dir().join(format!("symbolize-vdso-{}", std::process::id()));
        let written = File::create(&path).and_then(|mut f| f.write_all(&image));
        let file = written.and_then(|()| File::open(&path));
        // Unlinked right away: nothing is left behind, the handle keeps it alive.
        let _ = std::fs::remove_file(&path);
        let file = file.ok()?;
        Some(Self { fd_path: Path::new("/proc/self/fd").join(file.as_raw_fd().to_string()), _file: file })
    }
}
