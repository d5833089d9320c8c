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

/// The median number of user frames of a sample in a folded profile
/// (sample-weighted): the frames after the process name, without kernel
/// (`_[k]`) and inlined (`_[i]`) ones, which no unwinder walks. None for a
/// profile without samples.
pub fn user_frames(folded: &str) -> Option<f64> {
    let mut stacks: Vec<(usize, u64)> = folded
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (stack, count) = l.rsplit_once(' ')?;
            let frames = stack.split(';').skip(1).filter(|f| !f.ends_with("_[k]") && !f.ends_with("_[i]")).count();
            Some((frames, count.parse().ok()?))
        })
        .collect();
    stacks.sort_unstable();
    let total: u64 = stacks.iter().map(|s| s.1).sum();
    let mut seen = 0;
    stacks
        .into_iter()
        .find(|s| {
            seen += s.1;
            2 * seen >= total
        })
        .filter(|_| total > 0)
        .map(|s| s.0 as f64)
}
