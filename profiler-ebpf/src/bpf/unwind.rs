//! Walking a user stack in the kernel with the unwind tables user space
//! loaded (`--call-graph table`): for each frame, find the mapping of the
//! address in the process's PROCESS_MAPPINGS entry, binary-search its file's
//! rows in UNWIND_ROWS for the rule in force there, and apply it: compute the
//! canonical frame address (CFA), read the return address below it and the
//! caller's rbp where the rule says it was saved. Code no table covers (JIT
//! code, files without call-frame information) is walked with its frame
//! pointer. Every walk ends under exactly one counter.
use aya_ebpf::{
    EbpfContext,
    bindings::BPF_F_USER_STACK,
    helpers::{bpf_get_current_comm, bpf_ktime_get_ns, generated::bpf_probe_read_user},
    macros::map,
    maps::{PerCpuArray, ProgramArray},
};
use profiler_ebpf::{
    LEAF_WORDS, MAX_STACK_DEPTH, ProcessMappings, ProcessNotice, StackKey, UnwindMapping, UnwindRow, capture, counter,
    marker, notice,
    unwind::{
        MAPPING_STEPS, MAX_MAPPINGS, PT_REGS_RBX, PT_REGS_WORDS, REFRESH_INTERVAL_NS, SEARCH_STEPS, cfa, file_key, rbp,
        rbx,
    },
};

use super::{
    maps::{BROKEN_CHAINS, NEW_PROCESSES, PROCESS_MAPPINGS, UNWIND_ROWS, add_to, bump},
    process::Process,
    registers::{LeafRegisters, PT_REGS_RBP, PT_REGS_RIP, PT_REGS_RSP},
    stack::{FaultCounters, read_stack},
};

/// Where `uc_mcontext`'s saved rbp, rsp and rip are, from the stack pointer
/// at a signal trampoline (x86-64 `struct ucontext`: mcontext at +40; gregs
/// REG_RBP = 10, REG_RSP = 15, REG_RIP = 16).
const SIGNAL_RBP_AT: u64 = 40 + 10 * 8;
const SIGNAL_RSP_AT: u64 = 40 + 15 * 8;
const SIGNAL_RIP_AT: u64 = 40 + 16 * 8;
/// ... and rbx (REG_RBX = 11).
const SIGNAL_RBX_AT: u64 = 40 + 11 * 8;

/// `WalkState::rbx_at`: the caller's rbx is still the first frame's (in
/// `WalkState::leaf`).
const RBX_IN_LEAF: u64 = 0;
/// `WalkState::rbx_at`: rbx is unknown from here on.
const RBX_UNKNOWN: u64 = u64::MAX;

/// Frames walked per program run; the walker tail-calls itself for more
/// (a run's verification cost grows with the frames it walks, and the
/// verifier caps it; the 32 tail calls after the sampler allow 128 frames,
/// one more than the 127 kept; each run is verified once, at load: fewer
/// frames a run verify faster).
const FRAMES_PER_RUN: u32 = 4;

/// The walker's slot in its program array.
pub const WALKER: u32 = 0;

/// The state of a walk between tail calls (per CPU: a walk runs on one CPU,
/// its runs one after the other).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct WalkState {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub depth: u32,
    /// 1: look up `ip` itself (the first frame, or one a signal
    /// interrupted); 0: `ip` is a return address, look up the byte before.
    pub exact: u32,
    /// Off-CPU: the thread whose block is recorded.
    pub tid: u32,
    /// 1: an address outside the process's known mappings was met.
    pub outside_mappings: u32,
    /// Where the last frame walked was (`unwind::file_key`): if the walk
    /// stops there short of the outermost frame, the file is blamed.
    pub last_file: u32,
    /// 1: the walk ended at a CFA from a register whose value it did not know.
    pub register_unknown: u32,
    /// Where the current frame's rbx is: RBX_IN_LEAF, RBX_UNKNOWN, or the
    /// user address a callee saved it at (read only when a rule needs it:
    /// most frames save rbx, few rules use it).
    pub rbx_at: u64,
    /// The first frame's registers (`pt_regs` words): a CFA from any of
    /// them is known there.
    pub leaf: [u64; PT_REGS_WORDS],
}

