//! Names for addresses inside PLT stubs (`.plt`, `.plt.sec`, `.plt.bnd`,
//! `.plt.got`), which have no symbol of their own: without this, the
//! nearest preceding symbol (`_init`, the end of `.init`) gets them.
//!
//! As perf and objdump do, a stub is named `NAME@plt` after the symbol it
//! jumps to. Each stub is decoded rather than counted: its indirect
//! `jmp *disp(%rip)` (after an optional `endbr64` and/or `bnd` prefix) gives
//! the GOT slot it jumps through, and the dynamic relocation of that slot
//! (`R_X86_64_JUMP_SLOT` in `.rela.plt`, `R_X86_64_GLOB_DAT` in `.rela.dyn`
//! for `.plt.got`) names the symbol. This needs no assumption about the
//! order of stubs against relocations (libc's `.plt` is not in `.rela.plt`
//! order) and holds for lazy and `-z now` binaries alike. The lazy-binding
//! trampolines of IBT binaries' `.plt` (`endbr64; push $N; jmp PLT0`) have
//! no jmp through the GOT: their `push` operand is the index of their
//! `.rela.plt` entry, so they get the same `NAME@plt`.
//!
//! `R_X86_64_IRELATIVE` slots (calls to ifuncs inside the same file, as
//! libc's calls to `strlen`) have no symbol but an addend, the resolver's
//! address, where the ifunc symbol is: `strnlen@plt` where objdump writes
//! `*ABS*+0x9f550@plt` (that is the name when no symbol is at the address).
//!
//! The lazy-binding header stub (PLT0: `push GOT+8; jmp *GOT+16`) and stubs
//! that cannot be decoded or whose slot has no relocation are named
//! [`PLT_HEADER`]: still better than the `_init` they would be otherwise.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::panic::{AssertUnwindSafe, catch_unwind};

use object::elf::{self, FileHeader64};
use object::read::elf::{ElfFile64, FileHeader as _, Rela as _, SectionHeader as _, SectionTable, Sym as _};
use object::{Endianness, ReadCache, ReadRef, SectionIndex};

/// Name of the lazy-binding header stub (and of stubs with no known target).
pub(crate) const PLT_HEADER: &str = "[plt]";

type Elf = FileHeader64<Endianness>;
type Sym = elf::Sym64<Endianness>;

const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
/// `bnd` prefix (MPX), still emitted before PLT jumps by binutils' IBT PLTs.
const BND: u8 = 0xf2;
/// Sections made of stubs. `.plt.bnd` is the MPX (`-z bndplt`) variant of `.plt.sec`.
const PLT_SECTIONS: [&[u8]; 4] = [b".plt", b".plt.sec", b".plt.bnd", b".plt.got"];
/// Larger PLT sections (more than 256 Ki stubs; real ones have a few
/// thousand at most) are corrupt and skipped.
const MAX_PLT_BYTES: u64 = 4 << 20;

/// The PLT stubs of one file, by file offset.
#[derive(Debug, Default)]
pub(crate) struct PltStubs {
    /// Sorted by `file_offset`.
    stubs: Vec<Stub>,
}

#[derive(Debug)]
struct Stub {
    file_offset: u64,
    size: u64,
    name: String,
}

/// What a stub's first instruction says about its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Jump {
    /// `jmp *slot(%rip)`: the GOT slot's address.
    Slot(u64),
    /// `push $N`: a lazy-binding trampoline for `.rela.plt` entry N.
    Index(u32),
    /// `push GOT+8(%rip)`: the lazy-binding header (PLT0).
    Header,
    Unknown,
}

/// The symbol a dynamic relocation binds its slot to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    /// Symbol `index` of the symbol table at section `table`.
    Symbol { table: SectionIndex, index: u32 },
    /// An ifunc in this file: the resolver's address.
    Irelative(u64),
}

impl PltStubs {
    /// The stubs of an ELF file read through `cache`; none if it cannot be
    /// read or is not an x86-64 ELF file (the rest of symbolization says why).
    pub fn from_cache(cache: &ReadCache<File>) -> Self {
        // `parse` is written not to panic on any input (a test flips bits
        // and a fuzz target checks); should it anyway, the file just gets
        // no PLT names.
        catch_unwind(AssertUnwindSafe(|| Self::parse(cache))).ok().flatten().unwrap_or_default()
    }

