//! How much memory reading a pprof file may take, checked before it is taken.
//!
//! prost decodes whatever the bytes hold, and a few bytes can stand for much
//! memory: an empty `Sample` is 2 bytes on the wire and 48 in memory, and
//! the frames of a stack copy their strings, so a 1-byte location id can
//! stand for a megabyte-long name.
//!
//! The bound: reading N bytes of protobuf (N is at most
//! `formats::read::MAX_INPUT_BYTES`) takes about N + 2 × [`MAX_DECODED`] +
//! [`MAX_BUILT`] bytes at most, 2 GiB beyond the input; a file that would
//! need more is an error.
//!
//! - The decoded `proto::Profile` and the reader's id maps hold at most
//!   [`MAX_DECODED`] bytes, counted as lengths times element sizes (a `Vec`
//!   grown by doubling may reserve up to twice that). [`decoded_size`] counts
//!   them on the wire, with prost's key and varint decoders and without
//!   allocating, and the file is refused before it is decoded if they are
//!   more. A file of empty samples is refused from about 11 million of them
//!   (22 MB of protobuf, 21 KB gzipped). flameprof's own files decode to
//!   about 5.5 times their size: files up to some 90 MB read.
//! - What the reader builds from it holds at most [`MAX_BUILT`] bytes: the
//!   stacks kept in the profile and their shared strings, the comments, and
//!   the stack being built (its frames and the text they copy), counted by
//!   [`Built`] before each is built.
//!
//! Time is not bounded beyond that: stacks that merge into an equal one are
//! built and dropped, each within the budget.
use std::mem::size_of;

use prost::encoding::{DecodeContext, WireType, decode_key, decode_varint, skip_field};

use super::proto::{self, tag};

/// The most the decoded protobuf may take (see the module comment).
pub const MAX_DECODED: usize = 512 << 20;

/// The most the stacks, strings and comments read from it may take.
pub const MAX_BUILT: usize = 1 << 30;

/// An `Arc<str>`'s allocation besides its text (the two reference counts).
pub const ARC_HEADER: usize = 16;

/// One frame of a stack read back: its pointer in the stack and its own
/// shared frame (readers do not look for an equal frame to share).
pub const STACK_FRAME: usize =
    size_of::<crate::profile::SharedFrame>() + ARC_HEADER + size_of::<crate::profile::Frame>();

/// A stack's entry in the profile's map, or a text's in the pprof reader's
/// shared texts, with the hash table's slack.
pub const SLOT: usize = 80;

/// A reader's id map entry (key and reference, with the hash table's slack).
const MAP_SLOT: usize = 40;

/// Bytes the decoded `proto::Profile` will hold, and the reader's maps from
/// location, function and mapping ids, counted on the wire. Malformed wire
/// data (a truncated field, a bad key or varint) is an error here already.
pub fn decoded_size(wire: &[u8]) -> Result<usize, String> {
    let mut size = size_of::<proto::Profile>();
    each_field(wire, |number, value| {
        size += match (number, value) {
            (tag::PROFILE_SAMPLE_TYPE, _) => size_of::<proto::ValueType>(),
            (tag::PROFILE_SAMPLE, Value::Bytes(body)) => {
                let mut numbers = 0;
                each_field(body, |number, value| {
                    if number == tag::SAMPLE_LOCATION_ID || number == tag::SAMPLE_VALUE {
                        numbers += value.numbers();
                    }
                    Ok(())
                })?;
                size_of::<proto::Sample>() + numbers * size_of::<u64>()
            }
            (tag::PROFILE_MAPPING, _) => size_of::<proto::Mapping>() + MAP_SLOT,
            (tag::PROFILE_LOCATION, Value::Bytes(body)) => {
                let mut lines = 0;
                each_field(body, |number, _| {
                    lines += usize::from(number == tag::LOCATION_LINE);
                    Ok(())
                })?;
                size_of::<proto::Location>() + MAP_SLOT + lines * size_of::<proto::Line>()
            }
            (tag::PROFILE_FUNCTION, _) => size_of::<proto::Function>() + MAP_SLOT,
            (tag::PROFILE_STRING_TABLE, Value::Bytes(text)) => size_of::<String>() + text.len(),
            (tag::PROFILE_COMMENT, value) => value.numbers() * size_of::<i64>(),
            // Singular fields live in `Profile` itself; unknown fields are
            // skipped; a wire type that does not fit the field fails to decode.
            _ => 0,
        };
        Ok(())
    })?;
    Ok(size)
}