#[map]
static WALK_STATE: PerCpuArray<WalkState> = PerCpuArray::with_max_entries(1, 0);

/// Slots of the lookup cache (a power of two).
const CACHE_SLOTS: usize = 256;

/// What the mapping and row searches found for one code address of one
/// version of a process's mappings. Hot stacks repeat: most frames of a
/// sample were looked up by an earlier sample on the same CPU.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CachedLookup {
    /// The address looked up (a runtime address; 0: empty slot).
    pub pc: u64,
    pub tgid: u32,
    /// `ProcessMappings::generation` of the mappings it was found in.
    pub generation: u32,
    /// `WalkState::last_file` for a frame there.
    pub file: u32,
    /// A `found::*` value.
    pub found: u32,
    pub row: UnwindRow,
}

/// `CachedLookup::found`.
mod found {
    /// A mapping with a table, and the row in force at the address.
    pub const ROW: u32 = 1;
    /// A mapping with a table, but no row at the address.
    pub const NO_ROW: u32 = 2;
    /// A mapping without a table: the frame pointer.
    pub const NO_TABLE: u32 = 3;
}

#[repr(C)]
pub struct LookupCache {
    pub slots: [CachedLookup; CACHE_SLOTS],
}

#[map]
static LOOKUP_CACHE: PerCpuArray<LookupCache> = PerCpuArray::with_max_entries(1, 0);

/// The walker programs, one array per program type: the kernel ties a
/// program array to the type of the first program that uses it (a tail
/// call stays within one type). User space fills the slots.
#[map]
pub static ON_CPU_WALKERS: ProgramArray = ProgramArray::with_max_entries(1, 0);
#[map]
pub static OFF_CPU_WALKERS: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// Fills `key` with the current task and its kernel stack (unless
/// `kernel_mode` is false: a sample taken in user mode has none), and
/// zeroes its user stack, so that keys built in a reused scratch compare
/// byte for byte whatever the walk writes after.
#[inline(always)]
pub fn capture_task_and_kernel<C: EbpfContext>(
    ctx: &C,
    key: &mut StackKey,
    process: Process,
    capture_bits: u32,
    kernel_mode: bool,
    faults: &FaultCounters,
) {
    key.tgid = process.tgid;
    key.started_ns = process.started_ns;
    key.mappings_since_ns = process.mappings_since_ns;
    key.marker = marker::NONE;
    key.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    key.leaf_words = [0; LEAF_WORDS];
    if capture_bits & capture::KERNEL != 0 && kernel_mode {
        // bpf_get_stack zeroes what it does not fill.
        key.kernel_depth = read_stack(ctx, key.kernel.as_mut_ptr(), 0, faults.kernel);
    } else {
        key.kernel_depth = 0;
        key.kernel = [0; MAX_STACK_DEPTH];
    }
    key.user_depth = 0;
    key.user = [0; MAX_STACK_DEPTH];
}

/// Starts the user part of `key` from the user registers `regs` (ip 0: no
/// user context, a kernel thread: no user stack). Returns true when a table
/// walk was set up and the caller must tail-call its walker; false when the
/// user part is already complete: not captured, no user context, or a
/// process without tables yet, whose stack the kernel's frame-pointer walk
/// gives instead.
#[inline(always)]
pub fn start_user_walk<C: EbpfContext>(
    ctx: &C,
    key: &mut StackKey,
    capture_bits: u32,
    regs: LeafRegisters,
    tid: u32,
    faults: &FaultCounters,
) -> bool {
    if capture_bits & capture::USER == 0 {
        return false;
    }
    let Some(state) = WALK_STATE.get_ptr_mut(0) else {
        bump(counter::SCRATCH_UNAVAILABLE);
        return false;
    };
    // SAFETY: this CPU's WALK_STATE slot: non-null, aligned and alive for
    // the run; only the programs of one walk use it, one after the other on
    // this CPU (a walk's runs are tail calls of one another), so nothing
    // else writes it meanwhile. This is the only reference to it here.
    let state = unsafe { &mut *state };
    regs.copy_to(&mut state.leaf);
    let ip = state.leaf[PT_REGS_RIP];
    if ip == 0 {
        return false;
    }
    if !mappings_of(key) {
        bump(counter::UNWIND_NOT_LOADED);
        key.user_depth = read_stack(ctx, key.user.as_mut_ptr(), BPF_F_USER_STACK as u64, faults.user);
        return false;
    }
    state.ip = ip;
    state.sp = state.leaf[PT_REGS_RSP];
    state.bp = state.leaf[PT_REGS_RBP];
    state.depth = 0;
    state.exact = 1;
    state.tid = tid;
    state.outside_mappings = 0;
    state.last_file = file_key::OUTSIDE_MAPPINGS;
    state.register_unknown = 0;
    state.rbx_at = RBX_IN_LEAF;
    true
}

