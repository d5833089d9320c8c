//! Brendan Gregg's folded format, root first: `comm;frame;...;leaf count`.
//! Kernel frames get the `_[k]` suffix and inlined frames `_[i]`, which flame
//! graph colour schemes know.
use std::fmt::Write;

use crate::profile::{Frame, FrameKind, Profile};

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
        FrameKind::User if frame.inlined => label.push_str("_[i]"),
        _ => {}
    }
    label
}

/// One line per distinct stack, sorted, so equal profiles give equal files.
pub fn render(profile: &Profile) -> String {
    let mut text = String::new();
    let mut lines: Vec<String> = profile
        .stacks
        .iter()
        .map(|(stack, weight)| {
            let labels: Vec<String> = stack.iter().map(frame_label).collect();
            format!("{} {weight}", labels.join(";"))
        })
        .collect();
    lines.sort();
    for line in lines {
        let _ = writeln!(text, "{line}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Unit;

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
            frame("do_syscall_64", FrameKind::Kernel, false),
        ];
        profile.add(stack.clone(), 3);
        profile.add(stack, 2);
        profile.add(vec![Frame::task("app"), frame("idle", FrameKind::User, false)], 1);
        assert_eq!(
            render(&profile),
            "app;idle 1\napp;main;helper<[u8: 4]>_[i];do_syscall_64_[k] 5\n"
        );
    }
}
