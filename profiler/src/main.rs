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

use clap::Parser;

fn main() {
    let mut cli = cli::Cli::parse();
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
