//! flameprof given capabilities (not root), run by an ordinary user
//! (`nobody`): it profiles what that user could ptrace, and nothing else
//! unless `--other-users` says so. The binary under test is a copy of the
//! release binary with `setcap cap_bpf,cap_perfmon+ep`, as README's
//! Privileges section sets it up.

use flameprof_tests::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(40);
const NOBODY: u32 = 65534;

/// A directory `nobody` can enter and write, holding a capable copy of
/// flameprof and the spinner.
struct CapableCopy {
    dir: TempDir,
}

impl CapableCopy {
    fn new() -> CapableCopy {
        let dir = TempDir::new("caps");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        for name in ["flameprof", "spinner"] {
            std::fs::copy(bin(name), dir.join(name)).unwrap();
        }
        let status = Command::new("setcap").arg("cap_bpf,cap_perfmon+ep").arg(dir.join("flameprof")).status();
        assert!(status.is_ok_and(|s| s.success()), "setcap failed (Debian package libcap2-bin)");
        CapableCopy { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// `setpriv` to nobody, then PROGRAM ARGS, with no capabilities but
    /// those the program's file grants.
    fn as_nobody<S: AsRef<std::ffi::OsStr>>(&self, program: &Path, args: &[S]) -> Command {
        let mut command = Command::new("setpriv");
        command
            .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into()])
            .arg("--")
            .arg(program)
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        command
    }

    /// Runs the capable flameprof as nobody; stdout and stderr captured.
    fn flameprof(&self, args: &[&str]) -> Run {
        let mut command = self.as_nobody(&self.path("flameprof"), args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        wait_with_timeout(command.spawn().unwrap(), T, &format!("flameprof (nobody, capabilities) {args:?}"))
    }
}

fn spins(run: &Run) -> u64 {
    Folded::parse(&run.stdout_str()).map(|f| f.with_frame("spinner::spin")).unwrap_or(0)
}

#[test]
fn another_users_process_needs_other_users() {
    root_or_skip!();
    let caps = CapableCopy::new();
    let roots = Background::spawn(caps.path("spinner"), &["20"]);
    let pid = roots.pid().to_string();

    let run = caps.flameprof(&["--format", "folded", "-p", &pid, "-d", "0.3"]);
    assert_clean_error("-p ROOT-PROCESS as nobody", &run, &["--other-users"], None);
    assert!(run.stderr.contains(&pid), "the error does not name the process:\n{}", run.stderr);

    let run = caps.flameprof(&["--format", "folded", "--other-users", "-p", &pid, "-d", "0.5"]);
    run.assert_success("-p ROOT-PROCESS --other-users as nobody");
    assert!(spins(&run) > 0, "no spinner samples with --other-users:\n{}", run.stderr);
}

#[test]
fn own_processes_are_profiled_without_any_flag() {
    root_or_skip!();
    let caps = CapableCopy::new();
    let mut command = caps.as_nobody(&caps.path("spinner"), &["20"]);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    // setpriv execs the spinner: the child's pid is the spinner's.
    let child = command.spawn().unwrap();
    let own = Background { child, started: std::time::Instant::now() };
    let pid = own.pid().to_string();
    std::thread::sleep(Duration::from_millis(100));

    let run = caps.flameprof(&["--format", "folded", "-p", &pid, "-d", "0.5"]);
    run.assert_success("-p OWN-PROCESS as nobody");
    assert!(spins(&run) > 0, "no spinner samples of nobody's own process:\n{}", run.stderr);

    let spinner = caps.path("spinner");
    let run = caps.flameprof(&["--format", "folded", "--", spinner.to_str().unwrap(), "0.3"]);
    run.assert_success("-- CMD as nobody");
    assert!(spins(&run) > 0, "no spinner samples of nobody's own command:\n{}", run.stderr);
}

#[test]
fn the_whole_system_needs_other_users() {
    root_or_skip!();
    let caps = CapableCopy::new();
    let run = caps.flameprof(&["--format", "folded", "-d", "0.2"]);
    assert_clean_error("-a as nobody", &run, &["--other-users"], None);
    let run = caps.flameprof(&["--format", "folded", "-a", "-d", "0.2"]);
    assert_clean_error("-a as nobody", &run, &["--other-users"], None);
    caps.flameprof(&["--format", "folded", "-a", "--other-users", "-d", "0.2"])
        .assert_success("-a --other-users as nobody");
}

/// On-CPU, the kernel itself detaches per-task timers from a task whose
/// exec makes it undumpable (`begin_new_exec`), so a set-id descendant of
/// `-- CMD` is never sampled; off-CPU (a tracepoint, not a timer) sees it,
/// and flameprof leaves its stacks out unless --other-users is given.
#[test]
fn a_set_id_descendant_is_left_out_and_counted() {
    root_or_skip!();
    let caps = CapableCopy::new();
    std::fs::copy(bin("offcpu_blocks"), caps.path("blocks-setuid")).unwrap();
    std::fs::set_permissions(caps.path("blocks-setuid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    let json = caps.path("summary.json");
    let command = caps.path("blocks-setuid");
    let (json_arg, command) = (json.to_str().unwrap(), command.to_str().unwrap());
    let shown = |run: &Run| -> u64 {
        let folded = Folded::parse(&run.stdout_str()).unwrap();
        folded.by_root().iter().filter(|(root, _)| root.starts_with("blocks-setuid")).map(|(_, n)| n).sum()
    };

    let run = caps.flameprof(&["--off-cpu", "--format", "folded", "--summary-json", json_arg, "--", command]);
    run.assert_success("--off-cpu -- SETUID-CMD as nobody");
    assert_eq!(Summary::read(&json).get("processes.other_users_left_out"), 1.0, "{}", run.stderr);
    assert_eq!(shown(&run), 0, "waits of a set-id process were shown:\n{}", run.stdout_str());

    // The same with --other-users: shown (user frames unnamed: nobody may
    // not read its mappings), nothing left out.
    let args = ["--off-cpu", "--other-users", "--format", "folded", "--summary-json", json_arg, "--", command];
    let run = caps.flameprof(&args);
    run.assert_success("--off-cpu -- SETUID-CMD --other-users as nobody");
    assert_eq!(Summary::read(&json).get("processes.other_users_left_out"), 0.0, "{}", run.stderr);
    assert!(shown(&run) > 1_000_000, "the set-id command's 1.5 s of waits are missing:\n{}", run.stdout_str());
}
