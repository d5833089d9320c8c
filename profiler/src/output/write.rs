//! Atomic output: a file appears whole or not at all (temporary file in the
//! same directory, then rename), and checks that run before recording starts
//! so a bad path fails fast instead of after a 30 s recording.
use std::{
    fs,
    io::{IsTerminal, Write},
    path::{Path, PathBuf},
};

use crate::{
    error::{Error, Result},
    output::Format,
};

#[derive(Debug, Clone)]
pub enum Destination {
    Stdout,
    File(PathBuf),
}

/// Fails early on outputs that would fail at the end: an unwritable
/// directory, or an SVG headed for a terminal.
pub fn check_destination(destination: &Destination, format: Format) -> Result<()> {
    match destination {
        Destination::Stdout => {
            if format == Format::Svg && std::io::stdout().is_terminal() {
                return Err(Error::SvgToTerminal);
            }
            Ok(())
        }
        Destination::File(path) => {
            if path.is_dir() {
                let source = std::io::Error::other("it is a directory");
                return Err(Error::Output { path: path.clone(), source });
            }
            // Probe with the same kind of temporary file the real write uses.
            let probe = temporary_path(path);
            fs::File::create(&probe).map_err(|source| Error::Output { path: path.clone(), source })?;
            let _ = fs::remove_file(&probe);
            Ok(())
        }
    }
}

pub fn write_atomically(destination: &Destination, bytes: &[u8]) -> Result<()> {
    match destination {
        Destination::Stdout => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(bytes)
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::Io(format!("cannot write the profile to stdout: {e}")))
        }
        Destination::File(path) => {
            let temporary = temporary_path(path);
            let result = (|| {
                let mut file = fs::File::create(&temporary)?;
                file.write_all(bytes)?;
                file.sync_all()?;
                fs::rename(&temporary, path)
            })();
            result.map_err(|source| {
                let _ = fs::remove_file(&temporary);
                Error::Output { path: path.clone(), source }
            })
        }
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.flameprof-{}.tmp", std::process::id()))
}
