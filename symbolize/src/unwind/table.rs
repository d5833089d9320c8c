//! One ELF file's call-frame information (`.eh_frame`, `.debug_frame`)
//! compiled into the rows the in-kernel (BPF) table unwinder searches: every
//! address range of the file with the rule in force there, reduced to what
//! that walker evaluates (CFA = rsp, rbp or another register + offset, the
//! PLT and signal frame special cases, where the caller's rbp and rbx were
//! saved).
//!
//! Rows map 1:1 onto `profiler_ebpf::UnwindRow` (16 bytes in the kernel);
//! this crate does not depend on profiler-ebpf, the profiler converts.
//! Compiled once per file; the file's CFI is untrusted input: malformed
//! entries leave gaps (no rows), never a panic, and the work is bounded.

use std::collections::HashMap;
use std::path::Path;

use gimli::{
    BaseAddresses, CfaRule as DwarfCfaRule, CieOrFde, CommonInformationEntry, EhFrame, EndianSlice,
    FrameDescriptionEntry, LittleEndian, RegisterRule, UnwindContext, UnwindOffset, UnwindSection, UnwindTableRow,
    X86_64,
};

use super::cfi::{self, CallFrameInfo};
use crate::error::Error;

/// The most rows one file may have (the BPF side's `MAX_ROWS_PER_FILE`):
/// compiling a file that needs more fails.
pub const MAX_UNWIND_ROWS: usize = 1 << 22;

/// Bytes one row takes in the kernel's table (`profiler_ebpf::UnwindRow`).
pub const KERNEL_ROW_BYTES: usize = 16;

/// How to find the canonical frame address (the caller's rsp just before
/// its call) from a row's address up to the next row's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CfaRule {
    /// No call-frame information here (a gap between functions, after the
    /// last one, or an entry that did not parse).
    None,
    /// CFA = rsp + n.
    Rsp(i32),
    /// CFA = rbp + n.
    Rbp(i32),
    /// CFA = another general-purpose register (DWARF number 0..=15) + n:
    /// known to the walker at the first frame (the sample's registers) and,
    /// for rbx, where it followed rbx's saves (ld.so's lazy-binding
    /// trampolines, stack-probe loops).
    Register { register: u16, offset: i32 },
    /// A PLT stub: CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0), the DWARF
    /// expression binutils emits for `.plt`.
    Plt11,
    /// The same with 10 (other linkers' PLT entries).
    Plt10,
    /// A signal trampoline (glibc's `__restore_rt`; CIE augmentation `S`):
    /// the interrupted registers are in the `ucontext` at rsp.
    Signal,
    /// The return address is undefined: the outermost frame (`_start`, a
    /// thread's entry function). The stack is complete.
    Outermost,
    /// A rule the kernel-side walker does not evaluate: a DWARF expression
    /// other than the PLT ones, a CFA based on a register other than the
    /// general-purpose ones or with an offset beyond i32, a return address
    /// not at CFA - 8.
    Unsupported,
}

/// DWARF's x86-64 numbers of the registers CFA rules name.
const RBX: u16 = 3;
/// rax..r15: the registers the walker can read at the first frame.
const GENERAL_PURPOSE: std::ops::Range<u16> = 0..16;

/// Where the caller's rbp is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbpRule {
    /// Not saved (yet): the caller's rbp is the current rbp.
    Unchanged,
    /// Saved at CFA + n.
    SavedAt(i16),
    /// Anything else (another register, a value rule, an expression, an
    /// offset beyond i16).
    Unknown,
}

/// Where the caller's rbx is (the walker follows it for CFA rules based on
/// rbx further up the stack).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RbxRule {
    /// Not saved (yet): the caller's rbx is the current rbx.
    Unchanged,
    /// Saved at CFA + n.
    SavedAt(i16),
    /// Anything else.
    Unknown,
}

/// The rule from `pc` up to the next row's `pc`.
///
/// Where the rbp and rbx rules do not matter (CFA rules `None`, `Signal`,
/// `Outermost`, `Unsupported`: the walker does not read them), they are
/// always `Unchanged`, so that such rows merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnwindRow {
    /// Address in the file's own virtual addresses (ELF `p_vaddr` space, as
    /// FDEs give them). The kernel's rows hold a u32: the profiler refuses
    /// files whose addresses do not fit (see [`UnwindTable::fits_u32`]).
    pub pc: u64,
    pub cfa: CfaRule,
    pub rbp: RbpRule,
    pub rbx: RbxRule,
}

