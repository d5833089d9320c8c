//! `flameprof doctor`: can profiling work here, and how well? One line per
//! check, with the fix where something is missing; `--json` for machines.
//! With `-p PID`, how well that process's modules can be walked and named.
pub(crate) mod modules;

use std::path::Path;

use serde::Serialize;

use crate::{
    error::Result,
    recording::{
        kernel::features::{Feature, KernelFeatures},
        privileges::{self, Privilege},
    },
    settings::DoctorSettings,
};

/// One check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    /// Works, with a limit worth knowing.
    Note,
    /// Profiling cannot work until this is fixed.
    Missing,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
    /// What to do, when something is missing or limited.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    /// Whether a recording can run here (privileges and kernel).
    can_profile: bool,
    /// The user-stack walks this kernel can run, best first.
    unwinding: Vec<&'static str>,
    /// What the start-up probes found, feature by feature.
    kernel_features: Vec<KernelFeature>,
    checks: Vec<Check>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process: Option<modules::ProcessReport>,
}

/// A kernel feature flameprof uses where it exists.
#[derive(Debug, Serialize)]
struct KernelFeature {
    /// Its stable name (`Feature::id`).
    id: &'static str,
    /// What it is, as the line naming it missing says.
    name: &'static str,
    /// The first Linux release that has it.
    since: &'static str,
    /// Whether this kernel has it; null when the probe could not run
    /// (without privileges).
    present: Option<bool>,
    /// What flameprof does without it.
    without: &'static str,
}

/// Runs the checks and prints them; exit status 0 when profiling can work.
pub fn run(settings: DoctorSettings) -> Result<i32> {
    let features = KernelFeatures::get();
    // What the start-up probes found, and whether the off-CPU program loads.
    let off_cpu_loads = crate::recording::bpf::verdict::off_cpu_program_loads();
    let present = |feature| match feature {
        Feature::OffCpuVerifier => off_cpu_loads,
        _ => features.probed(feature),
    };
    let mut checks = vec![privileges_check(), kernel_check()];
    checks.extend(Feature::ALL.map(|feature| feature_check(feature, present(feature))));
    checks.push(paranoid_check());
    checks.push(kallsyms_check());
    checks.push(tracefs_check());
    checks.push(pmu_check());
    let walker_missing = features.first_missing(&[Feature::Btf, Feature::TaskPtRegs]);
    let mut unwinding = Vec::new();
    if walker_missing.is_none() {
        unwinding.extend(["table", "dwarf"]);
    }
    unwinding.push("fp");
    checks.push(Check {
        name: "unwinding",
        status: if walker_missing.is_none() { Status::Ok } else { Status::Note },
        detail: format!("user stacks can be walked with: {}", unwinding.join(", ")),
        fix: walker_missing.map(|missing| {
            format!(
                "this kernel lacks {} (Linux {}+): code without frame pointers is walked only where it exists",
                missing.name(),
                missing.since()
            )
        }),
    });
    let kernel_features = Feature::ALL
        .iter()
        .map(|&feature| KernelFeature {
            id: feature.id(),
            name: feature.name(),
            since: feature.since(),
            present: present(feature),
            without: feature.without(),
        })
        .collect();
    let process = match settings.pid {
        Some(pid) => Some(modules::report(pid)?),
        None => None,
    };
    let can_profile = checks.iter().all(|check| check.status != Status::Missing);
    let report = Report { can_profile, unwinding, kernel_features, checks, process };
    if settings.json {
        let text = serde_json::to_string_pretty(&report).expect("a report always serializes");
        println!("{text}");
    } else {
        print!("{}", render(&report));
    }
    Ok(if can_profile { 0 } else { crate::error::EXIT_FAILURE })
}

fn render(report: &Report) -> String {
    let mut text = String::new();
    for check in &report.checks {
        let status = match check.status {
            Status::Ok => "ok     ",
            Status::Note => "note   ",
            Status::Missing => "MISSING",
        };
        text.push_str(&format!("{status} {}: {}", check.name, check.detail));
        if let Some(fix) = &check.fix {
            text.push_str(&format!("; {fix}"));
        }
        text.push('\n');
    }
    if let Some(process) = &report.process {
        text.push_str(&modules::render(process));
    }
    text.push_str(if report.can_profile {
        "flameprof can profile here\n"
    } else {
        "flameprof cannot profile here until what is MISSING is fixed\n"
    });
    text
}

