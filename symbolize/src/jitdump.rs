//! JIT code named through jitdump files (`jit-PID.dump`), the binary format
//! perf's `perf inject --jit` reads: V8 (`node --perf-prof`), the JVM's and
//! .NET's agents write one and map it executable so that profilers find it
//! among the process's mappings. A 40-byte header (magic `JiTD`, version,
//! header size, ...), then records, each `id: u32, total_size: u32,
//! timestamp: u64` and a body. Only two kinds name code:
//! - `JIT_CODE_LOAD` (0): `pid: u32, tid: u32, vma: u64, code_addr: u64,
//!   code_size: u64, code_index: u64`, a NUL-terminated name, the code;
//! - `JIT_CODE_MOVE` (1): `pid, tid, vma, old_code_addr, new_code_addr,
//!   code_size, code_index`: the code now lives at `new_code_addr`.
//!
//! The file is untrusted input: every size is checked against what is left,
//! a record that claims less than its fixed part or more than remains ends
//! the parse (the rest waits for the file to grow, or is malformed), and
//! nothing here can panic or loop.

/// `JiTD` read as a little-endian u32.
const MAGIC: u32 = 0x4a69_5444;
const HEADER_BYTES: usize = 40;
const RECORD_PREFIX: usize = 16;
const CODE_LOAD: u32 = 0;
const CODE_MOVE: u32 = 1;
/// Longest name taken (a longer one is cut).
const MAX_NAME_BYTES: usize = 4096;

/// What a parse found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// `[start, end)` is named `name`.
    Load { start: u64, end: u64, name: &'a [u8] },
    /// The code at `old` moved to `[start, end)`.
    Move { old: u64, start: u64, end: u64 },
}

/// Why a parse stopped before the end of the data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The data ends inside a record (or the header): more may come.
    Incomplete,
    /// Not a jitdump file, or a record no writer would make.
    Malformed,
}

/// Parses `data`, which starts at byte `offset` of the file, calling
/// `event` for each load and move; returns the bytes of whole records (and
/// header) taken, and why it stopped short of the end, if it did.
pub(crate) fn parse(data: &[u8], offset: u64, mut event: impl FnMut(Event<'_>)) -> (usize, Option<Stop>) {
    let mut at = 0;
    if offset == 0 {
        if data.len() < HEADER_BYTES {
            return (0, Some(Stop::Incomplete));
        }
        let header_size = u32_at(data, 8) as usize;
        if u32_at(data, 0) != MAGIC || !(HEADER_BYTES..=4096).contains(&header_size) {
            return (0, Some(Stop::Malformed));
        }
        if data.len() < header_size {
            return (0, Some(Stop::Incomplete));
        }
        at = header_size;
    }
    while at < data.len() {
        let rest = &data[at..];
        if rest.len() < RECORD_PREFIX {
            return (at, Some(Stop::Incomplete));
        }
        let (id, size) = (u32_at(rest, 0), u32_at(rest, 4) as usize);
        if size < RECORD_PREFIX {
            return (at, Some(Stop::Malformed));
        }
        if rest.len() < size {
            return (at, Some(Stop::Incomplete));
        }
        let body = &rest[RECORD_PREFIX..size];
        match id {
            CODE_LOAD if body.len() >= 40 => {
                let (start, length) = (u64_at(body, 16), u64_at(body, 24));
                let name = &body[40..];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len()).min(MAX_NAME_BYTES)];
                if let Some(end) = start.checked_add(length).filter(|_| length > 0 && !name.is_empty()) {
                    event(Event::Load { start, end, name });
                }
            }
            CODE_MOVE if body.len() >= 48 => {
                let (old, start, length) = (u64_at(body, 16), u64_at(body, 24), u64_at(body, 32));
                if let Some(end) = start.checked_add(length).filter(|_| length > 0) {
                    event(Event::Move { old, start, end });
                }
            }
            CODE_LOAD | CODE_MOVE => return (at, Some(Stop::Malformed)),
            // Debug info, unwinding info, close: nothing to name.
            _ => {}
        }
        at += size;
    }
    (at, None)
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    data.get(at..at + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])))
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    data.get(at..at + 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn header() -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&MAGIC.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        h.resize(HEADER_BYTES, 0);
        h
    }

    pub(crate) fn load(start: u64, size: u64, name: &str) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&[0u8; 16]); // pid, tid, vma
        body.extend_from_slice(&start.to_le_bytes());
        body.extend_from_slice(&size.to_le_bytes());
        body.extend_from_slice(&0u64.to_le_bytes());
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(&vec![0xc3; size as usize]);
        record(CODE_LOAD, &body)
    }

    fn record(id: u32, body: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&id.to_le_bytes());
        r.extend_from_slice(&((RECORD_PREFIX + body.len()) as u32).to_le_bytes());
        r.extend_from_slice(&0u64.to_le_bytes());
        r.extend_from_slice(body);
        r
    }

    fn events(data: &[u8], offset: u64) -> (Vec<String>, usize, Option<Stop>) {
        let mut seen = Vec::new();
        let (taken, stop) = parse(data, offset, |e| {
            seen.push(match e {
                Event::Load { start, end, name } => format!("{start:x}-{end:x} {}", String::from_utf8_lossy(name)),
                Event::Move { old, start, end } => format!("{old:x}->{start:x}-{end:x}"),
            })
        });
        (seen, taken, stop)
    }

    #[test]
    fn loads_are_named_and_other_records_skipped() {
        let mut data = header();
        data.extend(load(0x1000, 16, "LazyCompile:*hot a.js:1"));
        data.extend(record(4, &[0u8; 24])); // unwinding info
        data.extend(load(0x2000, 8, "cold"));
        let (seen, taken, stop) = events(&data, 0);
        assert_eq!(seen, ["1000-1010 LazyCompile:*hot a.js:1", "2000-2008 cold"]);
        assert_eq!((taken, stop), (data.len(), None));
    }

    #[test]
    fn a_record_cut_short_waits_for_more() {
        let mut data = header();
        let first = load(0x1000, 16, "a");
        data.extend(&first);
        let second = load(0x2000, 16, "b");
        data.extend(&second[..10]);
        let (seen, taken, stop) = events(&data, 0);
        assert_eq!(seen.len(), 1);
        assert_eq!((taken, stop), (HEADER_BYTES + first.len(), Some(Stop::Incomplete)));
        // The rest, read later from where the parse stopped.
        let (seen, taken, _) = events(&second, taken as u64);
        assert_eq!((seen.len(), taken), (1, second.len()));
    }

    #[test]
    fn garbage_is_malformed_never_a_panic() {
        assert_eq!(events(&[0u8; 64], 0).2, Some(Stop::Malformed));
        let mut data = header();
        data.extend(record(CODE_LOAD, &[1, 2, 3]));
        assert_eq!(events(&data, 0).2, Some(Stop::Malformed));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let valid = [header(), load(0x1000, 16, "a"), load(0x2000, 4, "b")].concat();
        for _ in 0..2000 {
            let mut bytes = valid.clone();
            for _ in 0..4 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed % bytes.len() as u64) as usize;
                bytes[at] = (seed >> 32) as u8;
            }
            let cut = (seed % (bytes.len() as u64 + 1)) as usize;
            let _ = events(&bytes[..cut], 0);
        }
    }
}
