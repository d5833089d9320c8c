//! `flameprof diff BASE NEW`: how each function's share moved, a
//! differential flame graph, and the regression gate.
use std::collections::HashSet;

use inferno::{differential, flamegraph};
use serde_json::json;

use crate::{
    analysis::{
        report::round,
        shares::{Shares, table},
    },
    formats::folded,
    profile::Profile,
    settings::TableStyle as Style,
};

/// Shares moving less than this (percentage points) are equal (float noise).
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Both,
    OnlyNew,
    OnlyBase,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub function: String,
    pub base_self: f64,
    pub new_self: f64,
    pub base_total: f64,
    pub new_total: f64,
    pub presence: Presence,
}

impl Change {
    /// Growth of the total share, in percentage points.
    pub fn total_delta(&self) -> f64 {
        self.new_total - self.base_total
    }

    pub fn self_delta(&self) -> f64 {
        self.new_self - self.base_self
    }
}

/// Every function whose self or total share differs, the largest move of
/// total share first.
pub fn changes(base: &Shares, new: &Shares) -> Vec<Change> {
    let names: std::collections::BTreeSet<&String> = base.functions.keys().chain(new.functions.keys()).collect();
    let mut changes: Vec<Change> = names
        .into_iter()
        .map(|function| {
            let (b, n) = (base.get(function), new.get(function));
            let presence = match (b.total_weight > 0, n.total_weight > 0) {
                (true, false) => Presence::OnlyBase,
                (false, true) => Presence::OnlyNew,
                _ => Presence::Both,
            };
            Change {
                function: function.clone(),
                base_self: base.percent(b.self_weight),
                new_self: new.percent(n.self_weight),
                base_total: base.percent(b.total_weight),
                new_total: new.percent(n.total_weight),
                presence,
            }
        })
        .filter(|c| c.total_delta().abs() > EPSILON || c.self_delta().abs() > EPSILON)
        .collect();
    // The largest moves first, growth before shrinkage of the same size.
    changes.sort_by(|a, b| {
        (b.total_delta().abs().total_cmp(&a.total_delta().abs()))
            .then_with(|| b.total_delta().total_cmp(&a.total_delta()))
            .then_with(|| a.function.cmp(&b.function))
    });
    changes
}

/// Functions whose total share grew by more than `points`.
pub fn regressions(changes: &[Change], points: f64) -> Vec<&Change> {
    changes.iter().filter(|c| c.total_delta() > points + EPSILON).collect()
}

/// One line per regression, for the log.
pub fn regression_line(change: &Change, points: f64) -> String {
    format!(
        "flameprof: regression: {} total share {:.2}% -> {:.2}% (+{:.2} points, above --fail-above {points})",
        change.function,
        change.base_total,
        change.new_total,
        change.total_delta()
    )
}

