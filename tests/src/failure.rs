//! The documented error behaviour, checked in one place.

use std::path::Path;

use crate::process::Run;

/// Asserts the documented error behaviour: non-zero exit, exactly one
/// non-empty line on stderr starting `flameprof: error:` and naming the
/// problem (one of `needles`, case-insensitive), nothing on stdout, and
/// `output` (if any) not created.
pub fn assert_clean_error(what: &str, run: &Run, needles: &[&str], output: Option<&Path>) {
    let mut problems = Vec::new();
    if run.status.success() {
        problems.push(format!("exit status is {:?}, expected non-zero", run.status));
    }
    let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() != 1 {
        problems.push(format!("stderr has {} non-empty lines, expected exactly 1", lines.len()));
    }
    match lines.first() {
        Some(l) if l.starts_with("flameprof: error:") => {
            let lower = l.to_lowercase();
            if !needles.iter().any(|n| lower.contains(&n.to_lowercase())) {
                problems.push(format!("the error line names none of {needles:?}"));
            }
        }
        _ => problems.push("stderr does not start with `flameprof: error:`".to_string()),
    }
    if !run.stdout.is_empty() {
        problems.push(format!("stdout is not empty ({} bytes)", run.stdout.len()));
    }
    if let Some(p) = output {
        if p.exists() {
            problems.push(format!("output file {} was created", p.display()));
        }
        // No temporary sibling left behind either (atomic-write leftovers).
        if let Some(dir) = p.parent()
            && let (Some(name), Ok(entries)) = (p.file_name(), std::fs::read_dir(dir))
        {
            let name = name.to_string_lossy().into_owned();
            for e in entries.flatten() {
                let other = e.file_name().to_string_lossy().into_owned();
                if other != name && other.contains(&name) {
                    problems.push(format!("leftover file {other} next to the output"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: {}\nexit: {:?}\nstderr:\n{}\nstdout: {:?}",
        problems.join("; "),
        run.status,
        run.stderr,
        String::from_utf8_lossy(&run.stdout[..run.stdout.len().min(300)])
    );
}
