//! Section 3: symbolization throughput of `symbolize::Symbolizer` on the
//! flameprof binary, with its answers checked against the symbol table.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use crate::ctx::Ctx;
use crate::knobs::env_usize;
use crate::process::die;
use crate::stats::median;
use crate::table::print_table;

/// Last path segment of a demangled name, without generic arguments.
fn last_ident(name: &str) -> &str {
    let mut depth = 0i32;
    let mut cut = name.len();
    // Strip a trailing `<...>` group.
    if name.ends_with('>') {
        for (i, c) in name.char_indices().rev() {
            match c {
                '>' => depth += 1,
                '<' => {
                    depth -= 1;
                    if depth == 0 {
                        cut = i;
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    let base = &name[..cut];
    base.rsplit("::").next().unwrap_or(base)
}

/// A function in .text: where its code is in the file, and which entry of
/// the name list holds its symbol names (aliases share an address).
#[derive(Clone, Copy)]
struct Function {
    file_offset: u64,
    size: u64,
    names_index: usize,
}

/// The functions of `path`'s .text, their demangled names, and the size of .text.
fn read_functions(path: &Path) -> (Vec<Function>, Vec<Vec<String>>, u64) {
    use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
    let data = std::fs::read(path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let file = object::File::parse(&*data).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    let text = file.section_by_name(".text").unwrap_or_else(|| die("no .text section"));
    let (t_addr, t_size) = (text.address(), text.size());
    let t_off = text.file_range().map_or(0, |(o, _)| o);
    // address -> (size, names)
    let mut by_addr: BTreeMap<u64, (u64, Vec<String>)> = BTreeMap::new();
    for s in file.symbols() {
        if s.kind() != SymbolKind::Text || s.size() == 0 {
            continue;
        }
        let a = s.address();
        if a < t_addr || a + s.size() > t_addr + t_size {
            continue;
        }
        let Ok(name) = s.name() else { continue };
        let dem = format!("{:#}", rustc_demangle::demangle(name));
        let e = by_addr.entry(a).or_insert((s.size(), Vec::new()));
        e.0 = e.0.max(s.size());
        e.1.push(dem);
    }
    let mut funcs = Vec::new();
    let mut names = Vec::new();
    for (a, (size, n)) in by_addr {
        funcs.push(Function { file_offset: a - t_addr + t_off, size, names_index: names.len() });
        names.push(n);
    }
    (funcs, names, t_size)
}

/// `n` pseudo-random addresses inside functions (file offset, index of the
/// expected names), the same for the same seed.
fn pick(funcs: &[Function], n: usize, seed: u64) -> Vec<(u64, usize)> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let f = funcs[(next() % funcs.len() as u64) as usize];
            (f.file_offset + next() % f.size, f.names_index)
        })
        .collect()
}

pub fn bench(ctx: &mut Ctx) {
    let n = env_usize("FLAMEPROF_BENCH_SYM_ADDRS", 20_000).max(1);
    let path = ctx.flameprof.clone();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let (funcs, names, text_size) = read_functions(&path);
    if funcs.is_empty() {
        die("the flameprof binary has no function symbols (stripped?)");
    }
    struct Pass {
        label: &'static str,
        secs: f64,
        n: usize,
        resolved: usize,
        matched: usize,
        lines: usize,
        inlined: usize,
    }
    let mut passes = Vec::new();
    let mut sym = symbolize::Symbolizer::new();
    let mut evaluate = |label: &'static str, sym: &mut symbolize::Symbolizer, seed: u64| {
        let picked = pick(&funcs, n, seed);
        let offsets: Vec<u64> = picked.iter().map(|p| p.0).collect();
        let t = Instant::now();
        let out = sym.symbolize_file(&path, &offsets);
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(out.len(), offsets.len(), "one result per address");
        let mut p = Pass { label, secs, n, resolved: 0, matched: 0, lines: 0, inlined: 0 };
        for (s, (_, ni)) in out.iter().zip(&picked) {
            if !s.is_resolved() {
                continue;
            }
            p.resolved += 1;
            let f = &s.frames[0];
            let got = last_ident(&f.function);
            if names[*ni].iter().any(|want| want == &f.function || last_ident(want) == got) {
                p.matched += 1;
            }
            if s.frames.last().is_some_and(|f| f.line.is_some()) {
                p.lines += 1;
            }
            if s.frames.len() > 1 {
                p.inlined += 1;
            }
        }
        passes.push(p);
    };
    evaluate("cold (new Symbolizer: opens & parses the file)", &mut sym, 0x1234_5678);
    evaluate("warm (same Symbolizer, other addresses)", &mut sym, 0x9876_5431);
    evaluate("warm (same Symbolizer, other addresses)", &mut sym, 0x5555_aaab);
    let rows: Vec<Vec<String>> = passes
        .iter()
        .map(|p| {
            let share = |k: usize| format!("{:.1} %", 100.0 * k as f64 / p.n as f64);
            vec![
                p.label.into(),
                format!("{}", p.n),
                format!("{:.3}", p.secs),
                format!("{:.0}", p.n as f64 / p.secs),
                share(p.resolved),
                share(p.matched),
                share(p.lines),
                share(p.inlined),
            ]
        })
        .collect();
    print_table(
        &format!(
            "3. Symbolization: {} ({:.1} MiB, .text {:.1} MiB, {} functions), random addresses inside functions",
            path.display(),
            size as f64 / 1048576.0,
            text_size as f64 / 1048576.0,
            funcs.len()
        ),
        &["pass", "addresses", "time (s)", "addresses/s", "resolved", "name = symtab", "file:line", "with inlined"],
        &rows,
    );
    let worst = passes.iter().map(|p| p.matched as f64 / p.n as f64).fold(f64::INFINITY, f64::min);
    let cold = &passes[0];
    let warm = median(&passes[1..].iter().map(|p| p.n as f64 / p.secs).collect::<Vec<_>>());
    ctx.verdict(
        "symbolization throughput (cold / warm)",
        format!("{:.0} / {:.0} addr/s", cold.n as f64 / cold.secs, warm),
        "reported (no target)",
        None,
    );
    ctx.verdict(
        "symbolization answers match .symtab",
        format!("{:.1} %", 100.0 * worst),
        "≥ 95 %",
        Some(worst >= 0.95),
    );
    if worst < 0.5 {
        die("most symbolized addresses are wrong or unresolved: the throughput figure is meaningless");
    }
}
