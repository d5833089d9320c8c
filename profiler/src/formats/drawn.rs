//! The folded lines a flame graph is drawn from, only as deep as it draws
//! them. inferno drops every frame narrower than its minimum width, and
//! with it everything above it; a system-wide profile has tens of thousands
//! of stacks, most of them a few samples under a wide trunk, whose lines
//! (kilobytes each) would all be built and parsed for frames never drawn.
//! The lines come in the order inferno would sort the whole lines into
//! (it is told not to sort them again), and each is cut below its first
//! frame too narrow to draw: every frame drawn keeps its place and width
//! (the cut weight stays in the frame below, as self time, which nothing
//! draws), and the total stays the same.
use std::{cmp::Ordering, collections::HashMap};

/// A distinct label's index in [`Labels`].
pub type LabelId = u32;

/// Each distinct stack of labels (root first) and its weight.
pub type LabelStacks = HashMap<Box<[LabelId]>, u64>;

/// Every distinct label text once.
#[derive(Default)]
pub struct Labels {
    ids: HashMap<String, LabelId>,
    texts: Vec<String>,
}

impl Labels {
    pub fn id(&mut self, label: String) -> LabelId {
        if let Some(&id) = self.ids.get(&label) {
            return id;
        }
        let id = LabelId::try_from(self.texts.len()).expect("fewer than 4 billion distinct labels");
        self.texts.push(label.clone());
        self.ids.insert(label, id);
        id
    }

    pub fn text(&self, id: LabelId) -> &str {
        &self.texts[id as usize]
    }
}

/// How inferno will draw the lines.
#[derive(Debug, Clone, Copy)]
pub struct Drawing {
    /// inferno's `min_width`: a percentage of the graph's width.
    pub min_width_percent: f64,
    /// inferno's `reverse_stack_order`: the leaf is drawn at the bottom.
    pub reversed: bool,
}

/// The lines, `frame;frame;... weight`, of `stacks` (label ids, root
/// first, each stack once) in inferno's order, drawn side first
/// (`drawing.reversed`: leaf first, as inferno would reverse them), each
/// cut below its first frame narrower than `drawing` draws; neighbours cut
/// to the same frames become one line.
pub fn lines(stacks: LabelStacks, labels: &Labels, drawing: Drawing) -> Vec<String> {
    let total: u64 = stacks.values().sum();
    // As inferno compares: a frame's samples against this, in f64.
    let narrower_than = drawing.min_width_percent / (100.0 / total as f64);
    let mut sorted: Vec<(Box<[LabelId]>, u64)> = stacks
        .into_iter()
        .map(|(mut stack, weight)| {
            if drawing.reversed {
                stack.reverse();
            }
            (stack, weight)
        })
        .collect();
    sorted.sort_unstable_by(|a, b| line_order(a, b, labels));
    let depths = drawn_depths(&sorted, narrower_than);
    let mut cut: Vec<(&[LabelId], u64)> = Vec::new();
    for ((stack, weight), depth) in sorted.iter().zip(depths) {
        match cut.last_mut() {
            Some((last, total)) if **last == stack[..depth] => *total += weight,
            _ => cut.push((&stack[..depth], *weight)),
        }
    }
    cut.into_iter()
        .map(|(drawn, weight)| {
            let texts: Vec<&str> = drawn.iter().map(|&id| labels.text(id)).collect();
            format!("{} {weight}", texts.join(";"))
        })
        .collect()
}

/// How inferno sorts lines: as text (`frame;frame;... weight`, trimmed),
/// byte by byte; equal labels (equal ids) are skipped without reading them.
fn line_order(a: &(Box<[LabelId]>, u64), b: &(Box<[LabelId]>, u64), labels: &Labels) -> Ordering {
    let shared = common_prefix(&a.0, &b.0);
    if shared == a.0.len() && shared == b.0.len() {
        return a.1.to_string().cmp(&b.1.to_string());
    }
    line_bytes_from(a, shared, labels).cmp(line_bytes_from(b, shared, labels))
}

/// The bytes of a stack's line from its frame `from` on (with the `;`
/// before it), to the end of its weight.
fn line_bytes_from<'a>(
    (stack, weight): &'a (Box<[LabelId]>, u64),
    from: usize,
    labels: &'a Labels,
) -> impl Iterator<Item = u8> + 'a {
    let frames = stack[from..].iter().enumerate().flat_map(move |(offset, &id)| {
        let (separator, text) = match from + offset {
            0 => ("", labels.text(id).trim_start()),
            _ => (";", labels.text(id)),
        };
        separator.bytes().chain(text.bytes())
    });
    frames.chain(format!(" {weight}").into_bytes())
}

