//! Error cases: non-zero exit, one `flameprof: error:` line naming the
//! problem, nothing written, no BPF programs left loaded.

use flameprof_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// Runs flameprof with `args` (+ `-o DIR/x.folded` when `with_output`) and
/// checks the clean-failure contract.
fn expect_error(args: &[&str], needles: &[&str]) {
    let dir = TempDir::new("err");
    let out = dir.join("x.folded");
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // -o goes first so a trailing `-- CMD` stays last.
    all.insert(0, s(&out));
    all.insert(0, "-o".into());
    let bpf = BpfSnapshot::take();
    let run = flameprof(&all, T);
    assert_clean_error(&format!("flameprof {}", all.join(" ")), &run, needles, Some(&out));
    bpf.assert_none_left(&format!("flameprof {}", all.join(" ")));
}

#[test]
fn not_root_is_refused() {
    root_or_skip!();
    // A world-executable copy and a world-writable output dir, so the only
    // problem is the missing privilege.
    let dir = TempDir::new("nobody");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let exe = dir.join("flameprof");
    std::fs::copy(flameprof_bin(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.join("x.svg");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe).args(["-d", "0.2", "-o"]).arg(&out);
    let run = run_command(cmd, T);
    assert_clean_error("flameprof as nobody", &run, &["root", "CAP_BPF", "permission"], Some(&out));

    // Same to stdout.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&exe).args(["-d", "0.2", "--format", "folded"]);
    let run = run_command(cmd, T);
    assert_clean_error("flameprof as nobody (stdout)", &run, &["root", "CAP_BPF", "permission"], None);
}

#[test]
fn no_such_pid() {
    root_or_skip!();
    expect_error(&["-p", "999999", "-d", "1"], &["999999"]);
}

#[test]
fn output_in_missing_directory() {
    root_or_skip!();
    let bpf = BpfSnapshot::take();
    let run = flameprof(&["-o", "/nonexistent/dir/x.svg", "-d", "0.2"], T);
    assert_clean_error("-o /nonexistent/dir/x.svg", &run, &["/nonexistent/dir/x.svg"], None);
    assert!(!std::path::Path::new("/nonexistent").exists());
    bpf.assert_none_left("-o /nonexistent/dir/x.svg");
}

#[test]
fn output_on_unwritable_path() {
    root_or_skip!();
    for path in ["/proc/version.svg", "/proc/flameprof-e2e.folded", "/sys/flameprof-e2e.svg"] {
        let bpf = BpfSnapshot::take();
        let run = flameprof(&["-o", path, "-d", "0.2"], T);
        assert_clean_error(&format!("-o {path}"), &run, &[path], None);
        assert!(!std::path::Path::new(path).exists());
        bpf.assert_none_left(&format!("-o {path}"));
    }
}

#[test]
fn output_is_a_directory() {
    root_or_skip!();
    let dir = TempDir::new("isdir");
    let target = dir.join("d.svg");
    std::fs::create_dir(&target).unwrap();
    let run = flameprof(&["-o", &s(&target), "-d", "0.2"], T);
    assert_clean_error("-o DIR.svg", &run, &[&s(&target)], None);
    assert!(target.is_dir() && std::fs::read_dir(&target).unwrap().next().is_none(), "directory changed");
}

#[test]
fn zero_frequency() {
    root_or_skip!();
    expect_error(&["-F", "0", "-d", "0.2"], &["-F", "frequency"]);
}

#[test]
fn dwarf_unwinding_outside_on_cpu_profiles() {
    root_or_skip!();
    expect_error(&["--call-graph", "dwarf", "--off-cpu", "-d", "0.2"], &["--call-graph dwarf", "on-CPU"]);
    expect_error(&["--call-graph", "dwarf", "-K", "-d", "0.2"], &["--call-graph dwarf", "-K"]);
}

#[test]
fn negative_duration() {
    root_or_skip!();
    expect_error(&["-d", "-1"], &["-d", "duration", "-1"]);
}

#[test]
fn non_numeric_duration() {
    root_or_skip!();
    expect_error(&["-d", "abc"], &["-d", "duration", "abc"]);
}

#[test]
fn missing_command() {
    root_or_skip!();
    expect_error(&["-d", "0.2", "--", "/nonexistent/cmd"], &["/nonexistent/cmd"]);
}

#[test]
fn non_executable_command() {
    root_or_skip!();
    let dir = TempDir::new("noexec");
    let file = dir.join("not-executable");
    std::fs::write(&file, "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    expect_error(&["-d", "0.2", "--", &s(&file)], &[&s(&file)]);
}

#[test]
fn svg_to_a_terminal_is_refused() {
    root_or_skip!();
    // `script` gives flameprof a pseudo-terminal as stdout (and stderr);
    // everything it prints is captured in script's stdout.
    let inner = format!("{} -d 0.2", flameprof_bin().display());
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]);
    let run = run_command(cmd, T);
    let text = run.stdout_str().replace('\r', "");
    assert!(!run.status.success(), "SVG to a terminal: exit {:?}, expected failure\n{text}", run.status);
    assert!(
        !text.contains("<svg") && !text.contains("<?xml"),
        "an SVG was written to the terminal:\n{}",
        &text[..text.len().min(400)]
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected exactly one line on the terminal, got:\n{text}");
    assert!(lines[0].starts_with("flameprof: error:"), "not an error line: {:?}", lines[0]);
    let l = lines[0].to_lowercase();
    assert!(l.contains("terminal") || l.contains("tty"), "error does not name the terminal: {:?}", lines[0]);
    assert!(
        l.contains("-o") && (l.contains("redirect") || l.contains('>')),
        "no hint to redirect or use -o: {:?}",
        lines[0]
    );
}

/// The leftover-program check above can fail: while flameprof records, the
/// kernel lists programs that were not there before.
#[test]
fn bpf_program_check_sees_a_running_flameprof() {
    root_or_skip!();
    let before = loaded_bpf_program_ids().expect("bpf(BPF_PROG_GET_NEXT_ID) failed");
    let spinner = example("spinner");
    let fp = spawn_flameprof(&["--format", "folded", "--", &spinner, "1.5"]);
    std::thread::sleep(Duration::from_millis(800));
    let during = loaded_bpf_program_ids().unwrap_or_default();
    let run = wait_with_timeout(fp, T, "flameprof -- spinner 1.5");
    run.assert_success("flameprof -- spinner 1.5");
    let new: Vec<u32> = during.iter().copied().filter(|id| !before.contains(id)).collect();
    assert!(!new.is_empty(), "no new BPF program ids seen while flameprof was recording");
    let snapshot_ok = BpfSnapshot::take();
    snapshot_ok.assert_none_left("after a successful run");
    let after = loaded_bpf_program_ids().unwrap_or_default();
    let left: Vec<u32> = new.iter().copied().filter(|id| after.contains(id)).collect();
    assert!(left.is_empty(), "programs {left:?} still loaded after a successful run");
}

#[test]
fn a_thread_id_is_refused_with_its_process() {
    root_or_skip!();
    // `threads` starts its workers after 0.5 s; a worker's id is a thread id.
    let workload = Background::spawn(example("threads"), &["3", "1"]);
    std::thread::sleep(Duration::from_millis(1000));
    let task_dir = format!("/proc/{}/task", workload.pid());
    let tid = std::fs::read_dir(&task_dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|&tid| tid != workload.pid())
        .expect("threads has a worker thread");
    let tid = tid.to_string();
    expect_error(&["-p", &tid, "-d", "0.5"], &["thread", &workload.pid().to_string()]);
}

#[test]
fn nothing_after_double_dash_is_refused() {
    root_or_skip!();
    expect_error(&["-d", "0.2", "--"], &["--", "command"]);
}
