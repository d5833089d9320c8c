//! `--call-graph table`: the unwind tables the kernel-side walker reads.
//! Each executable file's call-frame information is compiled into rows once
//! (keyed by device and inode), appended to UNWIND_ROWS, and shared by every
//! process that maps the file; each process gets its sorted executable
//! mappings, with their file's row range, in PROCESS_MAPPINGS. Until a
//! process's entry is written its samples are walked with frame pointers
//! (counted by the kernel side).
use std::{
    collections::HashMap,
    os::unix::fs::MetadataExt,
    path::Path,
    time::{Duration, Instant},
};

mod elf_layout;
mod mapped_rows;
pub(crate) mod process_maps;
mod row_cache;

use aya::maps::{HashMap as BpfHashMap, MapData};
use profiler_ebpf::{ProcessMappings, UnwindMapping, UnwindRow, unwind};
use serde::Serialize;
use symbolize::{CfaRule, RbpRule, RbxRule, ReportedMapping};

use elf_layout::{Segment, load_bias, segments};
pub use mapped_rows::MappedRows;
use process_maps::{MapsLine, latest_executable, readable_path};

/// Bytes of one row in the kernel.
const ROW_BYTES: u64 = std::mem::size_of::<UnwindRow>() as u64;

/// A file's place in UNWIND_ROWS, and its PT_LOAD segments to place its
/// mappings.
#[derive(Debug, Clone)]
struct FileInfo {
    rows: FileRows,
    segments: Vec<Segment>,
}

/// A file's place in UNWIND_ROWS, or why it has none.
#[derive(Debug, Clone, Copy)]
enum FileRows {
    Loaded {
        first_row: u32,
        rows: u32,
    },
    /// No call-frame information, unreadable, addresses beyond 4 GiB, or
    /// no room left: its frames are walked with frame pointers.
    Missing,
}

/// What the tables cost and what they cover, for the summary.
#[derive(Debug, Default, Clone, Serialize)]
pub struct TableStats {
    pub files_loaded: u64,
    /// Files with no usable call-frame information (or unreadable, or whose
    /// rows could not be written).
    pub files_without_tables: u64,
    /// Files whose rows did not fit in the table memory (--table-memory).
    pub files_not_fitting: u64,
    pub rows: u64,
    pub bytes: u64,
    pub capacity_bytes: u64,
    /// Time spent compiling and loading tables.
    pub build_seconds: f64,
    pub processes: u64,
    /// Processes whose mappings did not fit (unwind::MAX_PROCESSES).
    pub processes_not_loaded: u64,
    /// Executable mappings beyond the per-process limit (frame pointers there).
    pub mappings_dropped: u64,
    /// The largest files' tables: (path, rows).
    pub largest: Vec<(String, u64)>,
    /// Where walks stopped short of the outermost frame (at code without
    /// unwind information or a bad frame), most first: (where, walks).
    pub broken_chains: Vec<(String, u64)>,
}

pub struct UnwindTables {
    rows: MappedRows,
    processes: BpfHashMap<MapData, u32, ProcessMappings>,
    broken_chains: BpfHashMap<MapData, u32, u64>,
    files: HashMap<(u64, u64), FileInfo>,
    next_row: u32,
    capacity: u32,
    build_time: Duration,
    stats: TableStats,
    /// (path, first row, rows) of each loaded file.
    by_file: Vec<(String, u32, u64)>,
    /// What each process's entry holds now: its process's start, mappings.
    written: HashMap<u32, (u64, Vec<UnwindMapping>)>,
    /// The vDSO's table, once looked for.
    vdso: Option<Option<FileInfo>>,
    /// The last `ProcessMappings::generation` written.
    generation: u32,
}

impl UnwindTables {
    pub fn new(
        rows: MappedRows,
        processes: BpfHashMap<MapData, u32, ProcessMappings>,
        broken_chains: BpfHashMap<MapData, u32, u64>,
    ) -> Self {
        let capacity = rows.capacity;
        UnwindTables {
            rows,
            processes,
            broken_chains,
            files: HashMap::new(),
            next_row: 0,
            capacity,
            build_time: Duration::ZERO,
            stats: TableStats { capacity_bytes: u64::from(capacity) * ROW_BYTES, ..Default::default() },
            by_file: Vec::new(),
            written: HashMap::new(),
            vdso: None,
            generation: 0,
        }
    }

