//! Where an ELF file's code lands in memory: its PT_LOAD segments, and the
//! load bias of a mapping of it.
use std::path::{Path, PathBuf};

/// The PT_LOAD segments of an ELF file. Only the headers are read.
pub(super) fn segments(path: &Path) -> Option<Vec<Segment>> {
    use object::{Object, ObjectSegment, SegmentFlags, read::ReadCache};
    let file = std::fs::File::open(path).ok()?;
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    Some(
        elf.segments()
            .map(|segment| {
                let (offset, size) = segment.file_range();
                let executable = matches!(segment.flags(), SegmentFlags::Elf { p_flags } if p_flags & 1 != 0);
                Segment { offset, size, address: segment.address(), executable }
            })
            .collect(),
    )
}

/// A PT_LOAD segment: where its bytes are in the file and in memory.
#[derive(Debug, Clone, Copy)]
pub(super) struct Segment {
    offset: u64,
    size: u64,
    address: u64,
    executable: bool,
}

/// Runtime address minus file virtual address, for an executable mapping
/// that starts at `start` with (page-aligned) file offset `file_offset`:
/// through the executable segment whose first page is there. Linkers such
/// as lld start segments mid-page, so the previous segment's bytes may also
/// cover that page: containment alone would pick the wrong segment.
pub(super) fn load_bias(segments: &[Segment], start: u64, file_offset: u64) -> Option<u64> {
    const PAGE_MASK: u64 = !0xfff;
    let segment = segments
        .iter()
        .find(|s| s.executable && s.offset & PAGE_MASK == file_offset)
        .or_else(|| segments.iter().find(|s| s.offset <= file_offset && file_offset < s.offset + s.size.max(1)))?;
    // The mapping puts file offset `file_offset` at `start`; the segment
    // puts its file offset at its address (plus the bias).
    Some(start.wrapping_sub(segment.address).wrapping_add(segment.offset).wrapping_sub(file_offset))
}

/// Where the dynamic loader looks for libraries (Debian, x86-64), after
/// the program's own RUNPATH, which is not read here.
const LIBRARY_DIRECTORIES: [&str; 4] = ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib"];

/// The libraries an ELF program names (DT_NEEDED) that exist in the usual
/// directories. A guess that only serves to load tables early: a library
/// found elsewhere at run time is loaded when the program maps it.
pub(super) fn needed_libraries(program: &Path) -> Vec<PathBuf> {
    use object::read::ReadCache;
    let Ok(file) = std::fs::File::open(program) else { return Vec::new() };
    let cache = ReadCache::new(file);
    let Ok(elf) = object::read::elf::ElfFile64::<object::Endianness, _>::parse(&cache) else { return Vec::new() };
    let Ok(Some(names)) = needed_names(&elf) else { return Vec::new() };
    names
        .iter()
        .filter_map(|name| LIBRARY_DIRECTORIES.iter().map(|dir| Path::new(dir).join(name)).find(|path| path.exists()))
        .collect()
}

/// DT_NEEDED names of an ELF file.
fn needed_names<'data, R: object::ReadRef<'data>>(
    elf: &object::read::elf::ElfFile64<'data, object::Endianness, R>,
) -> object::Result<Option<Vec<String>>> {
    use object::read::elf::{Dyn, FileHeader};
    let endian = elf.endian();
    let header = elf.elf_header();
    let data = elf.data();
    let sections = header.sections(endian, data)?;
    // The index returned is that of the dynamic string table.
    let Some((dynamic, strings_index)) = sections.dynamic(endian, data)? else { return Ok(None) };
    let strings = sections.strings(endian, data, strings_index)?;
    let names = dynamic
        .iter()
        .filter(|entry| entry.tag32(endian) == Some(object::elf::DT_NEEDED as i32))
        .filter_map(|entry| entry.string(endian, strings).ok())
        .map(|name| String::from_utf8_lossy(name).into_owned())
        .collect();
    Ok(Some(names))
}

/// The program's dynamic loader (PT_INTERP), if it has one.
pub(super) fn interpreter(program: &Path) -> Option<PathBuf> {
    use object::{Object, ObjectSection, read::ReadCache};
    let file = std::fs::File::open(program).ok()?;
    let cache = ReadCache::new(file);
    let elf = object::File::parse(&cache).ok()?;
    let interp = elf.section_by_name(".interp")?.data().ok()?;
    let path = std::str::from_utf8(interp).ok()?.trim_end_matches('\0');
    Some(PathBuf::from(path))
}
