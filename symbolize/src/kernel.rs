//! Kernel symbolization from `/proc/kallsyms` (and `/proc/modules` for the
//! extent of modules). blazesym's kernel source drops the module names, which
//! profiles want, and kallsyms is simple enough to read directly.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::PathBuf;

use crate::error::Error;
use crate::frame::{Frame, Resolution, Symbolized, UnresolvedReason};

const KERNEL: &str = "[kernel]";

#[derive(Debug)]
struct KSym {
    addr: u64,
    name: Box<str>,
    /// Index into `owners`; 0 is the core kernel.
    owner: u32,
}

/// Symbol name to its (address, owner index) pairs.
type NameIndex = HashMap<Box<str>, Vec<(u64, u32)>>;

/// A module's extent from `/proc/modules`.
#[derive(Debug)]
struct ModuleRange {
    start: u64,
    end: u64,
    owner: u32,
}

/// The kernel's code symbols, sorted by address.
#[derive(Debug)]
pub(crate) struct KernelSymbols {
    syms: Vec<KSym>,
    /// `[kernel]`, then module names as kallsyms prints them (`[ext4]`).
    owners: Vec<String>,
    modules: Vec<ModuleRange>,
    /// End of each owner's code when `/proc/modules` gives it, by owner index.
    owner_end: Vec<Option<u64>>,
    /// Address of `_text`: the base for offsets of unresolved core addresses.
    text: Option<u64>,
    /// Names dropped from `syms` because another name has their address.
    aliases: Vec<KSym>,
    /// Every code symbol's name (aliases included) to its addresses and
    /// owners, for stacks printed by name; built on first use.
    by_name: OnceCell<NameIndex>,
}

impl KernelSymbols {
    pub fn load() -> Result<Self, Error> {
        let path = "/proc/kallsyms";
        let kallsyms = std::fs::read_to_string(path)
            .map_err(|source| Error::ReadKallsyms { path: PathBuf::from(path), source })?;
        // Optional: absent in some containers; only used to bound module code.
        let modules = std::fs::read_to_string("/proc/modules").unwrap_or_default();
        Self::parse(&kallsyms, &modules)
    }

