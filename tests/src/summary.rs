//! Numbers scraped from the human summary flameprof prints on stderr.

/// The first number following `marker` in `text`... or preceding it when
/// `before` is set (e.g. "999 at the 127-frame limit").
pub fn number_before(text: &str, marker: &str) -> Option<f64> {
    let idx = text.find(marker)?;
    let head = text[..idx].trim_end();
    let start = head.rfind(|c: char| !(c.is_ascii_digit() || c == '.')).map(|i| i + 1).unwrap_or(0);
    head[start..].parse().ok()
}

/// Seconds recorded, from the summary's `recorded X s` line.
pub fn recorded_seconds(stderr: &str) -> Option<f64> {
    let idx = stderr.find("recorded ")?;
    let rest = &stderr[idx + "recorded ".len()..];
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    if !rest[num.len()..].starts_with(" s") {
        return None;
    }
    num.parse().ok()
}
