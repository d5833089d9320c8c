//! Compressed ELF sections (SHF_COMPRESSED, `.zdebug_*`) whose claimed size
//! would inflate past a bound. blazesym inflates a compressed section whole
//! when it reads it, with no limit: a few MiB of zlib can claim and produce
//! gigabytes. Such sections are kept from it (see `crate::elf`).

use object::{CompressionFormat, Object, ObjectSection, ReadRef};

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
/// file that does not parse: blazesym then says why).
pub(crate) fn oversized<'data, R: ReadRef<'data>>(data: R) -> Oversized {
    let mut found = Oversized::default();
    let Ok(file) = object::File::parse(data) else { return found };
    for section in file.sections() {
        let Ok(range) = section.compressed_file_range() else { continue };
        // Plain sections are mapped, not copied: only what is read is paged in.
        if range.format == CompressionFormat::None || range.uncompressed_size <= MAX_INFLATED_BYTES {
            continue;
        }
        let name = section.name_bytes().unwrap_or_default();
        // Call-frame information is not blazesym's to read (the unwinders
        // bound it themselves: `unwind::MAX_CFI_SECTION_BYTES`).
        if name.starts_with(b".eh_frame") {
            continue;
        }
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
