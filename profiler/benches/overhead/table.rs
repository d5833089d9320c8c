//! Markdown tables on stdout, and the formats of the figures in them.

use std::fmt::Write as _;

/// A `## title` heading and a markdown table: first column left-aligned,
/// the figures right-aligned.
pub fn print_table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            if i == 0 {
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            } else {
                let _ = write!(s, " {}{c} |", " ".repeat(pad));
            }
        }
        s
    };
    println!("\n## {title}\n");
    println!("{}", line(&header.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
    let mut sep = String::from("|");
    for (i, wi) in w.iter().enumerate() {
        if i == 0 {
            let _ = write!(sep, ":{}|", "-".repeat(wi + 1));
        } else {
            let _ = write!(sep, "{}:|", "-".repeat(wi + 1));
        }
    }
    println!("{sep}");
    for r in rows {
        println!("{}", line(r));
    }
}

/// A cost over a reference cost (flameprof's over perf's, tables' over frame
/// pointers'); meaningless when the reference's measured cost is not
/// positive (below the noise).
pub fn fmt_ratio(cost: f64, reference: f64) -> String {
    if reference <= 0.0 {
        "n/a (reference ≤ 0: noise)".into()
    } else if cost < 0.0 {
        "< 0 (below noise)".into()
    } else {
        format!("{:.2}", cost / reference)
    }
}

/// A relative change (0.01 = 1 %) as a signed percentage.
pub fn pct(x: f64) -> String {
    if x.is_finite() { format!("{:+.2} %", 100.0 * x) } else { "n/a".into() }
}
