//! One ELF file's call-frame information (`.eh_frame`, found through
//! `.eh_frame_hdr`'s search table), reduced to what an x86-64 unwinder needs
//! at one address: where the caller's frame starts (the CFA), where the
//! return address and the caller's frame pointer were saved.

use std::fs::File;
use std::path::Path;

use gimli::{
    BaseAddresses, CfaRule, CieOrFde, DebugFrame, DebugFrameOffset, EhFrame, EhFrameHdr, EhFrameOffset, EndianSlice,
    LittleEndian, Register, RegisterRule, UnwindContext, UnwindSection, UnwindTableRow, X86_64,
};
use object::{Object, ObjectSection, ObjectSegment, ReadRef};

use crate::error::Error;

/// The most one call-frame information section (`.eh_frame`,
/// `.eh_frame_hdr`, `.debug_frame`) may take, uncompressed: a section
/// claiming more is refused before it is read or inflated (a corrupt size,
/// or a compressed bomb). The largest real ones are tens of MiB.
pub const MAX_SECTION_BYTES: u64 = 256 << 20;

/// How to find the caller's registers at one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameRule {
    /// The CFA is this register plus `cfa_offset`.
    pub cfa_base: CfaBase,
    pub cfa_offset: i64,
    /// The return address is saved at CFA + this; `None`: this is the
    /// outermost frame (`_start`, a thread's entry).
    pub return_address_at: Option<i64>,
    pub caller_bp: CallerBp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CfaBase {
    Sp,
    Bp,
}

/// Where the caller's frame pointer (rbp) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallerBp {
    /// Not changed by this function (yet).
    Unchanged,
    /// Saved at CFA + n.
    SavedAt(i64),
    /// Equal to CFA + n.
    Is(i64),
}

/// A PT_LOAD segment: file offsets to the addresses the CFI uses.
#[derive(Clone, Copy, Debug)]
struct Segment {
    file_offset: u64,
    file_size: u64,
    address: u64,
    /// p_memsz, and whether the segment is executable (PF_X): where code is,
    /// for the unwind table compiler.
    size: u64,
    executable: bool,
}

/// The parts of one ELF file an unwinder reads, copied out of the file.
#[derive(Debug)]
pub(crate) struct CallFrameInfo {
    segments: Vec<Segment>,
    /// `.eh_frame` (what C and Rust toolchains emit for unwinding) and its
    /// address, with `.eh_frame_hdr`'s search table when there is one.
    eh_frame: Option<(Vec<u8>, u64)>,
    header: Option<(Vec<u8>, u64)>,
    /// `.debug_frame`: the only CFI of Go binaries, and of C built with
    /// -fno-asynchronous-unwind-tables -g (cgo binaries have both).
    debug_frame: Option<(Vec<u8>, u64)>,
    /// `.debug_frame` has no search table: (start, end, FDE offset) of its
    /// FDEs, sorted, built at load.
    debug_frame_index: Vec<(u64, u64, usize)>,
    text_address: u64,
}

