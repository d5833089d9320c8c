//! Where an ELF file's code lands in memory: its PT_LOAD segments, and the
//! load bias of a mapping of it.
use std::path::Path;

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