    /// The stubs of an ELF file's data; `None` if it is not x86-64 ELF.
    pub fn parse<'data, R: ReadRef<'data>>(data: R) -> Option<Self> {
        let file = ElfFile64::<Endianness, R>::parse(data).ok()?;
        let endian = file.endian();
        if file.elf_header().e_machine(endian) != elf::EM_X86_64 {
            return None;
        }
        let sections = file.elf_section_table();

        // One pass over the section names.
        let mut plt_sections = Vec::new();
        let mut rela_plt = None;
        let mut other_relas = Vec::new();
        for (_, header) in sections.enumerate() {
            let Ok(name) = sections.section_name(endian, header) else {
                continue;
            };
            let kind = header.sh_type(endian);
            let flags = header.sh_flags(endian);
            if kind == elf::SHT_PROGBITS
                && flags & u64::from(elf::SHF_EXECINSTR) != 0
                && header.sh_size(endian) <= MAX_PLT_BYTES
                && PLT_SECTIONS.contains(&name)
            {
                plt_sections.push((name, header));
            } else if kind == elf::SHT_RELA && flags & u64::from(elf::SHF_ALLOC) != 0 {
                // Dynamic relocations (static ones, of object files, are not allocated).
                if name == b".rela.plt" && rela_plt.is_none() {
                    rela_plt = Some(header);
                } else {
                    other_relas.push(header);
                }
            }
        }
        if plt_sections.is_empty() {
            return Some(Self::default());
        }

        // Every stub and where it jumps.
        let mut decoded: Vec<(u64, u64, Jump)> = Vec::new();
        for (name, header) in plt_sections {
            let Ok(bytes) = header.data(endian, data) else {
                continue;
            };
            let address = header.sh_addr(endian);
            let offset = header.sh_offset(endian);
            let size = stub_size(name, header.sh_entsize(endian), bytes);
            for (i, stub) in bytes.chunks(size).enumerate() {
                let at = (i * size) as u64;
                let Some(file_offset) = offset.checked_add(at) else {
                    break;
                };
                decoded.push((file_offset, stub.len() as u64, decode(stub, address.wrapping_add(at))));
            }
        }

        // The relocations of the slots the stubs jump through: `.rela.plt`
        // in order (a trampoline's `push` operand indexes it), then the
        // other dynamic relocations (`.rela.dyn`: `.plt.got`'s GLOB_DAT
        // slots) for the slots still unknown.
        let mut plt_targets: Vec<Option<Target>> = Vec::new();
        let mut by_slot: HashMap<u64, Target> = HashMap::new();
        if let Some(header) = rela_plt
            && let Ok(Some((relas, table))) = header.rela(endian, data)
        {
            for rela in relas {
                let target = target(rela, endian, table);
                if let Some(target) = target {
                    by_slot.entry(rela.r_offset(endian)).or_insert(target);
                }
                plt_targets.push(target);
            }
        }
        let missing: HashSet<u64> = decoded
            .iter()
            .filter_map(|&(_, _, jump)| match jump {
                Jump::Slot(slot) if !by_slot.contains_key(&slot) => Some(slot),
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            for header in other_relas {
                let Ok(Some((relas, table))) = header.rela(endian, data) else {
                    continue;
                };
                for rela in relas {
                    let slot = rela.r_offset(endian);
                    if missing.contains(&slot)
                        && let Some(target) = target(rela, endian, table)
                    {
                        by_slot.entry(slot).or_insert(target);
                    }
                }
            }
        }

        // Names.
        let targets: Vec<Option<Target>> = decoded
            .iter()
            .map(|&(_, _, jump)| match jump {
                Jump::Slot(slot) => by_slot.get(&slot).copied(),
                Jump::Index(index) => plt_targets.get(index as usize).copied().flatten(),
                Jump::Header | Jump::Unknown => None,
            })
            .collect();
        let mut names = Names::new(sections, endian, data, &targets);
        let mut stubs: Vec<Stub> = decoded
            .iter()
            .zip(&targets)
            .map(|(&(file_offset, size, _), target)| {
                let name = match target.and_then(|t| names.name(t)) {
                    Some(name) => format!("{name}@plt"),
                    None => PLT_HEADER.to_owned(),
                };
                Stub { file_offset, size, name }
            })
            .collect();
        stubs.sort_by_key(|s| s.file_offset);
        Some(Self { stubs })
    }

    /// The name of the stub holding `file_offset`, if one does.
    pub fn name_at(&self, file_offset: u64) -> Option<&str> {
        let i = self.stubs.partition_point(|s| s.file_offset <= file_offset).checked_sub(1)?;
        let stub = &self.stubs[i];
        (file_offset - stub.file_offset < stub.size).then_some(stub.name.as_str())
    }

    /// Number of stubs (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.stubs.len()
    }
}