impl CallFrameInfo {
    /// Reads `path`'s segments and unwind sections (`.eh_frame`, else
    /// `.debug_frame`). A file with neither is an error (the unwinder falls
    /// back to frame pointers).
    pub fn load(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|source| Error::OpenFile { path: path.to_path_buf(), source })?;
        // Read, not mapped: a binary truncated under a mapping would kill us
        // with SIGBUS; a read just fails. Only the headers and the CFI
        // sections are read.
        let cache = object::ReadCache::new(file);
        Self::parse(&cache).map_err(|detail| Error::CallFrameInfo { path: path.to_path_buf(), detail })
    }

    /// [`Self::load`] on an ELF file's data; the error is a description.
    pub fn parse<'data, R: ReadRef<'data>>(data: R) -> Result<Self, String> {
        let elf = object::File::parse(data).map_err(|e| format!("not a readable ELF file: {e}"))?;
        let section = |name: &str| -> Result<Option<(Vec<u8>, u64)>, String> {
            let Some(s) = elf.section_by_name(name) else { return Ok(None) };
            // Go compresses its debug sections (SHF_COMPRESSED): the sizes
            // they claim are checked before anything is read or inflated.
            let range = s.compressed_file_range().map_err(|e| format!("{name}: {e}"))?;
            let size = range.uncompressed_size.max(range.compressed_size);
            if size > MAX_SECTION_BYTES {
                return Err(format!(
                    "{name} claims {} MiB, more than the {} MiB call-frame information may take",
                    size >> 20,
                    MAX_SECTION_BYTES >> 20
                ));
            }
            let bytes = s.uncompressed_data().map_err(|e| format!("{name}: {e}"))?;
            Ok(Some((bytes.into_owned(), s.address())))
        };
        let eh_frame = section(".eh_frame")?;
        let header = if eh_frame.is_some() { section(".eh_frame_hdr")? } else { None };
        let debug_frame = section(".debug_frame")?;
        if eh_frame.is_none() && debug_frame.is_none() {
            return Err("no .eh_frame or .debug_frame section".into());
        }
        let text_address = elf.section_by_name(".text").map_or(0, |s| s.address());
        let segments = elf
            .segments()
            .map(|s| {
                let (file_offset, file_size) = s.file_range();
                let executable =
                    matches!(s.flags(), object::SegmentFlags::Elf { p_flags } if p_flags & object::elf::PF_X != 0);
                Segment { file_offset, file_size, address: s.address(), size: s.size(), executable }
            })
            .collect();
        let debug_frame_index =
            debug_frame.as_ref().map_or_else(Vec::new, |(bytes, _)| index_fdes(bytes, text_address));
        let mut info = Self { segments, eh_frame, header, debug_frame, debug_frame_index, text_address };
        if !info.search_table_is_whole() {
            info.header = None;
        }
        Ok(info)
    }

    /// The address (as the CFI sees it) of a file offset in a loaded segment.
    pub fn address_of(&self, file_offset: u64) -> Option<u64> {
        self.segments
            .iter()
            .find(|s| file_offset >= s.file_offset && file_offset - s.file_offset < s.file_size)
            .map(|s| file_offset - s.file_offset + s.address)
    }

    /// The rule at `address`, from `.eh_frame`, else `.debug_frame`; `None`
    /// when no FDE covers it or its rule is one this unwinder does not
    /// evaluate (DWARF expressions).
    pub fn rule_at(&self, address: u64, context: &mut UnwindContext<usize>) -> Option<FrameRule> {
        let row = match self.eh_frame_row(address, context) {
            Some(row) => row,
            None => self.debug_frame_row(address, context)?,
        };
        let (cfa_base, cfa_offset) = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => (base_of(*register)?, *offset),
            CfaRule::Expression(_) => return None,
        };
        let return_address_at = match row.register(X86_64::RA) {
            Some(RegisterRule::Offset(n)) => Some(n),
            Some(RegisterRule::Undefined) => None,
            // Default for x86-64 .eh_frame: the call pushed it just below the CFA.
            None => Some(-8),
            Some(_) => return None,
        };
        let caller_bp = match row.register(X86_64::RBP) {
            None | Some(RegisterRule::SameValue) => CallerBp::Unchanged,
            Some(RegisterRule::Offset(n)) => CallerBp::SavedAt(n),
            Some(RegisterRule::ValOffset(n)) => CallerBp::Is(n),
            Some(_) => return None,
        };
        Some(FrameRule { cfa_base, cfa_offset, return_address_at, caller_bp })
    }
}

/// The raw sections, for the unwind table compiler (`super::table`).
impl CallFrameInfo {
    /// `.eh_frame`'s bytes, if the file has one.
    pub(super) fn eh_frame_bytes(&self) -> Option<&[u8]> {
        self.eh_frame.as_ref().map(|(bytes, _)| bytes.as_slice())
    }

    /// `.debug_frame`'s bytes (uncompressed), if the file has one.
    pub(super) fn debug_frame_bytes(&self) -> Option<&[u8]> {
        self.debug_frame.as_ref().map(|(bytes, _)| bytes.as_slice())
    }

    /// [start, end) of every executable PT_LOAD segment, in file addresses.
    pub(super) fn executable_ranges(&self) -> Vec<(u64, u64)> {
        self.segments.iter().filter(|s| s.executable).map(|s| (s.address, s.address.saturating_add(s.size))).collect()
    }

    /// Section addresses that pointer encodings of the CFI are relative to.
    pub(super) fn base_addresses(&self) -> BaseAddresses {
        self.bases()
    }
}