/// Rows by CFA rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowKinds {
    pub none: usize,
    pub rsp: usize,
    pub rbp: usize,
    pub register: usize,
    pub plt11: usize,
    pub plt10: usize,
    pub signal: usize,
    pub outermost: usize,
    pub unsupported: usize,
}

/// Why rules were unsupported, counted over the CFI's own rows (before
/// neighbouring rows with equal rules are merged).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnsupportedRules {
    /// The CFA is a DWARF expression other than the two PLT ones.
    pub cfa_expression: usize,
    /// The CFA is based on a register that is no general-purpose one.
    pub cfa_register: usize,
    /// The CFA's offset does not fit i32.
    pub cfa_offset: usize,
    /// The return address is not saved at CFA - 8 (or the CIE names
    /// another return address column than x86-64's 16).
    pub return_address: usize,
}

/// What went into a table and what came out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnwindTableStats {
    /// FDEs read, from both sections.
    pub fdes: usize,
    /// Of which from `.debug_frame` (used only where `.eh_frame` has no rows).
    pub debug_frame_fdes: usize,
    /// FDEs that overlap the next FDE (by start address) of the same
    /// section: the later-starting one wins where they overlap.
    pub overlapping_fdes: usize,
    /// FDEs starting outside every executable segment (discarded functions'
    /// FDEs left at address 0 in `.debug_frame`, corrupt addresses): no rows.
    pub fdes_outside_code: usize,
    /// FDEs (or their CIEs) that did not parse, or whose instructions failed
    /// part way: their range (or the rest of it) has no rows.
    pub malformed_fdes: usize,
    /// Sections whose list of entries could not be read to its end (an
    /// entry's length is corrupt): the FDEs after it are missing.
    pub truncated_sections: usize,
    /// Rows in the table (`UnwindTable::rows.len()`).
    pub rows: usize,
    pub rows_by_kind: RowKinds,
    pub unsupported: UnsupportedRules,
    /// What the rows take in the kernel: `rows * KERNEL_ROW_BYTES`.
    pub kernel_bytes: usize,
}

/// A file's unwind rows: sorted by `pc`, unique, no two neighbours with the
/// same rule; the last row (if any) is a `CfaRule::None` ending the range of
/// the one before. The rule at an address is the row with the largest `pc`
/// at or below it; addresses before the first row have none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnwindTable {
    pub rows: Vec<UnwindRow>,
    pub stats: UnwindTableStats,
}

impl UnwindRow {
    /// The row's rules, without its address.
    fn rule(&self) -> Rule {
        (self.cfa, self.rbp, self.rbx)
    }
}

impl UnwindTable {
    /// The row in force at `address` (a file virtual address), by binary
    /// search, as the BPF side does; `None` before the first row.
    pub fn lookup(&self, address: u64) -> Option<&UnwindRow> {
        let i = self.rows.partition_point(|row| row.pc <= address).checked_sub(1)?;
        self.rows.get(i)
    }

    /// Whether every address fits the kernel rows' u32 `pc`.
    pub fn fits_u32(&self) -> bool {
        self.rows.last().is_none_or(|row| row.pc <= u64::from(u32::MAX))
    }
}

/// Compiles the call-frame information of the ELF file at `path` into rows:
/// `.eh_frame`, and `.debug_frame` for the ranges `.eh_frame` does not cover
/// (Go binaries have only `.debug_frame`).
///
/// A file without either section, unreadable, or needing more than
/// [`MAX_UNWIND_ROWS`] rows, is an error. Malformed entries are not: their
/// ranges get no rows (counted in the stats).
pub fn compile_unwind_table(path: &Path) -> Result<UnwindTable, Error> {
    let cfi = CallFrameInfo::load(path)?;
    compile(&cfi).map_err(|detail| Error::CallFrameInfo { path: path.to_path_buf(), detail })
}