    /// Writes (or rewrites) `pid`'s executable mappings, compiling the
    /// tables of files not seen before: files through the process's own view
    /// of them, the vDSO from our own copy (one kernel, one vDSO), anonymous
    /// code (JIT) without a table (frame pointers). Unchanged mappings are
    /// not written again. `started_ns`: the process's start (0: unknown),
    /// so that a later process with the pid is not walked with them.
    /// `reported`: its mappings as the kernel reported them (a program run
    /// during the recording), else /proc/PID/maps is read.
    pub fn load_process(&mut self, pid: u32, started_ns: u64, reported: Option<&[ReportedMapping]>) {
        self.load(pid, started_ns, reported, true);
    }

    /// As `load_process` when every file the process maps has its table
    /// compiled already (a fast write); false, and nothing written, when
    /// some file would have to be compiled first.
    pub fn load_compiled_process(&mut self, pid: u32, started_ns: u64, reported: Option<&[ReportedMapping]>) -> bool {
        self.load(pid, started_ns, reported, false)
    }

    fn load(&mut self, pid: u32, started_ns: u64, reported: Option<&[ReportedMapping]>, compile: bool) -> bool {
        let started = Instant::now();
        let text;
        let lines: Vec<MapsLine<'_>> = match reported {
            Some(reported) => latest_executable(reported.iter().map(MapsLine::reported)),
            None => {
                let Ok(read) = std::fs::read_to_string(symbolize::memory_view(pid).join("maps")) else { return true };
                text = read;
                latest_executable(text.lines().filter_map(MapsLine::parse))
            }
        };
        let mut mappings: Vec<UnwindMapping> = Vec::new();
        for mapping in lines {
            let (bias, file) = match mapping.path {
                Some(path) if path.starts_with('/') => {
                    let readable = readable_path(pid, mapping.start, mapping.end, path);
                    if !compile && !self.compiled(&readable) {
                        return false;
                    }
                    let Some(file) = self.file(&readable, path) else { continue };
                    let Some(bias) = load_bias(&file.segments, mapping.start, mapping.offset) else { continue };
                    (bias, file.rows)
                }
                Some("[vdso]") => match self.vdso() {
                    Some(file) => match load_bias(&file.segments, mapping.start, 0) {
                        Some(bias) => (bias, file.rows),
                        None => continue,
                    },
                    None => (0, FileRows::Missing),
                },
                _ => (0, FileRows::Missing),
            };
            let (first_row, rows) = match file {
                FileRows::Loaded { first_row, rows } => (first_row, rows),
                FileRows::Missing => (0, 0),
            };
            mappings.push(UnwindMapping { start: mapping.start, end: mapping.end, load_bias: bias, first_row, rows });
        }
        mappings.sort_by_key(|m| m.start);
        mappings.dedup_by(|later, earlier| later.start < earlier.end);
        if mappings.len() > unwind::MAX_MAPPINGS {
            self.stats.mappings_dropped += (mappings.len() - unwind::MAX_MAPPINGS) as u64;
            mappings.truncate(unwind::MAX_MAPPINGS);
        }
        if self.written.get(&pid).is_some_and(|(start, written)| *start == started_ns && *written == mappings) {
            self.build_time += started.elapsed();
            return true;
        }
        let mut entry = ProcessMappings {
            count: mappings.len() as u32,
            generation: self.next_generation(),
            refresh_asked_ns: 0,
            started_ns,
            mappings: [UnwindMapping::default(); unwind::MAX_MAPPINGS],
        };
        entry.mappings[..mappings.len()].copy_from_slice(&mappings);
        let fresh = !self.written.contains_key(&pid);
        match self.processes.insert(pid, entry, 0) {
            Ok(()) => {
                self.stats.processes += u64::from(fresh);
                self.written.insert(pid, (started_ns, mappings));
            }
            // PROCESS_MAPPINGS is full: this process stays on frame pointers.
            Err(_) => self.stats.processes_not_loaded += u64::from(fresh),
        }
        self.build_time += started.elapsed();
        true
    }

    /// Whether the file's table is compiled (or known to be missing).
    fn compiled(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|metadata| self.files.contains_key(&(metadata.dev(), metadata.ino())))
    }

    /// Compiles and loads, ahead of time, the tables of a program about to
    /// be started (`-- CMD`) and of the libraries it names (DT_NEEDED, found
    /// in the usual directories): when it then runs, writing its process
    /// entry is all that is left, and its first milliseconds are walked with
    /// tables too. Files not found are simply loaded later.
    pub fn preload(&mut self, program: &Path) {
        let started = Instant::now();
        let mut files = vec![program.to_path_buf()];
        files.extend(elf_layout::needed_libraries(program));
        if let Some(interpreter) = elf_layout::interpreter(program) {
            files.push(interpreter);
        }
        for file in files {
            let name = file.display().to_string();
            let _ = self.file(&file, &name);
        }
        self.build_time += started.elapsed();
    }

    /// Drops the entries of processes that have exited, so PROCESS_MAPPINGS
    /// (unwind::MAX_PROCESSES entries) holds live processes in a long
    /// recording with many short-lived ones. A pid reused meanwhile is
    /// announced again and gets a fresh entry.
    pub fn forget_exited(&mut self) {
        let gone: Vec<u32> =
            self.written.keys().copied().filter(|pid| !Path::new(&format!("/proc/{pid}")).exists()).collect();
        for pid in gone {
            let _ = self.processes.remove(&pid);
            self.written.remove(&pid);
        }
    }

    /// The vDSO's rows, from this process's own vDSO (the same image in
    /// every process), written to a temporary file for the compiler.
    fn vdso(&mut self) -> Option<FileInfo> {
        if let Some(vdso) = &self.vdso {
            return vdso.clone();
        }
        let vdso = symbolize::VdsoImage::copy_own().and_then(|image| {
            let segments = segments(&image.fd_path)?;
            Some(FileInfo { rows: self.compile_and_load(&image.fd_path, "[vdso]"), segments })
        });
        self.vdso = Some(vdso.clone());
        vdso
    }

    /// The file's rows and segments, compiled and loaded on first use;
    /// None for a file that cannot be read as ELF.
    /// `name`: the path as the process mapped it, for the summary.
    fn file(&mut self, path: &Path, name: &str) -> Option<FileInfo> {
        let metadata = std::fs::metadata(path).ok()?;
        let key = (metadata.dev(), metadata.ino());
        if let Some(file) = self.files.get(&key) {
            return Some(file.clone());
        }
        let segments = segments(path)?;
        let file = FileInfo { rows: self.compile_and_load(path, name), segments };
        self.files.insert(key, file.clone());
        Some(file)
    }

    fn compile_and_load(&mut self, path: &Path, name: &str) -> FileRows {
        let rows = row_cache::rows_of(path, || kernel_rows(path));
        let Some(rows) = rows.filter(|rows| !rows.is_empty()) else {
            self.stats.files_without_tables += 1;
            return FileRows::Missing;
        };
        let count = rows.len() as u32;
        if rows.len() as u64 > u64::from(unwind::MAX_ROWS_PER_FILE)
            || u64::from(self.next_row) + u64::from(count) > u64::from(self.capacity)
        {
            self.stats.files_not_fitting += 1;
            return FileRows::Missing;
        }
        let first_row = self.next_row;
        // A mapping refused now (out of memory) leaves the file to frame
        // pointers, as one without tables; its slots are used by the next.
        if self.rows.write(first_row, &rows).is_err() {
            self.stats.files_without_tables += 1;
            return FileRows::Missing;
        }
        self.next_row += count;
        self.stats.files_loaded += 1;
        self.stats.rows += u64::from(count);
        self.stats.bytes += u64::from(count) * ROW_BYTES;
        self.by_file.push((name.to_string(), first_row, u64::from(count)));
        FileRows::Loaded { first_row, rows: count }
    }

    /// A generation number no entry had before (wraps after 4 billion writes).
    fn next_generation(&mut self) -> u32 {
        self.generation = self.generation.wrapping_add(1).max(1);
        self.generation
    }

    pub fn stats(&self) -> TableStats {
        let mut stats = self.stats.clone();
        stats.build_seconds = self.build_time.as_secs_f64();
        let mut largest: Vec<(String, u64)> =
            self.by_file.iter().map(|(path, _, rows)| (path.clone(), *rows)).collect();
        largest.sort_by_key(|(_, rows)| std::cmp::Reverse(*rows));
        largest.truncate(5);
        stats.largest = largest;
        let mut broken: Vec<(String, u64)> = self
            .broken_chains
            .iter()
            .filter_map(Result::ok)
            .map(|(key, walks)| (self.file_named(key), walks))
            .collect();
        broken.sort_by_key(|(_, walks)| std::cmp::Reverse(*walks));
        broken.truncate(5);
        stats.broken_chains = broken;
        stats
    }

    /// What a BROKEN_CHAINS key stands for.
    fn file_named(&self, key: u32) -> String {
        match key {
            unwind::file_key::OUTSIDE_MAPPINGS => "[code outside every known mapping]".into(),
            unwind::file_key::NO_TABLE => {
                "[code without unwind table: JIT, or a file without call-frame information]".into()
            }
            key => self
                .by_file
                .iter()
                .find(|(_, first_row, _)| first_row.wrapping_add(1) == key)
                .map_or_else(|| format!("[rows from {}]", key - 1), |(path, _, _)| path.clone()),
        }
    }
}

