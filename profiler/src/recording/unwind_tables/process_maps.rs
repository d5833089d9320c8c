//! What the table loader reads of a process: its executable mappings
//! (/proc/PID/maps) and the files behind them.
use std::path::PathBuf;

use symbolize::ReportedMapping;

/// One line of /proc/PID/maps.
pub(crate) struct MapsLine<'a> {
    pub start: u64,
    pub end: u64,
    pub offset: u64,
    pub executable: bool,
    pub path: Option<&'a str>,
}

impl<'a> MapsLine<'a> {
    /// `START-END PERMS OFFSET DEV INODE [PATH]`; None for a malformed line.
    pub(crate) fn parse(line: &'a str) -> Option<Self> {
        let mut fields = line.splitn(6, ' ');
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let offset = fields.next()?;
        let _device = fields.next()?;
        let _inode = fields.next()?;
        let path = fields.next().map(str::trim_start).filter(|p| !p.is_empty());
        Some(MapsLine {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            offset: u64::from_str_radix(offset, 16).ok()?,
            executable: perms.as_bytes().get(2) == Some(&b'x'),
            path,
        })
    }
}

impl<'a> MapsLine<'a> {
    /// A mapping the kernel reported (executable); `//anon` is anonymous
    /// memory, as a nameless line of the maps file.
    pub(crate) fn reported(mapping: &'a ReportedMapping) -> Self {
        MapsLine {
            start: mapping.start,
            end: mapping.end,
            offset: mapping.file_offset,
            executable: true,
            path: Some(mapping.name.as_str()).filter(|name| *name != "//anon"),
        }
    }
}

/// The executable lines no later one overlaps: of the kernel's reports, in
/// the order the mappings were made, a later one replaces what it overlaps
/// (code loaded where unloaded code was), and only the code there now is
/// walked. /proc's lines never overlap.
pub(crate) fn latest_executable<'a>(lines: impl Iterator<Item = MapsLine<'a>>) -> Vec<MapsLine<'a>> {
    let mut kept: Vec<MapsLine<'a>> = Vec::new();
    for line in lines.filter(|line| line.executable) {
        kept.retain(|old| old.end <= line.start || old.start >= line.end);
        kept.push(line);
    }
    kept
}

/// The mapped file, through the process's own view of it when possible
/// (a file deleted or replaced since it was mapped, a process in a container).
pub(super) fn readable_path(pid: u32, start: u64, end: u64, path: &str) -> PathBuf {
    let own = symbolize::memory_view(pid).join(format!("map_files/{start:x}-{end:x}"));
    if std::fs::metadata(&own).is_ok() { own } else { PathBuf::from(path) }
}
