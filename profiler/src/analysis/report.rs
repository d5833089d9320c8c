//! `flameprof report FILE`: the top functions by self and by total share.
use serde_json::{Value, json};

use crate::{
    analysis::shares::{Shares, WakerShares, Weights, table},
    profile::Loaded,
    settings::TableStyle as Style,
};

pub fn render(name: &str, loaded: &Loaded, top: usize, style: Style) -> String {
    let shares = Shares::of(&loaded.profile);
    let by_self = shares.top(|w| w.self_weight, top);
    let by_total = shares.top(|w| w.total_weight, top);
    let wakers = WakerShares::of(&loaded.profile);
    let health: Vec<&String> =
        loaded.comments.iter().filter(|c| !c.starts_with(crate::formats::pprof::GENERATOR)).collect();
    if style == Style::Json {
        let rows = |rows: &[(&str, Weights)]| -> Vec<Value> {
            rows.iter()
                .map(|(function, w)| {
                    json!({
                        "function": function,
                        "self": w.self_weight,
                        "total": w.total_weight,
                        "self_percent": round(shares.percent(w.self_weight)),
                        "total_percent": round(shares.percent(w.total_weight)),
                    })
                })
                .collect()
        };
        let mut document = json!({
            "file": name,
            "unit": shares.unit.name(),
            "total": shares.total,
            "health": health,
            "top_self": rows(&by_self),
            "top_total": rows(&by_total),
        });
        if let Some(wakers) = &wakers {
            let rows = |map, key: &str| -> Vec<Value> {
                WakerShares::top(map, top)
                    .into_iter()
                    .map(|(name, total)| json!({ key: name, "total": total, "total_percent": round(shares.percent(total)) }))
                    .collect()
            };
            document["wakers"] = json!({
                "joined": wakers.joined,
                "joined_percent": round(shares.percent(wakers.joined)),
                "top_wakers": rows(&wakers.by_name, "waker"),
                "top_waker_functions": rows(&wakers.by_function, "function"),
            });
        }
        return serde_json::to_string_pretty(&document).expect("JSON value") + "\n";
    }
    let markdown = style == Style::Markdown;
    let unit = shares.unit.name();
    let mut out = String::new();
    if markdown {
        out.push_str(&format!("### Profile `{name}`\n\n{} {unit} in total.", shares.total));
    } else {
        out.push_str(&format!("{name}: {} {unit}", shares.total));
    }
    for health in health {
        out.push_str(&if markdown { format!(" Health: {health}.") } else { format!("\nhealth: {health}") });
    }
    out.push_str("\n\n");
    let headers = ["self %", "total %", "self", "total", "function"];
    let rows = |rows: &[(&str, Weights)]| -> Vec<Vec<String>> {
        rows.iter()
            .map(|(function, w)| {
                vec![
                    format!("{:.2}", shares.percent(w.self_weight)),
                    format!("{:.2}", shares.percent(w.total_weight)),
                    w.self_weight.to_string(),
                    w.total_weight.to_string(),
                    if markdown { format!("`{function}`") } else { function.to_string() },
                ]
            })
            .collect()
    };
    for (title, list) in [("Top functions by self share", &by_self), ("Top functions by total share", &by_total)] {
        out.push_str(&if markdown { format!("#### {title}\n\n") } else { format!("{title}:\n") });
        out.push_str(&table(&headers, &rows(list), markdown));
        out.push('\n');
    }
    if let Some(wakers) = &wakers {
        out.push_str(&waker_tables(wakers, &shares, top, markdown));
    }
    out
}

/// Who ended the waits: by waker name, and by function in the wakers' stacks.
fn waker_tables(wakers: &WakerShares, shares: &Shares, top: usize, markdown: bool) -> String {
    let mut out = String::new();
    let rows = |map| -> Vec<Vec<String>> {
        WakerShares::top(map, top)
            .into_iter()
            .map(|(name, total)| {
                let name = if markdown { format!("`{name}`") } else { name.to_string() };
                vec![format!("{:.2}", shares.percent(total)), total.to_string(), name]
            })
            .collect()
    };
    let joined =
        format!("{:.2}% of the time ({}) was joined with its waker.", shares.percent(wakers.joined), wakers.joined);
    out.push_str(&if markdown { format!("{joined}\n\n") } else { format!("{joined}\n") });
    for (title, map, last) in [
        ("Top wakers (the wait time they ended)", &wakers.by_name, "waker"),
        ("Top functions in the wakers' stacks", &wakers.by_function, "function"),
    ] {
        out.push_str(&if markdown { format!("#### {title}\n\n") } else { format!("{title}:\n") });
        out.push_str(&table(&["total %", "total", last], &rows(map), markdown));
        out.push('\n');
    }
    out
}

/// Percentages in JSON: two decimals are what a reader uses.
pub fn round(percent: f64) -> f64 {
    (percent * 100.0).round() / 100.0
}
