//! The run summary flameprof writes with `--summary-json FILE`: the tests
//! read its numbers from there, not from the human summary on stderr.

use std::ffi::OsStr;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::binaries::flameprof_bin;
use crate::process::{Run, run_command};
use crate::temp_dir::TempDir;

/// A parsed `--summary-json` file.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary(pub Value);

impl Summary {
    pub fn parse(text: &str) -> Result<Summary, String> {
        match serde_json::from_str(text) {
            Ok(value @ Value::Object(_)) => Ok(Summary(value)),
            Ok(other) => Err(format!("not a JSON object: {other}")),
            Err(e) => Err(format!("not JSON: {e}")),
        }
    }

    /// Reads and parses a summary file; panics with a clear message.
    pub fn read(path: &Path) -> Summary {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Summary::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
    }

    /// The value at a dotted path of object fields (`"samples.lost"`); panics
    /// with the whole summary when a field is missing.
    pub fn value(&self, path: &str) -> &Value {
        let mut value = &self.0;
        for field in path.split('.') {
            value = value
                .get(field)
                .unwrap_or_else(|| panic!("the JSON summary has no field {path:?} (no {field:?}):\n{self}"));
        }
        value
    }

    /// The number at a dotted path (`"samples.lost"`, `"duration_seconds"`);
    /// panics with the whole summary when it is missing, null or not a
    /// number.
    pub fn get(&self, path: &str) -> f64 {
        let value = self.value(path);
        value.as_f64().unwrap_or_else(|| panic!("the JSON summary's {path:?} is {value}, not a number:\n{self}"))
    }
}

/// The summary as pretty JSON, for failure messages.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string_pretty(&self.0).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// Runs `flameprof --summary-json FILE ARGS` (FILE in a temporary directory),
/// asserts that it succeeded (`what` names the run in the failure message)
/// and returns the run with its summary.
pub fn flameprof_with_summary<S: AsRef<OsStr>>(args: &[S], timeout: Duration, what: &str) -> (Run, Summary) {
    flameprof_with_summary_env(args, &[], timeout, what)
}

/// [`flameprof_with_summary`] with these environment variables set.
pub fn flameprof_with_summary_env<S: AsRef<OsStr>>(
    args: &[S],
    env: &[(&str, &str)],
    timeout: Duration,
    what: &str,
) -> (Run, Summary) {
    let dir = TempDir::new("summary");
    let json = dir.join("summary.json");
    let mut cmd = std::process::Command::new(flameprof_bin());
    cmd.arg("--summary-json").arg(&json).args(args);
    cmd.envs(env.iter().copied());
    let run = run_command(cmd, timeout);
    run.assert_success(what);
    if !json.is_file() {
        panic!("{what}: flameprof succeeded but wrote no --summary-json {}\nstderr:\n{}", json.display(), run.stderr);
    }
    let summary = Summary::read(&json);
    (run, summary)
}

#[cfg(test)]
mod tests {
    use super::Summary;

    fn sample() -> Summary {
        Summary::parse(
            r#"{"duration_seconds": 1.25, "command_cpu_seconds": null,
                "samples": {"lost": 0, "stacks_at_depth_limit": 17}, "dwarf_unwinding": null}"#,
        )
        .unwrap()
    }

    #[test]
    fn numbers_are_read_by_dotted_path() {
        let summary = sample();
        assert_eq!(summary.get("duration_seconds"), 1.25);
        assert_eq!(summary.get("samples.lost"), 0.0);
        assert_eq!(summary.get("samples.stacks_at_depth_limit"), 17.0);
    }

    #[test]
    #[should_panic(expected = "no field \"samples.taken\"")]
    fn a_missing_field_panics() {
        sample().get("samples.taken");
    }

    #[test]
    #[should_panic(expected = "\"command_cpu_seconds\" is null, not a number")]
    fn a_null_field_panics() {
        sample().get("command_cpu_seconds");
    }

    #[test]
    #[should_panic(expected = "no field \"dwarf_unwinding.complete\"")]
    fn a_field_under_null_panics() {
        sample().get("dwarf_unwinding.complete");
    }

    #[test]
    fn only_objects_are_summaries() {
        assert!(Summary::parse("[1]").is_err());
        assert!(Summary::parse("{").is_err());
    }
}
