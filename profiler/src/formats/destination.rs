//! Writing an output file without ever harming what `-o` names.
//!
//! A regular file (or a new one) is replaced atomically: a temporary file with
//! an unpredictable name is created exclusively (never through a symlink) in
//! the same directory, written, synced and renamed over the destination, so a
//! reader sees the whole old file or the whole new one. Anything else (a
//! device such as /dev/null, a FIFO, a socket, /dev/stdout or /proc/self/fd/N)
//! is written in place and never renamed over. A symlink is followed: its
//! target is what gets written (atomically when it is a regular file), and the
//! link stays.
use std::{
    fs::{self, File, Metadata, OpenOptions},
    io::{self, IsTerminal, Write},
    os::{
        fd::{FromRawFd, OwnedFd, RawFd},
        unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    },
    path::{Path, PathBuf},
};

use crate::{
    error::{Error, Result},
    formats::Format,
};

#[derive(Debug, Clone)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// What a destination path turns out to be once its symlinks are followed.
#[derive(Debug)]
enum Target {
    /// One of flameprof's own open descriptors (`/dev/stdout`, `/proc/self/fd/N`):
    /// written where the descriptor points, as a shell would.
    Descriptor(RawFd),
    /// Not a regular file (device, FIFO, socket, another process's descriptor):
    /// opened and written in place.
    InPlace(PathBuf),
    /// A regular file, or none yet: replaced atomically. `existing` keeps the
    /// replaced file's metadata so the new file gets its mode and owner.
    Replace { path: PathBuf, existing: Option<Metadata> },
}

/// Symlink hops followed before giving up, as the kernel's own limit.
const MAX_LINK_HOPS: usize = 40;

/// Fails early on outputs that would fail at the end: an unwritable
/// directory, a directory, a closed descriptor, or an SVG headed for a terminal.
pub fn check_destination(destination: &Destination, format: Format) -> Result<()> {
    let path = match destination {
        Destination::Stdout => {
            if format == Format::Svg && io::stdout().is_terminal() {
                return Err(Error::SvgToTerminal);
            }
            return Ok(());
        }
        Destination::File(path) => path,
    };
    let output_error = |source| Error::Output { path: path.clone(), source };
    match resolve(path).map_err(output_error)? {
        Target::Descriptor(fd) => duplicate(fd).map(drop).map_err(output_error),
        Target::InPlace(target) => {
            let metadata = fs::metadata(&target).map_err(output_error)?;
            if metadata.is_dir() {
                return Err(output_error(io::Error::other("it is a directory")));
            }
            // Opening a FIFO for writing waits for a reader: leave that to the
            // real write. Anything else is opened now and closed again.
            if metadata.file_type().is_fifo() {
                return Ok(());
            }
            OpenOptions::new().write(true).open(&target).map(drop).map_err(output_error)
        }
        // A probe of the same kind the real write uses; it removes itself.
        Target::Replace { path: target, existing } => {
            temporary_beside(&target, existing.as_ref()).map(drop).map_err(output_error)
        }
    }
}

/// Writes `bytes` to the destination: whole or (for regular files) not at all.
pub fn write_atomically(destination: &Destination, bytes: &[u8]) -> Result<()> {
    let path = match destination {
        Destination::Stdout => {
            let mut stdout = io::stdout().lock();
            return stdout.write_all(bytes).and_then(|_| stdout.flush()).map_err(Error::Stdout);
        }
        Destination::File(path) => path,
    };
    write_path(path, bytes).map_err(|source| Error::Output { path: path.clone(), source })
}

fn write_path(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match resolve(path)? {
        Target::Descriptor(fd) => {
            let mut file = File::from(duplicate(fd)?);
            file.write_all(bytes)?;
            file.flush()
        }
        Target::InPlace(target) => {
            if fs::metadata(&target)?.is_dir() {
                return Err(io::Error::other("it is a directory"));
            }
            // No O_CREAT: the node exists, and creating is for Replace only.
            // O_TRUNC is ignored by devices and FIFOs.
            let mut file = OpenOptions::new().write(true).truncate(true).open(&target)?;
            file.write_all(bytes)?;
            file.flush()
        }
        Target::Replace { path: target, existing } => {
            let mut temporary = temporary_beside(&target, existing.as_ref())?;
            temporary.write_all(bytes)?;
            temporary.as_file().sync_all()?;
            // On failure the temporary file is removed when dropped.
            temporary.persist(&target).map_err(|error| error.error)?;
            // The rename is durable once the directory is synced; a failure
            // here leaves a complete file, so it is not an error.
            if let Some(directory) = target.parent().and_then(|d| File::open(directory_or_dot(d)).ok()) {
                let _ = directory.sync_all();
            }
            Ok(())
        }
    }
}