/// Bytes per stub: the section's entry size when it is one of the two
/// sizes x86-64 linkers use, else 16 (`.plt.got` without IBT: 8).
fn stub_size(name: &[u8], entsize: u64, bytes: &[u8]) -> usize {
    match entsize {
        8 => 8,
        16 => 16,
        _ if name == b".plt.got" && !bytes.starts_with(&ENDBR64) => 8,
        _ => 16,
    }
}

/// Decodes the first instruction of a stub at `address` (past `endbr64` and `bnd`).
fn decode(stub: &[u8], address: u64) -> Jump {
    let mut at = 0;
    if stub.starts_with(&ENDBR64) {
        at = ENDBR64.len();
    }
    if stub.get(at) == Some(&BND) {
        at += 1;
    }
    let operand = |from: usize| -> Option<[u8; 4]> { stub.get(at + from..at + from + 4)?.try_into().ok() };
    match stub.get(at..at + 2) {
        // jmp *disp32(%rip): relative to the end of the 6-byte instruction.
        Some([0xff, 0x25]) => match operand(2) {
            Some(disp) => {
                let next = address.wrapping_add((at + 6) as u64);
                Jump::Slot(next.wrapping_add_signed(i64::from(i32::from_le_bytes(disp))))
            }
            None => Jump::Unknown,
        },
        // push $imm32
        Some([0x68, _]) => operand(1).map_or(Jump::Unknown, |index| Jump::Index(u32::from_le_bytes(index))),
        // push disp32(%rip)
        Some([0xff, 0x35]) => Jump::Header,
        _ => Jump::Unknown,
    }
}

/// What a dynamic relocation binds its slot to, for the kinds PLT stubs
/// jump through; `table` is the relocation section's symbol table.
fn target(rela: &elf::Rela64<Endianness>, endian: Endianness, table: SectionIndex) -> Option<Target> {
    match rela.r_type(endian, false) {
        elf::R_X86_64_JUMP_SLOT | elf::R_X86_64_GLOB_DAT => match rela.r_sym(endian, false) {
            0 => None,
            index => Some(Target::Symbol { table, index }),
        },
        elf::R_X86_64_IRELATIVE => Some(Target::Irelative(rela.r_addend(endian) as u64)),
        _ => None,
    }
}

/// One symbol table and its string table, as read from the file.
struct SymbolTable<'data> {
    symbols: &'data [Sym],
    strings: &'data [u8],
}

impl<'data> SymbolTable<'data> {
    fn load<R: ReadRef<'data>>(
        sections: &SectionTable<'data, Elf, R>,
        endian: Endianness,
        data: R,
        index: SectionIndex,
    ) -> Option<Self> {
        let table = sections.symbol_table_by_index(endian, data, index).ok()?;
        let strings = sections.section(table.string_section()).ok()?.data(endian, data).ok()?;
        Some(Self { symbols: table.symbols(), strings })
    }

    fn name(&self, symbol: &Sym, endian: Endianness) -> Option<&'data str> {
        let start = usize::try_from(symbol.st_name(endian)).ok()?;
        let rest = self.strings.get(start..)?;
        let name = &rest[..rest.iter().position(|&b| b == 0)?];
        std::str::from_utf8(name).ok().filter(|n| !n.is_empty())
    }
}

/// Names of relocation targets, reading each symbol table at most once.
struct Names<'t, 'data, R: ReadRef<'data>> {
    sections: &'t SectionTable<'data, Elf, R>,
    endian: Endianness,
    data: R,
    tables: HashMap<SectionIndex, Option<SymbolTable<'data>>>,
    /// The ifunc symbol at each IRELATIVE addend, found in one pass.
    ifuncs: HashMap<u64, &'data str>,
}

