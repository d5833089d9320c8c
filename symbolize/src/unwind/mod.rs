//! DWARF unwinding of a copied user stack: from the registers of a sample
//! and the bytes above its stack pointer, the chain of return addresses,
//! following each function's call-frame information, and frame pointers only
//! where a function has none (JIT code, stripped `.eh_frame`).

mod cfi;
mod leaf;
mod process;
mod table;

use std::collections::HashMap;
use std::rc::Rc;

use gimli::UnwindContext;

use crate::snapshot::FileKey;
pub(crate) use cfi::CallFrameInfo;
pub use cfi::MAX_SECTION_BYTES as MAX_CFI_SECTION_BYTES;
use cfi::{CallerBp, CfaBase, FrameRule};
pub use leaf::LeafFrame;
pub(crate) use leaf::leaf_frame;
pub(crate) use process::{CfiFiles, ProcessCode};
pub(crate) use table::compile;
pub use table::{
    CfaRule, KERNEL_ROW_BYTES, MAX_UNWIND_ROWS, RbpRule, RbxRule, RowKinds, UnsupportedRules, UnwindRow, UnwindTable,
    UnwindTableStats, compile_unwind_table,
};

/// The user registers a sample starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRegisters {
    pub ip: u64,
    pub sp: u64,
    /// `None` when not known (`/proc/PID/task/TID/syscall` gives only sp
    /// and ip): a frame that needs it is found by scanning the stack.
    pub bp: Option<u64>,
}

/// Why an unwind stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnwindEnd {
    /// The outermost frame (its CFI marks no return address, or it is 0):
    /// the stack is complete.
    Complete,
    /// A saved register lies above the copied part of the stack.
    StackCopyEnd,
    /// No CFI and no usable frame pointer for an address.
    NoUnwindInfo,
    /// A return address outside every executable mapping (a corrupt or
    /// misread frame): the frames up to it are kept.
    BadReturnAddress,
    /// The stack pointer did not move up: a loop.
    NoProgress,
    /// The frame limit was reached.
    DepthLimit,
}

/// The result of one unwind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwound {
    /// The sampled instruction pointer, then return addresses, leaf first
    /// (as the kernel's stack walker reports them).
    pub frames: Vec<u64>,
    pub end: UnwindEnd,
    /// Frames found through a frame pointer for lack of CFI.
    pub by_frame_pointer: u32,
}

/// Where code addresses are, for the unwinder.
pub(crate) trait CodeLocator {
    /// Whether `addr` is in an executable mapping (a plausible return address).
    fn is_code(&self, addr: u64) -> bool;
    /// The file holding `addr` (by identity), its CFI, and the address
    /// inside it as the CFI sees it. `None` outside executable file mappings
    /// (anonymous JIT code) or for a file without usable CFI.
    fn locate(&mut self, addr: u64) -> Option<(FileKey, Rc<CallFrameInfo>, u64)>;
}

/// Rules already computed, per (file key, address): one CFI evaluation per
/// distinct code address over a whole recording.
#[derive(Default)]
pub(crate) struct RuleCache {
    rules: HashMap<(FileKey, u64), Option<FrameRule>>,
    context: Option<Box<UnwindContext<usize>>>,
}

impl std::fmt::Debug for RuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleCache").field("rules", &self.rules.len()).finish()
    }
}

impl RuleCache {
    fn rule(&mut self, locator: &mut impl CodeLocator, pc: u64) -> Option<FrameRule> {
        let (file, cfi, address) = locator.locate(pc)?;
        let context = self.context.get_or_insert_with(|| Box::new(UnwindContext::new()));
        *self.rules.entry((file, address)).or_insert_with(|| cfi.rule_at(address, context))
    }
}

/// The copied stack: `bytes` start at the sample's stack pointer.
struct StackCopy<'a> {
    base: u64,
    bytes: &'a [u8],
}

impl StackCopy<'_> {
    fn read(&self, addr: u64) -> Option<u64> {
        let offset = usize::try_from(addr.checked_sub(self.base)?).ok()?;
        let word = self.bytes.get(offset..offset.checked_add(8)?)?;
        Some(u64::from_le_bytes(word.try_into().ok()?))
    }
}

