//! flameprof: sample kernel and user stacks with BPF and write a flame graph.
//! The program is this library, so that `fuzz/` can reach its parsers
//! through [`fuzzing`]; `main.rs` only calls [`main`].
//!
//! The stages, in the order data flows: `cli` (the command line, turned into
//! `settings`), `recording` (BPF programs, targets, off-CPU accounting),
//! `profile` (symbolized stacks), `formats` (writers and readers of each file
//! format), `summary` (the run's figures, as text and JSON) and `analysis`
//! (`diff` and `report` of recorded profiles).
mod analysis;
mod cli;
mod doctor;
mod error;
mod formats;
mod profile;
mod recording;
mod run;
mod settings;
mod signals;
mod summary;

pub mod fuzzing;

use clap::Parser;

use crate::settings::Command;

/// The whole program: the command line, the run, the exit.
pub fn main() -> ! {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => exit_on_parse_error(error),
    };
    let result = cli.into_command().and_then(|command| match command {
        Command::Analyze(analysis) => analysis::run(analysis),
        Command::Doctor(settings) => doctor::run(settings),
        Command::Record(settings) => run::run(settings),
    });
    let code = match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flameprof: error: {}", error::one_line(&error));
            error.exit_code()
        }
    };
    std::process::exit(code);
}

/// Help and version print as clap formats them; a usage error becomes one
/// line, like every other flameprof error.
fn exit_on_parse_error(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let message = first.trim_start_matches("error: ");
    eprintln!("flameprof: error: {message}; see `flameprof --help`");
    std::process::exit(error::EXIT_USAGE);
}