impl<'t, 'data, R: ReadRef<'data>> Names<'t, 'data, R> {
    fn new(sections: &'t SectionTable<'data, Elf, R>, endian: Endianness, data: R, targets: &[Option<Target>]) -> Self {
        let mut names = Self { sections, endian, data, tables: HashMap::new(), ifuncs: HashMap::new() };
        let wanted: HashSet<u64> = targets
            .iter()
            .filter_map(|t| match t {
                Some(Target::Irelative(resolver)) => Some(*resolver),
                _ => None,
            })
            .collect();
        if !wanted.is_empty() {
            names.find_ifuncs(&wanted);
        }
        names
    }

    fn name(&mut self, target: Target) -> Option<String> {
        match target {
            Target::Symbol { table, index } => {
                let (sections, endian, data) = (self.sections, self.endian, self.data);
                let symbols =
                    self.tables.entry(table).or_insert_with(|| SymbolTable::load(sections, endian, data, table));
                let symbols = symbols.as_ref()?;
                let symbol = symbols.symbols.get(index as usize)?;
                symbols.name(symbol, endian).map(str::to_owned)
            }
            Target::Irelative(resolver) => Some(match self.ifuncs.get(&resolver) {
                Some(name) => (*name).to_owned(),
                None => format!("*ABS*+{resolver:#x}"),
            }),
        }
    }

    /// For each resolver address, the name of a defined symbol there, from
    /// `.dynsym`, else `.symtab`: an ifunc symbol (its resolver is its
    /// value) rather than an alias of another type, then the name with the
    /// fewest leading underscores (`rawmemchr` over `__rawmemchr`), then a
    /// global symbol over a weak alias (`strchr` over `index`, `memcmp`
    /// over `bcmp`), then the shortest, then the first in byte order.
    fn find_ifuncs(&mut self, wanted: &HashSet<u64>) {
        let (sections, endian, data) = (self.sections, self.endian, self.data);
        for kind in [elf::SHT_DYNSYM, elf::SHT_SYMTAB] {
            let Some((index, _)) = sections.enumerate().find(|(_, h)| h.sh_type(endian) == kind) else {
                continue;
            };
            let Some(table) = SymbolTable::load(sections, endian, data, index) else {
                continue;
            };
            let mut best: HashMap<u64, (bool, usize, bool, usize, &'data str)> = HashMap::new();
            for symbol in table.symbols {
                let value = symbol.st_value(endian);
                if symbol.st_shndx(endian) == elf::SHN_UNDEF
                    || !wanted.contains(&value)
                    || self.ifuncs.contains_key(&value)
                {
                    continue;
                }
                let Some(name) = table.name(symbol, endian) else {
                    continue;
                };
                let key = (
                    symbol.st_type() != elf::STT_GNU_IFUNC,
                    name.len() - name.trim_start_matches('_').len(),
                    symbol.st_bind() != elf::STB_GLOBAL,
                    name.len(),
                    name,
                );
                if best.get(&value).is_none_or(|old| key < *old) {
                    best.insert(value, key);
                }
            }
            self.ifuncs.extend(best.into_iter().map(|(value, key)| (value, key.4)));
            if wanted.iter().all(|v| self.ifuncs.contains_key(v)) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_stub_forms_of_binutils() {
        // Lazy PLT entry: jmp *0x2fe2(%rip); push $3; jmp PLT0.
        let lazy = [0xff, 0x25, 0xe2, 0x2f, 0, 0, 0x68, 3, 0, 0, 0, 0xe9, 0xd0, 0xff, 0xff, 0xff];
        assert_eq!(decode(&lazy, 0x1030), Jump::Slot(0x1036 + 0x2fe2));
        // IBT .plt.sec: endbr64; bnd jmp *-0x10(%rip).
        let sec = [0xf3, 0x0f, 0x1e, 0xfa, 0xf2, 0xff, 0x25, 0xf0, 0xff, 0xff, 0xff, 0x0f, 0x1f, 0x44, 0, 0];
        assert_eq!(decode(&sec, 0x2000), Jump::Slot(0x200b - 0x10));
        // IBT lazy trampoline: endbr64; push $7; bnd jmp PLT0.
        let trampoline = [0xf3, 0x0f, 0x1e, 0xfa, 0x68, 7, 0, 0, 0, 0xf2, 0xe9, 0, 0, 0, 0, 0x90];
        assert_eq!(decode(&trampoline, 0), Jump::Index(7));
        // PLT0.
        let header = [0xff, 0x35, 1, 2, 3, 4, 0xff, 0x25, 1, 2, 3, 4, 0x0f, 0x1f, 0x40, 0];
        assert_eq!(decode(&header, 0), Jump::Header);
        // Truncated and unknown stubs.
        assert_eq!(decode(&lazy[..5], 0), Jump::Unknown);
        assert_eq!(decode(&sec[..6], 0), Jump::Unknown);
        assert_eq!(decode(&[0x68, 1], 0), Jump::Unknown);
        assert_eq!(decode(&[], 0), Jump::Unknown);
        assert_eq!(decode(&[0x90; 16], 0), Jump::Unknown);
        // Wrapping at the ends of the address space.
        assert_eq!(decode(&[0xff, 0x25, 0xff, 0xff, 0xff, 0x7f], u64::MAX - 2), Jump::Slot(0x7fff_ffff + 3));
    }

    #[test]
    fn stub_sizes() {
        assert_eq!(stub_size(b".plt", 16, &[]), 16);
        assert_eq!(stub_size(b".plt", 0, &[]), 16);
        assert_eq!(stub_size(b".plt.got", 8, &ENDBR64), 8);
        assert_eq!(stub_size(b".plt.got", 0, &[0xff, 0x25]), 8);
        assert_eq!(stub_size(b".plt.got", 0, &ENDBR64), 16);
        assert_eq!(stub_size(b".plt.sec", 1 << 40, &[]), 16);
    }

    /// A small deterministic generator (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// libc's bytes with random bit flips in its PLT sections, relocations,
    /// dynamic symbols and section headers, and truncated anywhere: `parse`
    /// never panics (it runs outside `load`'s `catch_unwind` here).
    #[test]
    fn corrupt_libc_never_panics() {
        let bytes = std::fs::read("/lib/x86_64-linux-gnu/libc.so.6").expect("Debian's libc");
        let good = PltStubs::parse(&*bytes).expect("libc is x86-64 ELF");
        assert!(good.len() > 50, "libc has PLT stubs");
        let file = object::File::parse(&*bytes).unwrap();
        let mut ranges: Vec<(usize, usize)> = Vec::new();
        use object::{Object, ObjectSection};
        for section in file.sections() {
            let name = section.name().unwrap_or("");
            if [".plt", ".plt.got", ".plt.sec", ".rela.plt", ".rela.dyn", ".dynsym", ".dynstr", ".shstrtab"]
                .contains(&name)
                && let Some((offset, size)) = section.file_range()
            {
                ranges.push((offset as usize, size as usize));
            }
        }
        // Section headers.
        let shoff = u64::from_le_bytes(bytes[0x28..0x30].try_into().unwrap()) as usize;
        ranges.push((shoff, bytes.len() - shoff));
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut copy = bytes.clone();
        let (mut parsed_rounds, mut renamed_rounds) = (0, 0);
        for round in 0..1000 {
            copy.copy_from_slice(&bytes);
            // A few flips in one region per round, so that most rounds
            // still parse and reach the stub and relocation code.
            let (offset, size) = ranges[rng.below(ranges.len())];
            for _ in 0..1 + rng.below(8) {
                let at = offset + rng.below(size.max(1));
                if at < copy.len() {
                    copy[at] ^= 1 << rng.below(8);
                }
            }
            if round % 10 == 0 {
                let cut = rng.below(copy.len());
                let _ = PltStubs::parse(&copy[..cut]);
            }
            let Some(parsed) = PltStubs::parse(&*copy) else {
                continue;
            };
            parsed_rounds += 1;
            let mut renamed = false;
            for stub in &good.stubs {
                for k in [0, 1, stub.size - 1] {
                    let name = parsed.name_at(stub.file_offset + k);
                    renamed |= name != Some(stub.name.as_str());
                }
            }
            renamed_rounds += usize::from(renamed);
            for _ in 0..64 {
                let _ = parsed.name_at(rng.next() % (bytes.len() as u64 + 64));
            }
        }
        // The corruption reached the code that reads stubs and relocations.
        assert!(parsed_rounds > 500, "{parsed_rounds} of 1000 corrupt copies parsed");
        assert!(renamed_rounds > 100, "{renamed_rounds} corrupt copies changed some stub's name");
    }
}
