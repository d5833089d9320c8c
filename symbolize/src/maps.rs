//! Parsing of `/proc/PID/maps`.

use crate::error::Error;

/// What backs a mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Backing {
    /// A file path (absolute; a trailing " (deleted)" is stripped and noted).
    File { path: String, deleted: bool },
    /// A kernel-named region such as `[heap]`, `[stack]`, `[vdso]`, `[anon:foo]`.
    Special(String),
    /// No name at all: plain anonymous memory (often JIT code).
    Anonymous,
}

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub executable: bool,
    /// File offset of `start`.
    pub offset: u64,
    /// (device, inode) as printed by the kernel: identifies the file.
    pub dev: u64,
    pub inode: u64,
    pub backing: Backing,
    /// When the kernel reported the mapping made (CLOCK_BOOTTIME ns); 0
    /// when read from /proc (known since before anything the recording saw).
    pub mapped_ns: u64,
}

impl MapEntry {
    /// Name used for frames: basename of the file or the special name.
    pub fn module_name(&self) -> String {
        match &self.backing {
            Backing::File { path, .. } => basename(path).to_owned(),
            Backing::Special(name) if name.starts_with("[anon") => "[anon]".to_owned(),
            Backing::Special(name) => name.clone(),
            Backing::Anonymous => "[anon]".to_owned(),
        }
    }
}

impl MapEntry {
    /// Executable memory no file backs: where JIT runtimes put their code
    /// (plain anonymous memory, or named with PR_SET_VMA_ANON_NAME).
    pub fn is_anonymous_code(&self) -> bool {
        self.executable
            && match &self.backing {
                Backing::Anonymous => true,
                Backing::Special(name) => name.starts_with("[anon"),
                Backing::File { .. } => false,
            }
    }
}

pub(crate) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Backing {
    /// The backing of a mapping the kernel reported by `name` (a perf
    /// MMAP2 record's file name): `//anon` is anonymous memory.
    pub(crate) fn from_reported_name(name: &str) -> Backing {
        match name {
            "//anon" | "" => Backing::Anonymous,
            path if path.starts_with('/') => match path.strip_suffix(" (deleted)") {
                Some(path) => Backing::File { path: path.to_owned(), deleted: true },
                None => Backing::File { path: path.to_owned(), deleted: false },
            },
            special => Backing::Special(special.to_owned()),
        }
    }
}

/// Parses the whole text of a maps file, sorted by start address.
pub(crate) fn parse(pid: u32, text: &str) -> Result<Vec<MapEntry>, Error> {
    let mut entries = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            parse_line(line).ok_or_else(|| Error::ParseMaps { pid, line_no: i + 1, line: line.to_owned() })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The kernel prints them sorted already; lookups rely on it, so make sure.
    entries.sort_by_key(|e| e.start);
    Ok(entries)
}

/// `start-end perms offset major:minor inode [path]`; the path may contain spaces.
fn parse_line(line: &str) -> Option<MapEntry> {
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start();
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        Some(f).filter(|f| !f.is_empty())
    };
    let (start, end) = field()?.split_once('-')?;
    let perms = field()?;
    let offset = field()?;
    let (major, minor) = field()?.split_once(':')?;
    let inode = field()?.parse().ok()?;
    let name = rest.trim_start();

    let hex = |s: &str| u64::from_str_radix(s, 16).ok();
    let backing = if name.is_empty() {
        Backing::Anonymous
    } else if name.starts_with('/') {
        match name.strip_suffix(" (deleted)") {
            Some(path) => Backing::File { path: path.to_owned(), deleted: true },
            None => Backing::File { path: name.to_owned(), deleted: false },
        }
    } else {
        Backing::Special(name.to_owned())
    };
    Some(MapEntry {
        start: hex(start)?,
        end: hex(end)?,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        offset: hex(offset)?,
        dev: (hex(major)? << 32) | hex(minor)?,
        inode,
        backing,
        mapped_ns: 0,
    })
}

/// Index of the entry containing `addr` in a start-sorted list.
pub(crate) fn find(entries: &[MapEntry], addr: u64) -> Option<usize> {
    let i = entries.partition_point(|e| e.start <= addr).checked_sub(1)?;
    (addr < entries[i].end).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
5581a0a00000-5581a0a01000 r--p 00000000 fe:00 1234                       /usr/bin/my prog
5581a0a01000-5581a0a02000 r-xp 00001000 fe:00 1234                       /usr/bin/my prog
5581a1a00000-5581a1a21000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 rwxp 00000000 00:00 0 
7f0000001000-7f0000002000 r-xp 00002000 08:11 99                         /tmp/gone.so (deleted)
7fff75ecf000-7fff75ef0000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn parses_all_kinds_of_lines() {
        let e = parse(1, MAPS).unwrap();
        assert_eq!(e.len(), 7);
        assert_eq!(e[1].start, 0x5581a0a01000);
        assert_eq!(e[1].end, 0x5581a0a02000);
        assert_eq!(e[1].offset, 0x1000);
        assert!(e[1].executable && !e[0].executable);
        assert_eq!(e[1].dev, (0xfe << 32));
        assert_eq!(e[1].inode, 1234);
        assert_eq!(e[1].backing, Backing::File { path: "/usr/bin/my prog".into(), deleted: false });
        assert_eq!(e[1].module_name(), "my prog");
        assert_eq!(e[2].backing, Backing::Special("[heap]".into()));
        assert_eq!(e[3].backing, Backing::Anonymous);
        assert_eq!(e[3].module_name(), "[anon]");
        assert!(e[3].is_anonymous_code());
        assert!(!e[1].is_anonymous_code() && !e[2].is_anonymous_code() && !e[6].is_anonymous_code());
        assert_eq!(e[4].backing, Backing::File { path: "/tmp/gone.so".into(), deleted: true });
        assert_eq!(e[4].dev, (8 << 32) | 0x11);
        assert_eq!(e[4].module_name(), "gone.so");
    }

    #[test]
    fn finds_containing_entry() {
        let e = parse(1, MAPS).unwrap();
        assert_eq!(find(&e, 0x5581a0a01000), Some(1));
        assert_eq!(find(&e, 0x5581a0a01fff), Some(1));
        assert_eq!(find(&e, 0x5581a0a02000), None);
        assert_eq!(find(&e, 0x10), None);
        assert_eq!(find(&e, 0x7fff75ecf010), Some(5));
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(parse(7, "hello world\n"), Err(Error::ParseMaps { pid: 7, line_no: 1, .. })));
        assert!(parse(7, "").unwrap().is_empty());
    }
}
