//! JIT code named through perf maps: the text file `/tmp/perf-PID.map` that
//! JIT runtimes write for perf (`node --perf-basic-prof`, the JVM's
//! perf-map-agent, LuaJIT, .NET with `DOTNET_PerfMapEnabled`), one line per
//! piece of generated code: `START SIZE name`, START and SIZE in hex, the rest
//! of the line the name. A process in a container writes it in its own
//! `/tmp` under the pid it sees itself as: `/proc/PID/root/tmp/perf-NSPID.map`
//! from outside, NSPID being the last pid of the `NSpid:` line of
//! `/proc/PID/status`.
//!
//! The file is untrusted input (any process can write one):
//! - it is opened without following a symlink (neither `tmp` nor the file
//!   itself: an absolute link would resolve in our root, not the process's),
//!   without blocking (a FIFO is refused, not waited on), and read only when
//!   it is a regular file owned by root or by the process's user;
//! - at most [`MAX_FILE_BYTES`] are read per process (re-reads included) and
//!   [`MAX_TOTAL_BYTES`] in all, at most [`MAX_ENTRIES`] entries kept per
//!   process; a line that is not `START SIZE name` (bad hex, an empty or
//!   overflowing range, no name, a name over [`MAX_NAME_BYTES`]) is skipped
//!   and counted. Nothing in it can make this code panic or loop.
//!
//! The file is read again when it has grown since (JITs append as they
//! compile); only the new bytes are read. Later entries win where ranges
//! overlap (JITs reuse the addresses of code they freed). What was read stays
//! when the process exits or the file is deleted.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use crate::{boottime_ns, jitdump};

/// Bytes read from one process's perf map at most, re-reads included.
pub const MAX_FILE_BYTES: u64 = 64 << 20;
/// Bytes read from all perf maps together at most.
pub const MAX_TOTAL_BYTES: u64 = 256 << 20;
/// Entries read from one process's perf map at most.
pub const MAX_ENTRIES: u64 = 1 << 20;
/// Longest name taken; a longer line is malformed.
pub const MAX_NAME_BYTES: usize = 4096;

/// What the perf maps read so far held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PerfMapStats {
    /// Processes whose perf map was found and read.
    pub maps_read: u64,
    /// Entries taken (lines naming a range).
    pub entries: u64,
    /// Lines skipped: not `START SIZE name`, an empty or overflowing range,
    /// or a name longer than [`MAX_NAME_BYTES`].
    pub malformed_lines: u64,
    /// Maps not read to their end: over [`MAX_FILE_BYTES`], [`MAX_ENTRIES`]
    /// or the total budget.
    pub maps_cut_at_limit: u64,
    /// Files not read: a symlink, not a regular file, or owned by neither
    /// root nor the process's user.
    pub maps_refused: u64,
    /// Bytes read, re-reads included.
    pub bytes_read: u64,
}

/// Where a process's perf map is: a handle on the directory the process
/// sees as `/tmp` (it stays valid after the process exits) and the file's
/// name there.
#[derive(Debug)]
struct Location {
    tmp: File,
    name: String,
    /// Users who may own the file: root and the process's uids.
    owners: Vec<u32>,
}

impl Location {
    /// Finds `pid`'s `/tmp` and the pid it knows itself by; `None` when the
    /// process is gone (or its root is not reachable).
    fn find(pid: u32) -> Option<Location> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let (nspid, owners) = parse_status(&status, pid);
        let tmp = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .open(format!("/proc/{pid}/root/tmp"))
            .ok()?;
        Some(Location { tmp, name: format!("perf-{nspid}.map"), owners })
    }

    /// The file, opened through the directory handle: no symlink followed,
    /// no wait on a FIFO.
    fn open(&self) -> std::io::Result<File> {
        let path = Path::new("/proc/self/fd").join(self.tmp.as_raw_fd().to_string()).join(&self.name);
        OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path)
    }
}

/// The pid a process sees itself as (the last one of `NSpid:`, `pid` on
/// kernels without the line), and root plus its uids (real, effective,
/// saved, filesystem).
pub(crate) fn parse_status(status: &str, pid: u32) -> (u32, Vec<u32>) {
    let mut nspid = pid;
    let mut owners = vec![0];
    for line in status.lines() {
        if let Some(pids) = line.strip_prefix("NSpid:") {
            if let Some(last) = pids.split_whitespace().last().and_then(|p| p.parse().ok()) {
                nspid = last;
            }
        } else if let Some(uids) = line.strip_prefix("Uid:") {
            owners.extend(uids.split_whitespace().filter_map(|u| u.parse::<u32>().ok()));
        }
    }
    (nspid, owners)
}