impl CallFrameInfo {
    fn bases(&self) -> BaseAddresses {
        let mut bases = BaseAddresses::default().set_text(self.text_address);
        if let Some((_, address)) = &self.eh_frame {
            bases = bases.set_eh_frame(*address);
        }
        if let Some((_, address)) = &self.header {
            bases = bases.set_eh_frame_hdr(*address);
        }
        bases
    }

    /// Whether `.eh_frame_hdr`'s search table (if any) holds every row its
    /// header claims. One that claims more makes gimli's binary search
    /// overflow (found by fuzzing: a count near 2^64): such a table is not
    /// used, and lookups scan `.eh_frame` instead. Read once per file; each
    /// row takes bytes, so a false count ends at the section's end.
    fn search_table_is_whole(&self) -> bool {
        let Some((header, _)) = &self.header else { return true };
        let bases = self.bases();
        let Ok(parsed) = EhFrameHdr::new(header, LittleEndian).parse(&bases, 8) else { return true };
        let Some(table) = parsed.table() else { return true };
        let mut rows = table.iter(&bases);
        loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }

    fn eh_frame_row(&self, address: u64, context: &mut UnwindContext<usize>) -> Option<UnwindTableRow<usize>> {
        let (bytes, _) = self.eh_frame.as_ref()?;
        let eh_frame = EhFrame::new(bytes, LittleEndian);
        let bases = self.bases();
        let table = match &self.header {
            Some((header, _)) => EhFrameHdr::new(header, LittleEndian).parse(&bases, 8).ok(),
            None => None,
        };
        match table.as_ref().and_then(|parsed| Some((parsed.eh_frame_ptr(), parsed.table()?))) {
            Some((eh_frame_address, table)) => {
                // What gimli's `unwind_info_for_address` does, but for the FDE's
                // offset: gimli subtracts unchecked, and a search table pointing
                // before `.eh_frame` panics with overflow checks (found by fuzzing).
                let fde_address = table.lookup(address, &bases).ok()?.direct().ok()?;
                let offset = fde_address.checked_sub(eh_frame_address.direct().ok()?)?;
                let offset = EhFrameOffset(usize::try_from(offset).ok()?);
                let fde = eh_frame.fde_from_offset(&bases, offset, EhFrame::cie_from_offset).ok()?;
                if !fde.contains(address) {
                    return None;
                }
                fde.unwind_info_for_address(&eh_frame, &bases, context, address).ok().cloned()
            }
            None => eh_frame.unwind_info_for_address(&bases, context, address, EhFrame::cie_from_offset).ok().cloned(),
        }
    }

    fn debug_frame_row(&self, address: u64, context: &mut UnwindContext<usize>) -> Option<UnwindTableRow<usize>> {
        let (bytes, _) = self.debug_frame.as_ref()?;
        let debug_frame = debug_frame(bytes);
        let i = self.debug_frame_index.partition_point(|&(start, _, _)| start <= address).checked_sub(1)?;
        let (_, end, offset) = self.debug_frame_index[i];
        if address >= end {
            return None;
        }
        let bases = self.bases();
        let fde = debug_frame.fde_from_offset(&bases, DebugFrameOffset(offset), DebugFrame::cie_from_offset).ok()?;
        fde.unwind_info_for_address(&debug_frame, &bases, context, address).ok().cloned()
    }
}

pub(super) fn debug_frame(bytes: &[u8]) -> DebugFrame<EndianSlice<'_, LittleEndian>> {
    let mut section = DebugFrame::new(bytes, LittleEndian);
    section.set_address_size(8);
    section
}

/// (start, end, offset) of every FDE in a `.debug_frame`, sorted by start.
/// An entry that does not parse is left out (its code falls back to the
/// frame pointer).
fn index_fdes(bytes: &[u8], text_address: u64) -> Vec<(u64, u64, usize)> {
    let section = debug_frame(bytes);
    let bases = BaseAddresses::default().set_text(text_address);
    let mut index = Vec::new();
    let mut entries = section.entries(&bases);
    while let Ok(Some(entry)) = entries.next() {
        if let CieOrFde::Fde(partial) = entry
            && let Ok(fde) = partial.parse(DebugFrame::cie_from_offset)
        {
            let start = fde.initial_address();
            index.push((start, start.saturating_add(fde.len()), fde.offset()));
        }
    }
    index.sort_unstable_by_key(|&(start, _, _)| start);
    index
}