/// Follows symlinks hop by hop until a descriptor of ours, a node that is not
/// a regular file, a regular file, or a name that does not exist yet.
fn resolve(path: &Path) -> io::Result<Target> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        if let Some(fd) = own_descriptor(&current) {
            return Ok(Target::Descriptor(fd));
        }
        let metadata = match fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Target::Replace { path: current, existing: None });
            }
            Err(error) => return Err(error),
        };
        if metadata.file_type().is_symlink() {
            // /proc's links to descriptors name things that are not paths
            // (`pipe:[123]`): the kernel opens the object itself through them.
            if current.starts_with("/proc") {
                return Ok(Target::InPlace(current));
            }
            let link = fs::read_link(&current)?;
            current = match current.parent() {
                Some(directory) if link.is_relative() => directory.join(link),
                _ => link,
            };
            continue;
        }
        return Ok(if metadata.is_file() {
            Target::Replace { path: current, existing: Some(metadata) }
        } else {
            Target::InPlace(current)
        });
    }
    Err(io::Error::from_raw_os_error(libc::ELOOP))
}

/// The descriptor number when `path` names one of this process's own open
/// descriptors: /dev/stdin|stdout|stderr, /dev/fd/N, /proc/self/fd/N,
/// /proc/thread-self/fd/N or /proc/<our pid>/fd/N.
fn own_descriptor(path: &Path) -> Option<RawFd> {
    let text = path.to_str()?;
    match text {
        "/dev/stdin" => return Some(0),
        "/dev/stdout" => return Some(1),
        "/dev/stderr" => return Some(2),
        _ => {}
    }
    let own_pid = format!("/proc/{}/fd/", std::process::id());
    ["/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/", own_pid.as_str()]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
        .and_then(|number| number.parse().ok())
}

/// A new descriptor for `fd` (so writing and closing never touch the original).
fn duplicate(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC only reads its integer arguments; a closed or
    // invalid `fd` makes it fail with EBADF, which is returned as an error.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` was just returned by fcntl and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// A temporary file in the destination's directory: random name, created with
/// O_EXCL (so never through a symlink someone planted), mode 0666 less the
/// umask like any new file, or the replaced file's own mode and owner.
fn temporary_beside(target: &Path, existing: Option<&Metadata>) -> io::Result<tempfile::NamedTempFile> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    // Keep the temporary name within NAME_MAX whatever the destination's length.
    let short: String = name.chars().take(64).collect();
    let directory = directory_or_dot(target.parent().unwrap_or(Path::new(".")));
    let temporary = tempfile::Builder::new()
        .prefix(&format!(".{short}."))
        .suffix(".flameprof.tmp")
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(directory)?;
    if let Some(existing) = existing {
        let file = temporary.as_file();
        // Ownership first: chown clears set-id bits that the mode then restores.
        if (existing.uid(), existing.gid()) != current_owner(file)? {
            // Only root may give a file away; anyone else keeps it as theirs,
            // as a write through a normal create would not, but never fails.
            let _ = std::os::unix::fs::fchown(file, Some(existing.uid()), Some(existing.gid()));
        }
        file.set_permissions(fs::Permissions::from_mode(existing.mode() & 0o7777))?;
    }
    Ok(temporary)
}

fn current_owner(file: &File) -> io::Result<(u32, u32)> {
    let metadata = file.metadata()?;
    Ok((metadata.uid(), metadata.gid()))
}

/// `Path::parent` of a bare file name is "", which no call accepts.
fn directory_or_dot(directory: &Path) -> &Path {
    if directory.as_os_str().is_empty() { Path::new(".") } else { directory }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_descriptors_are_recognised() {
        assert_eq!(own_descriptor(Path::new("/dev/stdout")), Some(1));
        assert_eq!(own_descriptor(Path::new("/proc/self/fd/7")), Some(7));
        assert_eq!(own_descriptor(Path::new("/dev/fd/3")), Some(3));
        let own = format!("/proc/{}/fd/5", std::process::id());
        assert_eq!(own_descriptor(Path::new(&own)), Some(5));
        assert_eq!(own_descriptor(Path::new("/proc/1/fd/5")), None);
        assert_eq!(own_descriptor(Path::new("/tmp/fd/5")), None);
    }

    #[test]
    fn a_symlink_chain_resolves_to_its_final_regular_file() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("real.svg");
        fs::write(&file, "old").unwrap();
        let first = directory.path().join("first");
        let second = directory.path().join("second");
        std::os::unix::fs::symlink("real.svg", &second).unwrap();
        std::os::unix::fs::symlink(&second, &first).unwrap();
        match resolve(&first).unwrap() {
            Target::Replace { path, existing } => {
                assert_eq!(path, file);
                assert!(existing.is_some());
            }
            other => panic!("expected a regular file, got {other:?}"),
        }
        write_path(&first, b"new").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        assert!(fs::symlink_metadata(&first).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_symlink_loop_is_an_error_not_a_hang() {
        let directory = tempfile::tempdir().unwrap();
        let a = directory.path().join("a");
        let b = directory.path().join("b");
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        assert_eq!(resolve(&a).unwrap_err().raw_os_error(), Some(libc::ELOOP));
    }
}
