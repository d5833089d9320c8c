//! Interactive SVG flame graphs (search, zoom) through inferno.
use std::{collections::HashMap, sync::Arc};

use inferno::flamegraph::{
    self, Direction,
    color::{BasicPalette, Color, MultiPalette, Palette as InfernoPalette, PaletteMap},
};

use crate::{
    formats::{
        drawn::{self, Drawing, LabelId, LabelStacks, Labels},
        folded,
    },
    profile::{Frame, FrameKind, Profile, build::WAKER_SEPARATOR},
};

/// Colour palettes offered (inferno's basic palettes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Palette {
    /// Kernel frames orange, inlined aqua, user code red/green (inferno's `java`).
    Kernel,
    Hot,
    Mem,
    Io,
    Red,
    Green,
    Blue,
    Aqua,
    Yellow,
    Purple,
    Orange,
}

/// What users set on the SVG; each field's default lives on the CLI flag.
#[derive(Debug, Clone)]
pub struct SvgOptions {
    pub title: String,
    /// Image width in pixels.
    pub width: usize,
    /// Frames narrower than this (pixels) are left out.
    pub min_width: f64,
    /// Icicle graph (roots at the top).
    pub inverted: bool,
    /// Leaf functions as roots (inferno's reverse stack order).
    pub reverse: bool,
    pub palette: Palette,
}

/// `subtitle` carries what the reader needs to trust the graph (duration,
/// samples, losses).
pub fn render(profile: &Profile, options: &SvgOptions, subtitle: &str) -> std::io::Result<Vec<u8>> {
    render_cut(profile, options, subtitle, options.min_width)
}

/// As `render`, from stacks cut below their first frame narrower than
/// `cut_percent` of the width (`options.min_width`: what inferno would not
/// draw anyway; 0: the whole stacks).
fn render_cut(profile: &Profile, options: &SvgOptions, subtitle: &str, cut_percent: f64) -> std::io::Result<Vec<u8>> {
    let (stacks, labels, waker_colours) = labels_with_wakers_marked(profile);
    let drawing = Drawing { min_width_percent: cut_percent, reversed: options.reverse };
    let lines = drawn::lines(stacks, &labels, drawing);
    drop(labels);
    let mut waker_palette = PaletteMap::default();
    for (label, colour) in &waker_colours {
        waker_palette.insert(label, *colour);
    }
    let mut inferno = flamegraph::Options::default();
    inferno.title = options.title.clone();
    inferno.subtitle = Some(subtitle.to_string());
    inferno.count_name = profile.unit.name().to_string();
    inferno.image_width = Some(options.width);
    inferno.min_width = options.min_width;
    // The lines come reversed (with --reverse) and in the order inferno
    // would sort them into, and must stay in it: cut, they may not look
    // sorted (`drawn`). inferno takes lines as they come, unchecked, in
    // flame-chart mode only, where it reverses them first: they go last
    // first. Its other effects are on none of these options.
    inferno.flame_chart = true;
    inferno.direction = if options.inverted { Direction::Inverted } else { Direction::Straight };
    inferno.colors = palette(options.palette);
    // Same input, same picture: colours from names, not from a random source.
    inferno.hash = true;
    inferno.deterministic = true;
    if !waker_colours.is_empty() {
        inferno.palette_map = Some(&mut waker_palette);
    }
    let mut svg = Vec::new();
    if lines.iter().all(|line| line.starts_with('#')) {
        // inferno refuses input without stacks; an empty graph still tells the truth.
        empty_svg(&options.title, subtitle, &mut svg);
        return Ok(svg);
    }
    flamegraph::from_lines(&mut inferno, lines.iter().rev().map(String::as_str), &mut svg)?;
    Ok(svg)
}

fn empty_svg(title: &str, subtitle: &str, out: &mut Vec<u8>) {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    out.clear();
    out.extend_from_slice(
        format!(
            "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"1200\" height=\"80\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"600\" y=\"24\" text-anchor=\"middle\">{}</text><text x=\"600\" y=\"48\" text-anchor=\"middle\">{} (no samples recorded)</text></svg>\n",
            escape(title),
            escape(subtitle)
        )
        .as_bytes(),
    );
}