fn base_of(register: Register) -> Option<CfaBase> {
    match register {
        X86_64::RSP => Some(CfaBase::Sp),
        X86_64::RBP => Some(CfaBase::Bp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{self, Backing};

    #[inline(never)]
    fn some_function(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3)
    }

    /// At a function's first instruction the call has just pushed the
    /// return address: CFA = rsp + 8, return address at CFA - 8, rbp untouched.
    #[test]
    fn the_rule_at_a_function_entry_of_this_test_binary() {
        std::hint::black_box(some_function(1));
        let addr = some_function as *const () as u64;
        let text = std::fs::read_to_string("/proc/self/maps").unwrap();
        let entries = maps::parse(std::process::id(), &text).unwrap();
        let entry = &entries[maps::find(&entries, addr).expect("function is mapped")];
        let Backing::File { path, .. } = &entry.backing else { panic!("not a file mapping") };
        let cfi = CallFrameInfo::load(Path::new(path)).expect("this binary has .eh_frame");
        let address = cfi.address_of(entry.offset + addr - entry.start).expect("in a segment");
        let rule = cfi.rule_at(address, &mut UnwindContext::new()).expect("an FDE covers it");
        assert_eq!(
            rule,
            FrameRule {
                cfa_base: CfaBase::Sp,
                cfa_offset: 8,
                return_address_at: Some(-8),
                caller_bp: CallerBp::Unchanged
            }
        );
    }

    /// Corrupt CFI (bit flips in .eh_frame and its search table) gives
    /// rules or `None`, never a panic; truncated files are errors or load.
    #[test]
    fn corrupt_call_frame_information_never_panics() {
        let exe = std::env::current_exe().unwrap();
        let good = CallFrameInfo::load(&exe).unwrap();
        let text = good.text_address;
        let mut next = crate::unwind::pseudo_random(0x9e37_79b9_7f4a_7c15);
        let mut context = UnwindContext::new();
        for _ in 0..200 {
            let mut bad = CallFrameInfo {
                segments: good.segments.clone(),
                eh_frame: good.eh_frame.clone(),
                header: good.header.clone(),
                debug_frame: good.debug_frame.clone(),
                debug_frame_index: good.debug_frame_index.clone(),
                text_address: text,
            };
            for _ in 0..8 {
                let frames = &mut bad.eh_frame.as_mut().unwrap().0;
                let i = (next() % frames.len() as u64) as usize;
                frames[i] ^= 1 << (next() % 8);
                if let Some((header, _)) = &mut bad.header {
                    let j = (next() % header.len() as u64) as usize;
                    header[j] ^= 1 << (next() % 8);
                }
            }
            for _ in 0..20 {
                let _ = bad.rule_at(text + next() % 0x10_0000, &mut context);
            }
        }
        let bytes = std::fs::read(&exe).unwrap();
        let path = std::env::temp_dir().join(format!("cfi-truncated-{}", std::process::id()));
        for cut in [16, 64, 4096, bytes.len() / 2] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let _ = CallFrameInfo::load(&path);
        }
        let _ = std::fs::remove_file(&path);
    }

    /// A section claiming 4 GiB, plainly or as the size it inflates to, is
    /// refused from its header: nothing is read or inflated.
    #[test]
    fn a_section_claiming_4_gib_is_refused_before_it_is_read() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let mut plain = exe.clone();
        crate::test_elf::claim_size(&mut plain, ".eh_frame", 4 << 30);
        let error = CallFrameInfo::parse(&*plain).expect_err("refused");
        assert!(error.starts_with(".eh_frame claims 4096 MiB"), "{error}");
        let mut inflated = exe;
        // Not a zlib stream: were it inflated, the error would say so.
        crate::test_elf::claim_inflated_size(&mut inflated, ".eh_frame", 4 << 30, b"not zlib");
        let error = CallFrameInfo::parse(&*inflated).expect_err("refused");
        assert!(error.starts_with(".eh_frame claims 4096 MiB"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_elf_is_an_error() {
        let path = std::env::temp_dir().join(format!("cfi-not-elf-{}", std::process::id()));
        std::fs::write(&path, b"not an ELF file at all").unwrap();
        let result = CallFrameInfo::load(&path);
        let _ = std::fs::remove_file(&path);
        assert!(matches!(result, Err(Error::CallFrameInfo { .. })), "{result:?}");
    }
}
