//! The CI commands: `flameprof diff` and `flameprof report`, reading profiles
//! back from folded or pprof files.
pub mod diff;
pub mod read;
pub mod report;
pub mod shares;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::{
    cli::{Analysis, DiffArgs, ReportArgs, TableArgs},
    output::{Destination, write_atomically},
};

/// How a report or diff is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Markdown,
    Json,
}

impl Style {
    fn of(args: &TableArgs) -> Style {
        if args.json {
            Style::Json
        } else if args.markdown {
            Style::Markdown
        } else {
            Style::Plain
        }
    }
}

/// Exit status when the gate finds a regression.
pub const EXIT_REGRESSION: i32 = 1;
/// Exit status for unreadable inputs and bad arguments.
pub const EXIT_ERROR: i32 = 2;

/// Runs a subcommand; returns the process exit status. Errors are printed
/// as one line.
pub fn run(analysis: Analysis) -> i32 {
    let result = match analysis {
        Analysis::Diff(args) => run_diff(args),
        Analysis::Report(args) => run_report(args),
    };
    result.unwrap_or_else(|message| {
        eprintln!("flameprof: error: {message}");
        EXIT_ERROR
    })
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn run_report(args: ReportArgs) -> Result<i32, String> {
    let loaded = read::load(&args.file)?;
    print!("{}", report::render(&display(&args.file), &loaded, args.table.top, Style::of(&args.table)));
    Ok(0)
}

fn run_diff(args: DiffArgs) -> Result<i32, String> {
    if let Some(points) = args.fail_above
        && !(points.is_finite() && points >= 0.0)
    {
        return Err(format!("--fail-above {points} is not a number of percentage points (0 or more)"));
    }
    let base = read::load(&args.base)?;
    let new = read::load(&args.new)?;
    let (base_shares, new_shares) = (shares::Shares::of(&base.profile), shares::Shares::of(&new.profile));
    if base_shares.unit.name() != new_shares.unit.name() {
        return Err(format!(
            "{} counts {} but {} counts {}: compare profiles of the same kind",
            display(&args.base),
            base_shares.unit.name(),
            display(&args.new),
            new_shares.unit.name()
        ));
    }
    let changes = diff::changes(&base_shares, &new_shares);
    if let Some(path) = &args.output {
        let title = format!("Differential Flame Graph: {} → {}", display(&args.base), display(&args.new));
        let svg = diff::svg(&base.profile, &new.profile, &title)
            .map_err(|e| format!("cannot draw the differential flame graph: {e}"))?;
        write_atomically(&Destination::File(path.clone()), &svg).map_err(|e| e.to_string())?;
    }
    let style = Style::of(&args.table);
    print!(
        "{}",
        diff::render(
            &display(&args.base),
            &display(&args.new),
            &base_shares,
            &new_shares,
            &changes,
            args.table.top,
            style
        )
    );
    let Some(points) = args.fail_above else { return Ok(0) };
    let regressions = diff::regressions(&changes, points);
    for change in &regressions {
        eprintln!("{}", diff::regression_line(change, points));
    }
    if regressions.is_empty() {
        eprintln!("flameprof: gate passed: no function's total share grew by more than {points} points");
        Ok(0)
    } else {
        Ok(EXIT_REGRESSION)
    }
}
