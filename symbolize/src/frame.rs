//! Result types: frames, resolution status and running totals.

use std::collections::BTreeMap;
use std::fmt;

/// The frames one address expands to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbolized {
    /// Never empty. Outermost first: the real (non-inlined) function, then the
    /// functions inlined into it in call order, the innermost last.
    pub frames: Vec<Frame>,
}

/// One (possibly inlined) function frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Demangled function name. For an unresolved address: `module+0xOFFSET`,
    /// where OFFSET is the *file offset* for mapped files (what the mapping and
    /// the address give without trusting the file's headers), the offset into
    /// the mapping for anonymous/special mappings (`[anon]+0x..`, `[heap]+0x..`),
    /// the offset from the module base for kernel modules, and from `_text` for
    /// the core kernel. `[unknown]` only when no module is known at all.
    /// An address in a PLT stub is `NAME@plt`, after the symbol the stub
    /// jumps to (`[plt]` in the lazy-binding header stub).
    pub function: String,
    /// Basename of the mapped file, `[kernel]`, `[ext4]`-style kernel module
    /// names, `[vdso]` (symbolized from a copy of this process's vDSO), or
    /// `[anon]`/`[heap]`/`[stack]`-style names of other special mappings.
    pub module: Option<String>,
    /// Source file, when DWARF has it.
    pub file: Option<String>,
    /// Source line, when DWARF has it.
    pub line: Option<u32>,
    /// True for frames that were inlined into their caller (the previous frame).
    pub inlined: bool,
    /// True for JIT code named through the process's perf map (module `[jit]`).
    pub jit: bool,
    pub resolved: Resolution,
}

/// Whether a frame was resolved to a symbol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    Resolved,
    Unresolved(UnresolvedReason),
}

/// Why an address could not be resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnresolvedReason {
    /// The file/kernel was read fine but no symbol covers the address.
    NoSymbol,
    /// No mapping of the process (or loadable segment of the file) contains it.
    NoMapping,
    /// Anonymous, heap or stack memory: nothing to read symbols from.
    AnonymousMapping,
    /// Anonymous executable memory (JIT code) that no entry of the
    /// process's perf map covers (or it has none).
    JitWithoutMapEntry,
    /// The address falls in a mapping that is not executable.
    NotExecutable,
    /// The mapped file could not be opened or read.
    FileUnreadable,
    /// The file is not valid ELF, or its ELF/DWARF data is corrupt.
    Malformed,
    /// The process was gone before it could be snapshotted.
    ProcessGone,
    /// kallsyms is unavailable or hidden.
    KernelSymbolsUnavailable,
    /// The address belongs to something this crate does not handle.
    Unsupported,
    /// A stripped file whose debug file was found neither on this machine
    /// nor through debuginfod.
    NoDebugInfo,
}

impl fmt::Display for UnresolvedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NoSymbol => "no symbol covers the address",
            Self::NoMapping => "address not mapped",
            Self::AnonymousMapping => "anonymous mapping",
            Self::JitWithoutMapEntry => "JIT code without a perf map entry",
            Self::NotExecutable => "mapping is not executable",
            Self::FileUnreadable => "mapped file unreadable",
            Self::Malformed => "malformed ELF/DWARF",
            Self::ProcessGone => "process gone before snapshot",
            Self::KernelSymbolsUnavailable => "kernel symbols unavailable",
            Self::Unsupported => "unsupported mapping",
            Self::NoDebugInfo => "stripped, no debug file found",
        })
    }
}

/// Totals over all addresses symbolized so far (one count per input address).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub resolved: u64,
    pub unresolved: u64,
    pub unresolved_by_reason: BTreeMap<UnresolvedReason, u64>,
}

impl Stats {
    pub(crate) fn count(&mut self, sym: &Symbolized) {
        match sym.frames.first().map(|f| f.resolved) {
            Some(Resolution::Unresolved(reason)) => {
                self.unresolved += 1;
                *self.unresolved_by_reason.entry(reason).or_default() += 1;
            }
            _ => self.resolved += 1,
        }
    }
}

impl Symbolized {
    /// A single unresolved frame named `name`.
    pub(crate) fn unresolved(name: String, module: Option<String>, reason: UnresolvedReason) -> Self {
        Self {
            frames: vec![Frame {
                function: name,
                module,
                file: None,
                line: None,
                inlined: false,
                jit: false,
                resolved: Resolution::Unresolved(reason),
            }],
        }
    }

    /// JIT code named `name` by the process's perf map.
    pub(crate) fn jit(name: &str) -> Self {
        Self {
            frames: vec![Frame {
                function: name.to_owned(),
                module: Some("[jit]".to_owned()),
                file: None,
                line: None,
                inlined: false,
                jit: true,
                resolved: Resolution::Resolved,
            }],
        }
    }

    /// `module+0xOFFSET`, the conventional name of an address without symbol.
    pub(crate) fn unresolved_in(module: &str, offset: u64, reason: UnresolvedReason) -> Self {
        Self::unresolved(format!("{module}+{offset:#x}"), Some(module.to_owned()), reason)
    }

    /// Whether the address resolved to a symbol.
    pub fn is_resolved(&self) -> bool {
        self.frames.first().is_some_and(|f| f.resolved == Resolution::Resolved)
    }
}