/// The table of loaded CFI; the error is a description.
pub(crate) fn compile(cfi: &CallFrameInfo) -> Result<UnwindTable, String> {
    let bases = cfi.base_addresses();
    let code = coalesce(cfi.executable_ranges());
    let mut stats = UnwindTableStats::default();
    let mut context = Box::new(UnwindContext::new());
    let eh_rows = match cfi.eh_frame_bytes() {
        Some(bytes) => {
            let section = EhFrame::new(bytes, LittleEndian);
            section_rows(&section, &bases, &code, &mut context, &mut stats)?
        }
        None => Vec::new(),
    };
    let fdes_before = stats.fdes;
    let debug_rows = match cfi.debug_frame_bytes() {
        Some(bytes) => section_rows(&cfi::debug_frame(bytes), &bases, &code, &mut context, &mut stats)?,
        None => Vec::new(),
    };
    stats.debug_frame_fdes = stats.fdes - fdes_before;
    let rows = match (eh_rows.is_empty(), debug_rows.is_empty()) {
        (_, true) => eh_rows,
        (true, false) => debug_rows,
        (false, false) => overlay(&eh_rows, &debug_rows)?,
    };
    stats.rows = rows.len();
    stats.kernel_bytes = rows.len() * KERNEL_ROW_BYTES;
    for row in &rows {
        let kinds = &mut stats.rows_by_kind;
        *match row.cfa {
            CfaRule::None => &mut kinds.none,
            CfaRule::Rsp(_) => &mut kinds.rsp,
            CfaRule::Rbp(_) => &mut kinds.rbp,
            CfaRule::Register { .. } => &mut kinds.register,
            CfaRule::Plt11 => &mut kinds.plt11,
            CfaRule::Plt10 => &mut kinds.plt10,
            CfaRule::Signal => &mut kinds.signal,
            CfaRule::Outermost => &mut kinds.outermost,
            CfaRule::Unsupported => &mut kinds.unsupported,
        } += 1;
    }
    Ok(UnwindTable { rows, stats })
}

type Bytes<'a> = EndianSlice<'a, LittleEndian>;
type Rule = (CfaRule, RbpRule, RbxRule);

/// A CFA rule whose frame's saved registers the walker does not read.
const fn alone(cfa: CfaRule) -> Rule {
    (cfa, RbpRule::Unchanged, RbxRule::Unchanged)
}

const NO_RULE: Rule = alone(CfaRule::None);
const UNSUPPORTED: Rule = alone(CfaRule::Unsupported);

/// The CFA expressions of PLT stubs, byte for byte: DW_OP_breg7 (rsp) 8;
/// DW_OP_breg16 (rip) 0; DW_OP_lit15; DW_OP_and; DW_OP_lit11 (or lit10);
/// DW_OP_ge; DW_OP_lit3; DW_OP_shl; DW_OP_plus.
const PLT_11: [u8; 11] = [0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22];
const PLT_10: [u8; 11] = [0x77, 0x08, 0x80, 0x00, 0x3f, 0x1a, 0x3a, 0x2a, 0x33, 0x24, 0x22];

/// One FDE's range (after clipping) and where it is in its section.
#[derive(Clone, Copy, Debug)]
struct FdeRange {
    start: u64,
    end: u64,
    offset: usize,
}