pub fn render(
    base_name: &str,
    new_name: &str,
    base: &Shares,
    new: &Shares,
    changes: &[Change],
    top: usize,
    style: Style,
) -> String {
    let shown = &changes[..changes.len().min(top)];
    let presence = |p: Presence| match p {
        Presence::Both => "",
        Presence::OnlyNew => "only in NEW",
        Presence::OnlyBase => "only in BASE",
    };
    if style == Style::Json {
        let rows: Vec<_> = shown
            .iter()
            .map(|c| {
                json!({
                    "function": c.function,
                    "base_self_percent": round(c.base_self),
                    "new_self_percent": round(c.new_self),
                    "base_total_percent": round(c.base_total),
                    "new_total_percent": round(c.new_total),
                    "total_delta_points": round(c.total_delta()),
                    "presence": match c.presence { Presence::Both => "both", Presence::OnlyNew => "new", Presence::OnlyBase => "base" },
                })
            })
            .collect();
        let document = json!({
            "base": { "file": base_name, "total": base.total, "unit": base.unit.name() },
            "new": { "file": new_name, "total": new.total, "unit": new.unit.name() },
            "changed_functions": changes.len(),
            "changes": rows,
        });
        return serde_json::to_string_pretty(&document).expect("JSON value") + "\n";
    }
    let markdown = style == Style::Markdown;
    let mut out = if markdown {
        format!(
            "### Profile diff: `{base_name}` → `{new_name}`\n\nShares of each profile's total ({} vs {} {}).\n\n",
            base.total,
            new.total,
            new.unit.name()
        )
    } else {
        format!(
            "diff {base_name} ({} {}) -> {new_name} ({} {})\n",
            base.total,
            base.unit.name(),
            new.total,
            new.unit.name()
        )
    };
    if changes.is_empty() {
        out.push_str("No function's share changed.\n");
        return out;
    }
    let headers = ["total Δ", "total base", "total new", "self Δ", "self base", "self new", "note", "function"];
    let rows: Vec<Vec<String>> = shown
        .iter()
        .map(|c| {
            vec![
                format!("{:+.2}", c.total_delta()),
                format!("{:.2}%", c.base_total),
                format!("{:.2}%", c.new_total),
                format!("{:+.2}", c.self_delta()),
                format!("{:.2}%", c.base_self),
                format!("{:.2}%", c.new_self),
                presence(c.presence).to_string(),
                if markdown { format!("`{}`", c.function) } else { c.function.clone() },
            ]
        })
        .collect();
    out.push_str(&table(&headers, &rows, markdown));
    if shown.len() < changes.len() {
        out.push_str(&format!(
            "{}({} more changed functions not shown; --top N shows more)\n",
            if markdown { "\n" } else { "" },
            changes.len() - shown.len()
        ));
    }
    out
}

/// Label suffixes that mark frames present in only one profile.
pub const NEW_MARK: &str = " [new]";
pub const BASE_ROOT: &str = "[only in BASE]";

/// A differential flame graph in NEW's shape (inferno's differential mode,
/// BASE normalized to NEW's total): red frames grew, blue shrank. Frames only
/// in NEW are labelled `[new]`; stacks only in BASE, which have no width in
/// NEW, are drawn at their BASE width under an `[only in BASE]` root.
pub fn svg(base: &Profile, new: &Profile, title: &str) -> std::io::Result<Vec<u8>> {
    let before = folded::render(base);
    let after = folded::render(new);
    let mut merged = Vec::new();
    let options = differential::Options { normalize: true, ..Default::default() };
    differential::from_readers(options, before.as_bytes(), after.as_bytes(), &mut merged)?;
    let merged = String::from_utf8_lossy(&merged);
    let labels = |text: &str| -> HashSet<String> {
        text.lines()
            .filter_map(|l| l.rsplit_once(' '))
            .flat_map(|(stack, _)| stack.split(';').map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let base_labels = labels(&before);
    let mut lines = Vec::new();
    for line in merged.lines() {
        let mut parts = line.rsplitn(3, ' ');
        let (Some(after), Some(before), Some(stack)) = (parts.next(), parts.next(), parts.next()) else { continue };
        let (Ok(after), Ok(before)) = (after.parse::<u64>(), before.parse::<u64>()) else { continue };
        if after == 0 {
            lines.push(format!("{BASE_ROOT};{stack} {before} {before}"));
        } else {
            let marked: Vec<String> = stack
                .split(';')
                .map(|l| if base_labels.contains(l) { l.to_string() } else { format!("{l}{NEW_MARK}") })
                .collect();
            lines.push(format!("{} {before} {after}", marked.join(";")));
        }
    }
    let mut options = flamegraph::Options::default();
    options.title = title.to_string();
    options.subtitle = Some(format!(
        "red: share grew, blue: shrank (BASE scaled to NEW's total); \"{}\": only in NEW; {BASE_ROOT}: gone since BASE",
        NEW_MARK.trim()
    ));
    options.count_name = new.unit.name().to_string();
    options.hash = true;
    options.deterministic = true;
    let mut svg = Vec::new();
    if lines.is_empty() {
        lines.push("[no samples] 0 0".to_string());
    }
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)?;
    Ok(svg)
}
