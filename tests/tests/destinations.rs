//! Where `-o` and `--summary-json` write: a regular file is replaced
//! atomically; a device, FIFO, socket or descriptor link is written in place
//! and never renamed over; a symlink's target is written; nothing temporary
//! is ever left behind.
//!
//! Device tests use device nodes made here with mknod (same numbers as
//! /dev/null and /dev/full), so a regression replaces a node of the test's own,
//! never the machine's.

use flameprof_tests::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(40);

/// A short profiled command whose folded output is never empty.
fn profile_args(output: &Path) -> Vec<String> {
    vec![
        "--format".into(),
        "folded".into(),
        "-F".into(),
        "999".into(),
        "-o".into(),
        s(output),
        "--".into(),
        example("spinner"),
        "0.2".into(),
    ]
}

/// Every entry of `dir` is one of `expected` (no temporary file left).
fn assert_only(dir: &Path, expected: &[&str], what: &str) {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "{what}: unexpected entries in {}", dir.display());
}

fn assert_folded(what: &str, text: &str) {
    let folded = Folded::parse(text).unwrap_or_else(|e| panic!("{what}: not folded stacks: {e}\n{text}"));
    assert!(folded.total() > 0, "{what}: no samples in {text:?}");
}

fn mknod_char(path: &Path, major: u32, minor: u32) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let device = libc::makedev(major, minor);
    // SAFETY: a valid NUL-terminated path; mknod only reads it.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, device) };
    assert_eq!(rc, 0, "mknod {}: {}", path.display(), std::io::Error::last_os_error());
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), std::io::Error::last_os_error());
}

#[test]
fn a_null_device_is_written_in_place() {
    root_or_skip!();
    let dir = TempDir::new("dest-null");
    let null = dir.join("null");
    mknod_char(&null, 1, 3);
    let json = dir.join("nulljson");
    mknod_char(&json, 1, 3);
    let mut args = profile_args(&null);
    args.splice(0..0, ["--summary-json".to_string(), s(&json)]);
    flameprof(&args, T).assert_success("-o NULL-DEVICE");
    for node in [&null, &json] {
        let meta = fs::symlink_metadata(node).unwrap();
        assert!(meta.file_type().is_char_device(), "{} is no longer a character device", node.display());
        assert_eq!(meta.rdev(), libc::makedev(1, 3));
    }
    assert_only(dir.path(), &["null", "nulljson"], "-o NULL-DEVICE");
}

#[test]
fn a_full_device_fails_with_one_line_and_stays_a_device() {
    root_or_skip!();
    let dir = TempDir::new("dest-full");
    let full = dir.join("full");
    mknod_char(&full, 1, 7);
    let run = flameprof(&profile_args(&full), T);
    assert!(!run.status.success(), "-o FULL-DEVICE exited 0\n{}", run.stderr);
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("flameprof: error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{}", run.stderr);
    assert!(errors[0].contains(&s(&full)) && errors[0].to_lowercase().contains("no space"), "{}", errors[0]);
    assert!(fs::symlink_metadata(&full).unwrap().file_type().is_char_device(), "the device node was replaced");
    assert_only(dir.path(), &["full"], "-o FULL-DEVICE");
}

#[test]
fn a_fifo_is_written_to_its_reader() {
    root_or_skip!();
    let dir = TempDir::new("dest-fifo");
    let fifo = dir.join("profile.folded");
    mkfifo(&fifo);
    let reader_path = fifo.clone();
    // Opening for reading waits for flameprof to open the write side.
    let reader = std::thread::spawn(move || fs::read_to_string(reader_path).unwrap());
    flameprof(&profile_args(&fifo), T).assert_success("-o FIFO");
    let text = reader.join().unwrap();
    assert_folded("-o FIFO", &text);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    assert_only(dir.path(), &["profile.folded"], "-o FIFO");
}