/// The same count from a decoded profile, to check `decoded_size` against.
#[cfg(test)]
pub fn decoded_size_of(profile: &proto::Profile) -> usize {
    let sample =
        |s: &proto::Sample| size_of::<proto::Sample>() + (s.location_id.len() + s.value.len()) * size_of::<u64>();
    let location =
        |l: &proto::Location| size_of::<proto::Location>() + MAP_SLOT + l.line.len() * size_of::<proto::Line>();
    size_of::<proto::Profile>()
        + profile.sample_type.len() * size_of::<proto::ValueType>()
        + profile.sample.iter().map(sample).sum::<usize>()
        + profile.mapping.len() * (size_of::<proto::Mapping>() + MAP_SLOT)
        + profile.location.iter().map(location).sum::<usize>()
        + profile.function.len() * (size_of::<proto::Function>() + MAP_SLOT)
        + profile.string_table.iter().map(|s| size_of::<String>() + s.len()).sum::<usize>()
        + profile.comment.len() * size_of::<i64>()
}

/// One field's value as far as its size goes.
#[derive(Clone, Copy)]
enum Value<'a> {
    Varint,
    Bytes(&'a [u8]),
    Other,
}

impl Value<'_> {
    /// How many numbers a repeated number field adds: one for a varint, one
    /// per varint in a packed run (each ends with the only byte below 0x80).
    fn numbers(self) -> usize {
        match self {
            Value::Varint => 1,
            Value::Bytes(packed) => packed.iter().filter(|&&byte| byte < 0x80).count(),
            Value::Other => 0,
        }
    }
}

/// Calls `visit` with each field of a message, in order.
fn each_field<'a>(
    mut wire: &'a [u8],
    mut visit: impl FnMut(u32, Value<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let malformed = |e: prost::DecodeError| format!("malformed protobuf ({e})");
    while !wire.is_empty() {
        let (number, wire_type) = decode_key(&mut wire).map_err(malformed)?;
        let value = match wire_type {
            WireType::Varint => {
                decode_varint(&mut wire).map_err(malformed)?;
                Value::Varint
            }
            WireType::LengthDelimited => {
                let length = decode_varint(&mut wire).map_err(malformed)?;
                let length = usize::try_from(length).ok().filter(|&length| length <= wire.len());
                let (body, rest) = wire.split_at(length.ok_or("truncated protobuf (a field runs past the end)")?);
                wire = rest;
                Value::Bytes(body)
            }
            _ => {
                skip_field(wire_type, number, &mut wire, DecodeContext::default()).map_err(malformed)?;
                Value::Other
            }
        };
        visit(number, value)?;
    }
    Ok(())
}

/// Bytes built from a decoded profile, against [`MAX_BUILT`].
#[derive(Default)]
pub struct Built {
    kept: usize,
}

impl Built {
    /// Whether `more` bytes, about to be built, fit beside what is kept.
    pub fn check(&self, more: usize) -> Result<(), String> {
        match self.kept.checked_add(more) {
            Some(total) if total <= MAX_BUILT => Ok(()),
            _ => Err(format!(
                "the profile is too large to read: its stacks and strings would take more than {} MiB",
                MAX_BUILT >> 20
            )),
        }
    }

    /// Counts `more` bytes as kept.
    pub fn keep(&mut self, more: usize) -> Result<(), String> {
        self.check(more)?;
        self.kept += more;
        Ok(())
    }
}
