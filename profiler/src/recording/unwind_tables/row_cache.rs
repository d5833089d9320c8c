//! Compiled rows kept on disk between recordings. Compiling a large file's
//! call-frame information takes seconds (libLLVM: 1.4 million rows, about
//! 1 s), and until it is loaded a process's stacks are walked with frame
//! pointers: a rustc that lives half a second loses most of its samples.
//! With the rows cached, loading them takes milliseconds.
//!
//! A file is known by its device, inode, size and modification time; a
//! cache entry is valid for one build of flameprof (which compiles the
//! rows) and of its kernel side (the rows' layout and meaning belong to
//! it). Entries are read back with their length
//! checked and are only ever rows for the walker, which checks every
//! field it uses. The cache keeps at most `BOUND_BYTES`, least recently
//! used files removed first. `FLAMEPROF_CACHE_DIR` names the directory
//! (empty: no cache); the default is `$XDG_CACHE_HOME/flameprof` or
//! `~/.cache/flameprof`.
use std::{
    fs::{self, File},
    hash::{Hash, Hasher},
    io::{Read, Write},
    os::unix::fs::{MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::SystemTime,
};

use profiler_ebpf::UnwindRow;

const MAGIC: &[u8; 8] = b"FPROWS01";
const ROW_BYTES: usize = 16;
/// Files in the cache together stay under this.
const BOUND_BYTES: u64 = 512 << 20;

/// The rows of `path`: from the cache when they are there, else compiled
/// by `compile` and stored for the next recording.
pub(super) fn rows_of(path: &Path, compile: impl FnOnce() -> Option<Vec<UnwindRow>>) -> Option<Vec<UnwindRow>> {
    let Some(entry) = cache_dir().and_then(|dir| entry_path(&dir, path)) else { return compile() };
    if let Some(rows) = read(&entry) {
        // Its modification time is its last use, for eviction.
        let _ = File::options().append(true).open(&entry).and_then(|f| f.set_modified(SystemTime::now()));
        return Some(rows);
    }
    let rows = compile()?;
    if let Some(dir) = entry.parent()
        && write(dir, &entry, &rows).is_ok()
    {
        evict(dir);
    }
    Some(rows)
}

fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("FLAMEPROF_CACHE_DIR") {
        Some(dir) if dir.is_empty() => return None,
        Some(dir) => return Some(PathBuf::from(dir).join("unwind-rows")),
        None => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("flameprof").join("unwind-rows"))
}

/// The entry of `file`: named by a hash of its identity and of the kernel
/// side's build.
fn entry_path(dir: &Path, file: &Path) -> Option<PathBuf> {
    let meta = fs::metadata(file).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (meta.dev(), meta.ino(), meta.size(), meta.mtime(), meta.mtime_nsec()).hash(&mut hasher);
    crate::recording::bpf::object_fingerprint().hash(&mut hasher);
    // The compiler of the rows is this binary: another build may compile
    // them otherwise.
    if let Ok(own) = fs::metadata("/proc/self/exe") {
        (own.dev(), own.ino(), own.size(), own.mtime(), own.mtime_nsec()).hash(&mut hasher);
    }
    Some(dir.join(format!("{:016x}.rows", hasher.finish())))
}

fn read(entry: &Path) -> Option<Vec<UnwindRow>> {
    let mut file = File::open(entry).ok()?;
    let mut header = [0u8; 16];
    file.read_exact(&mut header).ok()?;
    if &header[..8] != MAGIC {
        return None;
    }
    let count = usize::try_from(u64::from_le_bytes(header[8..].try_into().ok()?)).ok()?;
    let expected = count.checked_mul(ROW_BYTES)?;
    if file.metadata().ok()?.len() != (expected + header.len()) as u64 {
        return None;
    }
    let mut bytes = vec![0u8; expected];
    file.read_exact(&mut bytes).ok()?;
    Some(bytes.chunks_exact(ROW_BYTES).map(decode).collect())
}

/// Written under a temporary name (created exclusively, readable by its
/// owner only) and renamed: a reader never sees half an entry.
fn write(dir: &Path, entry: &Path, rows: &[UnwindRow]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{}.{}.tmp", std::process::id(), rows.len()));
    let mut file = File::options().write(true).create_new(true).mode(0o600).open(&temporary)?;
    let mut bytes = Vec::with_capacity(16 + rows.len() * ROW_BYTES);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(rows.len() as u64).to_le_bytes());
    for row in rows {
        bytes.extend_from_slice(&encode(row));
    }
    let written = file.write_all(&bytes).and_then(|()| fs::rename(&temporary, entry));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Removes the least recently used entries while the cache is over its bound.
fn evict(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else { return };
    let mut entries: Vec<(SystemTime, u64, PathBuf)> = listing
        .filter_map(|e| {
            let e = e.ok()?;
            let meta = e.metadata().ok()?;
            let path = e.path();
            (path.extension()? == "rows").then_some(())?;
            Some((meta.modified().ok()?, meta.len(), path))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= BOUND_BYTES {
            break;
        }
        if fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

fn encode(row: &UnwindRow) -> [u8; ROW_BYTES] {
    let mut b = [0u8; ROW_BYTES];
    b[0..4].copy_from_slice(&row.pc.to_le_bytes());
    b[4..8].copy_from_slice(&row.cfa_offset.to_le_bytes());
    b[8..10].copy_from_slice(&row.rbp_offset.to_le_bytes());
    b[10] = row.cfa_rule;
    b[11] = row.rbp_rule;
    b[12] = row.cfa_register;
    b[13] = row.rbx_rule;
    b[14..16].copy_from_slice(&row.rbx_offset.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> UnwindRow {
    let u16_at = |i: usize| [b[i], b[i + 1]];
    UnwindRow {
        pc: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        cfa_offset: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        rbp_offset: i16::from_le_bytes(u16_at(8)),
        cfa_rule: b[10],
        rbp_rule: b[11],
        cfa_register: b[12],
        rbx_rule: b[13],
        rbx_offset: i16::from_le_bytes(u16_at(14)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_survive_the_round_trip_and_a_cut_entry_is_refused() {
        let dir = std::env::temp_dir().join(format!("flameprof-row-cache-{}", std::process::id()));
        let rows: Vec<UnwindRow> = (0..1000u32)
            .map(|i| UnwindRow {
                pc: i * 16,
                cfa_offset: -(i as i32),
                rbp_offset: -16,
                cfa_rule: (i % 7) as u8,
                rbp_rule: 1,
                cfa_register: 3,
                rbx_rule: 2,
                rbx_offset: i as i16,
            })
            .collect();
        let entry = dir.join("x.rows");
        write(&dir, &entry, &rows).unwrap();
        assert_eq!(read(&entry).unwrap(), rows);
        let bytes = fs::read(&entry).unwrap();
        fs::write(&entry, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(read(&entry), None);
        fs::write(&entry, b"FPROWS01\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
        assert_eq!(read(&entry), None);
        let _ = fs::remove_dir_all(&dir);
    }
}