/// The rows of one section (`.eh_frame` or `.debug_frame`), on their own.
fn section_rows<'a, S: UnwindSection<Bytes<'a>>>(
    section: &S,
    bases: &BaseAddresses,
    code: &[(u64, u64)],
    context: &mut UnwindContext<usize>,
    stats: &mut UnwindTableStats,
) -> Result<Vec<UnwindRow>, String> {
    // A file has few CIEs and many FDEs: parse each CIE once.
    let mut cies: HashMap<usize, CommonInformationEntry<Bytes<'a>>> = HashMap::new();
    let mut get_cie = |section: &S, bases: &BaseAddresses, offset: S::Offset| {
        let key = UnwindOffset::into(offset);
        if let Some(cie) = cies.get(&key) {
            return Ok(cie.clone());
        }
        let cie = section.cie_from_offset(bases, offset)?;
        cies.insert(key, cie.clone());
        Ok(cie)
    };

    // First pass: every FDE's range. The FDEs themselves are parsed again
    // in address order below, rather than kept: a big binary has hundreds
    // of thousands, each holding a copy of its CIE.
    let mut fdes = Vec::new();
    let mut entries = section.entries(bases);
    loop {
        let partial = match entries.next() {
            Ok(None) => break,
            Ok(Some(CieOrFde::Cie(_))) => continue,
            Ok(Some(CieOrFde::Fde(partial))) => partial,
            Err(_) => {
                stats.truncated_sections += 1;
                break;
            }
        };
        stats.fdes += 1;
        let Ok(fde) = partial.parse(&mut get_cie) else {
            stats.malformed_fdes += 1;
            continue;
        };
        let start = fde.initial_address();
        let Some(end) = start.checked_add(fde.len()) else {
            stats.malformed_fdes += 1;
            continue;
        };
        if start == end {
            continue;
        }
        // Only code can need unwinding: an FDE starting outside every
        // executable segment has no rows, one running past the end of its
        // segment is cut there. (A file without segment flags keeps all.)
        let end = if code.is_empty() {
            end
        } else {
            match code_end(code, start) {
                Some(code_end) => end.min(code_end),
                None => {
                    stats.fdes_outside_code += 1;
                    continue;
                }
            }
        };
        fdes.push(FdeRange { start, end, offset: fde.offset() });
    }

    stats.overlapping_fdes += sort_and_cut_overlaps(&mut fdes);

    // Second pass, in address order: each FDE's rows, clipped to its range.
    let mut sink = RowSink::new(MAX_UNWIND_ROWS);
    for range in fdes.iter().filter(|f| f.start < f.end) {
        let Ok(fde) = section.fde_from_offset(bases, S::Offset::from(range.offset), &mut get_cie) else {
            stats.malformed_fdes += 1;
            continue;
        };
        fde_rows(section, bases, context, &fde, range, &mut sink, stats)?;
    }
    sink.finish()
}

/// Address ranges sorted, overlapping and adjacent ones joined (a corrupt
/// file may have thousands of program headers: they are searched by
/// bisection).
fn coalesce(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.retain(|&(lo, hi)| lo < hi);
    ranges.sort_unstable();
    let mut joined: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match joined.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => joined.push((lo, hi)),
        }
    }
    joined
}

/// The end of the range of `code` (coalesced) holding `address`.
fn code_end(code: &[(u64, u64)], address: u64) -> Option<u64> {
    let i = code.partition_point(|&(lo, _)| lo <= address).checked_sub(1)?;
    let (_, hi) = code[i];
    (address < hi).then_some(hi)
}

/// Sorts FDE ranges by start and cuts overlaps; how many FDEs were cut.
///
/// Overlapping FDEs (corrupt or odd linker output): the later-starting one
/// wins where they overlap, the earlier is cut at its start, and does not
/// resume after it. This is also what a lookup through `.eh_frame_hdr`'s
/// search table finds (the FDE with the greatest start at or below the
/// address, if it covers it). Of FDEs with the same start, the one later in
/// the section wins (the earlier is cut to nothing).
fn sort_and_cut_overlaps(fdes: &mut [FdeRange]) -> usize {
    fdes.sort_unstable_by_key(|f| (f.start, f.offset));
    let mut cut = 0;
    for i in 1..fdes.len() {
        let next_start = fdes[i].start;
        let previous = &mut fdes[i - 1];
        if next_start < previous.end {
            previous.end = next_start;
            cut += 1;
        }
    }
    cut
}

/// Adds the rules of `fde` over `range` to `sink`.
fn fde_rows<'a, S: UnwindSection<Bytes<'a>>>(
    section: &S,
    bases: &BaseAddresses,
    context: &mut UnwindContext<usize>,
    fde: &FrameDescriptionEntry<Bytes<'a>>,
    range: &FdeRange,
    sink: &mut RowSink,
    stats: &mut UnwindTableStats,
) -> Result<(), String> {
    // A signal trampoline's rules restore every register from the ucontext
    // (expressions); the walker has its own code for that.
    if fde.is_signal_trampoline() {
        return sink.push(range.start, range.end, alone(CfaRule::Signal));
    }
    let return_address_column = fde.cie().return_address_register() == X86_64::RA;
    let Ok(mut rows) = fde.rows(section, bases, context) else {
        stats.malformed_fdes += 1;
        return Ok(());
    };
    loop {
        match rows.next_row() {
            Ok(Some(row)) => {
                let (start, end) = (row.start_address().max(range.start), row.end_address().min(range.end));
                if start < end {
                    let rule = rule_of(row, section, return_address_column, &mut stats.unsupported);
                    sink.push(start, end, rule)?;
                }
            }
            Ok(None) => return Ok(()),
            // The rows so far stand; the rest of the range has none.
            Err(_) => {
                stats.malformed_fdes += 1;
                return Ok(());
            }
        }
    }
}

