//! Leaf-function shares of a profile, to compare flameprof with `perf
//! record --call-graph dwarf` on software nobody here wrote (Debian's
//! python3, xz): each tool's leaf of every sample, normalized so that both
//! name the same function the same way, and the total-variation distance of
//! the two distributions.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::folded::Folded;
use crate::process::run_command;

/// Leaf name -> share of the samples.
pub type LeafShares = HashMap<String, f64>;

/// The leaf of each sample, normalized so flameprof's and perf's profiles
/// compare: annotations dropped, inlined frames skipped (perf's physical
/// leaf), unresolved frames as `[module]` (perf shows `[unknown] (dso)`,
/// flameprof `module+0xOFFSET`).
pub fn leaf_name(frame: &str) -> String {
    let frame = frame.trim_end_matches("_[k]");
    match frame.rsplit_once("+0x") {
        Some((module, offset)) if offset.chars().all(|c| c.is_ascii_hexdigit()) => format!("[{module}]"),
        _ => frame.to_string(),
    }
}

/// Leaf-function shares of a flameprof folded profile.
pub fn flameprof_leaves(folded: &Folded) -> LeafShares {
    let mut leaves = HashMap::new();
    let total = folded.total().max(1) as f64;
    for stack in &folded.stacks {
        let Some(leaf) = stack.frames.iter().rev().find(|f| !f.ends_with("_[i]")) else { continue };
        *leaves.entry(leaf_name(leaf)).or_insert(0.0) += stack.count as f64 / total;
    }
    leaves
}

/// `perf record -e cpu-clock --call-graph dwarf` of `command` into `data`,
/// and its leaf-function shares from `perf script`.
pub fn perf_leaves(data: &Path, command: &[&str], timeout: Duration) -> LeafShares {
    let mut record = Command::new("perf");
    record.args(["record", "-q", "-e", "cpu-clock", "--call-graph", "dwarf", "-F", "499", "-o"]).arg(data);
    record.arg("--").args(command);
    run_command(record, timeout).assert_success("perf record --call-graph dwarf");
    let mut script = Command::new("perf");
    script.args(["script", "-i"]).arg(data);
    let text = run_command(script, timeout).assert_success("perf script").stdout_str();
    let mut counts: LeafShares = HashMap::new();
    let mut total = 0.0f64;
    let mut want_leaf = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            want_leaf = !line.trim().is_empty();
            continue;
        }
        if !want_leaf || line.ends_with("(inlined)") {
            continue;
        }
        // "\t ADDRESS SYMBOL+0xOFF (DSO)"
        let line = line.trim();
        let Some((_, rest)) = line.split_once(' ') else { continue };
        let Some((symbol, dso)) = rest.rsplit_once(" (") else { continue };
        let dso = dso.trim_end_matches(')');
        let name = if symbol == "[unknown]" {
            format!("[{}]", dso.rsplit('/').next().unwrap_or(dso))
        } else {
            symbol.rsplit_once("+0x").map_or(symbol, |(name, _)| name).to_string()
        };
        *counts.entry(name).or_insert(0.0) += 1.0;
        total += 1.0;
        want_leaf = false;
    }
    counts.values_mut().for_each(|c| *c /= total.max(1.0));
    counts
}

/// Total-variation distance of two share distributions.
pub fn distance(a: &LeafShares, b: &LeafShares) -> f64 {
    let keys: HashSet<&String> = a.keys().chain(b.keys()).collect();
    keys.iter().map(|k| (a.get(*k).unwrap_or(&0.0) - b.get(*k).unwrap_or(&0.0)).abs()).sum::<f64>() / 2.0
}

/// The six largest shares, for failure messages.
pub fn top_leaves(shares: &LeafShares) -> String {
    let mut v: Vec<_> = shares.iter().collect();
    v.sort_by(|x, y| y.1.total_cmp(x.1));
    v.iter().take(6).map(|(k, s)| format!("{s:.3} {k}")).collect::<Vec<_>>().join(", ")
}

/// Asserts that flameprof's leaf shares (`ours`) are within 0.05 of perf's
/// (the nearer of two perf runs) beyond the distance between the two perf
/// runs themselves; prints both distances.
pub fn assert_leaves_agree(what: &str, ours: &LeafShares, perf_a: &LeafShares, perf_b: &LeafShares, stderr: &str) {
    let between_perf_runs = distance(perf_a, perf_b);
    let to_perf = distance(ours, perf_a).min(distance(ours, perf_b));
    eprintln!("{what}: leaf distance flameprof to perf {to_perf:.3}, perf to perf {between_perf_runs:.3}");
    assert!(
        to_perf <= between_perf_runs + 0.05,
        "{what}: leaf distance to perf {to_perf:.3}, between two perf runs {between_perf_runs:.3}\n\
         flameprof: {}\nperf: {}\n{stderr}",
        top_leaves(ours),
        top_leaves(perf_a),
    );
}
