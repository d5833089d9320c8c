//! What the kernel under test lacks, as `flameprof doctor --json` probes it.
//! A test of a feature this kernel lacks does not skip: it asserts that
//! flameprof refuses with the one line naming the feature and the first
//! Linux that has it ([`needs_kernel_feature!`]).

use std::{sync::OnceLock, time::Duration};

use serde_json::Value;

use crate::{flameprof, flameprof_bin};

/// One entry of doctor's `kernel_features`.
#[derive(Debug, Clone)]
pub struct KernelFeature {
    pub id: String,
    pub name: String,
    pub since: String,
    /// None: doctor could not probe it (not root).
    pub present: Option<bool>,
}

/// `flameprof doctor --json`, run once per boot and build of flameprof:
/// doctor loads the off-CPU program to know whether the verifier takes it,
/// which on an emulated old kernel takes a minute, and each test of the VM
/// subset is a process of its own. Kept in the temporary directory.
fn doctor_report() -> Value {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let build = std::fs::metadata(flameprof_bin())
        .and_then(|m| m.modified())
        .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos())
        .unwrap_or_default();
    let cache = std::env::temp_dir().join(format!("flameprof-tests-doctor-{}-{build}.json", boot.trim()));
    if let Some(report) = std::fs::read(&cache).ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()) {
        return report;
    }
    let run = flameprof(&["doctor", "--json"], Duration::from_secs(300));
    let report: Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("doctor --json is not JSON ({e}):\n{}\n{}", run.stdout_str(), run.stderr));
    // Written whole or not at all: a temporary file renamed over the cache.
    let partial = cache.with_extension(format!("{}.partial", std::process::id()));
    if std::fs::write(&partial, &run.stdout).is_ok() {
        let _ = std::fs::rename(&partial, &cache);
    }
    report
}

/// The kernel features `flameprof doctor --json` reports (probed once).
pub fn kernel_features() -> &'static [KernelFeature] {
    static FEATURES: OnceLock<Vec<KernelFeature>> = OnceLock::new();
    FEATURES.get_or_init(|| {
        let report = doctor_report();
        let text = |feature: &Value, key: &str| feature[key].as_str().unwrap_or_default().to_string();
        report["kernel_features"]
            .as_array()
            .unwrap_or_else(|| panic!("doctor --json has no kernel_features:\n{report:#}"))
            .iter()
            .map(|feature| KernelFeature {
                id: text(feature, "id"),
                name: text(feature, "name"),
                since: text(feature, "since"),
                present: feature["present"].as_bool(),
            })
            .collect()
    })
}

/// The feature doctor calls `id`; panics when it reports no such feature.
pub fn kernel_feature(id: &str) -> &'static KernelFeature {
    kernel_features().iter().find(|f| f.id == id).unwrap_or_else(|| panic!("doctor reports no kernel feature {id}"))
}

/// Whether the probes found `id` missing on this kernel.
pub fn kernel_lacks(id: &str) -> bool {
    kernel_feature(id).present == Some(false)
}

/// Asserts that `stderr` holds exactly one line naming `feature` as missing
/// (its name and `Linux SINCE+`), and returns it.
pub fn assert_names_missing_feature<'a>(stderr: &'a str, feature: &KernelFeature) -> &'a str {
    let since = format!("(Linux {}+", feature.since);
    let lines: Vec<&str> =
        stderr.lines().filter(|line| line.contains("this kernel lacks") && line.contains(&feature.name)).collect();
    assert_eq!(lines.len(), 1, "expected one line naming {} as missing, got:\n{stderr}", feature.id);
    assert!(lines[0].contains(&since), "the line does not say {since}: {}", lines[0]);
    lines[0]
}

/// When this kernel lacks `id`: runs `flameprof ARGS`, asserts that it
/// fails (exit status 1, nothing on stdout) with the one line naming the
/// feature, prints a loud line saying so, and returns true. False when the
/// kernel has the feature (the test goes on).
pub fn refused_for_lack_of(id: &str, args: &[&str]) -> bool {
    let feature = kernel_feature(id);
    if feature.present != Some(false) {
        return false;
    }
    // Emulated, a verifier that gives up takes a minute, twice (aya loads
    // again with a log).
    let run = flameprof(args, Duration::from_secs(300));
    assert_eq!(run.code(), Some(1), "flameprof {args:?} on a kernel without {id}: status\nstderr:\n{}", run.stderr);
    assert!(run.stdout.is_empty(), "flameprof {args:?} wrote to stdout while refusing");
    let line = assert_names_missing_feature(&run.stderr, feature);
    assert!(line.starts_with("flameprof: error: "), "not an error line: {line}");
    let thread = std::thread::current();
    println!("!!!!! THIS KERNEL LACKS {id}: {} refused as it should: {line}", thread.name().unwrap_or("the test"));
    true
}

/// `needs_kernel_feature!("ID", &[ARGS])` after `root_or_skip!()`: on a
/// kernel without the feature, asserts that `flameprof ARGS` refuses with
/// the line naming it, and returns from the test.
#[macro_export]
macro_rules! needs_kernel_feature {
    ($id:expr, $args:expr) => {
        if $crate::kernel::refused_for_lack_of($id, $args) {
            return;
        }
    };
}

/// Whether this kernel lacks a feature without which nothing can be
/// recorded; if so, asserts that a recording is refused with the line
/// naming it and returns true.
pub fn recording_refused_here() -> bool {
    let args = ["-d", "1", "-o", "/dev/null", "--", "true"];
    ["ring_buffer", "large_hash_keys"].into_iter().any(|id| refused_for_lack_of(id, &args))
}

/// `kernel_can_record!()` after `root_or_skip!()`: on a kernel that lacks
/// what every recording needs, asserts that flameprof refuses with the one
/// line naming it, and returns from the test.
#[macro_export]
macro_rules! kernel_can_record {
    () => {
        if $crate::kernel::recording_refused_here() {
            return;
        }
    };
}
