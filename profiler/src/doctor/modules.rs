//! `flameprof doctor -p PID`: for each module the process maps, what a
//! profile of it can rely on: frame pointers (a guess from function
//! prologues), call-frame information for the table walker, symbols, debug
//! information; and JIT code with or without a perf map.
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind, read::ReadCache};
use serde::Serialize;

use crate::error::{Error, Result};

/// Functions whose prologue is looked at, per module (enough for a share).
const PROLOGUES_SAMPLED: usize = 4000;

#[derive(Debug, Serialize)]
pub struct ProcessReport {
    pid: u32,
    modules: Vec<Module>,
    /// Anonymous executable mappings (JIT code, trampolines).
    anonymous_executable_mappings: usize,
    /// Whether /tmp/perf-PID.map exists (JIT symbol names).
    perf_map: bool,
}

#[derive(Debug, Serialize)]
struct Module {
    path: String,
    /// Share of sampled functions that begin by pushing rbp (after an
    /// optional endbr64): built with frame pointers when close to 1.
    frame_pointer_share: Option<f64>,
    /// Rows the table walker gets from its .eh_frame/.debug_frame (0: none).
    unwind_rows: usize,
    symbols: usize,
    dynamic_symbols: usize,
    debug_info: bool,
    /// A .gnu_debuglink names a separate debug file.
    debug_link: bool,
}

pub fn report(pid: u32) -> Result<ProcessReport> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|_| Error::NoSuchProcess(pid))?;
    let (paths, anonymous) = executable_files(&maps);
    let modules = paths.iter().map(|path| module(pid, path)).collect();
    let perf_map = Path::new(&format!("/tmp/perf-{pid}.map")).exists();
    Ok(ProcessReport { pid, modules, anonymous_executable_mappings: anonymous, perf_map })
}

/// The distinct files of a `maps` text's executable mappings, and how many
/// of its executable mappings are anonymous.
pub(crate) fn executable_files(maps: &str) -> (Vec<&str>, usize) {
    let mut paths: Vec<&str> = Vec::new();
    let mut anonymous = 0;
    for line in maps.lines() {
        let fields: Vec<&str> = line.splitn(6, ' ').collect();
        let executable = fields.get(1).is_some_and(|perms| perms.as_bytes().get(2) == Some(&b'x'));
        if !executable {
            continue;
        }
        match fields.get(5).map(|p| p.trim_start()) {
            Some(path) if path.starts_with('/') => {
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
            Some(name) if name.starts_with('[') => {}
            _ => anonymous += 1,
        }
    }
    (paths, anonymous)
}

fn module(pid: u32, path: &str) -> Module {
    let unwind_rows = symbolize::compile_unwind_table(Path::new(path)).map_or(0, |table| table.rows.len());
    let mut module = Module {
        path: path.to_string(),
        frame_pointer_share: None,
        unwind_rows,
        symbols: 0,
        dynamic_symbols: 0,
        debug_info: false,
        debug_link: false,
    };
    // Through the process's view of the file when the path was replaced.
    let file = std::fs::File::open(path).or_else(|_| std::fs::File::open(format!("/proc/{pid}/root{path}")));
    let Ok(file) = file else { return module };
    let cache = ReadCache::new(file);
    let Ok(elf) = object::File::parse(&cache) else { return module };
    module.symbols = elf.symbols().count();
    module.dynamic_symbols = elf.dynamic_symbols().count();
    module.debug_info = elf.section_by_name(".debug_info").is_some();
    module.debug_link = elf.section_by_name(".gnu_debuglink").is_some();
    module.frame_pointer_share = frame_pointer_share(&elf);
    module
}

/// Share of functions (from the symbol table, else the dynamic one) whose
/// first instruction pushes rbp, after an optional endbr64. Code built
/// with frame pointers does that in nearly every function; without, in few.
fn frame_pointer_share<'data, R: object::ReadRef<'data>>(elf: &object::File<'data, R>) -> Option<f64> {
    let text = elf.section_by_name(".text")?;
    let code = text.data().ok()?;
    let start = text.address();
    let functions: Vec<u64> = {
        let symbols: Vec<_> =
            elf.symbols().filter(|s| s.kind() == SymbolKind::Text && s.size() > 0).map(|s| s.address()).collect();
        if symbols.is_empty() {
            elf.dynamic_symbols()
                .filter(|s| s.kind() == SymbolKind::Text && s.size() > 0)
                .map(|s| s.address())
                .collect()
        } else {
            symbols
        }
    };
    let mut sampled = 0usize;
    let mut framed = 0usize;
    for address in functions.iter().take(PROLOGUES_SAMPLED) {
        let Some(offset) = address.checked_sub(start).and_then(|o| usize::try_from(o).ok()) else { continue };
        let Some(bytes) = code.get(offset..offset + 5) else { continue };
        sampled += 1;
        // push %rbp is 0x55; endbr64 is f3 0f 1e fa.
        if bytes[0] == 0x55 || (bytes[..4] == [0xf3, 0x0f, 0x1e, 0xfa] && bytes[4] == 0x55) {
            framed += 1;
        }
    }
    (sampled > 0).then(|| framed as f64 / sampled as f64)
}

pub fn render(report: &ProcessReport) -> String {
    let mut text = format!("process {}: {} modules\n", report.pid, report.modules.len());
    for module in &report.modules {
        let frame_pointers = match module.frame_pointer_share {
            Some(share) if share >= 0.8 => "frame pointers".to_string(),
            Some(share) if share >= 0.2 => format!("frame pointers in {:.0}% of functions", share * 100.0),
            Some(_) => "no frame pointers".to_string(),
            None => "frame pointers unknown".to_string(),
        };
        let unwind = if module.unwind_rows > 0 {
            format!("unwind table {} rows", module.unwind_rows)
        } else {
            "NO unwind table (frame pointers only)".to_string()
        };
        let symbols = match (module.symbols, module.dynamic_symbols) {
            (0, 0) => "NO symbols".to_string(),
            (0, dynamic) => format!("{dynamic} dynamic symbols only"),
            (symbols, _) => format!("{symbols} symbols"),
        };
        let debug = match (module.debug_info, module.debug_link) {
            (true, _) => "debug info",
            (false, true) => "debug info in a separate file (.gnu_debuglink)",
            (false, false) => "no debug info",
        };
        text.push_str(&format!("  {}: {frame_pointers}; {unwind}; {symbols}; {debug}\n", module.path));
    }
    if report.anonymous_executable_mappings > 0 {
        text.push_str(&format!(
            "  {} anonymous executable mappings (JIT code?): {}\n",
            report.anonymous_executable_mappings,
            if report.perf_map { "/tmp/perf-PID.map present" } else { "no /tmp/perf-PID.map: JIT frames stay unnamed" }
        ));
    }
    text
}
