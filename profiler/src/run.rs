//! A whole run: check, record, symbolize, write, summarize.
use std::collections::{HashMap, HashSet};

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
    let (profile, frames) = build_profile(&settings, &recording, &mut symbolizer);
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
    // what explains the failure. A write error still waits for the command.
    let written = write_outputs(&profile, outputs, &context);
    let post_processing = post_processing.elapsed();
    recording.wait_for_command();
    let written = written?;
    let unresolved_percent = 100.0 * health.unresolved_share();
    let unresolved_failure = max_unresolved.filter(|&max| unresolved_percent > max);
    if let Some(destination) = summary_json {
        let json = summary::json(
            &recording,
            &health,
            settings.mode,
            &written,
            max_unresolved.map(|max| (max, unresolved_failure.is_some())),
        );
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
    Ok(recording.command_exit.map_or(0, |exit| exit.status))
}

/// Symbolizes the recording into the profile its mode asks for.
fn build_profile(
    settings: &session::Settings,
    recording: &session::Recording,
    symbolizer: &mut Symbolizer,
) -> (Profile, FrameStats) {
    let mut profile = Profile::new(aggregate::unit_for(settings.mode, settings.frequency));
    let mut frames = FrameStats::default();
    let names = &recording.process_names;
    // One naming rule for the whole graph: `name-PID` roots once several
    // processes appear anywhere in it.
    let processes: HashSet<u32> = recording.on_cpu.iter().chain(&recording.off_cpu).map(|(key, _)| key.tgid).collect();
    let shape =
        |root_marker| Shape { per_thread: settings.per_thread, root_marker, several_processes: processes.len() > 1 };
    match settings.mode {
        Mode::OnCpu => {
            frames.add(aggregate::build(&mut profile, &recording.on_cpu, symbolizer, names, &shape(None), |n| n));
        }
        Mode::OffCpu => {
            frames.add(aggregate::build(&mut profile, &recording.off_cpu, symbolizer, names, &shape(None), ns_to_us));
        }
        Mode::Wall => {
            // One unit for both halves: a sample at F Hz stands for 1/F s on CPU.
            let frequency = settings.frequency.max(1);
            let on_cpu_us = |samples: u64| samples * 1_000_000 / frequency;
            frames.add(aggregate::build(
                &mut profile,
                &recording.on_cpu,
                symbolizer,
                names,
                &shape(Some("[on-cpu]")),
                on_cpu_us,
            ));
            frames.add(aggregate::build(
                &mut profile,
                &recording.off_cpu,
                symbolizer,
                names,
                &shape(Some("[off-cpu]")),
                ns_to_us,
            ));
        }
    }
    frames.processes = processes.len() as u64;
    (profile, frames)
}

/// Renders and writes each output; returns (path, format) of each.
fn write_outputs(
    profile: &Profile,
    outputs: &[(Destination, output::Format)],
    context: &output::Context,
) -> Result<Vec<(String, &'static str)>> {
    let mut written = Vec::new();
    for (destination, format) in outputs {
        let bytes = output::render(profile, *format, context)
            .map_err(|e| Error::Io(format!("cannot render the {} output: {e}", format.name())))?;
        output::write_atomically(destination, &bytes)?;
        let path = match destination {
            Destination::File(path) => path.display().to_string(),
            Destination::Stdout => "-".to_string(),
        };
        written.push((path, format.name()));
    }
    Ok(written)
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
