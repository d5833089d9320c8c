//! Brendan Gregg's folded format, root first: `comm;frame;...;leaf count`.
//! Kernel frames get the `_[k]` suffix, JIT frames `_[j]` and inlined frames
//! `_[i]`, which flame graph colour schemes know.
use std::{fmt::Write, mem::size_of};

use crate::{
    formats::pprof::budget::{ARC_HEADER, Built, SLOT, STACK_FRAME},
    profile::{
        Frame, FrameKind, Loaded, Profile, Unit,
        build::{INTERRUPT_WAKER, WAKER_SEPARATOR},
    },
};

/// The text of one frame as folded output shows it.
pub fn frame_label(frame: &Frame) -> String {
    // `;` separates frames and a newline ends the line: neither may appear in a name.
    let mut label: String = frame
        .name
        .chars()
        .map(|c| match c {
            ';' => ':',
            '\n' | '\r' => ' ',
            c => c,
        })
        .collect();
    match frame.kind {
        FrameKind::Kernel => label.push_str("_[k]"),
        FrameKind::Jit => label.push_str("_[j]"),
        FrameKind::User if frame.inlined => label.push_str("_[i]"),
        _ => {}
    }
    label
}

/// Markers flameprof adds (root or leaf frames that are not code).
pub const MARKERS: &[&str] = &[
    "[on-cpu]",
    "[off-cpu]",
    "[sleeping]",
    "[uninterruptible]",
    "[preempted]",
    "[other state]",
    WAKER_SEPARATOR,
    INTERRUPT_WAKER,
];

/// The inverse of [`frame_label`], as far as a label tells: the name, its
/// kind (`Task` is decided by the reader from the position) and whether it
/// is inlined.
pub fn parse_label(label: &str) -> (&str, FrameKind, bool) {
    if let Some(name) = label.strip_suffix("_[k]") {
        (name, FrameKind::Kernel, false)
    } else if let Some(name) = label.strip_suffix("_[j]") {
        (name, FrameKind::Jit, false)
    } else if let Some(name) = label.strip_suffix("_[i]") {
        (name, FrameKind::User, true)
    } else if MARKERS.contains(&label) {
        (label, FrameKind::Marker, false)
    } else {
        (label, FrameKind::User, false)
    }
}

/// The first header line: what the counts measure. The folded reader reads it
/// back; no header line ends in a digit, so tools that take `# ...` for a
/// stack still see no count and skip it.
pub fn unit_header(unit: Unit) -> String {
    match unit {
        Unit::Samples { frequency_hz } => format!("# flameprof profile: samples at {frequency_hz} Hz"),
        Unit::Microseconds => "# flameprof profile: microseconds".to_string(),
    }
}

/// The unit a header line names, if it is a flameprof unit line.
pub fn parse_unit_header(line: &str) -> Option<Unit> {
    let rest = line.strip_prefix("# flameprof profile: ")?.trim();
    if rest == "microseconds" {
        return Some(Unit::Microseconds);
    }
    let hz = rest.strip_prefix("samples at ")?.strip_suffix(" Hz")?;
    Some(Unit::Samples { frequency_hz: hz.parse().ok()? })
}

/// The folded file flameprof writes: `# ` header lines (unit, then health),
/// then the stacks. Not for inferno, which would take the header for stacks.
pub fn render_with_header(profile: &Profile, health: &[String]) -> String {
    let mut text = unit_header(profile.unit);
    text.push('\n');
    for line in health {
        let line = line.replace(['\n', '\r'], " ");
        let _ = writeln!(text, "# health: {line}");
    }
    text.push_str(&render(profile));
    text
}

/// One line per distinct stack, sorted, so equal profiles give equal files.
/// Stacks the profile keeps apart by what folded text does not show (the
/// source line of a frame) add up into one line.
pub fn render(profile: &Profile) -> String {
    let mut text = String::new();
    let mut lines: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (stack, weight) in &profile.stacks {
        let labels: Vec<String> = stack.iter().map(|frame| frame_label(frame)).collect();
        *lines.entry(labels.join(";")).or_default() += weight;
    }
    for (line, weight) in lines {
        let _ = writeln!(text, "{line} {weight}");
    }
    text
}

// ---- reader ----

