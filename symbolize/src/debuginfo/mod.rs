//! Debug files of stripped binaries: the symbols and DWARF that
//! distributions ship apart (Debian's `-dbgsym` packages) or serve through
//! debuginfod. Found, in order, under `/usr/lib/debug/.build-id/xx/rest.debug`,
//! by the file's `.gnu_debuglink` name in the debug directories, and from the
//! debuginfod servers in `DEBUGINFOD_URLS` (cached as elfutils does).
mod elf_facts;
mod server;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) use elf_facts::ElfFacts;
pub use server::DebuginfodSettings;

/// Where distributions install debug files.
const DEBUG_DIRS: [&str; 2] = ["/usr/lib/debug", "/lib/debug"];

/// How debug files were found, for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DebugInfoStats {
    /// Stripped files seen (no `.symtab`, no DWARF).
    pub stripped_files: u64,
    /// Their debug files found on this machine.
    pub found_locally: u64,
    /// Fetched from (or already cached for) a debuginfod server.
    pub found_by_debuginfod: u64,
    /// Asked of debuginfod and not found, or failed (timeout, server error).
    pub debuginfod_misses: u64,
    /// Time spent asking debuginfod.
    pub debuginfod_time: Duration,
    /// A request ran into the timeout: debuginfod was not asked again.
    pub debuginfod_gave_up: bool,
    /// Stripped files no debug file was found for, by name (most first is the caller's job).
    pub without_debug_info: Vec<String>,
}

/// Finds (once per file) the debug file of stripped binaries.
#[derive(Debug, Default)]
pub(crate) struct DebugFiles {
    /// By the stripped file's build-id (or path when it has none).
    found: HashMap<Vec<u8>, Option<PathBuf>>,
    server: Option<server::Debuginfod>,
    pub stats: DebugInfoStats,
}

impl DebugFiles {
    pub fn set_debuginfod(&mut self, settings: &DebuginfodSettings) {
        self.server = server::Debuginfod::new(settings);
    }

    /// The debug file for the stripped ELF file `facts` describes, named
    /// `module` in messages; `None` if there is none anywhere.
    pub fn find(&mut self, facts: &ElfFacts, module: &str) -> Option<PathBuf> {
        let key = facts.build_id.clone().unwrap_or_else(|| module.as_bytes().to_vec());
        if let Some(known) = self.found.get(&key) {
            return known.clone();
        }
        self.stats.stripped_files += 1;
        let found = self.search(facts);
        if found.is_none() {
            self.stats.without_debug_info.push(module.to_owned());
        }
        self.found.insert(key, found.clone());
        found
    }

    fn search(&mut self, facts: &ElfFacts) -> Option<PathBuf> {
        if let Some(path) = local_debug_file(facts) {
            self.stats.found_locally += 1;
            return Some(path);
        }
        let (server, build_id) = (self.server.as_ref()?, facts.build_id.as_ref()?);
        let started = Instant::now();
        let fetched = server.fetch(build_id);
        let took = started.elapsed();
        self.stats.debuginfod_time += took;
        if fetched.is_none() && took >= server.timeout.saturating_sub(Duration::from_millis(100)) {
            // A server that lets a request run into the timeout would make
            // every other stripped file wait as long: asked no more this run.
            self.server = None;
            self.stats.debuginfod_gave_up = true;
        }
        match fetched {
            Some(path) => {
                self.stats.found_by_debuginfod += 1;
                Some(path)
            }
            None => {
                self.stats.debuginfod_misses += 1;
                None
            }
        }
    }
}

/// `.build-id/xx/rest.debug`, then the debug link's name, in the debug directories.
fn local_debug_file(facts: &ElfFacts) -> Option<PathBuf> {
    let by_build_id = facts.build_id.as_ref().filter(|id| id.len() >= 2).map(|id| {
        let rest: String = id[1..].iter().map(|b| format!("{b:02x}")).collect();
        PathBuf::from(".build-id").join(format!("{:02x}", id[0])).join(format!("{rest}.debug"))
    });
    let candidates = by_build_id.into_iter().chain(facts.debug_link.iter().map(PathBuf::from));
    for relative in candidates {
        for dir in DEBUG_DIRS {
            let path = Path::new(dir).join(&relative);
            if ElfFacts::read(&path).is_some_and(|debug| debug.has_symbols) {
                return Some(path);
            }
        }
    }
    None
}
