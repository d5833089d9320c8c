//! `flameprof doctor`: whether profiling can work here, and how well for a
//! process (asserted on `--json`).

use flameprof_tests::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Doctor loads the off-CPU program: a minute or two on an emulated old
/// kernel whose verifier gives up on it.
const T: Duration = Duration::from_secs(300);

fn doctor_json(args: &[&str]) -> (Run, Value) {
    let mut all = vec!["doctor", "--json"];
    all.extend_from_slice(args);
    let run = flameprof(&all, T);
    let json: Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", run.stdout_str()));
    (run, json)
}

/// The module of `report` whose path ends with `name`.
fn module<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["process"]["modules"]
        .as_array()
        .and_then(|modules| modules.iter().find(|m| m["path"].as_str().is_some_and(|p| p.ends_with(name))))
        .unwrap_or_else(|| panic!("no module {name} in {report:#}"))
}

#[test]
fn root_can_profile_with_every_unwinding_method() {
    root_or_skip!();
    let (run, report) = doctor_json(&[]);
    // Before Linux 5.11 (hash map keys of 512 bytes at most): nothing can
    // be recorded, and doctor says so with exit status 1.
    let can_record = !kernel_lacks("ring_buffer") && !kernel_lacks("large_hash_keys");
    if can_record {
        run.assert_success("flameprof doctor");
    } else {
        assert_eq!(run.code(), Some(1), "doctor on a kernel that cannot record\n{}", run.stderr);
    }
    assert_eq!(report["can_profile"], Value::Bool(can_record), "{report:#}");
    let methods: Vec<&str> = report["unwinding"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    // Before Linux 5.15 (no bpf_task_pt_regs): frame pointers only.
    let expected: &[&str] =
        if kernel_lacks("bpf_task_pt_regs") || kernel_lacks("btf") { &["fp"] } else { &["table", "dwarf", "fp"] };
    assert_eq!(methods, expected, "{report:#}");
    let privileges = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "privileges").unwrap();
    assert_eq!(privileges["status"], "ok");
}

/// The probes agree with the Linux releases that brought each feature
/// (checked against this kernel's release: a distribution kernel that
/// backports a feature would differ, none of those tested does).
#[test]
fn kernel_features_match_the_releases_that_brought_them() {
    root_or_skip!();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let version = |text: &str| -> (u32, u32) {
        let mut parts = text.trim().split(|c: char| !c.is_ascii_digit()).map(|n| n.parse().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let running = version(&release);
    // Without what every recording needs, the load probes cannot run.
    let can_record = !kernel_lacks("ring_buffer") && !kernel_lacks("large_hash_keys");
    for feature in kernel_features() {
        if feature.present.is_none() && !can_record {
            continue;
        }
        // BTF is a build option too: it may be missing on any release.
        if feature.id == "btf" && feature.present == Some(false) {
            continue;
        }
        let expected = running >= version(&feature.since);
        assert_eq!(feature.present, Some(expected), "{feature:?} on Linux {}", release.trim());
    }
}

#[test]
fn an_unprivileged_user_is_told_which_capabilities_are_missing() {
    root_or_skip!();
    let mut command = Command::new("setpriv");
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(flameprof_bin())
        .args(["doctor", "--json"]);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let run = wait_with_timeout(command.spawn().unwrap(), T, "flameprof doctor as nobody");
    assert!(!run.status.success(), "doctor as nobody exited 0");
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["can_profile"], Value::Bool(false));
    let privileges = report["checks"].as_array().unwrap().iter().find(|c| c["name"] == "privileges").unwrap();
    assert_eq!(privileges["status"], "missing");
    let detail = privileges["detail"].as_str().unwrap();
    assert!(detail.contains("CAP_BPF") && detail.contains("CAP_PERFMON"), "{detail}");
}

#[test]
fn a_process_report_tells_frame_pointers_and_unwind_tables_apart() {
    root_or_skip!();
    let no_fp = c_program("no_frame_pointers", &["-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls"]);
    let without = Background::spawn(&no_fp, &["cpu", "5"]);
    let with = Background::spawn(bin("spinner"), &["5"]);
    std::thread::sleep(Duration::from_millis(200));

    let (run, report) = doctor_json(&["-p", &without.pid().to_string()]);
    run.assert_success("flameprof doctor -p (no frame pointers)");
    let binary = module(&report, "no_frame_pointers-O2fomitframepointerfnooptimizesiblingcalls");
    assert!(binary["frame_pointer_share"].as_f64().unwrap() < 0.2, "{binary:#}");
    assert!(binary["unwind_rows"].as_u64().unwrap() > 0, "{binary:#}");
    let libc = module(&report, "libc.so.6");
    assert!(libc["frame_pointer_share"].as_f64().unwrap() < 0.2, "Debian's libc has no frame pointers: {libc:#}");
    assert!(libc["unwind_rows"].as_u64().unwrap() > 10_000, "{libc:#}");

    // The Rust examples are built with frame pointers (libstd, prebuilt, is not).
    let (_, report) = doctor_json(&["-p", &with.pid().to_string()]);
    let spinner = module(&report, "/spinner");
    assert!(spinner["frame_pointer_share"].as_f64().unwrap() > 0.5, "{spinner:#}");
    assert!(spinner["symbols"].as_u64().unwrap() > 0 && spinner["debug_info"] == Value::Bool(true), "{spinner:#}");

    let run = flameprof(&["doctor", "-p", "999999"], T);
    assert_clean_error("doctor -p NO-SUCH-PID", &run, &["999999"], None);
}