/// Whether PROCESS_MAPPINGS holds the mappings of the key's process (not
/// of an earlier one with the same pid).
#[inline(always)]
fn mappings_of(key: &StackKey) -> bool {
    tables_loaded(key.tgid, key.started_ns)
}

/// Whether user space has loaded the tables of process `tgid` started at
/// `started_ns` (not those of an earlier process with the same pid).
#[inline(always)]
pub fn tables_loaded(tgid: u32, started_ns: u64) -> bool {
    let Some(entry) = PROCESS_MAPPINGS.get_ptr(&tgid) else { return false };
    // SAFETY: a non-null pointer from a hash-map lookup stays valid for this
    // run (RCU, point 1 in maps.rs); one u64 is copied out. User space may
    // rewrite the entry meanwhile: then the copy is the old or the new
    // start, and the walk uses whichever mappings it finds (each field it
    // reads is bounds-checked).
    let started = unsafe { (*entry).started_ns };
    started == 0 || started == started_ns
}

/// The thread a walk records (off-CPU), 0 if unknown.
#[inline(always)]
pub fn walk_tid() -> u32 {
    WALK_STATE.get(0).map_or(0, |state| state.tid)
}

/// Walks up to FRAMES_PER_RUN more frames of the walk in WALK_STATE into
/// `key.user`. Returns true when the walk has ended (its end counted and
/// `key.user_depth` set); false when the caller must tail-call the walker
/// again.
#[inline(always)]
pub fn continue_walk(key: &mut StackKey) -> bool {
    walk_on(key, |_| false) != Walked::Going
}

/// Where a run of the walker left its walk.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Walked {
    /// More frames to walk: the caller tail-calls the walker again.
    Going,
    /// Ended: counted, `key.user_depth` set.
    Ended,
    /// Cut at code outside every mapping the tables know, and
    /// `copy_instead` sent the sample to be unwound in user space: the
    /// caller drops the walk (counted as such, not as a walk).
    Copied,
}

