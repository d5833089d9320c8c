//! JIT code named through perf maps, on a live fixture process with
//! anonymous executable memory: named while it runs, after the map grows,
//! after it exits and its map is deleted, and in a container (its own pid
//! namespace and /tmp).

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use symbolize::{Frame, Resolution, Symbolizer, UnresolvedReason};

fn jit(name: &str) -> Frame {
    Frame {
        function: name.to_owned(),
        module: Some("[jit]".to_owned()),
        file: None,
        line: None,
        inlined: false,
        jit: true,
        resolved: Resolution::Resolved,
    }
}

/// The perf map of `pid` in this /tmp, removed on drop.
struct MapFile(PathBuf);

impl MapFile {
    fn at(path: PathBuf, text: &str) -> MapFile {
        std::fs::write(&path, text).unwrap();
        MapFile(path)
    }

    fn append(&self, text: &str) {
        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(&self.0).unwrap().write_all(text.as_bytes()).unwrap();
    }
}

impl Drop for MapFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn anon_exec_fixture(dir: &std::path::Path) -> PathBuf {
    common::gcc("anon_exec.c", dir, "anon-exec", &["-O1"])
}

#[test]
fn jit_code_is_named_by_the_perf_map_and_the_map_is_read_again_when_it_grows() {
    let dir = common::temp_dir("perf-map-live");
    let proc_ = common::spawn(&anon_exec_fixture(&dir), 1);
    let (pid, region) = (proc_.pid(), proc_.addrs["jit_region"]);
    let mut sym = Symbolizer::new();
    // No map yet: the offset into the anonymous mapping, counted as JIT code
    // without an entry.
    let out = sym.symbolize_user(pid, &[region + 0x10]);
    assert_eq!(out[0].frames[0].function, "[anon]+0x10");
    assert_eq!(out[0].frames[0].resolved, Resolution::Unresolved(UnresolvedReason::JitWithoutMapEntry));

    let map = MapFile::at(
        PathBuf::from(format!("/tmp/perf-{pid}.map")),
        &format!("{region:x} 20 jit_first\nnot a line\n{:x} 10 Function: with spaces /app.js:3\n", region + 0x100),
    );
    let out = sym.symbolize_user(pid, &[region + 0x10, region + 0x108, region + 0x200]);
    assert_eq!(out[0].frames, [jit("jit_first")]);
    assert_eq!(out[1].frames, [jit("Function: with spaces /app.js:3")]);
    assert_eq!(out[2].frames[0].resolved, Resolution::Unresolved(UnresolvedReason::JitWithoutMapEntry));

    // More code compiled, some over older code: the later entry wins.
    map.append(&format!("{:x} 100 jit_second\n{region:x} 8 jit_reused\n", region + 0x200));
    let out = sym.symbolize_user(pid, &[region + 0x4, region + 0x10, region + 0x210]);
    assert_eq!(out[0].frames, [jit("jit_reused")]);
    assert_eq!(out[1].frames, [jit("jit_first")]);
    assert_eq!(out[2].frames, [jit("jit_second")]);
    let stats = sym.perf_map_stats();
    assert_eq!((stats.maps_read, stats.entries, stats.malformed_lines), (1, 4, 1));
}

#[test]
fn names_stay_after_the_process_exits_and_its_map_is_deleted() {
    let dir = common::temp_dir("perf-map-exit");
    let mut proc_ = common::spawn(&anon_exec_fixture(&dir), 1);
    let (pid, region) = (proc_.pid(), proc_.addrs["jit_region"]);
    let map = MapFile::at(PathBuf::from(format!("/tmp/perf-{pid}.map")), &format!("{region:x} 40 jit_gone\n"));
    let mut sym = Symbolizer::new();
    // What the recording does while the process lives.
    sym.refresh_process(pid).unwrap();
    proc_.kill();
    drop(map);
    let out = sym.symbolize_user(pid, &[region + 0x20]);
    assert_eq!(out[0].frames, [jit("jit_gone")]);
}

/// The process sees itself as pid 1 and has its own /tmp: its map is
/// `/proc/PID/root/tmp/perf-1.map`, not `/tmp/perf-PID.map` here.
#[test]
fn a_process_in_a_container_is_named_through_its_own_tmp() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("!!!!! SKIPPED (needs root for namespaces): a_process_in_a_container_is_named_through_its_own_tmp");
        return;
    }
    let dir = common::temp_dir("perf-map-container");
    let bin = anon_exec_fixture(&dir);
    // /tmp is hidden by the new tmpfs: the fixture runs from a descriptor
    // opened before.
    let script = format!("exec 3<'{}' && mount -t tmpfs tmpfs /tmp && exec /proc/self/fd/3 sleep", bin.display());
    let mut unshare = Command::new("unshare")
        .args(["--pid", "--fork", "--mount", "--kill-child", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("cannot run unshare");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(unshare.stdout.take().unwrap()), &mut line).unwrap();
    let region = u64::from_str_radix(line.trim().trim_start_matches("jit_region=0x"), 16).expect("jit_region line");
    let started = Instant::now();
    let pid = loop {
        let children = std::fs::read_to_string(format!("/proc/{}/task/{0}/children", unshare.id())).unwrap();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.parse::<u32>().unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "unshare started no child");
        std::thread::sleep(Duration::from_millis(10));
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")), "{status}");
    let inside = MapFile::at(
        PathBuf::from(format!("/proc/{pid}/root/tmp/perf-1.map")),
        &format!("{region:x} 40 in_container\n"),
    );
    let decoy = MapFile::at(PathBuf::from(format!("/tmp/perf-{pid}.map")), &format!("{region:x} 40 host_file\n"));
    let mut sym = Symbolizer::new();
    let out = sym.symbolize_user(pid, &[region + 0x8]);
    assert_eq!(out[0].frames, [jit("in_container")]);
    drop((inside, decoy));
    let _ = unshare.kill();
    let _ = unshare.wait();
}