/// What the kernel-side walker can do with one row of the CFI.
fn rule_of<'a, S: UnwindSection<Bytes<'a>>>(
    row: &UnwindTableRow<usize>,
    section: &S,
    return_address_column: bool,
    unsupported: &mut UnsupportedRules,
) -> Rule {
    if !return_address_column {
        unsupported.return_address += 1;
        return UNSUPPORTED;
    }
    let return_address = row.register(X86_64::RA);
    if return_address == Some(RegisterRule::Undefined) {
        return alone(CfaRule::Outermost);
    }
    let cfa = match *row.cfa() {
        DwarfCfaRule::RegisterAndOffset { register, offset } => {
            let Ok(offset) = i32::try_from(offset) else {
                unsupported.cfa_offset += 1;
                return UNSUPPORTED;
            };
            match register {
                X86_64::RSP => CfaRule::Rsp(offset),
                X86_64::RBP => CfaRule::Rbp(offset),
                gimli::Register(register) if GENERAL_PURPOSE.contains(&register) => {
                    CfaRule::Register { register, offset }
                }
                _ => {
                    unsupported.cfa_register += 1;
                    return UNSUPPORTED;
                }
            }
        }
        DwarfCfaRule::Expression(expression) => match expression.get(section).map(|e| e.0.slice()) {
            Ok(bytes) if bytes == PLT_11 => CfaRule::Plt11,
            Ok(bytes) if bytes == PLT_10 => CfaRule::Plt10,
            _ => {
                unsupported.cfa_expression += 1;
                return UNSUPPORTED;
            }
        },
    };
    // x86-64's call pushes the return address just below the CFA; no rule
    // means that default (as `CallFrameInfo::rule_at` reads it too).
    if !matches!(return_address, None | Some(RegisterRule::Offset(-8))) {
        unsupported.return_address += 1;
        return UNSUPPORTED;
    }
    let rbp = match row.register(X86_64::RBP) {
        None | Some(RegisterRule::SameValue) => RbpRule::Unchanged,
        Some(RegisterRule::Offset(n)) => i16::try_from(n).map_or(RbpRule::Unknown, RbpRule::SavedAt),
        Some(_) => RbpRule::Unknown,
    };
    let rbx = match row.register(gimli::Register(RBX)) {
        None | Some(RegisterRule::SameValue) => RbxRule::Unchanged,
        Some(RegisterRule::Offset(n)) => i16::try_from(n).map_or(RbxRule::Unknown, RbxRule::SavedAt),
        Some(_) => RbxRule::Unknown,
    };
    (cfa, rbp, rbx)
}

/// Builds a table from rules over address ranges given in increasing order:
/// a `None` row where a range does not start at the end of the one before,
/// one row per run of equal rules.
#[derive(Debug)]
struct RowSink {
    rows: Vec<UnwindRow>,
    /// The end of the last range pushed.
    covered_to: Option<u64>,
    /// The most rows allowed (more is an error).
    limit: usize,
}

impl RowSink {
    fn new(limit: usize) -> Self {
        Self { rows: Vec::new(), covered_to: None, limit }
    }

    /// The rule over [start, end), a range at or after the last one pushed
    /// (an overlapping part is dropped).
    fn push(&mut self, start: u64, end: u64, rule: Rule) -> Result<(), String> {
        let start = match self.covered_to {
            Some(to) if to > start => to,
            Some(to) if to < start => {
                self.row(to, NO_RULE)?;
                start
            }
            _ => start,
        };
        if start < end {
            self.row(start, rule)?;
            self.covered_to = Some(end);
        }
        Ok(())
    }