#[test]
fn a_fifo_whose_reader_goes_away_fails_with_one_line() {
    root_or_skip!();
    let dir = TempDir::new("dest-fifo-gone");
    let fifo = dir.join("profile.svg");
    mkfifo(&fifo);
    let reader_path = fifo.clone();
    // The reader takes a few bytes and leaves; the SVG (its title alone is
    // 120 KB) does not fit the 64 KiB pipe buffer, so the write must fail.
    let reader = std::thread::spawn(move || {
        let mut first = [0u8; 100];
        fs::File::open(reader_path).unwrap().read_exact(&mut first).unwrap();
    });
    let title = "t".repeat(120_000);
    let args = ["--title", &title, "-o", &s(&fifo), "--", &example("spinner"), "0.2"];
    let run = flameprof(&args, T);
    reader.join().unwrap();
    assert!(!run.status.success(), "a write to a FIFO without a reader exited 0");
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("flameprof: error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{}", run.stderr);
    assert!(errors[0].to_lowercase().contains("broken pipe"), "{}", errors[0]);
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
}

#[test]
fn a_socket_is_refused_and_kept() {
    root_or_skip!();
    let dir = TempDir::new("dest-socket");
    let socket = dir.join("profile.folded");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let run = flameprof(&profile_args(&socket), T);
    assert_clean_error("-o SOCKET", &run, &[&s(&socket)], None);
    assert!(fs::symlink_metadata(&socket).unwrap().file_type().is_socket(), "the socket was replaced");
    assert_only(dir.path(), &["profile.folded"], "-o SOCKET");
}

#[test]
fn dev_stdout_and_proc_self_fd_write_to_the_descriptor() {
    root_or_skip!();
    // stdout a pipe (the harness captures it).
    let run = flameprof(&profile_args(Path::new("/dev/stdout")), T);
    run.assert_success("-o /dev/stdout");
    assert_folded("-o /dev/stdout", &run.stdout_str());
    assert!(fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());

    // stdout a regular file: written through the shell's descriptor, the
    // same file (inode) afterwards, not one renamed over it.
    let dir = TempDir::new("dest-fd");
    let file = dir.join("out.folded");
    fs::write(&file, "").unwrap();
    let inode = fs::metadata(&file).unwrap().ino();
    let mut command = Command::new(flameprof_bin());
    command
        .args(profile_args(Path::new("/proc/self/fd/1")))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&file).unwrap())
        .stderr(Stdio::piped());
    // Spawned here: run_command would pipe stdout instead of the file.
    let run = wait_with_timeout(command.spawn().unwrap(), T, "-o /proc/self/fd/1 > FILE");
    run.assert_success("-o /proc/self/fd/1 > FILE");
    assert_folded("-o /proc/self/fd/1 > FILE", &fs::read_to_string(&file).unwrap());
    assert_eq!(fs::metadata(&file).unwrap().ino(), inode, "the file behind the descriptor was replaced");

    // A descriptor other than stdout, as `3>FILE` in a shell gives it.
    let third = dir.join("three.folded");
    let script = format!("exec \"$0\" \"$@\" 3>'{}'", s(&third));
    let mut command = Command::new("bash");
    command.arg("-c").arg(script).arg(flameprof_bin()).args(profile_args(Path::new("/dev/fd/3")));
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let run = run_command(command, T);
    run.assert_success("-o /dev/fd/3 3>FILE");
    assert_folded("-o /dev/fd/3", &fs::read_to_string(&third).unwrap());
    assert_only(dir.path(), &["out.folded", "three.folded"], "descriptor outputs");
}