/// [`continue_walk`], where a walk cut at code outside every known mapping
/// is offered to `copy_instead` first. Such code is mostly a library whose
/// tables user space has not loaded yet (a process's first tens of
/// milliseconds, a `dlopen`): the frames beyond it are in the stack, and
/// user space unwinds a copy of it from the files themselves.
#[inline(always)]
pub fn walk_on(key: &mut StackKey, copy_instead: impl FnOnce(&StackKey) -> bool) -> Walked {
    let Some(state) = WALK_STATE.get_ptr_mut(0) else {
        finish(key, 0, counter::SCRATCH_UNAVAILABLE);
        return Walked::Ended;
    };
    // SAFETY: as in `start_user_walk`: this CPU's slot, used by this walk
    // alone; this is the only reference to it while it lives.
    let state = unsafe { &mut *state };
    let Some(process) = PROCESS_MAPPINGS.get_ptr(&key.tgid) else {
        // Removed between runs: end with what was walked.
        finish(key, state.depth, counter::UNWIND_NOT_LOADED);
        return Walked::Ended;
    };
    // SAFETY: a non-null pointer from a hash-map lookup stays valid for this
    // whole program run (map values are freed only after an RCU grace period,
    // and a BPF program runs inside one). User space may rewrite the entry
    // concurrently; every field read from it is bounds-checked before use,
    // so a torn read gives a wrong frame at worst, never an invalid access.
    let process = unsafe { &*process };
    let Some(cache) = LOOKUP_CACHE.get_ptr_mut(0) else {
        finish(key, state.depth, counter::SCRATCH_UNAVAILABLE);
        return Walked::Ended;
    };
    // SAFETY: this CPU's LOOKUP_CACHE slot: non-null, aligned and alive for
    // the run; only walks use it, and walks do not overlap on a CPU (the
    // same reasoning as WALK_STATE's). Any bytes are valid lookups (a
    // stale or torn slot fails the pc, tgid and generation check, or names
    // a row of the same version of the mappings).
    let cache = unsafe { &mut *cache };
    let mut end = None;
    for _ in 0..FRAMES_PER_RUN {
        end = step(process, key.tgid, cache, state, &mut key.user);
        if end.is_some() {
            break;
        }
    }
    if end.is_none() && state.depth as usize >= MAX_STACK_DEPTH {
        end = Some(counter::UNWIND_DEPTH_LIMIT);
    }
    let Some(end) = end else { return Walked::Going };
    if state.outside_mappings != 0 {
        ask_refresh(process, key.tgid, key.started_ns);
    }
    // The frame-pointer step is what ends a walk outside the mappings.
    if end == counter::UNWIND_NO_INFO && state.last_file == file_key::OUTSIDE_MAPPINGS && copy_instead(key) {
        bump(counter::UNWIND_COPIED_AT_UNKNOWN_CODE);
        return Walked::Copied;
    }
    finish(key, state.depth, end);
    if state.register_unknown != 0 {
        bump(counter::UNWIND_REGISTER_UNKNOWN);
    }
    if end == counter::UNWIND_NO_INFO || end == counter::UNWIND_BAD_FRAME {
        // Counted, not lost, if the map is full: the walk's end is counted.
        let _ = add_to(&BROKEN_CHAINS, &state.last_file, 1);
    }
    Walked::Ended
}

/// Ends a walk: `depth` frames, counted under `end`.
#[inline(always)]
pub fn finish(key: &mut StackKey, depth: u32, end: u32) {
    key.user_depth = if (depth as usize) < MAX_STACK_DEPTH { depth } else { MAX_STACK_DEPTH as u32 };
    bump(end);
}