/// Unwinds at most `max_frames` frames.
pub(crate) fn unwind(
    locator: &mut impl CodeLocator,
    cache: &mut RuleCache,
    regs: UserRegisters,
    stack: &[u8],
    max_frames: usize,
) -> Unwound {
    let memory = StackCopy { base: regs.sp, bytes: stack };
    let mut frames = vec![regs.ip];
    let mut by_frame_pointer = 0;
    let (mut pc, mut sp, mut bp) = (regs.ip, regs.sp, regs.bp);
    let end = loop {
        if frames.len() >= max_frames {
            break UnwindEnd::DepthLimit;
        }
        // A return address points after its call: look up the call itself
        // (a call that never returns may be the last instruction of a function).
        let lookup = if frames.len() == 1 { pc } else { pc - 1 };
        let rule = cache.rule(locator, lookup);
        let needs_bp = rule.is_none_or(|r| r.cfa_base == CfaBase::Bp);
        if needs_bp && bp.is_none() {
            bp = scan_for_frame(locator, &memory, sp);
        }
        let (step, via_frame_pointer) = match (rule, bp) {
            (Some(rule), _) => (step_by_rule(&rule, &memory, sp, bp), false),
            (None, Some(bp)) => (step_by_frame_pointer(&memory, sp, bp), true),
            (None, None) => (Err(UnwindEnd::NoUnwindInfo), true),
        };
        let (return_address, caller_sp, caller_bp) = match step {
            Ok(step) => step,
            Err(end) => break end,
        };
        if return_address == 0 {
            break UnwindEnd::Complete;
        }
        if caller_sp <= sp {
            break UnwindEnd::NoProgress;
        }
        if !locator.is_code(return_address) {
            break UnwindEnd::BadReturnAddress;
        }
        frames.push(return_address);
        by_frame_pointer += via_frame_pointer as u32;
        (pc, sp, bp) = (return_address, caller_sp, caller_bp);
    };
    Unwound { frames, end, by_frame_pointer }
}

type Step = Result<(u64, u64, Option<u64>), UnwindEnd>;

fn step_by_rule(rule: &FrameRule, memory: &StackCopy, sp: u64, bp: Option<u64>) -> Step {
    let base = match rule.cfa_base {
        CfaBase::Sp => sp,
        CfaBase::Bp => bp.ok_or(UnwindEnd::NoUnwindInfo)?,
    };
    let cfa = base.wrapping_add_signed(rule.cfa_offset);
    let Some(at) = rule.return_address_at else { return Err(UnwindEnd::Complete) };
    let return_address = memory.read(cfa.wrapping_add_signed(at)).ok_or(UnwindEnd::StackCopyEnd)?;
    let caller_bp = match rule.caller_bp {
        CallerBp::Unchanged => bp,
        CallerBp::SavedAt(n) => Some(memory.read(cfa.wrapping_add_signed(n)).ok_or(UnwindEnd::StackCopyEnd)?),
        CallerBp::Is(n) => Some(cfa.wrapping_add_signed(n)),
    };
    Ok((return_address, cfa, caller_bp))
}

/// The classic frame: [bp] holds the caller's bp, [bp + 8] the return address.
/// A frame pointer of 0 marks the outermost frame (the x86-64 ABI's
/// convention, kept by glibc's `_start` and Go's runtime).
fn step_by_frame_pointer(memory: &StackCopy, sp: u64, bp: u64) -> Step {
    if bp == 0 {
        return Err(UnwindEnd::Complete);
    }
    if bp < sp {
        return Err(UnwindEnd::NoUnwindInfo);
    }
    let caller_bp = memory.read(bp).ok_or(UnwindEnd::NoUnwindInfo)?;
    let return_address = memory.read(bp + 8).ok_or(UnwindEnd::NoUnwindInfo)?;
    Ok((return_address, bp + 16, Some(caller_bp)))
}

/// With the frame pointer unknown, the nearest slot at or above `sp` that
/// looks like a frame record: a return address into code above it, and
/// below it a saved frame pointer that is 0 or points further up the copy.
/// A heuristic (as debuggers' stack scanning): it can take a stale record.
fn scan_for_frame(locator: &impl CodeLocator, memory: &StackCopy, sp: u64) -> Option<u64> {
    let end = memory.base.checked_add(memory.bytes.len() as u64)?;
    let mut slot = sp.checked_add(7)? & !7;
    while slot.checked_add(16)? <= end {
        let saved_bp = memory.read(slot)?;
        let return_address = memory.read(slot + 8)?;
        let plausible_bp = saved_bp == 0 || (saved_bp > slot && saved_bp < end);
        if plausible_bp && locator.is_code(return_address) {
            return Some(slot);
        }
        slot += 8;
    }
    None
}

