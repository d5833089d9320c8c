//! A whole run: check, record, symbolize, write, summarize.
use symbolize::Symbolizer;

use crate::{
    aggregate::{self, FrameStats, Shape},
    cli::Cli,
    error::Result,
    output::{self, Destination},
    privileges,
    profile::Profile,
    session::{self, Mode},
    signals, summary,
};

/// Returns the process exit code: the command's with `-- CMD`, else 0.
pub fn run(cli: Cli) -> Result<i32> {
    let settings = cli.into_settings()?;
    let destination = match &settings.output {
        Some(path) => Destination::File(path.clone()),
        None => Destination::Stdout,
    };
    output::check_destination(&destination, settings.format)?;
    privileges::check()?;
    signals::install();

    let mut symbolizer = Symbolizer::new();
    let recording = session::record(&settings, &mut symbolizer)?;

    let post_processing = std::time::Instant::now();
    let mut profile = Profile::new(aggregate::unit_for(settings.mode, settings.frequency));
    let mut frames = FrameStats::default();
    let per_thread = settings.per_thread;
    let names = &recording.process_names;
    match settings.mode {
        Mode::OnCpu => {
            let shape = Shape { per_thread, root_marker: None };
            frames.add(aggregate::build(&mut profile, &recording.on_cpu, &mut symbolizer, names, &shape, |n| n));
        }
        Mode::OffCpu => {
            let shape = Shape { per_thread, root_marker: None };
            frames.add(aggregate::build(&mut profile, &recording.off_cpu, &mut symbolizer, names, &shape, ns_to_us));
        }
        Mode::Wall => {
            // One unit for both halves: a sample at F Hz stands for 1/F s on CPU.
            let us_per_sample = 1_000_000 / settings.frequency.max(1);
            let on = Shape { per_thread, root_marker: Some("[on-cpu]") };
            frames.add(aggregate::build(&mut profile, &recording.on_cpu, &mut symbolizer, names, &on, |n| n * us_per_sample));
            let off = Shape { per_thread, root_marker: Some("[off-cpu]") };
            frames.add(aggregate::build(&mut profile, &recording.off_cpu, &mut symbolizer, names, &off, ns_to_us));
        }
    }

    let health = summary::Health::new(&recording, frames);
    let bytes = output::render(&profile, settings.format, &settings.svg, &health.one_line(&recording, settings.mode))
        .map_err(|e| crate::error::Error::Io(format!("cannot render the flame graph: {e}")))?;
    output::write_atomically(&destination, &bytes)?;
    eprint!("{}", summary::render(&recording, &health, settings.mode));
    eprintln!("  post-processing (symbolize, render, write): {:.3} s", post_processing.elapsed().as_secs_f64());
    Ok(recording.exit_status.unwrap_or(0))
}

fn ns_to_us(ns: u64) -> u64 {
    ns / 1000
}
