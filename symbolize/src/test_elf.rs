//! Crafted ELF files for tests: a real file's section headers rewritten to
//! claim what a corrupt or hostile file would.

use object::{Object, ObjectSection};

/// `SHF_COMPRESSED`, and the size of an ELF64 compression header.
const SHF_COMPRESSED: u64 = 0x800;
const CHDR_BYTES: usize = 24;

/// Offset of the section header of `name` in an ELF64 little-endian file.
fn header_of(bytes: &[u8], name: &str) -> usize {
    let file = object::File::parse(bytes).expect("an ELF file");
    let index = file.section_by_name(name).unwrap_or_else(|| panic!("no {name}")).index().0;
    let word =
        |at: usize, n: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) & (u64::MAX >> (64 - n * 8));
    let (shoff, shentsize) = (word(0x28, 8) as usize, word(0x3a, 2) as usize);
    shoff + index * shentsize
}

/// Makes section `name` claim `size` bytes (sh_size), where it is.
pub(crate) fn claim_size(bytes: &mut [u8], name: &str, size: u64) {
    let header = header_of(bytes, name);
    bytes[header + 32..header + 40].copy_from_slice(&size.to_le_bytes());
}

/// Makes section `name` a zlib-compressed one (SHF_COMPRESSED) claiming to
/// inflate to `size` bytes, its data (appended to the file) `stream`.
pub(crate) fn claim_inflated_size(bytes: &mut Vec<u8>, name: &str, size: u64, stream: &[u8]) {
    let header = header_of(bytes, name);
    let offset = bytes.len() as u64;
    // ch_type 1 (zlib), ch_reserved, ch_size, ch_addralign.
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend_from_slice(&size.to_le_bytes());
    bytes.extend_from_slice(&8u64.to_le_bytes());
    bytes.extend_from_slice(stream);
    let flags = u64::from_le_bytes(bytes[header + 8..header + 16].try_into().unwrap()) | SHF_COMPRESSED;
    bytes[header + 8..header + 16].copy_from_slice(&flags.to_le_bytes());
    bytes[header + 24..header + 32].copy_from_slice(&offset.to_le_bytes());
    bytes[header + 32..header + 40].copy_from_slice(&((CHDR_BYTES + stream.len()) as u64).to_le_bytes());
}