    /// `kallsyms`: lines `ADDR TYPE NAME[\t[MODULE]]`; `modules`: lines
    /// `NAME SIZE REFS DEPS STATE ADDR`.
    pub fn parse(kallsyms: &str, modules: &str) -> Result<Self, Error> {
        let mut owners = vec![KERNEL.to_owned()];
        let mut owner_ids: HashMap<String, u32> = HashMap::from([(KERNEL.to_owned(), 0)]);
        let mut owner_id = |name: &str, owners: &mut Vec<String>| -> u32 {
            *owner_ids.entry(name.to_owned()).or_insert_with(|| {
                owners.push(name.to_owned());
                owners.len() as u32 - 1
            })
        };

        let mut any_nonzero = false;
        let mut text = None;
        // (sym, rank, line index): ranking picks one name among aliases.
        let mut syms = Vec::new();
        for (index, line) in kallsyms.lines().enumerate() {
            let mut fields = line.split_ascii_whitespace();
            let (Some(addr), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            any_nonzero |= addr != 0;
            if name == "_text" {
                text = Some(addr);
            }
            // Only code: data symbols would swallow gaps between functions.
            let rank = match kind {
                "T" => 0,
                "t" => 1,
                "W" => 2,
                "w" => 3,
                _ => continue,
            };
            let owner = match fields.next() {
                Some(module) => owner_id(module, &mut owners),
                None => 0,
            };
            syms.push((KSym { addr, name: name.into(), owner }, rank, index));
        }
        if !any_nonzero {
            return Err(Error::KallsymsHidden);
        }
        syms.sort_unstable_by_key(|(s, rank, index)| (s.addr, *rank, *index));
        // One name per address; the others are kept apart for lookups by name.
        let mut kept: Vec<KSym> = Vec::with_capacity(syms.len());
        let mut aliases = Vec::new();
        for (sym, _, _) in syms {
            if kept.last().is_some_and(|k| k.addr == sym.addr) {
                aliases.push(sym);
            } else {
                kept.push(sym);
            }
        }
        let syms = kept;

        let mut ranges = Vec::new();
        for line in modules.lines() {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let (Some(name), Some(size), Some(addr)) = (fields.first(), fields.get(1), fields.get(5)) else {
                continue;
            };
            let (Ok(size), Some(Ok(start))) =
                (size.parse::<u64>(), addr.strip_prefix("0x").map(|a| u64::from_str_radix(a, 16)))
            else {
                continue;
            };
            if start != 0 {
                let owner = owner_id(&format!("[{name}]"), &mut owners);
                ranges.push(ModuleRange { start, end: start.saturating_add(size), owner });
            }
        }
        ranges.sort_unstable_by_key(|r| r.start);
        let mut owner_end = vec![None; owners.len()];
        for r in &ranges {
            owner_end[r.owner as usize] = Some(r.end);
        }
        Ok(Self { syms, owners, modules: ranges, owner_end, text, aliases, by_name: OnceCell::new() })
    }

    /// The address of a code symbol by name, for stacks the kernel prints
    /// by name (`/proc/PID/task/TID/stack`: `name+off/size [module]`).
    /// `module` (`ext4`, without brackets) picks among names that repeat;
    /// else the core kernel's, then any. `None` if no such symbol.
    pub fn address_of(&self, name: &str, module: Option<&str>) -> Option<u64> {
        let index = self.by_name.get_or_init(|| {
            let mut index = NameIndex::new();
            for sym in self.syms.iter().chain(&self.aliases) {
                index.entry(sym.name.clone()).or_default().push((sym.addr, sym.owner));
            }
            index
        });
        let candidates = index.get(name)?;
        let owner = |o: u32| &self.owners[o as usize];
        let wanted = |o: u32| match module {
            Some(m) => owner(o).strip_prefix('[').and_then(|x| x.strip_suffix(']')) == Some(m),
            None => o == 0,
        };
        candidates.iter().find(|&&(_, o)| wanted(o)).or(candidates.first()).map(|&(addr, _)| addr)
    }

    fn module_at(&self, addr: u64) -> Option<&ModuleRange> {
        let i = self.modules.partition_point(|m| m.start <= addr).checked_sub(1)?;
        let m = &self.modules[i];
        (addr < m.end).then_some(m)
    }

    pub fn symbolize(&self, addr: u64) -> Symbolized {
        let module = self.module_at(addr);
        // A symbol runs up to the next symbol, and never past its module's end.
        // Inside a module's range any symbol at or above the module's start
        // counts, whoever owns it: since Linux 6.4 a module's size in
        // /proc/modules adds up all its memory (data too) while its base is
        // that of its code, so the range can overlap code placed after it
        // (other modules, BPF programs).
        let i = self.syms.partition_point(|s| s.addr <= addr);
        let covering = i.checked_sub(1).map(|j| &self.syms[j]).filter(|s| {
            i < self.syms.len()
                && match module {
                    Some(m) => s.addr >= m.start,
                    None => self.owner_end[s.owner as usize].is_none_or(|end| addr < end),
                }
        });
        match covering {
            Some(sym) => Symbolized {
                frames: vec![Frame {
                    function: sym.name.to_string(),
                    module: Some(self.owners[sym.owner as usize].clone()),
                    file: None,
                    line: None,
                    inlined: false,
                    jit: false,
                    resolved: Resolution::Resolved,
                }],
            },
            None => unresolved(
                addr,
                module.map(|m| (&*self.owners[m.owner as usize], m.start)),
                self.text,
                UnresolvedReason::NoSymbol,
            ),
        }
    }
}

/// `[ext4]+0x..` relative to the module base, else `[kernel]+0x..` relative to
/// `_text` (or to 0 when `_text` is unknown or above the address).
pub(crate) fn unresolved(
    addr: u64,
    module: Option<(&str, u64)>,
    text: Option<u64>,
    reason: UnresolvedReason,
) -> Symbolized {
    match module {
        Some((name, base)) => Symbolized::unresolved_in(name, addr - base, reason),
        None => {
            let base = text.filter(|&t| t <= addr).unwrap_or(0);
            Symbolized::unresolved_in(KERNEL, addr - base, reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KALLSYMS: &str = "\
ffffffff81000000 T _text
ffffffff81000000 t startup_64
ffffffff81000100 T do_one
ffffffff81000100 t alias_of_do_one
ffffffff81000200 D some_data
ffffffff81000300 t do_two
ffffffff81000400 T _etext
ffffffffc0a00000 t ext4_first\t[ext4]
ffffffffc0a00080 T ext4_second\t[ext4]
ffffffffc0b00000 t bpf_prog_abc_handler\t[bpf]
ffffffffc0b00100 t bpf_prog_def_other\t[bpf]
";
    const MODULES: &str = "ext4 4096 1 - Live 0xffffffffc0a00000\n";

    fn name(s: &Symbolized) -> (&str, Option<&str>, Resolution) {
        let f = &s.frames[0];
        (&f.function, f.module.as_deref(), f.resolved)
    }

    #[test]
    fn resolves_core_and_module_symbols() {
        let k = KernelSymbols::parse(KALLSYMS, MODULES).unwrap();
        use Resolution::Resolved;
        assert_eq!(name(&k.symbolize(0xffffffff81000105)), ("do_one", Some("[kernel]"), Resolved));
        // Data symbols do not end functions.
        assert_eq!(name(&k.symbolize(0xffffffff81000250)), ("do_one", Some("[kernel]"), Resolved));
        assert_eq!(name(&k.symbolize(0xffffffff81000000)), ("_text", Some("[kernel]"), Resolved));
        assert_eq!(name(&k.symbolize(0xffffffff81000301)), ("do_two", Some("[kernel]"), Resolved));
        assert_eq!(name(&k.symbolize(0xffffffffc0a00090)), ("ext4_second", Some("[ext4]"), Resolved));
        assert_eq!(name(&k.symbolize(0xffffffffc0b00010)), ("bpf_prog_abc_handler", Some("[bpf]"), Resolved));
    }

    #[test]
    fn unresolved_addresses_are_named_after_their_module() {
        let k = KernelSymbols::parse(KALLSYMS, MODULES).unwrap();
        let nosym = Resolution::Unresolved(UnresolvedReason::NoSymbol);
        // Past the end of ext4 (base + 4096), before the bpf symbols.
        assert_eq!(name(&k.symbolize(0xffffffffc0a01010)), ("[kernel]+0x3fa01010", Some("[kernel]"), nosym));
        // Below every symbol.
        assert_eq!(name(&k.symbolize(0x1000)), ("[kernel]+0x1000", Some("[kernel]"), nosym));
        // After the last symbol: nothing bounds it, so it is not claimed.
        assert_eq!(name(&k.symbolize(0xffffffffc0b00200)), ("[kernel]+0x3fb00200", Some("[kernel]"), nosym));
    }

    #[test]
    fn module_gap_is_named_after_the_module() {
        // A module range with no symbol at its start.
        let modules = "ext4 8192 1 - Live 0xffffffffc09ff000\n";
        let k = KernelSymbols::parse(KALLSYMS, modules).unwrap();
        let s = k.symbolize(0xffffffffc09ff010);
        assert_eq!(name(&s), ("[ext4]+0x10", Some("[ext4]"), Resolution::Unresolved(UnresolvedReason::NoSymbol)));
    }

    #[test]
    fn an_oversized_module_range_does_not_hide_code_placed_after_it() {
        // ext4's size counts its data as well: the range reaches the BPF
        // programs JIT-compiled after its code.
        let modules = "ext4 2097152 1 - Live 0xffffffffc0a00000\n";
        let k = KernelSymbols::parse(KALLSYMS, modules).unwrap();
        assert_eq!(
            name(&k.symbolize(0xffffffffc0b00010)),
            ("bpf_prog_abc_handler", Some("[bpf]"), Resolution::Resolved)
        );
        assert_eq!(name(&k.symbolize(0xffffffffc0a00090)), ("ext4_second", Some("[ext4]"), Resolution::Resolved));
    }

    #[test]
    fn symbols_are_found_by_name() {
        let kallsyms = format!("{KALLSYMS}ffffffffc0c00000 t do_two\t[xfs]\n");
        let k = KernelSymbols::parse(&kallsyms, MODULES).unwrap();
        assert_eq!(k.address_of("do_two", None), Some(0xffffffff81000300));
        assert_eq!(k.address_of("do_two", Some("xfs")), Some(0xffffffffc0c00000));
        assert_eq!(k.address_of("ext4_second", Some("ext4")), Some(0xffffffffc0a00080));
        // An alias of another symbol at the same address is found too.
        assert_eq!(k.address_of("alias_of_do_one", None), Some(0xffffffff81000100));
        assert_eq!(k.address_of("some_data", None), None); // not code
        assert_eq!(k.address_of("nothing", None), None);
    }

    #[test]
    fn hidden_addresses_are_an_error() {
        let hidden = "0000000000000000 T _text\n0000000000000000 T do_one\n";
        assert!(matches!(KernelSymbols::parse(hidden, ""), Err(Error::KallsymsHidden)));
    }
}
