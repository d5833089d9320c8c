//! Reading a profile file back into a [`Profile`]: folded text (flameprof's,
//! or any tool's `frame;frame;... COUNT` lines) or pprof protobuf, gzipped or
//! not. Every malformed input is one line of error, never a panic.
//!
//! Memory: a file (decompressed) of more than [`MAX_INPUT_BYTES`] is refused
//! as soon as that is known, before it is parsed; what is built from it
//! stays within `pprof::budget`'s bounds (folded text: `MAX_BUILT`).
use std::{fs::File, io::Read, path::Path};

use flate2::read::GzDecoder;

use crate::{
    error::{Error, Result},
    formats::{folded::parse_folded, pprof::parse_pprof},
    profile::Loaded,
};

/// The most a profile file may hold (decompressed, for `.pb.gz`). flameprof's
/// own pprof files stay below some 90 MB (what decodes within
/// `pprof::budget::MAX_DECODED`); folded files are a few MB.
pub const MAX_INPUT_BYTES: u64 = 256 << 20;

pub fn load(path: &Path) -> Result<Loaded> {
    let read_error = |source| Error::ReadProfile { path: path.to_path_buf(), source };
    let not_a_profile = |reason| Error::NotAProfile { path: path.to_path_buf(), reason };
    let file = File::open(path).map_err(read_error)?;
    // A regular file's size is known before reading; a pipe's when it passes the bound.
    let size = file.metadata().map_err(read_error)?.len();
    if size > MAX_INPUT_BYTES {
        return Err(not_a_profile(too_large("it holds")));
    }
    // Exactly the file's size, not a buffer doubled past it while reading.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes).map_err(read_error)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(not_a_profile(too_large("it holds")));
    }
    parse(&bytes).map_err(not_a_profile)
}

/// Guesses the format from the content: gzip, then UTF-8 text (folded), then
/// raw protobuf. The error says what is malformed.
pub fn parse(bytes: &[u8]) -> Result<Loaded, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut decoded = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut decoded)
            .map_err(|e| format!("gzip data is corrupt or truncated ({e})"))?;
        if decoded.len() as u64 > MAX_INPUT_BYTES {
            return Err(too_large("decompressed, it holds"));
        }
        return parse_pprof(&decoded);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_folded(text),
        Err(_) => parse_pprof(bytes).map_err(|e| format!("neither folded text nor pprof protobuf ({e})")),
    }
}

fn too_large(what: &str) -> String {
    format!("{what} more than {} MiB, more than any profile flameprof reads", MAX_INPUT_BYTES >> 20)
}