fn palette(palette: Palette) -> InfernoPalette {
    let basic = |p| InfernoPalette::Basic(p);
    match palette {
        Palette::Kernel => InfernoPalette::Multi(MultiPalette::Java),
        Palette::Hot => basic(BasicPalette::Hot),
        Palette::Mem => basic(BasicPalette::Mem),
        Palette::Io => basic(BasicPalette::Io),
        Palette::Red => basic(BasicPalette::Red),
        Palette::Green => basic(BasicPalette::Green),
        Palette::Blue => basic(BasicPalette::Blue),
        Palette::Aqua => basic(BasicPalette::Aqua),
        Palette::Yellow => basic(BasicPalette::Yellow),
        Palette::Purple => basic(BasicPalette::Purple),
        Palette::Orange => basic(BasicPalette::Orange),
    }
}

/// The stacks inferno draws, as labels (merged where the labels are the
/// same). With `--wakers`, the frames of a waker (after the `--` frame,
/// which inferno paints grey) get a `_[w]` mark, as flamegraph.pl's `chain`
/// palette expects, so that a function in both halves is two names; each
/// such name gets a blue of its own (by a hash of the name: the same
/// picture every time) whatever the palette.
fn labels_with_wakers_marked(profile: &Profile) -> (LabelStacks, Labels, Vec<(String, Color)>) {
    let mut colours = std::collections::BTreeMap::new();
    let mut labels = Labels::default();
    // A frame's label once per frame (stacks share their frames).
    let mut label_of: HashMap<(*const Frame, bool), LabelId> = HashMap::new();
    let mut stacks = LabelStacks::new();
    for (stack, weight) in &profile.stacks {
        let mut in_waker = false;
        let ids = stack
            .iter()
            .map(|frame| {
                let id = *label_of.entry((Arc::as_ptr(frame), in_waker)).or_insert_with(|| {
                    let mut label = folded::frame_label(frame);
                    if in_waker {
                        label.push_str("_[w]");
                        colours.entry(label.clone()).or_insert_with(|| waker_colour(&label));
                    }
                    labels.id(label)
                });
                in_waker |= frame.kind == FrameKind::Marker && &*frame.name == WAKER_SEPARATOR;
                id
            })
            .collect();
        *stacks.entry(ids).or_default() += weight;
    }
    (stacks, labels, colours.into_iter().collect())
}

/// A blue, lighter or darker by the name's FNV-1a hash.
fn waker_colour(label: &str) -> Color {
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let shade = (hash % 56) as u8;
    Color { r: 70 + shade, g: 100 + shade, b: 255 - shade / 2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{Frame, Unit};

    /// A system-wide profile in small: a few wide trunks, thousands of
    /// thin stacks above them, some with a waker after `--`.
    fn many_thin_stacks() -> Profile {
        let mut profile = Profile::new(Unit::Samples { frequency_hz: 999 });
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        for _ in 0..3000 {
            let mut stack = vec![Frame::task(&format!("proc-{}", next(3)))];
            let depth = 2 + next(25);
            for level in 0..depth {
                // Few names near the root, more further up: shared trunks.
                let name = format!("f{level}_{}", next(2 + level));
                let kind = if next(5) == 0 { FrameKind::Kernel } else { FrameKind::User };
                stack.push(Frame { kind, ..Frame::task(&name) });
            }
            if next(10) == 0 {
                stack.push(Frame::marker(WAKER_SEPARATOR));
                stack.push(Frame { kind: FrameKind::Kernel, ..Frame::task(&format!("wake_{}", next(4))) });
                stack.push(Frame::task("waker"));
            }
            let weight = if next(50) == 0 { 200 + next(500) } else { 1 + next(4) };
            profile.add(stack, weight);
        }
        profile
    }

    #[test]
    fn stacks_cut_below_narrow_frames_draw_the_same_graph() {
        let profile = many_thin_stacks();
        for (reverse, inverted) in [(false, false), (true, false), (false, true)] {
            let options = SvgOptions {
                title: "t".into(),
                width: 1200,
                min_width: 0.1,
                inverted,
                reverse,
                palette: Palette::Kernel,
            };
            let whole = render_cut(&profile, &options, "s", 0.0).unwrap();
            let cut = render_cut(&profile, &options, "s", options.min_width).unwrap();
            assert!(whole == cut, "reverse {reverse}, inverted {inverted}: the graphs differ");
            // Not a test of nothing: the cut left most lines out.
            let (stacks, labels, _) = labels_with_wakers_marked(&profile);
            let drawing = |min_width_percent| Drawing { min_width_percent, reversed: reverse };
            let all = drawn::lines(stacks.clone(), &labels, drawing(0.0)).len();
            let drawn = drawn::lines(stacks, &labels, drawing(options.min_width)).len();
            assert!(drawn * 3 < all, "{drawn} of {all} lines drawn");
        }
    }
}