/// One frame: records `state.ip` and moves the state to the caller.
/// Returns how the walk ended, if it did.
#[inline(always)]
fn step(
    process: &ProcessMappings,
    tgid: u32,
    cache: &mut LookupCache,
    state: &mut WalkState,
    frames: &mut [u64; MAX_STACK_DEPTH],
) -> Option<u32> {
    let (ip, sp, bp) = (state.ip, state.sp, state.bp);
    if ip == 0 {
        return Some(counter::UNWIND_COMPLETE);
    }
    let slot = state.depth as usize;
    if slot >= MAX_STACK_DEPTH {
        return Some(counter::UNWIND_DEPTH_LIMIT);
    }
    // The first frame's registers are all known (the sample's own).
    let at_leaf = slot == 0;
    frames[slot] = ip;
    state.depth += 1;
    // A return address points after its call: look up the byte before it,
    // except for the first frame and for a frame a signal interrupted.
    let lookup = if state.exact != 0 { ip } else { ip - 1 };
    state.exact = 0;
    let slot = &mut cache.slots[slot_of(lookup, tgid)];
    if !(slot.pc == lookup && slot.tgid == tgid && slot.generation == process.generation && slot.found != 0) {
        let Some(mapping) = find_mapping(process, lookup) else {
            // Asked once the walk ends: a helper call in this per-frame path
            // multiplies the verifier's states past its limit.
            state.outside_mappings = 1;
            state.last_file = file_key::OUTSIDE_MAPPINGS;
            return frame_pointer_step(state);
        };
        let (file, found, row) = match mapping.rows {
            0 => (file_key::NO_TABLE, found::NO_TABLE, UnwindRow::default()),
            rows => {
                let row = match lookup.checked_sub(mapping.load_bias) {
                    Some(pc) if pc <= u32::MAX as u64 => find_row(mapping.first_row, rows, pc as u32),
                    _ => None,
                };
                let found = if row.is_some() { found::ROW } else { found::NO_ROW };
                (mapping.first_row.wrapping_add(1), found, row.unwrap_or_default())
            }
        };
        *slot = CachedLookup { pc: lookup, tgid, generation: process.generation, file, found, row };
    }
    state.last_file = slot.file;
    let row = match slot.found {
        found::ROW => slot.row,
        // A file with a table, at an address before its first row.
        found::NO_ROW => return Some(counter::UNWIND_NO_INFO),
        _ => return frame_pointer_step(state),
    };
    let frame = match row.cfa_rule {
        cfa::RSP => sp.wrapping_add(row.cfa_offset as i64 as u64),
        cfa::RBP => bp.wrapping_add(row.cfa_offset as i64 as u64),
        cfa::PLT_11 => sp.wrapping_add(if ip & 15 >= 11 { 16 } else { 8 }),
        cfa::PLT_10 => sp.wrapping_add(if ip & 15 >= 10 { 16 } else { 8 }),
        cfa::REGISTER => match register_value(state, at_leaf, row.cfa_register) {
            Some(base) => base.wrapping_add(row.cfa_offset as i64 as u64),
            None => {
                // Counted when the walk ends: a helper call here multiplies
                // the verifier's states.
                state.register_unknown = 1;
                return Some(counter::UNWIND_BAD_FRAME);
            }
        },
        cfa::SIGNAL => {
            let (Some(rip), Some(rsp), Some(rbp)) = (
                read_user(sp.wrapping_add(SIGNAL_RIP_AT)),
                read_user(sp.wrapping_add(SIGNAL_RSP_AT)),
                read_user(sp.wrapping_add(SIGNAL_RBP_AT)),
            ) else {
                return Some(counter::UNWIND_BAD_FRAME);
            };
            // The interrupted instruction itself, not a return address.
            state.exact = 1;
            state.ip = rip;
            state.sp = rsp;
            state.bp = rbp;
            state.rbx_at = sp.wrapping_add(SIGNAL_RBX_AT);
            return None;
        }
        cfa::OUTERMOST => return Some(counter::UNWIND_COMPLETE),
        cfa::NONE => return Some(counter::UNWIND_NO_INFO),
        _ => return Some(counter::UNWIND_BAD_FRAME),
    };
    // The caller's frame is above this one: a CFA at or below the stack
    // pointer means a wrong rule or a corrupt stack, and would loop.
    if frame <= sp {
        return Some(counter::UNWIND_BAD_FRAME);
    }
    let Some(return_address) = read_user(frame - 8) else {
        return Some(counter::UNWIND_BAD_FRAME);
    };
    state.bp = match row.rbp_rule {
        rbp::UNCHANGED => bp,
        rbp::AT_CFA_OFFSET => match read_user(frame.wrapping_add(row.rbp_offset as i64 as u64)) {
            Some(saved) => saved,
            None => return Some(counter::UNWIND_BAD_FRAME),
        },
        _ => 0,
    };
    state.rbx_at = match row.rbx_rule {
        rbx::UNCHANGED => state.rbx_at,
        rbx::AT_CFA_OFFSET => frame.wrapping_add(row.rbx_offset as i64 as u64),
        _ => RBX_UNKNOWN,
    };
    state.sp = frame;
    state.ip = return_address;
    None
}

/// The value of the register a `cfa::REGISTER` row names (its `pt_regs`
/// word), where the walk knows it: rbx wherever its saves were followed,
/// any register at the first frame. None elsewhere.
#[inline(always)]
fn register_value(state: &WalkState, at_leaf: bool, word: u8) -> Option<u64> {
    if word == PT_REGS_RBX {
        return match state.rbx_at {
            RBX_IN_LEAF => Some(state.leaf[PT_REGS_RBX as usize]),
            RBX_UNKNOWN => None,
            saved_at => read_user(saved_at),
        };
    }
    if at_leaf { state.leaf.get(word as usize).copied() } else { None }
}

