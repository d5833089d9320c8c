//! Interactive SVG flame graphs (search, zoom) through inferno.
use inferno::flamegraph::{
    self, Direction,
    color::{BasicPalette, MultiPalette, Palette as InfernoPalette},
};

use crate::{formats::folded, profile::Profile};

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
    let text = folded::render(profile);
    let mut svg = Vec::new();
    if text.lines().all(|line| line.starts_with('#')) {
        // inferno refuses input without stacks; an empty graph still tells the truth.
        empty_svg(&options.title, subtitle, &mut svg);
        return Ok(svg);
    }
    flamegraph::from_lines(&mut inferno, text.lines(), &mut svg)?;
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