/// The kernel's rows for a file: its call-frame information compiled by
/// `symbolize`; None when it has none usable or its addresses do not fit
/// the rows' 32 bits.
fn kernel_rows(path: &Path) -> Option<Vec<UnwindRow>> {
    let table = symbolize::compile_unwind_table(path).ok()?;
    table
        .rows
        .iter()
        .map(|row| {
            let pc = u32::try_from(row.pc).ok()?;
            let (cfa_rule, cfa_offset, cfa_register) = match row.cfa {
                CfaRule::None => (unwind::cfa::NONE, 0, 0),
                CfaRule::Rsp(offset) => (unwind::cfa::RSP, offset, 0),
                CfaRule::Rbp(offset) => (unwind::cfa::RBP, offset, 0),
                CfaRule::Register { register, offset } => match unwind::pt_regs_word(register) {
                    Some(word) => (unwind::cfa::REGISTER, offset, word),
                    None => (unwind::cfa::UNSUPPORTED, 0, 0),
                },
                CfaRule::Plt11 => (unwind::cfa::PLT_11, 0, 0),
                CfaRule::Plt10 => (unwind::cfa::PLT_10, 0, 0),
                CfaRule::Signal => (unwind::cfa::SIGNAL, 0, 0),
                CfaRule::Outermost => (unwind::cfa::OUTERMOST, 0, 0),
                CfaRule::Unsupported => (unwind::cfa::UNSUPPORTED, 0, 0),
            };
            let (rbp_rule, rbp_offset) = match row.rbp {
                RbpRule::Unchanged => (unwind::rbp::UNCHANGED, 0),
                RbpRule::SavedAt(offset) => (unwind::rbp::AT_CFA_OFFSET, offset),
                RbpRule::Unknown => (unwind::rbp::UNKNOWN, 0),
            };
            let (rbx_rule, rbx_offset) = match row.rbx {
                RbxRule::Unchanged => (unwind::rbx::UNCHANGED, 0),
                RbxRule::SavedAt(offset) => (unwind::rbx::AT_CFA_OFFSET, offset),
                RbxRule::Unknown => (unwind::rbx::UNKNOWN, 0),
            };
            Some(UnwindRow { pc, cfa_offset, rbp_offset, cfa_rule, rbp_rule, cfa_register, rbx_rule, rbx_offset })
        })
        .collect()
}
