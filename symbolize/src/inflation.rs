//! Compressed ELF sections (SHF_COMPRESSED) whose claimed size
//! would inflate past a bound. blazesym inflates a compressed section whole
//! when it reads it, with no limit: a few MiB of zlib can claim and produce
//! gigabytes. Such sections are kept from it (see `crate::elf`).

use object::elf;
use object::read::elf::{CompressionHeader as _, FileHeader, SectionHeader as _};
use object::{Endianness, ReadRef};

/// The most a compressed section may claim to inflate to before
/// symbolization reads it. Real ones are far below (a large Go binary's
/// `.debug_info` is some 100 MiB).
pub const MAX_INFLATED_BYTES: u64 = 1 << 30;

/// What an ELF file's compressed sections would take beyond the bound.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Oversized {
    /// A DWARF section (`.debug_*`, `.zdebug_*`): symbol tables still serve.
    pub debug: bool,
    /// Any other section (a symbol or string table): the file is not read.
    pub other: bool,
}

/// The oversized compressed sections of an ELF file's data (none for a
/// file whose header does not parse: blazesym then says why). The section
/// headers are read one by one, as blazesym reads them, not through a full
/// parse: a file that object refuses (a bad section link) may still be one
/// that blazesym reads.
pub(crate) fn oversized<'data, R: ReadRef<'data>>(data: R) -> Oversized {
    match data.read_bytes_at(4, 1) {
        Ok([elf::ELFCLASS32]) => scan::<elf::FileHeader32<Endianness>, R>(data),
        Ok([elf::ELFCLASS64]) => scan::<elf::FileHeader64<Endianness>, R>(data),
        _ => Oversized::default(),
    }
}

fn scan<'data, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(data: R) -> Oversized {
    let mut found = Oversized::default();
    let Ok(header) = Elf::parse(data) else { return found };
    let Ok(endian) = header.endian() else { return found };
    let Ok(sections) = header.section_headers(endian, data) else { return found };
    let names = header.section_strings(endian, data, sections).ok();
    for section in sections {
        // Plain sections are mapped, not copied: only what is read is paged in.
        let Ok(Some((compression, _, _))) = section.compression(endian, data) else { continue };
        if compression.ch_size(endian).into() <= MAX_INFLATED_BYTES {
            continue;
        }
        let name = names.and_then(|names| section.name(endian, names).ok()).unwrap_or_default();
        // Call-frame information is not blazesym's to read (the unwinders
        // bound it themselves: `unwind::MAX_CFI_SECTION_BYTES`).
        if name.starts_with(b".eh_frame") {
            continue;
        }
        // A section without a readable name may be any: it counts as other.
        if name.starts_with(b".debug_") || name.starts_with(b".zdebug_") {
            found.debug = true;
        } else {
            found.other = true;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_elf::claim_inflated_size;

    #[test]
    fn compressed_sections_past_the_bound_are_found_by_kind() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert_eq!(oversized(&*exe), Oversized::default());
        let mut debug = exe.clone();
        claim_inflated_size(&mut debug, ".debug_info", MAX_INFLATED_BYTES + 1, b"");
        assert_eq!(oversized(&*debug), Oversized { debug: true, other: false });
        let mut symbols = exe.clone();
        claim_inflated_size(&mut symbols, ".symtab", 4 << 30, b"");
        assert_eq!(oversized(&*symbols), Oversized { debug: false, other: true });
        let mut unwind = exe.clone();
        claim_inflated_size(&mut unwind, ".eh_frame", 4 << 30, b"");
        assert_eq!(oversized(&*unwind), Oversized::default());
        // At the bound, and claims of plain sections (mapped, not inflated), pass.
        let mut at_bound = exe;
        claim_inflated_size(&mut at_bound, ".debug_info", MAX_INFLATED_BYTES, b"");
        crate::test_elf::claim_size(&mut at_bound, ".debug_line", 4 << 30);
        assert_eq!(oversized(&*at_bound), Oversized::default());
    }
}