/// One process's perf map as read so far.
#[derive(Debug, Default)]
pub(crate) struct PerfMap {
    location: Option<Location>,
    /// (device, inode) of the file read, to notice a new file.
    file: Option<(u64, u64)>,
    /// Bytes of the file taken (whole lines).
    consumed: u64,
    /// The file's size at the previous look: an unterminated last line is
    /// taken once the size stays the same (the writer is done with it).
    size_seen: u64,
    /// Bytes read from this process's maps, re-reads included.
    bytes_read: u64,
    entries: u64,
    /// A bound was reached: nothing more is read.
    cut: bool,
    /// Counted in [`PerfMapStats::maps_read`] / `maps_refused` already.
    counted_read: bool,
    counted_refused: bool,
    /// When the map or its jitdump file was first read (CLOCK_BOOTTIME
    /// ns): what was read after a process started is not of the one before
    /// it with that pid (see [`PerfMaps::rename`]).
    first_read_ns: Option<u64>,
    /// Disjoint ranges by start: (end, where the name is in `names`).
    ranges: BTreeMap<u64, (u64, u32, u32)>,
    names: String,
    /// The process's jitdump file, as far as read.
    dump: DumpState,
}

/// How far a jitdump file was read.
#[derive(Debug, Default)]
struct DumpState {
    /// (device, inode) of the file read.
    file: Option<(u64, u64)>,
    consumed: u64,
    /// A malformed record was met: nothing more is read.
    stopped: bool,
    counted_read: bool,
}

impl PerfMap {
    /// The name of the code at `addr`, if an entry covers it.
    pub fn name(&self, addr: u64) -> Option<&str> {
        let (_, &(end, at, len)) = self.ranges.range(..=addr).next_back()?;
        (addr < end).then(|| &self.names[at as usize..(at + len) as usize])
    }

    /// Reads what the file gained since the last look. `budget`: bytes all
    /// perf maps may still read.
    fn update(&mut self, pid: u32, budget: &mut u64, stats: &mut PerfMapStats) {
        if self.location.is_none() {
            self.location = Location::find(pid);
        }
        let Some(location) = &self.location else { return };
        // Not there (yet, or any more): what was read stays.
        let opened = location.open();
        let symlink = matches!(&opened, Err(err) if err.raw_os_error() == Some(libc::ELOOP));
        let opened = opened.ok().and_then(|file| file.metadata().ok().map(|meta| (file, meta)));
        let foreign = |meta: &std::fs::Metadata| !meta.is_file() || !location.owners.contains(&meta.uid());
        if symlink || opened.as_ref().is_some_and(|(_, meta)| foreign(meta)) {
            if !self.counted_refused {
                self.counted_refused = true;
                stats.maps_refused += 1;
            }
            return;
        }
        let Some((mut file, meta)) = opened else { return };
        let identity = (meta.dev(), meta.ino());
        let size = meta.len();
        if self.file != Some(identity) || size < self.consumed {
            // Another file, or this one rewritten: start over. What was
            // read of the old one is dropped (its code is gone with it).
            stats.entries -= self.entries;
            *self = PerfMap {
                location: self.location.take(),
                file: Some(identity),
                bytes_read: self.bytes_read,
                cut: self.cut,
                counted_read: self.counted_read,
                counted_refused: self.counted_refused,
                ..PerfMap::default()
            };
        }
        let previous_size = std::mem::replace(&mut self.size_seen, size);
        if self.cut || size == self.consumed {
            return;
        }
        let Some((data, allowed)) = self.read_new(&mut file, self.consumed, size, budget, stats) else { return };
        let read = data.len() as u64;
        if !self.counted_read {
            self.counted_read = true;
            stats.maps_read += 1;
        }
        self.first_read_ns.get_or_insert_with(boottime_ns);
        let whole_file = self.consumed + read >= size;
        // An unterminated last line is taken when the file has not grown
        // since the previous look: its writer is done with it.
        let take_tail = whole_file && size == previous_size;
        let before = self.entries;
        let taken = self.ingest(&data, take_tail, stats);
        self.consumed += taken as u64;
        stats.entries += self.entries - before;
        if !self.cut && !whole_file && read == allowed {
            self.cut = true;
        }
        if self.cut {
            stats.maps_cut_at_limit += 1;
        }
    }

