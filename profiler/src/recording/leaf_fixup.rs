//! `--call-graph fp`'s leaf fix-up. A leaf that has not set up its frame
//! (libc's syscall wrappers, code built without frame pointers) leaves rbp
//! pointing at its caller's frame, so the kernel's walk skips the caller:
//! `main;clock_nanosleep` instead of `main;sleeper;clock_nanosleep`. The
//! kernel keeps the first words above the user sp with each stack (those
//! that follow a call instruction); the one where the leaf's CFI says the
//! return address is names the skipped caller, which goes back into the stack.
use std::collections::HashMap;

use profiler_ebpf::{LEAF_WORDS, MAX_STACK_DEPTH, StackKey, TASK_COMM_LEN};
use serde::Serialize;
use symbolize::{LeafFrame, Symbolizer};

/// What the fix-up did, weighted like the stacks (samples on-CPU,
/// nanoseconds off-CPU).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeafFixups {
    /// The skipped caller was put back.
    pub callers_inserted: u64,
    /// The leaf's frame was not set up, but the walk had its caller anyway.
    pub callers_already_there: u64,
    /// The leaf's frame was not set up and its caller could not be found:
    /// its return address is beyond the words kept, or was unreadable. The
    /// caller stays missing.
    pub callers_missing: u64,
}

impl LeafFixups {
    pub fn add(&mut self, more: LeafFixups) {
        self.callers_inserted += more.callers_inserted;
        self.callers_already_there += more.callers_already_there;
        self.callers_missing += more.callers_missing;
    }
}

/// Puts skipped callers back into `stacks` and merges stacks that become
/// equal. Every key leaves with its `leaf_words` zeroed.
pub fn apply(stacks: &mut Vec<(StackKey, u64)>, symbolizer: &mut Symbolizer) -> LeafFixups {
    let mut fixups = LeafFixups::default();
    let mut shapes: HashMap<(u32, u64), LeafFrame> = HashMap::new();
    for (key, weight) in stacks.iter_mut() {
        let words = std::mem::take(&mut key.leaf_words);
        if key.user_depth == 0 {
            continue;
        }
        let tgid = key.tgid;
        let mut shape_at = |pc: u64| *shapes.entry((tgid, pc)).or_insert_with(|| symbolizer.leaf_frame(tgid, pc));
        let next = (key.user_depth > 1).then_some(key.user[1]);
        match skipped_callers(key.user[0], next, &words, &mut shape_at) {
            Skipped::None => {}
            Skipped::Found(callers) => {
                insert_callers(key, &callers);
                fixups.callers_inserted += *weight;
            }
            Skipped::AlreadyThere => fixups.callers_already_there += *weight,
            Skipped::Missing => fixups.callers_missing += *weight,
        }
    }
    merge_equal(stacks);
    fixups
}

/// `--wakers`: the same for each wait's stack and its waker's, one stack
/// at a time (the pairs stay as they are; equal stacks merge later, in the
/// profile). Returns what was done to the waits' stacks, then to the
/// wakers' (each weighted by the wait's time).
pub fn apply_to_woken(
    woken: &mut [crate::recording::WokenTime],
    symbolizer: &mut Symbolizer,
) -> (LeafFixups, LeafFixups) {
    let (mut waits, mut wakers) = (LeafFixups::default(), LeafFixups::default());
    for w in woken.iter_mut() {
        for (key, fixups) in [(&mut w.wakee, &mut waits), (&mut w.waker, &mut wakers)] {
            let mut one = vec![(*key, w.ns)];
            fixups.add(apply(&mut one, symbolizer));
            *key = one[0].0;
        }
    }
    (waits, wakers)
}

/// What a frame-pointer walk from `leaf` skipped.
#[derive(Debug, PartialEq, Eq)]
enum Skipped {
    /// Nothing: the leaf's frame is set up, or its CFI is unknown.
    None,
    /// These callers, innermost first.
    Found(Vec<u64>),
    /// The caller is the walk's next frame already.
    AlreadyThere,
    /// A caller was skipped but its return address is not among the words.
    Missing,
}

/// Follows frames without a frame pointer up from the leaf through the
/// kept words: each such frame's CFA is `sp + n`, so the next return
/// address is at a known offset above the leaf's sp, as long as it lies
/// within the words kept. Stops at a frame whose frame pointer is set up
/// (the kernel's walk went on from there) or at the walk's next frame.
fn skipped_callers(
    leaf: u64,
    next: Option<u64>,
    words: &[u64; LEAF_WORDS],
    shape_at: &mut impl FnMut(u64) -> LeafFrame,
) -> Skipped {
    let mut callers = Vec::new();
    let (mut pc, mut offset) = (leaf, 0u64);
    while let LeafFrame::NotEstablished { return_address_at } = shape_at(pc) {
        let caller = offset.checked_add(return_address_at).map_or(0, |at| word_at(words, at));
        if caller == 0 || Some(caller) == next {
            break;
        }
        callers.push(caller);
        offset += return_address_at + 8;
        // A return address: the call is the instruction before it.
        pc = caller - 1;
    }
    match (callers.is_empty(), shape_at(leaf)) {
        (false, _) => Skipped::Found(callers),
        (true, LeafFrame::NotEstablished { return_address_at }) => {
            match next.is_some() && word_at(words, return_address_at) == next.unwrap_or(0) {
                true => Skipped::AlreadyThere,
                false => Skipped::Missing,
            }
        }
        (true, _) => Skipped::None,
    }
}

