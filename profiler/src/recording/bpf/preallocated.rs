//! Before Linux 6.1 the verifier refuses perf_event programs that use hash
//! maps allocated as used (BPF_F_NO_PREALLOC). On such a kernel the hash
//! maps the samplers use are made preallocated before the object is loaded,
//! each cut to the largest power of two of entries that fits in
//! [`MAP_BUDGET_BYTES`] of kernel memory: preallocated, the count maps at
//! their usual size would take gigabytes.
//!
//! aya's loader can resize maps but not change their flags, so this edits
//! the `maps` section (legacy `struct bpf_map_def` records) of a copy of the
//! object. Which maps: those the relocations of the perf_event programs
//! name, so a map added to the samplers later is covered without a list.
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget};

/// Kernel memory each preallocated map may take, at most.
pub const MAP_BUDGET_BYTES: u64 = 8 << 20;
/// What the kernel adds to each element of a hash map (`struct htab_elem`
/// on 64-bit kernels), beside the key and value rounded up to 8 bytes.
const ELEMENT_OVERHEAD: u64 = 48;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_F_NO_PREALLOC: u32 = 1;
/// `struct bpf_map_def`: type, key size, value size, max entries, flags
/// (then id and pinning), u32 each.
const MAP_DEF_FLAGS: usize = 16;
const MAP_DEF_LEN: usize = 28;

/// A map made preallocated, and its size now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreallocatedMap {
    pub name: String,
    pub max_entries: u32,
    /// About what the kernel allocates for it up front.
    pub bytes: u64,
}

/// A copy of the BPF object whose samplers' hash maps are preallocated.
pub struct PreallocatedObject {
    /// 8-byte aligned storage (aya wants the object 4-byte aligned).
    words: Vec<u64>,
    len: usize,
    pub maps: Vec<PreallocatedMap>,
}

impl PreallocatedObject {
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `words` holds at least `len` initialized bytes (see
        // `preallocate`), u8 has no alignment or validity requirement, and
        // the slice borrows `self`.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.len) }
    }
}

/// Edits a copy of `object`: every hash map allocated as used that a
/// perf_event program refers to becomes preallocated, within the budget.
pub fn preallocate(object: &[u8]) -> Result<PreallocatedObject, String> {
    let mut copy = object.to_vec();
    let maps = preallocate_in(&mut copy)?;
    let len = copy.len();
    let mut words = vec![0u64; len.div_ceil(8)];
    // SAFETY: `words` has room for `len` bytes (len.div_ceil(8) words), the
    // two buffers do not overlap, and any bytes are valid u64 bits.
    unsafe { std::ptr::copy_nonoverlapping(copy.as_ptr(), words.as_mut_ptr().cast::<u8>(), len) };
    Ok(PreallocatedObject { words, len, maps })
}

fn preallocate_in(object: &mut [u8]) -> Result<Vec<PreallocatedMap>, String> {
    let file = object::File::parse(&*object).map_err(|e| format!("the BPF object does not parse: {e}"))?;
    let maps_section = file.section_by_name("maps").ok_or("the BPF object has no maps section")?;
    let (maps_at, maps_len) = maps_section.file_range().ok_or("the BPF object's maps section has no data")?;
    // (name, offset of its definition in the file), each map once.
    let mut defs: Vec<(String, usize)> = Vec::new();
    for section in file.sections().filter(|s| s.name().is_ok_and(|n| n.starts_with("perf_event"))) {
        for (_, relocation) in section.relocations() {
            let RelocationTarget::Symbol(index) = relocation.target() else { continue };
            let Ok(symbol) = file.symbol_by_index(index) else { continue };
            if symbol.section_index() != Some(maps_section.index()) {
                continue;
            }
            let name = symbol.name().map_err(|e| format!("a map symbol has no name: {e}"))?.to_string();
            let offset = symbol.address();
            if offset + MAP_DEF_LEN as u64 > maps_len {
                return Err(format!("map {name} lies outside the maps section"));
            }
            if !defs.iter().any(|(known, _)| *known == name) {
                defs.push((name, (maps_at + offset) as usize));
            }
        }
    }
    let mut changed = Vec::new();
    for (name, at) in defs {
        let word = |i: usize| u32::from_le_bytes(object[at + 4 * i..at + 4 * i + 4].try_into().unwrap());
        let (map_type, key, value, max_entries, flags) = (word(0), word(1), word(2), word(3), word(4));
        if map_type != BPF_MAP_TYPE_HASH || flags & BPF_F_NO_PREALLOC == 0 {
            continue;
        }
        let element = ELEMENT_OVERHEAD + u64::from(key).next_multiple_of(8) + u64::from(value).next_multiple_of(8);
        let max_entries = max_entries.min(entries_within(element, MAP_BUDGET_BYTES));
        object[at + MAP_DEF_FLAGS..at + MAP_DEF_FLAGS + 4].copy_from_slice(&(flags & !BPF_F_NO_PREALLOC).to_le_bytes());
        changed.push(PreallocatedMap { name, max_entries, bytes: u64::from(max_entries) * element });
    }
    changed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(changed)
}

/// The largest power of two of `element`-byte entries within `budget`.
fn entries_within(element: u64, budget: u64) -> u32 {
    let fit = (budget / element).clamp(1, u64::from(u32::MAX));
    1 << fit.ilog2()
}

#[cfg(test)]
mod tests {
    use super::{super::BPF_OBJECT as OBJECT, *};

    #[test]
    fn the_samplers_hash_maps_become_preallocated_within_the_budget() {
        let object = preallocate(OBJECT).unwrap();
        let names: Vec<&str> = object.maps.iter().map(|map| map.name.as_str()).collect();
        // The samplers' maps allocated as used, not the off-CPU ones.
        for name in ["ON_CPU_COUNTS", "ON_CPU_FULL_COUNTS", "LAST_SAMPLE", "ANNOUNCED", "PROCESS_MAPPINGS"] {
            assert!(names.contains(&name), "{name} not in {names:?}");
        }
        for name in ["OFF_CPU_TIMES", "WOKEN_TIMES", "WAKERS", "TARGETS"] {
            assert!(!names.contains(&name), "{name} in {names:?}");
        }
        for map in &object.maps {
            assert!(map.bytes <= MAP_BUDGET_BYTES && map.max_entries.is_power_of_two(), "{map:?}");
        }
        // What Feature::AllocatedMapsInSamplers says.
        let entries = |name: &str| object.maps.iter().find(|map| map.name == name).unwrap().max_entries;
        assert_eq!((entries("ON_CPU_COUNTS"), entries("PROCESS_MAPPINGS")), (32768, 1024), "{:?}", object.maps);
        let total: u64 = object.maps.iter().map(|map| map.bytes).sum();
        assert_eq!(total.div_ceil(1 << 20), 22, "{:?}", object.maps);
        // The edited copy is still an object whose maps say preallocated.
        let again = preallocate(object.bytes()).unwrap();
        assert!(again.maps.is_empty(), "{:?}", again.maps);
        assert_eq!(object.bytes().len(), OBJECT.len());
    }

    #[test]
    fn entries_are_the_largest_power_of_two_that_fits() {
        assert_eq!(entries_within(160, 8 << 20), 32768);
        assert_eq!(entries_within(4096, 4096), 1);
        assert_eq!(entries_within(1 << 30, 8 << 20), 1);
    }
}