#[test]
fn a_symlink_has_its_target_replaced_and_stays_a_link() {
    root_or_skip!();
    let dir = TempDir::new("dest-link");
    let target = dir.join("real.folded");
    fs::write(&target, "old 1\n").unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.join("link.folded");
    std::os::unix::fs::symlink("real.folded", &link).unwrap();
    // A dangling link: its target is created.
    let dangling = dir.join("dangling.folded");
    std::os::unix::fs::symlink("created.folded", &dangling).unwrap();

    let run = flameprof(&profile_args(&link), T);
    run.assert_success("-o LINK");
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced by a file");
    let text = fs::read_to_string(&target).unwrap();
    assert!(!text.starts_with("old"), "the link's target was not written");
    assert_folded("-o LINK", &text);
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o7777, 0o640, "the replaced file lost its mode");

    flameprof(&profile_args(&dangling), T).assert_success("-o DANGLING-LINK");
    assert!(fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert_folded("-o DANGLING-LINK", &fs::read_to_string(dir.join("created.folded")).unwrap());
    assert_only(dir.path(), &["real.folded", "link.folded", "dangling.folded", "created.folded"], "-o LINK");
}

#[test]
fn new_files_get_the_mode_the_umask_gives() {
    root_or_skip!();
    let dir = TempDir::new("dest-umask");
    for (umask, mode) in [("077", 0o600), ("022", 0o644), ("002", 0o664)] {
        let output = dir.join(&format!("u{umask}.folded"));
        let json = dir.join(&format!("u{umask}.json"));
        let script = format!("umask {umask}; exec \"$0\" \"$@\"");
        let mut command = Command::new("bash");
        command.arg("-c").arg(script).arg(flameprof_bin()).arg("--summary-json").arg(&json).args(profile_args(&output));
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        run_command(command, T).assert_success(&format!("umask {umask}"));
        for file in [&output, &json] {
            let got = fs::metadata(file).unwrap().mode() & 0o777;
            assert_eq!(got, mode, "umask {umask}: {} has mode {got:o}", file.display());
        }
    }
}

#[test]
fn a_planted_link_at_the_old_temporary_name_is_not_followed() {
    root_or_skip!();
    let dir = TempDir::new("dest-plant");
    let victim = dir.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    let output = dir.join("out.folded");
    // Before the fix the temporary name was `.NAME.flameprof-PID.tmp`: plant
    // it as soon as the pid is known (the output is written at the end).
    let mut args = profile_args(&output);
    let last = args.len() - 1;
    args[last] = "1".into();
    let child = spawn_flameprof(&args);
    let planted = dir.join(&format!(".out.folded.flameprof-{}.tmp", child.id()));
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    wait_with_timeout(child, T, "-o with a planted link").assert_success("-o with a planted link");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n", "the planted link was followed");
    assert_folded("-o with a planted link", &fs::read_to_string(&output).unwrap());
    fs::remove_file(&planted).unwrap();
    assert_only(dir.path(), &["victim", "out.folded"], "-o with a planted link");
}

/// A 16 KiB tmpfs mounted for the test, unmounted on drop.
struct TinyFs(TempDir);

impl TinyFs {
    fn mount() -> TinyFs {
        let dir = TempDir::new("dest-tiny");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16k", "flameprof-tiny"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs failed");
        TinyFs(dir)
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_full_file_system_fails_cleanly_and_keeps_the_old_file() {
    root_or_skip!();
    let tiny = TinyFs::mount();
    let output = tiny.0.join("out.svg");
    fs::write(&output, "old svg\n").unwrap();
    // The title alone (120 KB) is far more than the 16 KiB file system holds.
    let title = "t".repeat(120_000);
    let run = flameprof(&["--title", &title, "-o", &s(&output), "--", &example("spinner"), "0.2"], T);
    assert!(!run.status.success(), "a write to a full file system exited 0");
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("flameprof: error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line:\n{}", run.stderr);
    assert!(errors[0].contains(&s(&output)) && errors[0].to_lowercase().contains("no space"), "{}", errors[0]);
    assert_eq!(fs::read_to_string(&output).unwrap(), "old svg\n", "the old file was damaged");
    assert_only(tiny.0.path(), &["out.svg"], "-o on a full file system");
}
