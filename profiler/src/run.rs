//! A whole run: check, record, symbolize, write, summarize.
use std::collections::HashMap;

use symbolize::Symbolizer;

use crate::{
    aggregate::{self, FrameStats, Shape},
    cli::Cli,
    error::{Error, Result},
    output::{self, Destination},
    privileges,
    profile::Profile,
    session::{self, Mode},
    signals, summary,
};

/// Returns the process exit code: the command's with `-- CMD`, else 0.
pub fn run(cli: Cli) -> Result<i32> {
    let settings = cli.into_settings()?;
    let (outputs, summary_json) = (&settings.outputs, &settings.summary_json);
    let max_unresolved = settings.max_unresolved_percent;
    for (destination, format) in outputs {
        output::check_destination(destination, *format)?;
    }
    if let Some(destination) = summary_json {
        output::check_destination(destination, output::Format::Folded)?;
    }
    privileges::check()?;
    signals::install();

    let mut symbolizer = Symbolizer::new();
    let mut recording = session::record(&settings, &mut symbolizer)?;

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
    let context = output::Context {
        svg: &settings.svg,
        health: health.lines(&recording, settings.mode),
        time_kind: if settings.mode == Mode::Wall { "wall" } else { "off-cpu" },
        modules: modules(&recording, &symbolizer),
        duration_ns: recording.elapsed.as_nanos() as u64,
        start_unix_ns: start_unix_ns(recording.elapsed),
    };
    // Every output is written even when the command failed: its profile is
    // what explains the failure.
    let mut written = Vec::new();
    for (destination, format) in outputs {
        let bytes = output::render(&profile, *format, &context)
            .map_err(|e| Error::Io(format!("cannot render the {} output: {e}", format.name())))?;
        output::write_atomically(destination, &bytes)?;
        let path = match destination {
            Destination::File(path) => path.display().to_string(),
            Destination::Stdout => "-".to_string(),
        };
        written.push((path, format.name()));
    }
    let post_processing = post_processing.elapsed();
    recording.wait_for_command();
    let unresolved_percent = 100.0 * health.unresolved_share();
    let unresolved_failure = max_unresolved.filter(|&max| unresolved_percent > max);
    if let Some(destination) = summary_json {
        let json = summary::json(&recording, &health, settings.mode, &written, max_unresolved.map(|max| (max, unresolved_failure.is_some())));
        let mut bytes = serde_json::to_vec_pretty(&json).expect("a JSON value always serializes");
        bytes.push(b'\n');
        output::write_atomically(destination, &bytes)?;
    }
    eprint!("{}", summary::render(&recording, &health, settings.mode));
    eprintln!("  post-processing (symbolize, render, write): {:.3} s", post_processing.as_secs_f64());
    if let Some(max) = unresolved_failure {
        return Err(Error::Io(format!(
            "{unresolved_percent:.1}% of frames are unresolved, above --max-unresolved {max} (outputs written anyway): install debug symbols or build with frame pointers"
        )));
    }
    Ok(recording.exit_status.unwrap_or(0))
}

/// Module basename → path, build-id and range, from the snapshots of the
/// recorded processes (the first process mapping a module wins).
fn modules(recording: &session::Recording, symbolizer: &Symbolizer) -> HashMap<String, output::ModuleInfo> {
    let mut pids: Vec<u32> = recording.on_cpu.iter().chain(&recording.off_cpu).map(|(key, _)| key.tgid).collect();
    pids.sort_unstable();
    pids.dedup();
    let mut modules = HashMap::new();
    for pid in pids {
        for mapping in symbolizer.mappings(pid) {
            let name = mapping.path.rsplit('/').next().unwrap_or(&mapping.path).to_string();
            modules.entry(name).or_insert_with(|| output::ModuleInfo {
                path: mapping.path.clone(),
                build_id: mapping.build_id.clone(),
                start: mapping.start,
                end: mapping.end,
                file_offset: mapping.file_offset,
            });
        }
    }
    modules
}

/// When the recording started, in Unix nanoseconds.
fn start_unix_ns(elapsed: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(elapsed).as_nanos() as u64
}

fn ns_to_us(ns: u64) -> u64 {
    ns / 1000
}
