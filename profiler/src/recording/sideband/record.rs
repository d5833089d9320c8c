//! The side-band records flameprof asks the kernel for, decoded from the
//! bytes of one record (header included). The layouts are the kernel's
//! (`include/uapi/linux/perf_event.h`), with `sample_id_all` and a
//! sample type of TID | TIME: every record ends with `{ u32 pid, tid; u64
//! time }`. The bytes come from the kernel, but a bad length or field is
//! still a `None`, never a panic (the ring reader hands over whatever the
//! header's size says).

/// PERF_RECORD_* types read here.
mod kind {
    pub const LOST: u32 = 2;
    pub const COMM: u32 = 3;
    pub const EXIT: u32 = 4;
    pub const FORK: u32 = 7;
    pub const MMAP2: u32 = 10;
}

/// `misc` bits.
const MISC_COMM_EXEC: u16 = 1 << 13;
const MISC_MMAP_BUILD_ID: u16 = 1 << 14;

/// The header (8 bytes) and the sample_id trailer (pid, tid, time: 16).
pub const HEADER_BYTES: usize = 8;
const TRAILER_BYTES: usize = 16;
/// PROT_EXEC in an MMAP2 record's `prot`.
const PROT_EXEC: u32 = 4;
/// Longest build-id a record may carry (the field's size).
const MAX_BUILD_ID: usize = 20;

/// What a mapping record says identifies its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileIdentity {
    /// Device (major << 32 | minor, as /proc/PID/maps prints it) and inode.
    DeviceInode { dev: u64, inode: u64 },
    /// The GNU build-id, when the kernel was asked for it (attr.build_id).
    BuildId(Vec<u8>),
}

/// An executable mapping made by a process (PERF_RECORD_MMAP2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingRecord {
    pub pid: u32,
    pub start: u64,
    pub len: u64,
    /// File offset of `start`.
    pub offset: u64,
    pub identity: FileIdentity,
    pub executable: bool,
    /// The path as the kernel names it: a file, `//anon` (anonymous
    /// memory), `[vdso]`, ...
    pub filename: String,
}

/// One decoded record; `time` is the record's CLOCK_BOOTTIME stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Mapping {
        time: u64,
        mapping: MappingRecord,
    },
    /// A task's name changed; `exec`: by an exec (the process is another
    /// program from here on).
    Comm {
        time: u64,
        pid: u32,
        tid: u32,
        exec: bool,
        name: String,
    },
    /// A task was created: a thread when `pid == ppid`, else a process.
    Fork {
        time: u64,
        pid: u32,
        ppid: u32,
        tid: u32,
    },
    /// A task ended: the process when `pid == tid`.
    Exit {
        time: u64,
        pid: u32,
        tid: u32,
    },
    /// The kernel dropped `lost` records: the ring was full.
    Lost {
        lost: u64,
    },
    /// A record of another type (none is asked for; skipped).
    Other,
}

impl Record {
    /// The time the record was stamped with (0 for a LOST record or one of
    /// another type: applied at once).
    pub fn time(&self) -> u64 {
        match self {
            Record::Mapping { time, .. }
            | Record::Comm { time, .. }
            | Record::Fork { time, .. }
            | Record::Exit { time, .. } => *time,
            Record::Lost { .. } | Record::Other => 0,
        }
    }
}

/// Decodes one record (its 8-byte header first); None when it is shorter
/// than its type needs.
pub fn parse(bytes: &[u8]) -> Option<Record> {
    let mut header = Fields::new(bytes);
    let kind = header.u32()?;
    let misc = header.u16()?;
    let size = usize::from(header.u16()?);
    let record = bytes.get(..size).filter(|_| size >= HEADER_BYTES)?;
    let body = &record[HEADER_BYTES..];
    if kind == kind::LOST {
        let mut fields = Fields::new(body);
        let _id = fields.u64()?;
        return Some(Record::Lost { lost: fields.u64()? });
    }
    if !matches!(kind, kind::COMM | kind::EXIT | kind::FORK | kind::MMAP2) {
        return Some(Record::Other);
    }
    let (body, trailer) = body.split_at_checked(body.len().checked_sub(TRAILER_BYTES)?)?;
    let mut trailer = Fields::new(trailer);
    trailer.skip(8)?;
    let time = trailer.u64()?;
    let mut fields = Fields::new(body);
    match kind {
        kind::COMM => {
            let pid = fields.u32()?;
            let tid = fields.u32()?;
            let name = c_string(fields.rest());
            Some(Record::Comm { time, pid, tid, exec: misc & MISC_COMM_EXEC != 0, name })
        }
        kind::FORK | kind::EXIT => {
            let pid = fields.u32()?;
            let ppid = fields.u32()?;
            let tid = fields.u32()?;
            let _ptid = fields.u32()?;
            let _time = fields.u64()?;
            Some(match kind {
                kind::FORK => Record::Fork { time, pid, ppid, tid },
                _ => Record::Exit { time, pid, tid },
            })
        }
        _ => parse_mmap2(&mut fields, misc).map(|mapping| Record::Mapping { time, mapping }),
    }
}

fn parse_mmap2(fields: &mut Fields<'_>, misc: u16) -> Option<MappingRecord> {
    let pid = fields.u32()?;
    let _tid = fields.u32()?;
    let start = fields.u64()?;
    let len = fields.u64()?;
    let offset = fields.u64()?;
    let identity = if misc & MISC_MMAP_BUILD_ID != 0 {
        let size = usize::from(fields.u8()?).min(MAX_BUILD_ID);
        fields.skip(3)?;
        let id = fields.bytes(MAX_BUILD_ID)?;
        fields.skip(24 - 4 - MAX_BUILD_ID)?;
        FileIdentity::BuildId(id[..size].to_vec())
    } else {
        let major = fields.u32()?;
        let minor = fields.u32()?;
        let inode = fields.u64()?;
        let _generation = fields.u64()?;
        FileIdentity::DeviceInode { dev: (u64::from(major) << 32) | u64::from(minor), inode }
    };
    let prot = fields.u32()?;
    let _flags = fields.u32()?;
    let filename = c_string(fields.rest());
    Some(MappingRecord { pid, start, len, offset, identity, executable: prot & PROT_EXEC != 0, filename })
}

