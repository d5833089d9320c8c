//! Reading a profile file back into a [`Profile`]: folded text (flameprof's,
//! or any tool's `frame;frame;... COUNT` lines) or pprof protobuf, gzipped or
//! not. Every malformed input is one line of error, never a panic.
use std::{io::Read, path::Path};

use flate2::read::GzDecoder;

use crate::{
    error::{Error, Result},
    formats::{folded::parse_folded, pprof::parse_pprof},
    profile::Loaded,
};

/// Decompressed pprof files larger than this are refused (a gzip bomb guard).
const MAX_DECOMPRESSED: u64 = 1 << 31;

pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).map_err(|source| Error::ReadProfile { path: path.to_path_buf(), source })?;
    parse(&bytes).map_err(|reason| Error::NotAProfile { path: path.to_path_buf(), reason })
}

/// Guesses the format from the content: gzip, then UTF-8 text (folded), then
/// raw protobuf. The error says what is malformed.
pub fn parse(bytes: &[u8]) -> Result<Loaded, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut decoded = Vec::new();
        GzDecoder::new(bytes)
            .take(MAX_DECOMPRESSED)
            .read_to_end(&mut decoded)
            .map_err(|e| format!("gzip data is corrupt or truncated ({e})"))?;
        return parse_pprof(&decoded);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_folded(text),
        Err(_) => parse_pprof(bytes).map_err(|e| format!("neither folded text nor pprof protobuf ({e})")),
    }
}
