//! Folded stacks (`frame;frame;... COUNT`): parsing and sums.

use std::collections::BTreeMap;
use std::path::Path;

/// One line of a folded profile: frames from root to leaf, and its count.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub frames: Vec<String>,
    pub count: u64,
}

impl Stack {
    pub fn contains(&self, frame: &str) -> bool {
        self.frames.iter().any(|f| f == frame)
    }

    pub fn position(&self, frame: &str) -> Option<usize> {
        self.frames.iter().position(|f| f == frame)
    }

    pub fn leaf(&self) -> &str {
        self.frames.last().map(String::as_str).unwrap_or("")
    }

    pub fn root(&self) -> &str {
        self.frames.first().map(String::as_str).unwrap_or("")
    }
}

/// A kernel frame (`name_[k]`).
pub fn is_kernel(frame: &str) -> bool {
    frame.ends_with("_[k]")
}

/// A parsed folded profile.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    pub stacks: Vec<Stack>,
    /// `#` header lines before the first stack (not in the format the
    /// issue documents; one format test rejects them, the others accept a
    /// header block at the top).
    pub comment_lines: Vec<String>,
}

/// Parses one `frame;frame;... COUNT` line strictly.
pub fn parse_folded_line(line: &str) -> Result<Stack, String> {
    let (stack, count) = line.rsplit_once(' ').ok_or_else(|| format!("no ' COUNT' at the end of line {line:?}"))?;
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("count {count:?} is not a decimal number in line {line:?}"));
    }
    let count: u64 = count.parse().map_err(|e| format!("count in {line:?}: {e}"))?;
    if stack.is_empty() {
        return Err(format!("empty stack in line {line:?}"));
    }
    let frames: Vec<String> = stack.split(';').map(str::to_string).collect();
    if frames.iter().any(String::is_empty) {
        return Err(format!("empty frame in line {line:?}"));
    }
    Ok(Stack { frames, count })
}

impl Folded {
    /// Parses a folded profile; `#` lines before the first stack are kept
    /// aside as a header, any other line that is not `stack COUNT` is an
    /// error.
    pub fn parse(text: &str) -> Result<Folded, String> {
        let mut folded = Folded::default();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with('#') && folded.stacks.is_empty() {
                folded.comment_lines.push(line.to_string());
                continue;
            }
            let stack = parse_folded_line(line).map_err(|e| format!("line {}: {e}", i + 1))?;
            folded.stacks.push(stack);
        }
        Ok(folded)
    }

    /// Reads and parses a folded file; panics with a clear message.
    pub fn read(path: &Path) -> Folded {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Folded::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn total(&self) -> u64 {
        self.stacks.iter().map(|s| s.count).sum()
    }

    /// Sum of counts of the stacks matching `pred`.
    pub fn sum_where(&self, pred: impl Fn(&Stack) -> bool) -> u64 {
        self.stacks.iter().filter(|s| pred(s)).map(|s| s.count).sum()
    }

    /// Sum of counts of the stacks containing `frame`.
    pub fn with_frame(&self, frame: &str) -> u64 {
        self.sum_where(|s| s.contains(frame))
    }

    /// Sums by root frame.
    pub fn by_root(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for s in &self.stacks {
            *m.entry(s.root().to_string()).or_insert(0) += s.count;
        }
        m
    }

    /// The heaviest stacks first, for failure messages.
    pub fn describe_top(&self, n: usize) -> String {
        let mut v: Vec<&Stack> = self.stacks.iter().collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.count));
        v.iter()
            .take(n)
            .map(|s| {
                let f = &s.frames;
                let tail =
                    if f.len() > 6 { format!("{};...;{}", f[0], f[f.len() - 5..].join(";")) } else { f.join(";") };
                format!("  {:>9} [{} frames] {}", s.count, f.len(), tail)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Weight of the stacks holding every one of `chain`, in this order from
/// the root (not necessarily adjacent).
pub fn with_chain(folded: &Folded, chain: &[&str]) -> u64 {
    folded.sum_where(|stack| {
        let positions: Option<Vec<usize>> = chain.iter().map(|f| stack.position(f)).collect();
        positions.is_some_and(|p| p.windows(2).all(|w| w[0] < w[1]))
    })
}
