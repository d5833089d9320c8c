//! flameprof: sample kernel and user stacks with BPF and write a flame graph.
mod aggregate;
mod analyze;
mod bpf;
mod cli;
mod error;
mod output;
mod privileges;
mod profile;
mod run;
mod session;
mod signals;
mod snapshots;
mod summary;
mod target;
mod unwound;
mod waiting;

use clap::Parser;

fn main() {
    let mut cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => exit_on_parse_error(error),
    };
    if let Some(analysis) = cli.analysis.take() {
        std::process::exit(analyze::run(analysis));
    }
    let code = match run::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flameprof: error: {error}");
            // 2 for usage errors like clap's own; 1 for everything else.
            if matches!(error, error::Error::Usage(_)) { 2 } else { 1 }
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
    std::process::exit(2);
}