/// The text up to the first NUL (the kernel pads names to 8 bytes);
/// invalid UTF-8 is replaced, as paths are shown, not reopened by this name
/// alone (the opened file's identity is checked).
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Native-endian fields read front to back, each checked against the end.
struct Fields<'a> {
    bytes: &'a [u8],
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes }
    }

    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.bytes.split_at_checked(n)?;
        self.bytes = rest;
        Some(taken)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.bytes(n).map(drop)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_ne_bytes(self.bytes(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_ne_bytes(self.bytes(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_ne_bytes(self.bytes(8)?.try_into().ok()?))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as the kernel writes it: header, body, trailer (pid, tid, time).
    pub(crate) fn record(kind: u32, misc: u16, body: &[u8], time: u64) -> Vec<u8> {
        let size = HEADER_BYTES + body.len() + TRAILER_BYTES;
        let mut out = Vec::new();
        out.extend(kind.to_ne_bytes());
        out.extend(misc.to_ne_bytes());
        out.extend((size as u16).to_ne_bytes());
        out.extend(body);
        out.extend(7u32.to_ne_bytes());
        out.extend(7u32.to_ne_bytes());
        out.extend(time.to_ne_bytes());
        out
    }

    pub(crate) fn mmap2_body(pid: u32, start: u64, len: u64, offset: u64, inode: u64, name: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for word in [pid, pid] {
            body.extend(word.to_ne_bytes());
        }
        for word in [start, len, offset] {
            body.extend(word.to_ne_bytes());
        }
        body.extend(0xfeu32.to_ne_bytes());
        body.extend(1u32.to_ne_bytes());
        body.extend(inode.to_ne_bytes());
        body.extend(0u64.to_ne_bytes());
        body.extend((PROT_EXEC | 1).to_ne_bytes());
        body.extend(2u32.to_ne_bytes());
        body.extend(name.as_bytes());
        body.resize(body.len() + 8 - name.len() % 8, 0);
        body
    }

    #[test]
    fn decodes_a_mapping() {
        let bytes = record(kind::MMAP2, 0, &mmap2_body(42, 0x1000, 0x2000, 0x3000, 99, "/usr/bin/x y"), 5);
        let Some(Record::Mapping { time, mapping }) = parse(&bytes) else { panic!("not a mapping") };
        assert_eq!(time, 5);
        assert_eq!(
            mapping,
            MappingRecord {
                pid: 42,
                start: 0x1000,
                len: 0x2000,
                offset: 0x3000,
                identity: FileIdentity::DeviceInode { dev: (0xfe << 32) | 1, inode: 99 },
                executable: true,
                filename: "/usr/bin/x y".into(),
            }
        );
    }

    #[test]
    fn decodes_a_mapping_with_a_build_id() {
        let mut body = mmap2_body(1, 0, 1, 0, 0, "/lib/a.so");
        body[32] = 3;
        body[36..39].copy_from_slice(&[0xab, 0xcd, 0xef]);
        let bytes = record(kind::MMAP2, MISC_MMAP_BUILD_ID, &body, 1);
        let Some(Record::Mapping { mapping, .. }) = parse(&bytes) else { panic!("not a mapping") };
        assert_eq!(mapping.identity, FileIdentity::BuildId(vec![0xab, 0xcd, 0xef]));
        assert_eq!(mapping.filename, "/lib/a.so");
    }

    #[test]
    fn decodes_comm_fork_exit_and_lost() {
        let mut comm = Vec::new();
        comm.extend(3u32.to_ne_bytes());
        comm.extend(3u32.to_ne_bytes());
        comm.extend(b"cc1\0\0\0\0\0");
        assert_eq!(
            parse(&record(kind::COMM, MISC_COMM_EXEC, &comm, 9)),
            Some(Record::Comm { time: 9, pid: 3, tid: 3, exec: true, name: "cc1".into() })
        );
        let mut task = Vec::new();
        for word in [5u32, 4, 6, 4] {
            task.extend(word.to_ne_bytes());
        }
        task.extend(1u64.to_ne_bytes());
        assert_eq!(parse(&record(kind::FORK, 0, &task, 2)), Some(Record::Fork { time: 2, pid: 5, ppid: 4, tid: 6 }));
        assert_eq!(parse(&record(kind::EXIT, 0, &task, 3)), Some(Record::Exit { time: 3, pid: 5, tid: 6 }));
        let mut lost = Vec::new();
        lost.extend(1u64.to_ne_bytes());
        lost.extend(17u64.to_ne_bytes());
        assert_eq!(parse(&record(kind::LOST, 0, &lost, 0)), Some(Record::Lost { lost: 17 }));
    }

    #[test]
    fn refuses_short_and_malformed_records() {
        let good = record(kind::MMAP2, 0, &mmap2_body(1, 0, 1, 0, 0, "/a"), 1);
        for len in 0..good.len() {
            // Cut short, with the header still claiming the whole size.
            assert_eq!(parse(&good[..len]), None, "{len} bytes");
        }
        let mut tiny = record(kind::FORK, 0, &[], 1);
        tiny[6..8].copy_from_slice(&4u16.to_ne_bytes());
        assert_eq!(parse(&tiny), None);
        assert_eq!(parse(&record(99, 0, &[], 1)), Some(Record::Other));
    }
}
