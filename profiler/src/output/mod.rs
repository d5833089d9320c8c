//! Writing a profile: choosing the format, rendering it, and writing it so a
//! reader never sees half a file.
pub mod folded;
pub mod svg;
mod write;

use std::path::Path;

pub use svg::SvgOptions;
pub use write::{check_destination, write_atomically, Destination};

use crate::profile::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Svg,
    Folded,
}

impl Format {
    /// The format an output path asks for by its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".svg") {
            Some(Format::Svg)
        } else if name.ends_with(".folded") || name.ends_with(".txt") {
            Some(Format::Folded)
        } else {
            None
        }
    }
}

/// Renders `profile` in `format`; `health` is the one-line trust summary
/// shown in the SVG subtitle and as a comment-free folded file.
pub fn render(
    profile: &Profile,
    format: Format,
    svg_options: &SvgOptions,
    health: &str,
) -> std::io::Result<Vec<u8>> {
    match format {
        Format::Svg => svg::render(profile, svg_options, health),
        Format::Folded => Ok(folded::render(profile).into_bytes()),
    }
}
