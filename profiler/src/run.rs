//! A whole recording run, stage by stage: check, record, symbolize into a
//! profile, write the outputs, summarize.
use symbolize::Symbolizer;

use crate::{
    error::{Error, Result},
    formats::{self, Destination, Format},
    profile::{Profile, build},
    recording::{
        self, Access,
        privileges::{self, Privilege},
    },
    settings::{Mode, OutputSettings, RunSettings},
    signals,
    summary::{self, RunSummary, WrittenOutput},
};

/// Returns the process exit code: the command's with `-- CMD`, else 0.
pub fn run(settings: RunSettings) -> Result<i32> {
    let RunSettings { record, output } = settings;
    for (destination, format) in &output.outputs {
        formats::check_destination(destination, *format)?;
    }
    if let Some(destination) = &output.summary_json {
        formats::check_destination(destination, Format::Folded)?;
    }
    let privilege = privileges::check()?;
    let access = match privilege {
        Privilege::Capabilities if !record.other_users => Access::OwnProcesses,
        _ => Access::AllProcesses,
    };
    signals::install();

    let mut symbolizer = Symbolizer::new();
    symbolizer.set_debuginfod(&record.debuginfod);
    let mut recording = recording::record(&record, access, &mut symbolizer)?;

    let post_processing = std::time::Instant::now();
    let (profile, frames) =
        build::from_recording(&mut recording, record.mode, record.frequency, output.per_thread, &mut symbolizer);
    let mut summary = RunSummary::new(&recording, frames, &symbolizer, record.mode);
    let context = formats::Context {
        svg: &output.svg,
        health: summary.health_lines(),
        time_kind: if record.mode == Mode::Wall { "wall" } else { "off-cpu" },
        modules: build::modules(&recording, &symbolizer),
        duration_ns: recording.elapsed.as_nanos() as u64,
        start_unix_ns: start_unix_ns(recording.elapsed),
    };
    // Every output is written even when the command failed: its profile is
    // what explains the failure. A write error still waits for the command.
    // Symbolizing is over: what it keeps parsed goes before the outputs are
    // rendered, the largest step.
    symbolizer.release_parsed_files();
    let written = write_outputs(&profile, &output, &context);
    let post_processing = post_processing.elapsed();
    recording.wait_for_command();
    summary.outputs = written?;
    summary.note_peak_memory();
    let exit = recording.command_exit;
    summary.command_exit_status = exit.map(|exit| exit.status);
    summary.command_cpu_seconds = exit.map(|exit| exit.cpu_time.as_secs_f64());
    let too_many_unresolved = summary.judge_unresolved(output.max_unresolved_percent);
    if let Some(destination) = &output.summary_json {
        // Through a Value: its keys come out sorted, as they always have.
        let value = serde_json::to_value(&summary).expect("the summary always serializes");
        let mut bytes = serde_json::to_vec_pretty(&value).expect("a JSON value always serializes");
        bytes.push(b'\n');
        formats::write_atomically(destination, &bytes)?;
    }
    eprint!("{}", summary::render_text(&summary));
    eprintln!(
        "  post-processing (symbolize, render, write): {:.3} s; symbolizing while recording: {:.3} s; peak memory: {}",
        post_processing.as_secs_f64(),
        summary.symbolization.seconds_while_recording,
        summary.peak_memory_mib.map_or("unknown".to_string(), |mib| format!("{mib:.0} MiB")),
    );
    if too_many_unresolved && let Some(max) = output.max_unresolved_percent {
        return Err(Error::TooManyUnresolved { percent: summary.frames.unresolved_percent, max });
    }
    Ok(exit.map_or(0, |exit| exit.status))
}

/// Renders and writes each output; returns what was written where.
fn write_outputs(profile: &Profile, output: &OutputSettings, context: &formats::Context) -> Result<Vec<WrittenOutput>> {
    let mut written = Vec::new();
    for (destination, format) in &output.outputs {
        let bytes = formats::render(profile, *format, context)
            .map_err(|source| Error::Render { format: format.name(), source })?;
        formats::write_atomically(destination, &bytes)?;
        let path = match destination {
            Destination::File(path) => path.display().to_string(),
            Destination::Stdout => "-".to_string(),
        };
        written.push(WrittenOutput { path, format: format.name() });
    }
    Ok(written)
}

/// When the recording started, in Unix nanoseconds.
fn start_unix_ns(elapsed: std::time::Duration) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    now.saturating_sub(elapsed).as_nanos() as u64
}
