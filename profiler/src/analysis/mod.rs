//! The CI commands: `flameprof diff` and `flameprof report`, reading profiles
//! back from folded or pprof files.
pub mod diff;
pub mod report;
pub mod shares;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::{
    error::{Error, Result},
    formats::{self, Destination, write_atomically},
    settings::{Analysis, DiffSettings, ReportSettings},
};

/// Exit status when the gate finds a regression.
pub const EXIT_REGRESSION: i32 = 1;

/// Runs a subcommand; returns the process exit status (0, or
/// [`EXIT_REGRESSION`]).
pub fn run(analysis: Analysis) -> Result<i32> {
    match analysis {
        Analysis::Diff(settings) => run_diff(settings),
        Analysis::Report(settings) => run_report(settings),
    }
}

fn display(path: &Path) -> String {
    path.display().to_string()
}

fn run_report(args: ReportSettings) -> Result<i32> {
    let loaded = formats::load(&args.file)?;
    print!("{}", report::render(&display(&args.file), &loaded, args.table.top, args.table.style));
    Ok(0)
}

fn run_diff(args: DiffSettings) -> Result<i32> {
    if let Some(points) = args.fail_above
        && !(points.is_finite() && points >= 0.0)
    {
        return Err(Error::Usage(format!("--fail-above {points} is not a number of percentage points (0 or more)")));
    }
    let base = formats::load(&args.base)?;
    let new = formats::load(&args.new)?;
    let (base_shares, new_shares) = (shares::Shares::of(&base.profile), shares::Shares::of(&new.profile));
    if base_shares.unit.name() != new_shares.unit.name() {
        return Err(Error::UnitMismatch {
            base: display(&args.base),
            base_unit: base_shares.unit.name(),
            new: display(&args.new),
            new_unit: new_shares.unit.name(),
        });
    }
    let changes = diff::changes(&base_shares, &new_shares);
    if let Some(path) = &args.output {
        let title = format!("Differential Flame Graph: {} → {}", display(&args.base), display(&args.new));
        let svg = diff::svg(&base.profile, &new.profile, &title).map_err(Error::DiffGraph)?;
        write_atomically(&Destination::File(path.clone()), &svg).map_err(|e| Error::DiffOutput(Box::new(e)))?;
    }
    let style = args.table.style;
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
