//! On-CPU counts read back at the end of a recording, kept packed until
//! they are symbolized. A `StackKey` is 2 KiB of fixed arrays (127 kernel
//! and 127 user frames) whatever the stack's depth; a system-wide recording
//! leaves tens of thousands of them in the maps, which as keys would take
//! more memory than everything else flameprof holds. Packed, a stack takes
//! its frames and little more; it is unpacked a batch at a time.
use profiler_ebpf::{LEAF_WORDS, MAX_STACK_DEPTH, StackKey, TASK_COMM_LEN};
use symbolize::Symbolizer;

use super::{LeafFixups, leaf_fixup};

/// Stacks unpacked at once (2 KiB each).
pub const BATCH: usize = 2048;

/// A `StackKey` with only the frames it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedStack {
    pub tgid: u32,
    pub started_ns: u64,
    /// As `StackKey::mappings_since_ns`.
    pub mappings_since_ns: u64,
    pub kernel_depth: u32,
    pub user_depth: u32,
    marker: u32,
    comm: [u8; TASK_COMM_LEN],
    leaf_words: [u64; LEAF_WORDS],
    /// The kernel frames, then the user frames.
    frames: Box<[u64]>,
}

impl PackedStack {
    pub fn pack(key: &StackKey) -> Self {
        let kernel = &key.kernel[..(key.kernel_depth as usize).min(MAX_STACK_DEPTH)];
        let user = &key.user[..(key.user_depth as usize).min(MAX_STACK_DEPTH)];
        PackedStack {
            tgid: key.tgid,
            started_ns: key.started_ns,
            mappings_since_ns: key.mappings_since_ns,
            kernel_depth: kernel.len() as u32,
            user_depth: user.len() as u32,
            marker: key.marker,
            comm: key.comm,
            leaf_words: key.leaf_words,
            frames: kernel.iter().chain(user).copied().collect(),
        }
    }

    pub fn unpack(&self) -> StackKey {
        let (kernel, user) = self.frames.split_at(self.kernel_depth as usize);
        let mut key = StackKey {
            tgid: self.tgid,
            kernel_depth: self.kernel_depth,
            user_depth: self.user_depth,
            marker: self.marker,
            comm: self.comm,
            started_ns: self.started_ns,
            mappings_since_ns: self.mappings_since_ns,
            leaf_words: self.leaf_words,
            kernel: [0; MAX_STACK_DEPTH],
            user: [0; MAX_STACK_DEPTH],
        };
        key.kernel[..kernel.len()].copy_from_slice(kernel);
        key.user[..user.len()].copy_from_slice(user);
        key
    }
}

/// `stacks` unpacked, `BATCH` at a time.
pub fn unpacked(stacks: &[(PackedStack, u64)]) -> impl Iterator<Item = Vec<(StackKey, u64)>> {
    stacks.chunks(BATCH).map(|batch| batch.iter().map(|(stack, count)| (stack.unpack(), *count)).collect())
}

/// `--call-graph fp`: the leaf fix-up, a batch at a time (equal stacks
/// merge within a batch; the profile merges the rest).
pub fn fix_leaves(stacks: &mut Vec<(PackedStack, u64)>, symbolizer: &mut Symbolizer) -> LeafFixups {
    let mut fixups = LeafFixups::default();
    let mut fixed = Vec::with_capacity(stacks.len());
    for mut batch in unpacked(stacks) {
        fixups.add(leaf_fixup::apply(&mut batch, symbolizer));
        fixed.extend(batch.iter().map(|(key, count)| (PackedStack::pack(key), *count)));
    }
    *stacks = fixed;
    fixups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_survives_packing() {
        let kernel = [0xffff_ffff_8100_0000u64, 0xffff_ffff_8100_1000];
        let user: Vec<u64> = (1..=MAX_STACK_DEPTH as u64).map(|i| 0x40_0000 + i).collect();
        let mut key = crate::recording::bpf::whole_stack((7, 99), 3, *b"rustc\0\0\0\0\0\0\0\0\0\0\0", &kernel, &user);
        key.leaf_words[2] = 0x40_1234;
        let packed = PackedStack::pack(&key);
        let back = packed.unpack();
        let bytes = |key: &StackKey| -> Vec<u8> {
            // SAFETY: StackKey is plain old data (repr(C), integers only).
            unsafe { std::slice::from_raw_parts((key as *const StackKey).cast::<u8>(), size_of::<StackKey>()) }.to_vec()
        };
        assert_eq!(bytes(&back), bytes(&key));
        assert_eq!(packed.frames.len(), 2 + MAX_STACK_DEPTH);
        let batches: Vec<_> = unpacked(&vec![(packed, 5); BATCH + 1]).collect();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [BATCH, 1]);
        assert_eq!((bytes(&batches[1][0].0), batches[1][0].1), (bytes(&key), 5));
    }
}