    /// A row at `pc`, above every row so far; dropped if its rule is the
    /// one in force already (a `None` before any row is).
    fn row(&mut self, pc: u64, (cfa, rbp, rbx): Rule) -> Result<(), String> {
        let in_force = self.rows.last().map_or(NO_RULE, UnwindRow::rule);
        if in_force == (cfa, rbp, rbx) {
            return Ok(());
        }
        if self.rows.last().is_some_and(|last| last.pc >= pc) {
            return Err(format!("internal error: unwind rows out of order at {pc:#x}"));
        }
        if self.rows.len() >= self.limit {
            return Err(format!("more than {} unwind rows", self.limit));
        }
        self.rows.push(UnwindRow { pc, cfa, rbp, rbx });
        Ok(())
    }

    /// The rows, ended by a `None` row after the last range.
    fn finish(mut self) -> Result<Vec<UnwindRow>, String> {
        if let Some(to) = self.covered_to {
            self.row(to, NO_RULE)?;
        }
        Ok(self.rows)
    }
}

/// Two tables in one: `first`'s rule wherever it has one (not `None`),
/// `second`'s elsewhere.
fn overlay(first: &[UnwindRow], second: &[UnwindRow]) -> Result<Vec<UnwindRow>, String> {
    let mut sink = RowSink::new(MAX_UNWIND_ROWS);
    let (mut i, mut j) = (0, 0);
    let (mut rule_first, mut rule_second) = (NO_RULE, NO_RULE);
    while i < first.len() || j < second.len() {
        let pc = match (first.get(i), second.get(j)) {
            (Some(a), Some(b)) => a.pc.min(b.pc),
            (Some(a), None) => a.pc,
            (None, Some(b)) => b.pc,
            (None, None) => break,
        };
        if let Some(a) = first.get(i).filter(|a| a.pc == pc) {
            rule_first = a.rule();
            i += 1;
        }
        if let Some(b) = second.get(j).filter(|b| b.pc == pc) {
            rule_second = b.rule();
            j += 1;
        }
        sink.row(pc, if rule_first.0 == CfaRule::None { rule_second } else { rule_first })?;
    }
    Ok(sink.rows)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::unwind::cfi::{CallerBp, CfaBase, FrameRule};

    const RSP8: Rule = alone(CfaRule::Rsp(8));
    const RSP16: Rule = (CfaRule::Rsp(16), RbpRule::SavedAt(-16), RbxRule::Unchanged);

    fn row(pc: u64, (cfa, rbp, rbx): Rule) -> UnwindRow {
        UnwindRow { pc, cfa, rbp, rbx }
    }

    #[test]
    fn ranges_become_rows_with_gaps_and_merged_runs() {
        let mut sink = RowSink::new(100);
        sink.push(0x10, 0x14, RSP8).unwrap();
        sink.push(0x14, 0x18, RSP16).unwrap();
        // The same rule again: no row.
        sink.push(0x18, 0x20, RSP16).unwrap();
        // A gap from 0x20.
        sink.push(0x30, 0x38, RSP8).unwrap();
        // Overlapping the range before: only 0x38.. counts.
        sink.push(0x34, 0x40, RSP16).unwrap();
        // Empty ranges add nothing.
        sink.push(0x40, 0x40, RSP8).unwrap();
        let rows = sink.finish().unwrap();
        assert_eq!(
            rows,
            [
                row(0x10, RSP8),
                row(0x14, RSP16),
                row(0x20, NO_RULE),
                row(0x30, RSP8),
                row(0x38, RSP16),
                row(0x40, NO_RULE)
            ]
        );
        assert!(RowSink::new(100).finish().unwrap().is_empty());
    }

    #[test]
    fn the_row_limit_is_an_error() {
        let mut sink = RowSink::new(3);
        sink.push(0, 1, RSP8).unwrap();
        sink.push(1, 2, RSP16).unwrap();
        sink.push(2, 3, RSP8).unwrap();
        // Equal rules do not count.
        sink.push(3, 4, RSP8).unwrap();
        assert!(sink.push(4, 5, RSP16).is_err());
        // Three rows of rules and no room for the final `None`.
        let mut sink = RowSink::new(3);
        (0..3).for_each(|i| sink.push(i, i + 1, if i % 2 == 0 { RSP8 } else { RSP16 }).unwrap());
        assert!(sink.finish().is_err());
    }

    /// `.eh_frame`'s rules win; `.debug_frame`'s fill its gaps.
    #[test]
    fn overlay_takes_the_second_table_only_where_the_first_has_nothing() {
        let eh = [row(0x10, RSP8), row(0x20, NO_RULE), row(0x30, RSP16), row(0x40, NO_RULE)];
        let debug = [row(0x18, RSP16), row(0x38, NO_RULE), row(0x50, RSP8), row(0x60, NO_RULE)];
        let rows = overlay(&eh, &debug).unwrap();
        assert_eq!(rows, [row(0x10, RSP8), row(0x20, RSP16), row(0x40, NO_RULE), row(0x50, RSP8), row(0x60, NO_RULE)]);
    }

    #[test]
    fn code_ranges_are_joined_and_searched() {
        let code = coalesce(vec![(0x50, 0x60), (0x10, 0x20), (0x18, 0x30), (0x30, 0x40), (0x70, 0x70)]);
        assert_eq!(code, [(0x10, 0x40), (0x50, 0x60)]);
        let ends: Vec<_> = [0x0f, 0x10, 0x3f, 0x40, 0x55, 0x60, 0x70].iter().map(|&a| code_end(&code, a)).collect();
        assert_eq!(ends, [None, Some(0x40), Some(0x40), None, Some(0x60), None, None]);
    }

    #[test]
    fn overlapping_fdes_are_cut_at_the_later_start() {
        let range = |start, end, offset| FdeRange { start, end, offset };
        let mut fdes = [
            range(0x300, 0x380, 5),
            range(0x100, 0x200, 1),
            // Inside the one before.
            range(0x180, 0x190, 2),
            // The same start as the next one, earlier in the section.
            range(0x200, 0x280, 3),
            range(0x200, 0x240, 4),
        ];
        assert_eq!(sort_and_cut_overlaps(&mut fdes), 2);
        let cut: Vec<_> = fdes.iter().map(|f| (f.start, f.end, f.offset)).collect();
        assert_eq!(
            cut,
            [(0x100, 0x180, 1), (0x180, 0x190, 2), (0x200, 0x200, 3), (0x200, 0x240, 4), (0x300, 0x380, 5)]
        );
    }

    /// How the row found for an address relates to what the user-space
    /// unwinder's `rule_at` says there: `Ok(None)` the same, `Ok(Some(why))`
    /// a deliberate difference, `Err` a disagreement.
    fn compare(row: &UnwindRow, rule: Option<FrameRule>) -> Result<Option<&'static str>, String> {
        let differ = || Err(format!("table {row:?}, rule_at {rule:?}"));
        match (row.cfa, rule) {
            (CfaRule::None, None) => Ok(None),
            // rule_at does not evaluate CFA expressions.
            (CfaRule::Plt11 | CfaRule::Plt10, None) => Ok(Some("PLT expression")),
            // Whatever the rules of a signal frame say.
            (CfaRule::Signal, _) => Ok(Some("signal frame")),
            (CfaRule::Outermost, Some(rule)) if rule.return_address_at.is_none() => Ok(None),
            (CfaRule::Unsupported, None) => Ok(Some("unsupported, rule_at has none")),
            // rule_at follows rsp and rbp only.
            (CfaRule::Register { .. }, None) => Ok(Some("CFA from another register")),
            (CfaRule::Unsupported, Some(rule))
                if rule.return_address_at != Some(-8) || i32::try_from(rule.cfa_offset).is_err() =>
            {
                Ok(Some("unsupported, rule_at has one"))
            }
            (CfaRule::Rsp(n) | CfaRule::Rbp(n), Some(rule)) => {
                let base = if matches!(row.cfa, CfaRule::Rsp(_)) { CfaBase::Sp } else { CfaBase::Bp };
                if rule.cfa_base != base || rule.cfa_offset != i64::from(n) || rule.return_address_at != Some(-8) {
                    return differ();
                }
                match (row.rbp, rule.caller_bp) {
                    (RbpRule::Unchanged, CallerBp::Unchanged) => Ok(None),
                    (RbpRule::SavedAt(a), CallerBp::SavedAt(b)) if i64::from(a) == b => Ok(None),
                    (RbpRule::Unknown, CallerBp::Is(_)) => Ok(Some("rbp = CFA + n (a value rule)")),
                    (RbpRule::Unknown, CallerBp::SavedAt(b)) if i16::try_from(b).is_err() => {
                        Ok(Some("rbp saved beyond i16"))
                    }
                    _ => differ(),
                }
            }
            // rule_at gives up on rbp rules it does not evaluate.
            (CfaRule::Rsp(_) | CfaRule::Rbp(_), None) if row.rbp == RbpRule::Unknown => {
                Ok(Some("rbp rule rule_at does not evaluate"))
            }
            _ => differ(),
        }
    }

    /// For every row: its first and last address and a few inside, the row
    /// a binary search finds is that row and agrees with `rule_at`, but
    /// for the deliberate differences, which are returned with counts.
    fn check_against_rule_at(path: &Path) -> BTreeMap<&'static str, usize> {
        let cfi = CallFrameInfo::load(path).unwrap();
        let table = compile(&cfi).unwrap();
        assert!(!table.rows.is_empty(), "{path:?}: {:?}", table.stats);
        let mut context = UnwindContext::new();
        let mut next = crate::unwind::pseudo_random(0x2545_f491_4f6c_dd1d);
        let mut deliberate = BTreeMap::new();
        let mut checked = 0;
        for (i, row) in table.rows.iter().enumerate() {
            // The last row (`None`) runs to the end of the address space.
            let end = table.rows.get(i + 1).map_or(row.pc.saturating_add(0x1000), |r| r.pc);
            let inside = (0..3).map(|_| row.pc + next() % (end - row.pc));
            for address in [row.pc, end - 1].into_iter().chain(inside) {
                assert_eq!(table.lookup(address), Some(row), "{path:?} at {address:#x}");
                match compare(row, cfi.rule_at(address, &mut context)) {
                    Ok(None) => {}
                    Ok(Some(why)) => *deliberate.entry(why).or_insert(0) += 1,
                    Err(e) => panic!("{path:?} at {address:#x}: {e}"),
                }
                checked += 1;
            }
        }
        println!("{path:?}: {checked} addresses in {} rows; deliberate differences {deliberate:?}", table.rows.len());
        deliberate
    }

    /// The same rules as the user-space unwinder's, except the PLT (rule_at
    /// evaluates no expression), `__restore_rt` (signal frame), and the
    /// unsupported rows (longjmp, setcontext, vfork).
    #[test]
    fn libc_rows_agree_with_rule_at() {
        let deliberate = check_against_rule_at(Path::new("/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(deliberate.contains_key("PLT expression"), "{deliberate:?}");
        assert!(deliberate.contains_key("signal frame"), "{deliberate:?}");
    }

    /// A non-PIE executable (Debian's python3 links libpython statically).
    #[test]
    fn python3_rows_agree_with_rule_at() {
        let deliberate = check_against_rule_at(&std::fs::canonicalize("/usr/bin/python3").unwrap());
        assert!(deliberate.keys().all(|&why| why == "PLT expression"), "{deliberate:?}");
    }

    #[test]
    fn this_test_binarys_rows_agree_with_rule_at() {
        check_against_rule_at(&std::env::current_exe().unwrap());
    }

    /// `.debug_frame` for the program's own functions, `.eh_frame` for the C
    /// runtime's: rule_at falls back from one to the other per address, the
    /// table per range.
    #[test]
    fn debug_frame_rows_agree_with_rule_at() {
        let dir = std::env::temp_dir().join(format!("unwind-table-debug-frame-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("basic");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/basic.c");
        let status = std::process::Command::new("gcc")
            .args(["-O2", "-g", "-fno-asynchronous-unwind-tables", "-o"])
            .arg(&exe)
            .arg(&source)
            .status()
            .unwrap();
        assert!(status.success());
        let table = compile(&CallFrameInfo::load(&exe).unwrap());
        check_against_rule_at(&exe);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(table.unwrap().stats.debug_frame_fdes > 0);
    }
}
