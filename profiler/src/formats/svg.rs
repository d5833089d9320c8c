//! Interactive SVG flame graphs (search, zoom) through inferno.
use inferno::flamegraph::{
    self, Direction,
    color::{BasicPalette, Color, MultiPalette, Palette as InfernoPalette, PaletteMap},
};

use crate::{
    formats::folded,
    profile::{FrameKind, Profile, build::WAKER_SEPARATOR},
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
    let (lines, waker_colours) = folded_with_wakers_marked(profile);
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
    inferno.reverse_stack_order = options.reverse;
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
    flamegraph::from_lines(&mut inferno, lines.iter().map(String::as_str), &mut svg)?;
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

/// The folded lines inferno draws, sorted (not joined into one text: that
/// would hold the graph's largest input twice). With `--wakers`, the frames of a waker
/// (after the `--` frame, which inferno paints grey) get a `_[w]` mark, as
/// flamegraph.pl's `chain` palette expects, so that a function in both
/// halves is two names; each such name gets a blue of its own (by a hash
/// of the name: the same picture every time) whatever the palette.
fn folded_with_wakers_marked(profile: &Profile) -> (Vec<String>, Vec<(String, Color)>) {
    let mut colours = std::collections::BTreeMap::new();
    let mut lines: Vec<String> = profile
        .stacks
        .iter()
        .map(|(stack, weight)| {
            let mut in_waker = false;
            let labels: Vec<String> = stack
                .iter()
                .map(|frame| {
                    let mut label = folded::frame_label(frame);
                    if in_waker {
                        label.push_str("_[w]");
                        colours.entry(label.clone()).or_insert_with(|| waker_colour(&label));
                    }
                    in_waker |= frame.kind == FrameKind::Marker && &*frame.name == WAKER_SEPARATOR;
                    label
                })
                .collect();
            format!("{} {weight}", labels.join(";"))
        })
        .collect();
    lines.sort();
    (lines, colours.into_iter().collect())
}

/// A blue, lighter or darker by the name's FNV-1a hash.
fn waker_colour(label: &str) -> Color {
    let hash = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let shade = (hash % 56) as u8;
    Color { r: 70 + shade, g: 100 + shade, b: 255 - shade / 2 }
}