fn privileges_check() -> Check {
    match privileges::check() {
        Ok(Privilege::Root) => Check { name: "privileges", status: Status::Ok, detail: "root".into(), fix: None },
        Ok(Privilege::Capabilities) => Check {
            name: "privileges",
            status: Status::Ok,
            detail: "CAP_BPF and CAP_PERFMON (not root): only processes this user could ptrace".into(),
            fix: Some("add --other-users to profile other users' processes and -a".into()),
        },
        Err(_) => {
            let missing = privileges::missing_capabilities();
            Check {
                name: "privileges",
                status: Status::Missing,
                detail: format!("not root, and without {}", missing.join(" and ")),
                fix: Some("run as root (sudo), or see README, Privileges, for a group allowed to run flameprof".into()),
            }
        }
    }
}

fn kernel_check() -> Check {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    Check { name: "kernel", status: Status::Ok, detail: format!("Linux {}", release.trim()), fix: None }
}

/// One kernel feature: present, missing (and what flameprof does without
/// it), or unknown. Only some make recording impossible (MISSING).
fn feature_check(feature: Feature, present: Option<bool>) -> Check {
    let (status, detail, fix) = match present {
        Some(true) => (Status::Ok, format!("{}: present (Linux {}+)", feature.name(), feature.since()), None),
        Some(false) => (
            if feature.every_recording_needs() { Status::Missing } else { Status::Note },
            format!("{}: missing (Linux {}+, needed by {})", feature.name(), feature.since(), feature.needed_by()),
            Some(feature.without().to_string()),
        ),
        None => (
            Status::Note,
            format!(
                "{}: not probed (probing needs root, or CAP_BPF and CAP_PERFMON, and what it builds on)",
                feature.name()
            ),
            Some("run `flameprof doctor` as root on a kernel that can record to know".into()),
        ),
    };
    Check { name: feature.id(), status, detail, fix }
}

fn paranoid_check() -> Check {
    let value = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap_or_default();
    Check {
        name: "perf_event_paranoid",
        status: Status::Ok,
        detail: format!("{} (does not matter with CAP_PERFMON or as root)", value.trim()),
        fix: None,
    }
}

fn kallsyms_check() -> Check {
    let readable = std::fs::read_to_string("/proc/kallsyms").is_ok_and(|text| {
        text.lines()
            .take(100)
            .any(|line| line.split_whitespace().next().is_some_and(|a| !a.trim_start_matches('0').is_empty()))
    });
    let restrict = std::fs::read_to_string("/proc/sys/kernel/kptr_restrict").unwrap_or_default();
    if readable {
        Check {
            name: "kernel symbols",
            status: Status::Ok,
            detail: format!("/proc/kallsyms shows addresses (kptr_restrict {})", restrict.trim()),
            fix: None,
        }
    } else {
        Check {
            name: "kernel symbols",
            status: Status::Note,
            detail: format!(
                "/proc/kallsyms shows no addresses (kptr_restrict {}): kernel frames stay unnamed",
                restrict.trim()
            ),
            fix: Some("run as root, or set kernel.kptr_restrict=0".into()),
        }
    }
}

fn tracefs_check() -> Check {
    let mounted =
        ["/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"].iter().any(|p| Path::new(p).exists());
    Check {
        name: "tracefs",
        status: Status::Ok,
        detail: if mounted { "mounted" } else { "not mounted (not needed: flameprof uses BTF tracepoints)" }.into(),
        fix: None,
    }
}

fn pmu_check() -> Check {
    let pmu = Path::new("/sys/bus/event_source/devices/cpu").exists()
        || Path::new("/sys/bus/event_source/devices/cpu_core").exists();
    Check {
        name: "hardware PMU",
        status: Status::Ok,
        detail: if pmu {
            "present: -e cycles samples on CPU cycles (the default, -e cpu-clock, is a software timer)"
        } else {
            "none (usual in VMs): flameprof samples on the software cpu-clock timer, which needs none (-e cycles does)"
        }
        .into(),
        fix: None,
    }
}
