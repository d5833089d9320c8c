//! The file formats a profile is written in and read back from, one module
//! per format holding its writer and (where flameprof reads it) its reader,
//! and where outputs go (`destination`).
mod destination;
mod drawn;
pub mod folded;
pub mod pprof;
mod read;
pub mod speedscope;
pub mod svg;

use std::{collections::HashMap, path::Path};

pub use destination::{Destination, check_destination, write_atomically};
pub use read::{load, parse};
pub use svg::{Palette, SvgOptions};

use crate::profile::Profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Interactive flame graph (.svg).
    Svg,
    /// Folded stacks, one line per stack (.folded, .txt).
    Folded,
    /// Gzipped pprof protobuf (.pb.gz), for go tool pprof, Pyroscope, Parca.
    Pprof,
    /// speedscope JSON (.speedscope.json).
    Speedscope,
}

impl Format {
    /// The format an output path asks for by its extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let ends = |suffixes: &[&str]| suffixes.iter().any(|s| name.ends_with(s));
        if ends(&[".svg"]) {
            Some(Format::Svg)
        } else if ends(&[".folded", ".txt"]) {
            Some(Format::Folded)
        } else if ends(&[".pb.gz", ".pprof", ".pb"]) {
            Some(Format::Pprof)
        } else if ends(&[".speedscope.json", ".speedscope"]) {
            Some(Format::Speedscope)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Folded => "folded",
            Format::Pprof => "pprof",
            Format::Speedscope => "speedscope",
        }
    }
}

/// An executable file a profile's frames come from (pprof's mapping table).
#[derive(Debug, Clone, Default)]
pub struct ModuleInfo {
    /// Full path as mapped.
    pub path: String,
    pub build_id: Option<Vec<u8>>,
    pub start: u64,
    pub end: u64,
    pub file_offset: u64,
}

/// Everything besides the stacks that outputs show.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub svg: &'a SvgOptions,
    /// How far to trust the profile: the first line is the SVG subtitle; all
    /// lines go into the folded header, pprof comments and speedscope name.
    pub health: Vec<String>,
    /// What a microsecond profile measures: "off-cpu" or "wall".
    pub time_kind: &'static str,
    /// By module basename (`Frame::module`).
    pub modules: HashMap<String, ModuleInfo>,
    /// Recording length and start (Unix time), for pprof.
    pub duration_ns: u64,
    pub start_unix_ns: u64,
}

impl<'a> Context<'a> {
    /// A context with only the SVG options and a health line.
    #[cfg(test)]
    pub fn minimal(svg: &'a SvgOptions, health: &str) -> Self {
        Context {
            svg,
            health: vec![health.to_string()],
            time_kind: "off-cpu",
            modules: HashMap::new(),
            duration_ns: 0,
            start_unix_ns: 0,
        }
    }

    fn subtitle(&self) -> &str {
        self.health.first().map(String::as_str).unwrap_or("")
    }
}

/// Renders `profile` in `format`.
pub fn render(profile: &Profile, format: Format, context: &Context) -> std::io::Result<Vec<u8>> {
    match format {
        Format::Svg => svg::render(profile, context.svg, context.subtitle()),
        Format::Folded => Ok(folded::render_with_header(profile, &context.health).into_bytes()),
        Format::Pprof => pprof::render(profile, context),
        Format::Speedscope => Ok(speedscope::render(profile, context)),
    }
}