/// The longest line the reader takes: a stack of thousands of frames is a
/// few hundred KB.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Reads folded text: flameprof's own (its header names the unit) or any
/// tool's `frame;frame;... COUNT` lines. What it builds is counted against
/// `pprof::budget::MAX_BUILT` before it is built.
pub fn parse_folded(text: &str) -> Result<Loaded, String> {
    let mut unit = None;
    let mut comments = Vec::new();
    let mut built = Built::default();
    let mut profile = Profile::new(Unit::Samples { frequency_hz: 0 });
    let mut any_stack = false;
    for (index, line) in text.lines().enumerate() {
        if line.len() > MAX_LINE_BYTES {
            return Err(format!(
                "line {} is longer than {} MiB, more than any stack: is this a folded file?",
                index + 1,
                MAX_LINE_BYTES >> 20
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            unit = unit.or_else(|| parse_unit_header(line));
            if let Some(health) = line.strip_prefix("# health: ") {
                built.keep(size_of::<String>() + health.len())?;
                comments.push(health.to_string());
            }
            continue;
        }
        let bad = || format!("line {}: expected `frame;frame;... COUNT`, found `{}`", index + 1, shorten(line));
        let (stack, count) = line.rsplit_once(' ').ok_or_else(bad)?;
        let count: u64 = count.parse().map_err(|_| bad())?;
        if stack.trim().is_empty() {
            return Err(bad());
        }
        any_stack = true;
        // The frames and the text they copy, counted before they are built;
        // kept only if the stack is a new one.
        let building: usize = stack.split(';').map(|label| STACK_FRAME + ARC_HEADER + label.len()).sum();
        built.check(building)?;
        let stacks = profile.stacks.len();
        profile.add(frames_from_labels(stack.split(';').map(|l| (l, None, None, None)), true), count);
        if profile.stacks.len() > stacks {
            built.keep(building + SLOT)?;
        }
    }
    if !any_stack && unit.is_none() {
        return Err("no stacks and no flameprof header: is this a folded file?".into());
    }
    profile.unit = unit.unwrap_or(Unit::Samples { frequency_hz: 0 });
    Ok(Loaded { profile, comments })
}

/// Builds a stack from folded labels (root first), each with its module,
/// file and line when known. With `first_is_task`, the first frame that is
/// not a marker is the process (flameprof's layout).
pub(super) fn frames_from_labels<'a>(
    labels: impl Iterator<Item = (&'a str, Option<&'a str>, Option<&'a str>, Option<u32>)>,
    first_is_task: bool,
) -> Vec<Frame> {
    let mut seen_task = !first_is_task;
    let mut stack: Vec<Frame> = labels
        .map(|(label, module, file, line)| {
            let (name, mut kind, inlined) = parse_label(label);
            if !seen_task && kind != FrameKind::Marker {
                seen_task = true;
                kind = FrameKind::Task;
            }
            Frame { name: name.into(), kind, module: module.map(Into::into), file: file.map(Into::into), line, inlined }
        })
        .collect();
    // After a `--` frame (`--wakers`), the last frame is the waker's name.
    if first_is_task
        && stack.iter().any(|f| f.kind == FrameKind::Marker && &*f.name == WAKER_SEPARATOR)
        && let Some(name) = stack.last_mut().filter(|f| f.kind == FrameKind::User && !f.inlined)
    {
        name.kind = FrameKind::Task;
    }
    stack
}

fn shorten(line: &str) -> String {
    match line.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, kind: FrameKind, inlined: bool) -> Frame {
        Frame { inlined, ..Frame::plain_for_test(name, kind) }
    }

    impl Frame {
        fn plain_for_test(name: &str, kind: FrameKind) -> Frame {
            Frame { name: name.into(), kind, module: None, file: None, line: None, inlined: false }
        }
    }

    #[test]
    fn marks_kernel_and_inlined_frames_and_sanitizes_separators() {
        let mut profile = Profile::new(Unit::Samples { frequency_hz: 99 });
        let stack = vec![
            Frame::task("app"),
            frame("main", FrameKind::User, false),
            frame("helper<[u8; 4]>", FrameKind::User, true),
            frame("LazyCompile:*fib /app.js:3", FrameKind::Jit, false),
            frame("do_syscall_64", FrameKind::Kernel, false),
        ];
        profile.add(stack.clone(), 3);
        profile.add(stack, 2);
        profile.add(vec![Frame::task("app"), frame("idle", FrameKind::User, false)], 1);
        assert_eq!(
            render(&profile),
            "app;idle 1\napp;main;helper<[u8: 4]>_[i];LazyCompile:*fib /app.js:3_[j];do_syscall_64_[k] 5\n"
        );
    }

    #[test]
    fn header_lines_are_comments_that_end_without_a_count() {
        let mut profile = Profile::new(Unit::Samples { frequency_hz: 999 });
        profile.add(vec![Frame::task("app"), frame("main", FrameKind::User, false)], 4);
        let text = render_with_header(&profile, &["2.0 s, 4 samples, 0 lost, 0.0% of frames unresolved".into()]);
        let header: Vec<&str> = text.lines().filter(|l| l.starts_with("# ")).collect();
        assert_eq!(header.len(), 2);
        assert!(header.iter().all(|l| !l.ends_with(|c: char| c.is_ascii_digit())));
        assert_eq!(parse_unit_header(header[0]), Some(profile.unit));
        assert_eq!(parse_unit_header(&unit_header(Unit::Microseconds)), Some(Unit::Microseconds));
        assert!(text.ends_with("app;main 4\n"));
    }

    /// A line past the bound is refused as soon as it is met, whatever follows.
    #[test]
    fn a_line_longer_than_the_bound_is_an_error() {
        let long = format!("main;{} 1\n", "a;".repeat(MAX_LINE_BYTES / 2));
        let error = parse_folded(&format!("main 1\n{long}not even a stack\n")).expect_err("refused");
        assert!(error.starts_with("line 2 is longer than 1 MiB"), "{error}");
        let at_bound = format!("{} 1\n", "a".repeat(MAX_LINE_BYTES - 2));
        assert_eq!(parse_folded(&at_bound).map(|l| l.profile.total()), Ok(1));
    }

    #[test]
    fn labels_parse_back() {
        assert_eq!(parse_label("do_syscall_64_[k]"), ("do_syscall_64", FrameKind::Kernel, false));
        assert_eq!(parse_label("helper_[i]"), ("helper", FrameKind::User, true));
        assert_eq!(parse_label("JS:*hot /app.js:1_[j]"), ("JS:*hot /app.js:1", FrameKind::Jit, false));
        assert_eq!(parse_label("[off-cpu]"), ("[off-cpu]", FrameKind::Marker, false));
        assert_eq!(parse_label("[unknown]"), ("[unknown]", FrameKind::User, false));
    }
}