/// The kept word `offset` bytes above sp (0: not kept, or not a return address).
fn word_at(words: &[u64; LEAF_WORDS], offset: u64) -> u64 {
    match offset % 8 {
        0 => usize::try_from(offset / 8).ok().and_then(|i| words.get(i)).copied().unwrap_or(0),
        _ => 0,
    }
}

/// Inserts `callers` right above the leaf, dropping outermost frames when
/// the stack would pass the depth limit.
fn insert_callers(key: &mut StackKey, callers: &[u64]) {
    let depth = (key.user_depth as usize).min(MAX_STACK_DEPTH);
    let callers = &callers[..callers.len().min(MAX_STACK_DEPTH - 1)];
    let kept = depth.min(MAX_STACK_DEPTH - callers.len());
    key.user.copy_within(1..kept, 1 + callers.len());
    key.user[1..1 + callers.len()].copy_from_slice(callers);
    key.user_depth = (kept + callers.len()) as u32;
}

type Identity = (u32, u32, [u8; TASK_COMM_LEN], Vec<u64>, Vec<u64>);

/// Adds up stacks the fix-up made equal (they differed only in the words above sp).
fn merge_equal(stacks: &mut Vec<(StackKey, u64)>) {
    let mut seen: HashMap<Identity, usize> = HashMap::with_capacity(stacks.len());
    let mut merged: Vec<(StackKey, u64)> = Vec::with_capacity(stacks.len());
    for (key, weight) in stacks.drain(..) {
        let identity = (
            key.tgid,
            key.marker,
            key.comm,
            key.kernel[..key.kernel_depth as usize].to_vec(),
            key.user[..key.user_depth as usize].to_vec(),
        );
        match seen.get(&identity) {
            Some(&at) => merged[at].1 += weight,
            None => {
                seen.insert(identity, merged.len());
                merged.push((key, weight));
            }
        }
    }
    *stacks = merged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::bpf::whole_stack;

    fn stack(user: &[u64]) -> StackKey {
        whole_stack((1, 0), 0, [0; TASK_COMM_LEN], &[], user)
    }

    #[test]
    fn the_word_where_the_cfi_puts_the_return_address_is_the_one_used() {
        let words = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(word_at(&words, 0), 1);
        assert_eq!(word_at(&words, 40), 6);
        assert_eq!(word_at(&words, 56), 8);
        assert_eq!(word_at(&words, 64), 0, "beyond the words kept");
        assert_eq!(word_at(&words, 12), 0, "not a word boundary");
    }

    #[test]
    fn callers_go_in_right_above_the_leaf() {
        let mut key = stack(&[10, 40, 50]);
        insert_callers(&mut key, &[20, 30]);
        assert_eq!(&key.user[..key.user_depth as usize], &[10, 20, 30, 40, 50]);
    }

    #[test]
    fn at_the_depth_limit_the_outermost_frames_make_room() {
        let frames: Vec<u64> = (1..=MAX_STACK_DEPTH as u64).collect();
        let mut key = stack(&frames);
        insert_callers(&mut key, &[98, 99]);
        assert_eq!(key.user_depth as usize, MAX_STACK_DEPTH);
        assert_eq!(&key.user[..4], &[1, 98, 99, 2]);
        assert_eq!(key.user[MAX_STACK_DEPTH - 1], MAX_STACK_DEPTH as u64 - 2);
    }

    /// Code at 0x1000 (the leaf: CFA sp+8), 0x2000 (a frameless caller:
    /// CFA sp+24), 0x3000 (a caller with its frame pointer set up).
    fn shapes(pc: u64) -> LeafFrame {
        match pc & !0xfff {
            0x1000 => LeafFrame::NotEstablished { return_address_at: 0 },
            0x2000 => LeafFrame::NotEstablished { return_address_at: 16 },
            0x3000 => LeafFrame::Established,
            _ => LeafFrame::Unknown,
        }
    }

    #[test]
    fn frameless_callers_are_followed_until_one_with_a_frame_pointer() {
        // Leaf at sp: returns into 0x2010; that frame's return address
        // (into 0x3010) is 16 bytes above its own sp, which is 8 above the leaf's.
        let words = [0x2010, 0xdead, 0xbeef, 0x3010, 0, 0, 0, 0];
        let found = skipped_callers(0x1005, Some(0x4010), &words, &mut shapes);
        assert_eq!(found, Skipped::Found(vec![0x2010, 0x3010]));
    }

    #[test]
    fn the_walks_next_frame_ends_the_search() {
        let words = [0x2010, 0, 0, 0x3010, 0, 0, 0, 0];
        assert_eq!(skipped_callers(0x1005, Some(0x2010), &words, &mut shapes), Skipped::AlreadyThere);
        assert_eq!(skipped_callers(0x1005, Some(0x3010), &words, &mut shapes), Skipped::Found(vec![0x2010]));
    }

    #[test]
    fn a_return_address_not_kept_is_a_missing_caller() {
        let words = [0; LEAF_WORDS];
        assert_eq!(skipped_callers(0x1005, Some(0x4010), &words, &mut shapes), Skipped::Missing);
        assert_eq!(skipped_callers(0x3005, Some(0x4010), &words, &mut shapes), Skipped::None);
    }

    #[test]
    fn stacks_that_differed_only_by_the_word_at_sp_are_merged() {
        let mut stacks = vec![(stack(&[10, 30]), 2), (stack(&[10, 30]), 3), (stack(&[10, 31]), 1)];
        merge_equal(&mut stacks);
        let weights: Vec<u64> = stacks.iter().map(|(_, w)| *w).collect();
        assert_eq!(weights, vec![5, 1]);
    }
}