/// Tests' source of reproducible pseudo-random numbers (xorshift64).
#[cfg(test)]
pub(crate) fn pseudo_random(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Code at 0x1000..0x9000, no CFI anywhere: the unwinder walks frame pointers.
    struct NoCfi;

    impl CodeLocator for NoCfi {
        fn is_code(&self, addr: u64) -> bool {
            (0x1000..0x9000).contains(&addr)
        }
        fn locate(&mut self, _: u64) -> Option<(FileKey, Rc<CallFrameInfo>, u64)> {
            None
        }
    }

    const SP: u64 = 0x7fff_0000;

    /// A stack copy of `words` 8-byte words from SP, with `(index, value)` set.
    fn stack(words: usize, set: &[(usize, u64)]) -> Vec<u8> {
        let mut bytes = vec![0u8; words * 8];
        for &(i, v) in set {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        bytes
    }

    fn run(regs: UserRegisters, bytes: &[u8], max: usize) -> Unwound {
        unwind(&mut NoCfi, &mut RuleCache::default(), regs, bytes, max)
    }

    #[test]
    fn follows_frame_pointers_where_there_is_no_cfi() {
        // Frame at word 4: caller's bp -> word 8, return 0x2200; frame at
        // word 8: bp 0 (outermost by convention), return 0x3300.
        let bytes = stack(12, &[(4, SP + 64), (5, 0x2200), (8, 0), (9, 0x3300)]);
        let u = run(UserRegisters { ip: 0x1100, sp: SP, bp: Some(SP + 32) }, &bytes, 127);
        assert_eq!(u.frames, [0x1100, 0x2200, 0x3300]);
        assert_eq!(u.by_frame_pointer, 2);
        assert_eq!(u.end, UnwindEnd::Complete);
    }

    #[test]
    fn a_return_address_outside_code_ends_the_walk() {
        let bytes = stack(8, &[(2, SP + 48), (3, 0x2200), (6, 0), (7, 0xdead_0000)]);
        let u = run(UserRegisters { ip: 0x1100, sp: SP, bp: Some(SP + 16) }, &bytes, 127);
        assert_eq!(u.frames, [0x1100, 0x2200]);
        assert_eq!(u.end, UnwindEnd::BadReturnAddress);
    }

    #[test]
    fn the_frame_limit_is_kept() {
        let bytes = stack(8, &[(2, SP + 48), (3, 0x2200), (6, 0), (7, 0x3300)]);
        let u = run(UserRegisters { ip: 0x1100, sp: SP, bp: Some(SP + 16) }, &bytes, 2);
        assert_eq!(u.frames, [0x1100, 0x2200]);
        assert_eq!(u.end, UnwindEnd::DepthLimit);
    }

    #[test]
    fn rules_read_the_return_address_and_saved_bp_relative_to_the_cfa() {
        // After `push rbp` in a function: CFA = sp + 16, RA at CFA - 8,
        // caller's rbp at CFA - 16.
        let rule = FrameRule {
            cfa_base: CfaBase::Sp,
            cfa_offset: 16,
            return_address_at: Some(-8),
            caller_bp: CallerBp::SavedAt(-16),
        };
        let bytes = stack(4, &[(0, 0xb0b0), (1, 0x4400)]);
        let memory = StackCopy { base: SP, bytes: &bytes };
        assert_eq!(step_by_rule(&rule, &memory, SP, Some(1)), Ok((0x4400, SP + 16, Some(0xb0b0))));
        // The same rule with the saved words past the end of the copy.
        let short = StackCopy { base: SP, bytes: &bytes[..8] };
        assert_eq!(step_by_rule(&rule, &short, SP, Some(1)), Err(UnwindEnd::StackCopyEnd));
        // The outermost frame has no return address.
        let outermost = FrameRule { return_address_at: None, ..rule };
        assert_eq!(step_by_rule(&outermost, &memory, SP, Some(1)), Err(UnwindEnd::Complete));
    }

    #[test]
    fn an_unknown_frame_pointer_is_found_by_scanning() {
        // Junk, then a frame record at word 3: saved bp -> word 7, return
        // 0x2200; at word 7: bp 0, return 0x3300.
        let bytes = stack(10, &[(0, 0x55), (1, 0xdead_0000), (3, SP + 56), (4, 0x2200), (7, 0), (8, 0x3300)]);
        let u = run(UserRegisters { ip: 0x1100, sp: SP, bp: None }, &bytes, 127);
        assert_eq!(u.frames, [0x1100, 0x2200, 0x3300]);
    }

    /// Garbage stacks (as a corrupt or racing copy gives) end the walk
    /// cleanly: no panic, no loop, never past the frame limit.
    #[test]
    fn random_stacks_end_cleanly() {
        let mut next = pseudo_random(0x2545_f491_4f6c_dd1d);
        for round in 0..2000 {
            let words = (next() % 64) as usize;
            let mut bytes = vec![0u8; words * 8];
            for word in bytes.chunks_mut(8) {
                // Mostly values that look like stack or code addresses.
                let v = match next() % 4 {
                    0 => SP + next() % 1024,
                    1 => 0x1000 + next() % 0x8000,
                    2 => 0,
                    _ => next(),
                };
                word.copy_from_slice(&v.to_le_bytes());
            }
            let bp = match round % 3 {
                0 => None,
                1 => Some(SP + next() % 512),
                _ => Some(next()),
            };
            let u = run(UserRegisters { ip: 0x1000 + next() % 0x8000, sp: SP, bp }, &bytes, 127);
            assert!(!u.frames.is_empty() && u.frames.len() <= 127, "round {round}: {u:?}");
        }
    }

    #[test]
    fn reads_outside_the_copy_fail() {
        let bytes = stack(2, &[(1, 7)]);
        let memory = StackCopy { base: SP, bytes: &bytes };
        assert_eq!(memory.read(SP + 8), Some(7));
        assert_eq!(memory.read(SP + 9), None);
        assert_eq!(memory.read(SP - 8), None);
        assert_eq!(memory.read(u64::MAX), None);
    }
}
