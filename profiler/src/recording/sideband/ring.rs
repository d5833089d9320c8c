//! Reading a perf ring buffer's data area: records between the consumer's
//! tail and the kernel's head, a record possibly wrapping around the end
//! of the area. Kept apart from the mapping so it can be tested on plain
//! bytes.
use super::record::HEADER_BYTES;

/// What one pass over a ring found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// The tail to store: everything before it was read.
    pub tail: u64,
    /// Records whose header made no sense (a size below the header's or
    /// past the head): the rest of the pass was skipped.
    pub malformed: u64,
}

/// Calls `each` with every record between `tail` and `head` (positions
/// that only grow; the area's size is a power of two), contiguous even
/// when it wraps (copied into `scratch` then).
pub fn read_records(data: &[u8], tail: u64, head: u64, scratch: &mut Vec<u8>, mut each: impl FnMut(&[u8])) -> Pass {
    let size = data.len() as u64;
    let mut at = tail;
    let mut pass = Pass { tail, malformed: 0 };
    if size == 0 || !size.is_power_of_two() || head < tail || head - tail > size {
        // A head the kernel cannot have written: drop what is there.
        pass.tail = head;
        pass.malformed += u64::from(head != tail);
        return pass;
    }
    while head - at >= HEADER_BYTES as u64 {
        copy_wrapped(data, at, HEADER_BYTES, scratch);
        let record_size = u64::from(u16::from_ne_bytes([scratch[6], scratch[7]]));
        if record_size < HEADER_BYTES as u64 || record_size > head - at {
            pass.malformed += 1;
            at = head;
            break;
        }
        let start = (at % size) as usize;
        let len = record_size as usize;
        match data.get(start..start + len) {
            Some(record) => each(record),
            None => {
                copy_wrapped(data, at, len, scratch);
                each(scratch);
            }
        }
        at += record_size;
    }
    pass.tail = at;
    pass
}

/// `len` bytes from position `at` of the ring into `out` (len <= the area).
fn copy_wrapped(data: &[u8], at: u64, len: usize, out: &mut Vec<u8>) {
    let start = (at % data.len() as u64) as usize;
    let first = len.min(data.len() - start);
    out.clear();
    out.extend_from_slice(&data[start..start + first]);
    out.extend_from_slice(&data[..len - first]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: u8, size: u16) -> Vec<u8> {
        let mut bytes = vec![kind; usize::from(size)];
        bytes[6..8].copy_from_slice(&size.to_ne_bytes());
        bytes
    }

    /// Writes records into a ring of `size` bytes from position `from`.
    fn ring(size: usize, from: u64, records: &[Vec<u8>]) -> (Vec<u8>, u64) {
        let mut data = vec![0u8; size];
        let mut at = from;
        for record in records {
            for &byte in record {
                data[(at % size as u64) as usize] = byte;
                at += 1;
            }
        }
        (data, at)
    }

    #[test]
    fn reads_records_that_wrap_around() {
        let records = vec![record(1, 24), record(2, 16), record(3, 40)];
        for from in [0, 8, 100, 1000, 1012] {
            let (data, head) = ring(128, from, &records);
            let mut seen = Vec::new();
            let pass = read_records(&data, from, head, &mut Vec::new(), |r| seen.push(r.to_vec()));
            assert_eq!(pass, Pass { tail: head, malformed: 0 }, "from {from}");
            assert_eq!(seen, records, "from {from}");
        }
    }

    #[test]
    fn a_bad_size_skips_to_the_head() {
        let mut bad = record(2, 8);
        bad[6..8].copy_from_slice(&4u16.to_ne_bytes());
        let (data, head) = ring(64, 0, &[record(1, 16), bad]);
        let mut seen = 0;
        let pass = read_records(&data, 0, head, &mut Vec::new(), |_| seen += 1);
        assert_eq!((seen, pass), (1, Pass { tail: head, malformed: 1 }));
        let pass = read_records(&data, 0, 1000, &mut Vec::new(), |_| seen += 1);
        assert_eq!(pass, Pass { tail: 1000, malformed: 1 });
        assert_eq!(read_records(&data, 8, 8, &mut Vec::new(), |_| {}), Pass { tail: 8, malformed: 0 });
    }
}
