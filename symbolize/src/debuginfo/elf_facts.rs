//! What symbolization needs to know of an ELF file before asking blazesym:
//! whether it has symbols, its build-id and debug link, and where its file
//! offsets load (a debug file is looked up by address, not by offset).
use std::fs::File;
use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ElfFacts {
    /// A `.symtab` or DWARF: not stripped.
    pub has_symbols: bool,
    pub build_id: Option<Vec<u8>>,
    /// `.gnu_debuglink`'s file name.
    pub debug_link: Option<String>,
    /// Loadable segments: (file offset, file size, virtual address).
    segments: Vec<(u64, u64, u64)>,
}

impl ElfFacts {
    /// `None` for a file that cannot be read as ELF.
    pub fn read(path: &Path) -> Option<Self> {
        let file = File::open(path).ok()?;
        // Read, not mapped: a file truncated under us must not raise SIGBUS.
        let cache = object::ReadCache::new(file);
        let elf = object::File::parse(&cache).ok()?;
        let has_symbols = elf.section_by_name(".symtab").is_some_and(|s| s.size() > 0)
            || elf.section_by_name(".debug_info").is_some_and(|s| s.size() > 0);
        let build_id = elf.build_id().ok().flatten().map(<[u8]>::to_vec);
        let debug_link = elf
            .gnu_debuglink()
            .ok()
            .flatten()
            .and_then(|(name, _crc)| std::str::from_utf8(name).ok())
            // A file name, never a path that climbs out of the debug directories.
            .filter(|name| !name.contains('/') && !name.is_empty())
            .map(str::to_owned);
        let segments = elf
            .segments()
            .map(|s| {
                let (offset, size) = s.file_range();
                (offset, size, s.address())
            })
            .collect();
        Some(Self { has_symbols, build_id, debug_link, segments })
    }

    /// The virtual address a file offset loads at.
    pub fn address_of(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|&&(offset, size, _)| file_offset >= offset && file_offset - offset < size)
            .map(|&(offset, _, address)| file_offset - offset + address)
    }
}
