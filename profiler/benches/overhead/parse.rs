//! Figures read back from the tools' stderr and the result files of this
//! binary's `--workload` / `--gaps` modes.

/// All numbers in a line, in order ("1,234" is not expected).
pub fn numbers(line: &str) -> Vec<f64> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in line.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '.' && !cur.is_empty()) {
            cur.push(c);
        } else if !cur.is_empty() {
            if let Ok(x) = cur.trim_end_matches('.').parse() {
                out.push(x);
            }
            cur.clear();
        }
    }
    out
}

/// Numbers of the first line of `text` that contains `key`, from after `key`.
pub fn line_numbers(text: &str, key: &str) -> Option<Vec<f64>> {
    text.lines().find_map(|l| l.find(key).map(|i| numbers(&l[i + key.len()..])))
}