/// A frame in code no table covers: its frame pointer, if it keeps one.
#[inline(always)]
fn frame_pointer_step(state: &mut WalkState) -> Option<u32> {
    let (sp, bp) = (state.sp, state.bp);
    if bp == 0 {
        return Some(counter::UNWIND_COMPLETE);
    }
    let (Some(caller_bp), Some(return_address)) = (read_user(bp), read_user(bp.wrapping_add(8))) else {
        return Some(counter::UNWIND_NO_INFO);
    };
    if bp < sp || (caller_bp != 0 && caller_bp <= bp) {
        return Some(counter::UNWIND_NO_INFO);
    }
    bump(counter::UNWIND_FP_FRAMES);
    // Code without a table says nothing of where it saved rbx.
    state.rbx_at = RBX_UNKNOWN;
    state.sp = bp.wrapping_add(16);
    state.bp = caller_bp;
    state.ip = return_address;
    None
}

/// The lookup cache's slot for an address of a process.
#[inline(always)]
fn slot_of(pc: u64, tgid: u32) -> usize {
    let mixed = pc ^ (pc >> 9) ^ (pc >> 17) ^ u64::from(tgid);
    // Masked: the verifier sees an index inside the array.
    (mixed as usize) & (CACHE_SLOTS - 1)
}

/// Asks user space to read `tgid`'s mappings again (an address outside all
/// of them), at most once per REFRESH_INTERVAL_NS until it does.
#[inline(always)]
fn ask_refresh(process: &ProcessMappings, tgid: u32, started_ns: u64) {
    // SAFETY: bpf_ktime_get_ns takes no argument and touches no memory.
    let now = unsafe { bpf_ktime_get_ns() };
    let asked = process.refresh_asked_ns;
    if asked != 0 && now.wrapping_sub(asked) < REFRESH_INTERVAL_NS {
        return;
    }
    let field = core::ptr::addr_of!(process.refresh_asked_ns) as *mut u64;
    // SAFETY: `field` is inside the PROCESS_MAPPINGS value this program
    // looked up (valid for the run). Writing map values from BPF is allowed;
    // a race with another CPU or with user space rewriting the entry only
    // loses or repeats one request, which is harmless.
    unsafe { core::ptr::write_volatile(field, now) };
    let notice = ProcessNotice { tgid, kind: notice::REFRESH, started_ns, at_ns: 0 };
    let _ = NEW_PROCESSES.output::<ProcessNotice>(&notice, 0);
}

/// The mapping holding `address`, by binary search over the sorted mappings.
#[inline(always)]
fn find_mapping(process: &ProcessMappings, address: u64) -> Option<&UnwindMapping> {
    let count = if (process.count as usize) < MAX_MAPPINGS { process.count as usize } else { MAX_MAPPINGS };
    let (mut low, mut high) = (0usize, count);
    for _ in 0..=MAPPING_STEPS {
        if low >= high {
            return None;
        }
        let middle = (low + high) / 2;
        // Masked: the verifier sees an index inside the array.
        let mapping = &process.mappings[middle & (MAX_MAPPINGS - 1)];
        if address < mapping.start {
            high = middle;
        } else if address >= mapping.end {
            low = middle + 1;
        } else {
            return Some(mapping);
        }
    }
    None
}

/// The last row of the file's rows at or before `pc`.
#[inline(always)]
fn find_row(first: u32, count: u32, pc: u32) -> Option<UnwindRow> {
    // The answer is in [low, high).
    let (mut low, mut high) = (first, first.checked_add(count)?);
    for _ in 0..=SEARCH_STEPS {
        if high - low <= 1 {
            break;
        }
        let middle = low + (high - low) / 2;
        let row = UNWIND_ROWS.get(middle)?;
        if row.pc <= pc {
            low = middle;
        } else {
            high = middle;
        }
    }
    let row = *UNWIND_ROWS.get(low)?;
    (row.pc <= pc).then_some(row)
}

/// One word of user memory; None where it cannot be read.
#[inline(always)]
fn read_user(address: u64) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: the destination is a live u64 on this stack and exactly 8
    // bytes are written to it; bpf_probe_read_user copes with any source
    // address (it fails, zeroing the destination, instead of faulting).
    let failed = unsafe { bpf_probe_read_user((&mut value as *mut u64).cast(), 8, address as *const _) };
    (failed == 0).then_some(value)
}