    /// The bytes of `file` from `from` to `size`, as many as this process's
    /// bound and the total `budget` allow (counted against both), and how
    /// many were allowed; `None` when nothing could be read (the bound
    /// reached: counted as cut).
    fn read_new(
        &mut self,
        file: &mut File,
        from: u64,
        size: u64,
        budget: &mut u64,
        stats: &mut PerfMapStats,
    ) -> Option<(Vec<u8>, u64)> {
        let allowed = (MAX_FILE_BYTES - self.bytes_read).min(*budget);
        if allowed == 0 {
            self.cut = true;
            stats.maps_cut_at_limit += 1;
            return None;
        }
        file.seek(SeekFrom::Start(from)).ok()?;
        // On an error, what was read before it is taken (and counted).
        let mut data = Vec::new();
        let _ = file.take((size - from).min(allowed)).read_to_end(&mut data);
        let read = data.len() as u64;
        self.bytes_read += read;
        *budget -= read;
        stats.bytes_read += read;
        Some((data, allowed))
    }

    /// Reads what the process's jitdump file (`path`: our handle on the file
    /// it maps) gained since the last look: loads name code, moves move it.
    fn update_dump(&mut self, path: &Path, budget: &mut u64, stats: &mut PerfMapStats) {
        let Ok(mut file) = File::open(path) else { return };
        let Ok(meta) = file.metadata() else { return };
        let identity = (meta.dev(), meta.ino());
        if self.dump.file != Some(identity) {
            self.dump = DumpState { file: Some(identity), ..DumpState::default() };
        }
        let size = meta.len();
        if self.dump.stopped || self.cut || size <= self.dump.consumed {
            return;
        }
        let Some((data, allowed)) = self.read_new(&mut file, self.dump.consumed, size, budget, stats) else { return };
        let read = data.len() as u64;
        self.first_read_ns.get_or_insert_with(boottime_ns);
        if !self.dump.counted_read {
            self.dump.counted_read = true;
            stats.maps_read += 1;
        }
        let before = self.entries;
        let mut events = Vec::new();
        let (taken, stop) = jitdump::parse(&data, self.dump.consumed, |event| match event {
            jitdump::Event::Load { start, end, name } => events.push((start, end, None, Some(name.to_vec()))),
            jitdump::Event::Move { old, start, end } => events.push((start, end, Some(old), None)),
        });
        for (start, end, moved_from, name) in events {
            if self.entries >= MAX_ENTRIES {
                self.cut = true;
                break;
            }
            let name = match (name, moved_from) {
                (Some(name), _) => String::from_utf8_lossy(&name).into_owned(),
                (None, Some(old)) => match self.name(old) {
                    Some(name) => name.to_owned(),
                    None => continue,
                },
                (None, None) => continue,
            };
            self.insert(start, end, &name);
        }
        self.dump.consumed += taken as u64;
        stats.entries += self.entries - before;
        if stop == Some(jitdump::Stop::Malformed) {
            self.dump.stopped = true;
            stats.malformed_lines += 1;
        }
        if self.cut || (read == allowed && self.dump.consumed < size) {
            self.cut = true;
            stats.maps_cut_at_limit += 1;
        }
    }

    /// Takes the whole lines of `data` (and an unterminated last one with
    /// `take_tail`), up to [`MAX_ENTRIES`]; returns the bytes taken.
    pub(crate) fn ingest(&mut self, data: &[u8], take_tail: bool, stats: &mut PerfMapStats) -> usize {
        let mut taken = 0;
        while taken < data.len() {
            let rest = &data[taken..];
            let (line, next) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], taken + end + 1),
                None if take_tail => (rest, data.len()),
                None => break,
            };
            if self.entries >= MAX_ENTRIES {
                self.cut = true;
                break;
            }
            taken = next;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match parse_line(line) {
                Some((start, end, name)) => self.insert(start, end, &String::from_utf8_lossy(name)),
                None => stats.malformed_lines += 1,
            }
        }
        taken
    }

    /// Adds `[start, end)` named `name` over whatever it overlaps.
    fn insert(&mut self, start: u64, end: u64, name: &str) {
        // A range that starts before and reaches in keeps its part before
        // `start`, and its part after `end` when it reaches past it.
        if let Some((&s, &(e, at, len))) = self.ranges.range(..start).next_back()
            && e > start
        {
            self.ranges.insert(s, (start, at, len));
            if e > end {
                self.ranges.insert(end, (e, at, len));
            }
        }
        // Ranges that start inside go, but for their part after `end`.
        while let Some((&s, &(e, at, len))) = self.ranges.range(start..end).next() {
            self.ranges.remove(&s);
            if e > end {
                self.ranges.insert(end, (e, at, len));
            }
        }
        // Names take at most MAX_FILE_BYTES in all, so offsets fit in u32.
        let at = self.names.len() as u32;
        self.names.push_str(name);
        self.ranges.insert(start, (end, at, name.len() as u32));
        self.entries += 1;
    }
}