/// For each of `sorted` (stacks in inferno's order, drawn side first),
/// how many of its frames to keep: up to its first frame whose weight (of
/// the neighbouring stacks that share it and the frames below it: one
/// frame of the graph) is under `narrower_than`, at least one, so that
/// every weight still counts in the total.
fn drawn_depths(sorted: &[(Box<[LabelId]>, u64)], narrower_than: f64) -> Vec<usize> {
    let mut depths: Vec<usize> = sorted.iter().map(|(stack, _)| stack.len()).collect();
    // The frames of the current stack, bottom first: (first stack under
    // it, weight so far).
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut close_above = |open: &mut Vec<(usize, u64)>, depth: usize, end: usize| {
        while open.len() > depth {
            let (start, weight) = open.pop().expect("longer than depth");
            if (weight as f64) < narrower_than {
                let keep = open.len().max(1);
                for kept in &mut depths[start..end] {
                    *kept = (*kept).min(keep);
                }
            }
        }
    };
    for (index, (stack, weight)) in sorted.iter().enumerate() {
        let shared = match index {
            0 => 0,
            _ => common_prefix(&sorted[index - 1].0, stack),
        };
        close_above(&mut open, shared, index);
        open.extend((shared..stack.len()).map(|_| (index, 0)));
        for frame in &mut open {
            frame.1 += weight;
        }
    }
    close_above(&mut open, 0, sorted.len());
    depths
}

fn common_prefix(a: &[LabelId], b: &[LabelId]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stacks(labels: &mut Labels, folded: &[(&str, u64)]) -> LabelStacks {
        folded
            .iter()
            .map(|(stack, weight)| (stack.split(';').map(|l| labels.id(l.to_string())).collect(), *weight))
            .collect()
    }

    fn sorted(mut lines: Vec<String>) -> Vec<String> {
        lines.sort();
        lines
    }

    #[test]
    fn stacks_are_cut_below_their_first_narrow_frame_and_keep_their_weight() {
        let mut labels = Labels::default();
        // 100 samples; 10 % of the width is 10 samples.
        let folded = [("a;b;c", 50), ("a;b;d;e", 6), ("a;b;d;f", 5), ("a;g;h", 9), ("x;y", 30)];
        let stacks = stacks(&mut labels, &folded);
        let drawing = Drawing { min_width_percent: 10.0, reversed: false };
        // a;b;d has 11 (drawn), its e and f are narrow; a;g has 9 (narrow).
        assert_eq!(sorted(lines(stacks, &labels, drawing)), ["a 9", "a;b;c 50", "a;b;d 11", "x;y 30"]);
    }

    #[test]
    fn lines_come_in_the_order_of_their_text() {
        let mut labels = Labels::default();
        // By ids "zz" comes first; as text "zz0" sorts before "zz;", and
        // the self time of "zz" ("zz 2") before both.
        let stacks = stacks(&mut labels, &[("a;zz;q", 1), ("a;zz0;r", 1), ("a;zz", 2), ("a;b", 3)]);
        let drawing = Drawing { min_width_percent: 0.0, reversed: false };
        assert_eq!(lines(stacks, &labels, drawing), ["a;b 3", "a;zz 2", "a;zz0;r 1", "a;zz;q 1"]);
    }

    #[test]
    fn a_narrow_root_keeps_its_weight() {
        let mut labels = Labels::default();
        let stacks = stacks(&mut labels, &[("a;b", 99), ("z;y;x", 1)]);
        let drawing = Drawing { min_width_percent: 10.0, reversed: false };
        assert_eq!(sorted(lines(stacks, &labels, drawing)), ["a;b 99", "z 1"]);
    }

    #[test]
    fn reversed_stacks_are_cut_from_the_leaf() {
        let mut labels = Labels::default();
        let stacks = stacks(&mut labels, &[("a;b;leaf", 50), ("c;d;leaf", 45), ("e;other", 5)]);
        let drawing = Drawing { min_width_percent: 10.0, reversed: true };
        // Drawn leaf first: leaf (95) under b (50) and d (45) under a and
        // c; other (5) narrow.
        assert_eq!(sorted(lines(stacks, &labels, drawing)), ["leaf;b;a 50", "leaf;d;c 45", "other 5"]);
    }
}
