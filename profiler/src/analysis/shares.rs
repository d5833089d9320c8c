//! Per-function shares of a profile: self (the function is the leaf) and
//! total (the function is anywhere on the stack, counted once per stack).
//! Functions are named by their folded label (`_[k]` marks kernel frames,
//! `_[j]` JIT code),
//! without the inlining mark: a function inlined in one build and called in
//! the next is still one function, so a changed inlining decision does not
//! split its share. Process and marker frames are not functions.
use std::collections::{BTreeMap, HashSet};

use crate::{
    formats::folded,
    profile::{Frame, FrameKind, Profile, Unit, build::WAKER_SEPARATOR},
};

/// The `--` frame between a wait and its waker.
pub fn is_waker_separator(frame: &Frame) -> bool {
    frame.kind == FrameKind::Marker && &*frame.name == WAKER_SEPARATOR
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Weights {
    pub self_weight: u64,
    pub total_weight: u64,
}

#[derive(Debug, Clone)]
pub struct Shares {
    pub unit: Unit,
    pub total: u64,
    pub functions: BTreeMap<String, Weights>,
}

impl Shares {
    pub fn of(profile: &Profile) -> Self {
        let mut functions: BTreeMap<String, Weights> = BTreeMap::new();
        for (stack, weight) in profile.sorted_stacks() {
            // A waker's frames (`--wakers`) are not where the time went.
            let code: Vec<String> = stack
                .iter()
                .take_while(|f| !is_waker_separator(f))
                .filter(|f| f.kind.is_code())
                .map(|frame| {
                    let label = folded::frame_label(frame);
                    match label.strip_suffix("_[i]") {
                        Some(plain) => plain.to_string(),
                        None => label,
                    }
                })
                .collect();
            let mut seen = HashSet::new();
            for label in &code {
                if seen.insert(label) {
                    functions.entry(label.clone()).or_default().total_weight += weight;
                }
            }
            if let Some(leaf) = code.last() {
                functions.get_mut(leaf).expect("inserted above").self_weight += weight;
            }
        }
        Shares { unit: profile.unit, total: profile.total(), functions }
    }

    /// Share of the total, in percent.
    pub fn percent(&self, weight: u64) -> f64 {
        if self.total == 0 { 0.0 } else { 100.0 * weight as f64 / self.total as f64 }
    }

    pub fn get(&self, function: &str) -> Weights {
        self.functions.get(function).copied().unwrap_or_default()
    }

    /// Functions by descending `key`, then by name.
    pub fn top(&self, key: impl Fn(&Weights) -> u64, n: usize) -> Vec<(&str, Weights)> {
        let mut rows: Vec<(&str, Weights)> = self.functions.iter().map(|(f, w)| (f.as_str(), *w)).collect();
        rows.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then_with(|| a.0.cmp(b.0)));
        rows.retain(|r| key(&r.1) > 0);
        rows.truncate(n);
        rows
    }
}

/// `--wakers` profiles: the wait time each waker ended, by the waker's
/// name and by each function in its stack (counted once per stack).
#[derive(Debug, Clone, Default)]
pub struct WakerShares {
    /// Time of the waits joined with a waker.
    pub joined: u64,
    pub by_name: BTreeMap<String, u64>,
    pub by_function: BTreeMap<String, u64>,
}

impl WakerShares {
    /// None when no stack has a waker.
    pub fn of(profile: &Profile) -> Option<Self> {
        let mut shares = WakerShares::default();
        for (stack, weight) in profile.sorted_stacks() {
            let Some(separator) = stack.iter().position(|frame| is_waker_separator(frame)) else { continue };
            let waker = &stack[separator + 1..];
            let Some(name) = waker.last() else { continue };
            shares.joined += weight;
            *shares.by_name.entry(name.name.to_string()).or_default() += weight;
            // The name is last; read back from a file it may look like code.
            let mut seen = HashSet::new();
            for frame in waker[..waker.len() - 1].iter().filter(|f| f.kind.is_code()) {
                let label = folded::frame_label(frame);
                let label = label.strip_suffix("_[i]").map(str::to_string).unwrap_or(label);
                if seen.insert(label.clone()) {
                    *shares.by_function.entry(label).or_default() += weight;
                }
            }
        }
        (shares.joined > 0).then_some(shares)
    }

    /// The `n` largest of `map`, by descending time, then by name.
    pub fn top(map: &BTreeMap<String, u64>, n: usize) -> Vec<(&str, u64)> {
        let mut rows: Vec<(&str, u64)> = map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        rows.truncate(n);
        rows
    }
}

/// Plain-text and Markdown tables.
pub fn table(headers: &[&str], rows: &[Vec<String>], markdown: bool) -> String {
    let mut out = String::new();
    if markdown {
        out.push_str(&format!("| {} |\n", headers.join(" | ")));
        let rule: Vec<&str> =
            headers.iter().enumerate().map(|(i, _)| if i + 1 == headers.len() { "---" } else { "---:" }).collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            out.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        return out;
    }
    // Right-aligned numbers, the last column (the function) left-aligned.
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| if i == last { c.to_string() } else { format!("{c:>width$}", width = widths[i]) })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    out.push_str(&line(headers.to_vec()));
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}