/// `START SIZE name`: the range `[START, START + SIZE)` and the name (the
/// rest of the line, without surrounding blanks); `None` when malformed.
fn parse_line(line: &[u8]) -> Option<(u64, u64, &[u8])> {
    let (start, rest) = split_field(line)?;
    let (size, name) = split_field(rest)?;
    let name = name.trim_ascii();
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return None;
    }
    let (start, size) = (hex(start)?, hex(size)?);
    let end = start.checked_add(size).filter(|_| size > 0)?;
    Some((start, end, name))
}

/// The first space-separated field and what follows it.
fn split_field(text: &[u8]) -> Option<(&[u8], &[u8])> {
    let text = text.trim_ascii_start();
    let end = text.iter().position(|&b| b == b' ' || b == b'\t')?;
    Some((&text[..end], &text[end..]))
}

/// A hexadecimal number of at most 16 digits, `0x` allowed.
fn hex(text: &[u8]) -> Option<u64> {
    let digits = text.strip_prefix(b"0x").or_else(|| text.strip_prefix(b"0X")).unwrap_or(text);
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// The perf maps of every process that has JIT code.
#[derive(Debug)]
pub(crate) struct PerfMaps {
    by_pid: HashMap<u32, PerfMap>,
    /// Bytes all maps may still read.
    budget: u64,
    stats: PerfMapStats,
}

impl Default for PerfMaps {
    fn default() -> Self {
        Self { by_pid: HashMap::new(), budget: MAX_TOTAL_BYTES, stats: PerfMapStats::default() }
    }
}

impl PerfMaps {
    /// Reads what `pid`'s perf map and jitdump file (`jitdump`: our handle on
    /// the one it maps, if any) gained since the last look (finding the perf
    /// map first, while the process lives).
    pub fn update(&mut self, pid: u32, jitdump: Option<&Path>) {
        let map = self.by_pid.entry(pid).or_default();
        map.update(pid, &mut self.budget, &mut self.stats);
        if let Some(path) = jitdump {
            map.update_dump(path, &mut self.budget, &mut self.stats);
        }
    }

    pub fn get(&self, pid: u32) -> Option<&PerfMap> {
        self.by_pid.get(&pid)
    }

    /// Keeps what was read of `pid`'s map under `id` instead: `pid` is a
    /// process started at `new_start_ns` from now on. A map first read
    /// after that start stays: it is the new process's (its notice came
    /// after the read, as for an exec noticed late), and moving it would
    /// have the new process read the same file again as another map.
    pub fn rename(&mut self, pid: u32, id: u32, new_start_ns: u64) {
        if self.by_pid.get(&pid).is_some_and(|map| map.first_read_ns.is_none_or(|read| read < new_start_ns))
            && let Some(map) = self.by_pid.remove(&pid)
        {
            self.by_pid.insert(id, map);
        }
    }

    /// Drops what was read of `pid`'s map (the pid is reused, or exec'd).
    pub fn forget(&mut self, pid: u32) {
        if let Some(map) = self.by_pid.remove(&pid) {
            self.stats.entries -= map.entries;
        }
    }

    pub fn stats(&self) -> &PerfMapStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_of(text: &str) -> (PerfMap, PerfMapStats) {
        let mut map = PerfMap::default();
        let mut stats = PerfMapStats::default();
        map.ingest(text.as_bytes(), true, &mut stats);
        (map, stats)
    }

    #[test]
    fn names_ranges_by_start_and_size() {
        let (map, stats) = map_of("1000 100 jit_hot\n2000 0x80 LazyCompile:*fib /app/x.js:3\n");
        assert_eq!(map.name(0x1000), Some("jit_hot"));
        assert_eq!(map.name(0x10ff), Some("jit_hot"));
        assert_eq!(map.name(0x1100), None);
        assert_eq!(map.name(0xfff), None);
        assert_eq!(map.name(0x2040), Some("LazyCompile:*fib /app/x.js:3"));
        assert_eq!(map.name(0x2080), None);
        assert_eq!(stats.malformed_lines, 0);
    }

    #[test]
    fn later_entries_win_where_ranges_overlap() {
        // Over the middle of an older one, over its start, over its end, and
        // over several whole ones.
        let (map, _) =
            map_of("1000 1000 old\n1400 100 middle\n800 900 head\n1f00 200 tail\n3000 10 a\n3010 10 b\n2ff0 40 all\n");
        assert_eq!(map.name(0x800), Some("head"));
        assert_eq!(map.name(0x10ff), Some("head"));
        assert_eq!(map.name(0x1100), Some("old"));
        assert_eq!(map.name(0x13ff), Some("old"));
        assert_eq!(map.name(0x1400), Some("middle"));
        assert_eq!(map.name(0x1500), Some("old"));
        assert_eq!(map.name(0x1eff), Some("old"));
        assert_eq!(map.name(0x1f00), Some("tail"));
        assert_eq!(map.name(0x20ff), Some("tail"));
        assert_eq!(map.name(0x2100), None);
        assert_eq!(map.name(0x2ff0), Some("all"));
        assert_eq!(map.name(0x3015), Some("all"));
        assert_eq!(map.name(0x3030), None);
        assert_eq!(map.entries, 7);
        // The same range again: the newest name.
        let (map, _) = map_of("1000 10 first\n1000 10 second\n");
        assert_eq!(map.name(0x1008), Some("second"));
    }

    #[test]
    fn malformed_lines_are_counted_and_skipped() {
        let text = "garbage\n\
            zz 10 bad_start\n\
            1000 qq bad_size\n\
            1000 10\n\
            1000 0 empty_range\n\
            ffffffffffffffff 2 overflows\n\
            11112222333344445555 10 too_many_digits\n\
            \n\
            3000 10 good\n\
            \u{0}\u{1}\u{2}\n";
        let (map, stats) = map_of(text);
        assert_eq!(stats.malformed_lines, 8);
        assert_eq!(map.entries, 1);
        assert_eq!(map.name(0x3000), Some("good"));
        let long = format!("4000 10 {}\n", "x".repeat(MAX_NAME_BYTES + 1));
        assert_eq!(map_of(&long).1.malformed_lines, 1);
        // Not UTF-8: named lossily, not refused.
        let mut stats = PerfMapStats::default();
        let mut map = PerfMap::default();
        map.ingest(b"5000 10 caf\xe9\n", true, &mut stats);
        assert_eq!(map.name(0x5000), Some("caf\u{fffd}"));
    }

    #[test]
    fn an_unterminated_last_line_waits_unless_told() {
        let mut map = PerfMap::default();
        let mut stats = PerfMapStats::default();
        assert_eq!(map.ingest(b"1000 10 a\n2000 10 partial_na", false, &mut stats), 10);
        assert_eq!(map.name(0x2000), None);
        assert_eq!(map.ingest(b"2000 10 partial_name", true, &mut stats), 20);
        assert_eq!(map.name(0x2000), Some("partial_name"));
    }

    #[test]
    fn entries_stop_at_the_limit() {
        let mut map = PerfMap::default();
        let mut stats = PerfMapStats::default();
        let line = b"1000 10 x\n";
        let data: Vec<u8> = line.iter().copied().cycle().take(line.len() * (MAX_ENTRIES as usize + 5)).collect();
        let taken = map.ingest(&data, true, &mut stats);
        assert_eq!(map.entries, MAX_ENTRIES);
        assert!(map.cut);
        assert_eq!(taken, line.len() * MAX_ENTRIES as usize);
    }

    #[test]
    fn status_gives_the_innermost_pid_and_the_owners() {
        let status = "Name:\tnode\nUid:\t1000\t1000\t1000\t1000\nNSpid:\t4242\t17\t1\n";
        assert_eq!(parse_status(status, 4242), (1, vec![0, 1000, 1000, 1000, 1000]));
        assert_eq!(parse_status("Name:\tx\n", 7), (7, vec![0]));
    }

    /// A directory standing for a process's /tmp, read as its perf map is.
    fn located(dir: &Path, name: &str) -> PerfMap {
        let tmp = File::open(dir).unwrap();
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        PerfMap { location: Some(Location { tmp, name: name.into(), owners: vec![0, uid] }), ..PerfMap::default() }
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("symbolize-perf-map-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_map_read_after_the_pid_s_new_process_started_stays_with_it() {
        let dir = temp_dir("rename");
        std::fs::write(dir.join("perf-1.map"), "1000 10 jitted\n").unwrap();
        let mut maps = PerfMaps::default();
        let before_the_read = boottime_ns();
        let mut map = located(&dir, "perf-1.map");
        map.update(1, &mut maps.budget, &mut maps.stats);
        let after_the_read = boottime_ns();
        maps.by_pid.insert(1, map);
        // The notice of a process started before the read (an exec noticed
        // late): the map is the new process's and stays.
        maps.rename(1, crate::PID_LIMIT, before_the_read);
        assert_eq!(maps.get(1).and_then(|map| map.name(0x1000)), Some("jitted"));
        assert!(maps.get(crate::PID_LIMIT).is_none());
        // A process started after the read: the map was the earlier one's.
        maps.rename(1, crate::PID_LIMIT, after_the_read);
        assert_eq!(maps.get(crate::PID_LIMIT).and_then(|map| map.name(0x1000)), Some("jitted"));
        assert!(maps.get(1).is_none());
        assert_eq!((maps.stats.maps_read, maps.stats.entries), (1, 1));
    }

    #[test]
    fn the_file_is_read_again_when_it_grows_and_kept_when_deleted() {
        use std::io::Write;
        let dir = temp_dir("grow");
        let path = dir.join("perf-1.map");
        let mut file = File::create(&path).unwrap();
        file.write_all(b"1000 10 first\n2000 10 sec").unwrap();
        let mut map = located(&dir, "perf-1.map");
        let (mut budget, mut stats) = (MAX_TOTAL_BYTES, PerfMapStats::default());
        map.update(1, &mut budget, &mut stats);
        assert_eq!((map.name(0x1000), map.name(0x2000)), (Some("first"), None));
        file.write_all(b"ond\n3000 10 third").unwrap();
        map.update(1, &mut budget, &mut stats);
        assert_eq!((map.name(0x2000), map.name(0x3000)), (Some("second"), None));
        // Unchanged since the last look: the writer is done with the last line.
        map.update(1, &mut budget, &mut stats);
        assert_eq!(map.name(0x3000), Some("third"));
        assert_eq!((stats.maps_read, stats.entries, stats.malformed_lines), (1, 3, 0));
        // Unterminated lines are read again, and counted again.
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(stats.bytes_read > size && stats.bytes_read < 2 * size, "{} bytes read of {size}", stats.bytes_read);
        std::fs::remove_file(&path).unwrap();
        map.update(1, &mut budget, &mut stats);
        assert_eq!(map.name(0x1000), Some("first"));
        // A new file in its place: read from the start, the old one dropped.
        std::fs::write(&path, "4000 10 fourth\n").unwrap();
        map.update(1, &mut budget, &mut stats);
        assert_eq!((map.name(0x1000), map.name(0x4000)), (None, Some("fourth")));
        assert_eq!(stats.entries, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn symlinks_fifos_and_big_files_are_bounded() {
        let dir = temp_dir("refuse");
        std::fs::write(dir.join("target"), "1000 10 secret\n").unwrap();
        std::os::unix::fs::symlink(dir.join("target"), dir.join("perf-2.map")).unwrap();
        let (mut budget, mut stats) = (MAX_TOTAL_BYTES, PerfMapStats::default());
        let mut map = located(&dir, "perf-2.map");
        map.update(2, &mut budget, &mut stats);
        assert_eq!((map.name(0x1000), stats.maps_refused), (None, 1));
        let fifo = std::ffi::CString::new(dir.join("perf-3.map").to_str().unwrap()).unwrap();
        // SAFETY: `fifo` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut map = located(&dir, "perf-3.map");
        map.update(3, &mut budget, &mut stats); // returns at once, refused
        assert_eq!((stats.maps_refused, stats.maps_read), (2, 0));
        // A budget smaller than the file: cut, counted, bounded.
        std::fs::write(dir.join("perf-4.map"), "1000 10 a\n2000 10 b\n3000 10 c\n").unwrap();
        let mut map = located(&dir, "perf-4.map");
        let mut small = 15;
        map.update(4, &mut small, &mut stats);
        assert_eq!((map.name(0x1000), map.name(0x2000)), (Some("a"), None));
        assert_eq!((small, stats.maps_cut_at_limit), (0, 1));
        map.update(4, &mut small, &mut stats);
        assert_eq!(map.name(0x2000), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
