//! What the side-band records say about each followed process over time:
//! per pid, a list of images, one per program the pid ran (a fork starts
//! one with its parent's mappings, an exec starts an empty one), each with
//! the executable mappings made while it ran. A stack key's (pid, start)
//! picks its image: the kernel side keys a process by its start, or by the
//! time of its exec once it exec'd (profiler-ebpf's exec.rs), so the image
//! is the last one of the pid that began at or before that time.
use std::collections::{HashMap, HashSet};

use super::record::{MappingRecord, Record};

/// Slack before a fork record's time for the child's start, which the
/// kernel stamps earlier in the same fork: microseconds apart, more when
/// the forking task is preempted in between on a busy machine. An image
/// never begins before the previous process with its pid ended.
const FORK_SLACK_NS: u64 = 100_000_000;

/// One program run by one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Keys whose start is at or after this (and before the next image's
    /// begin) are of this image.
    pub begins_ns: u64,
    /// Every executable mapping of the image is known: it began during the
    /// recording (an exec, or a fork of a complete image). Otherwise the
    /// process ran before the recording and /proc tells the rest.
    pub complete: bool,
    /// The process's name after its exec.
    pub name: Option<String>,
    /// In the order they were made (a later one replaces what it overlaps),
    /// each with its record's time.
    pub mappings: Vec<(u64, MappingRecord)>,
    /// The process's exit, or the exec that replaced the image.
    pub ended_ns: Option<u64>,
}

/// Whose records are kept.
#[derive(Debug)]
pub enum Follow {
    /// Every process (`-a`).
    Everything,
    /// These processes and the processes they start.
    Descendants(HashSet<u32>),
}

/// What applying a record means for the recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Nothing,
    /// A mapping of the pid's latest image; `installed`: that image is in
    /// the symbolizer (see `install`), which gets it too; `replaces_code`:
    /// it was made over a file's code the image mapped before (a library
    /// loaded where an unloaded one was).
    Mapped {
        mapping: MappingRecord,
        mapped_ns: u64,
        installed: bool,
        replaces_code: bool,
    },
    /// The pid runs another program from now on (an exec, or a new
    /// process): what was read of it so far is of the earlier one.
    NewImage {
        pid: u32,
    },
}

#[derive(Debug)]
pub struct Timeline {
    images: HashMap<u32, Vec<Image>>,
    follow: Follow,
    /// Per pid, the begin of the image the symbolizer holds as that pid
    /// (see `install`), while it is the pid's latest.
    installed: HashMap<u32, u64>,
}

impl Timeline {
    pub fn new(follow: Follow) -> Self {
        Timeline { images: HashMap::new(), follow, installed: HashMap::new() }
    }

    /// Starts following a process.
    fn follow(&mut self, pid: u32) {
        if let Follow::Descendants(pids) = &mut self.follow {
            pids.insert(pid);
        }
    }

    fn follows(&self, pid: u32) -> bool {
        match &self.follow {
            Follow::Everything => true,
            Follow::Descendants(pids) => pids.contains(&pid),
        }
    }

    /// Applies one record (records come in time order).
    pub fn apply(&mut self, record: &Record) -> Change {
        match *record {
            Record::Fork { time, pid, ppid, .. } if pid != ppid && self.follows(ppid) => {
                self.follow(pid);
                let parent = self.latest(ppid).filter(|image| image.ended_ns.is_none()).cloned();
                let previous_end = self.latest(pid).map(|image| image.ended_ns.unwrap_or(image.begins_ns));
                let begins_ns = time.saturating_sub(FORK_SLACK_NS).max(previous_end.unwrap_or(0));
                let image = match parent {
                    Some(parent) => Image { begins_ns, ended_ns: None, ..parent },
                    None => Image { begins_ns, complete: false, name: None, mappings: Vec::new(), ended_ns: None },
                };
                self.start_image(pid, image)
            }
            Record::Comm { time, pid, tid, exec: true, ref name } if pid == tid && self.follows(pid) => {
                if let Some(image) = self.latest_mut(pid) {
                    image.ended_ns.get_or_insert(time);
                }
                let image = Image {
                    begins_ns: time,
                    complete: true,
                    name: Some(name.clone()),
                    mappings: Vec::new(),
                    ended_ns: None,
                };
                self.start_image(pid, image)
            }
            Record::Exit { time, pid, tid } if pid == tid && self.follows(pid) => {
                if let Some(image) = self.latest_mut(pid) {
                    image.ended_ns.get_or_insert(time);
                }
                if let Follow::Descendants(pids) = &mut self.follow {
                    // A later process with this pid is followed only if one
                    // of ours starts it.
                    pids.remove(&pid);
                }
                Change::Nothing
            }
            Record::Mapping { time, ref mapping } if mapping.executable && self.follows(mapping.pid) => {
                let pid = mapping.pid;
                let images = self.images.entry(pid).or_default();
                if images.is_empty() {
                    // A process that ran before the recording.
                    images.push(Image {
                        begins_ns: 0,
                        complete: false,
                        name: None,
                        mappings: Vec::new(),
                        ended_ns: None,
                    });
                }
                let latest = images.last_mut().expect("pushed above");
                let overlaps = |old: &MappingRecord| {
                    old.start < mapping.start.saturating_add(mapping.len)
                        && mapping.start < old.start.saturating_add(old.len)
                };
                // Anonymous code (JIT) is named through perf maps, where a
                // later entry wins: only a file's code needs keeping apart.
                // (The kernel names anonymous memory `//anon`.)
                let file = |name: &str| name.starts_with('/') && !name.starts_with("//");
                let replaces_code = latest.mappings.iter().any(|(_, old)| file(&old.filename) && overlaps(old));
                latest.mappings.push((time, mapping.clone()));
                let installed = self.installed.get(&pid) == Some(&latest.begins_ns);
                Change::Mapped { mapping: mapping.clone(), mapped_ns: time, installed, replaces_code }
            }
            _ => Change::Nothing,
        }
    }

    fn start_image(&mut self, pid: u32, image: Image) -> Change {
        self.images.entry(pid).or_default().push(image);
        self.installed.remove(&pid);
        Change::NewImage { pid }
    }

    fn latest(&self, pid: u32) -> Option<&Image> {
        self.images.get(&pid).and_then(|images| images.last())
    }

    fn latest_mut(&mut self, pid: u32) -> Option<&mut Image> {
        self.images.get_mut(&pid).and_then(|images| images.last_mut())
    }

    /// The pid's latest image, when it is complete and running.
    pub fn latest_complete(&self, pid: u32) -> Option<&Image> {
        self.latest(pid).filter(|image| image.complete && image.ended_ns.is_none())
    }

    /// Whether the symbolizer holds the pid's latest image.
    pub fn latest_installed(&self, pid: u32) -> bool {
        self.installed.contains_key(&pid)
    }

    /// The image of the process a key (pid, start) names; start 0 (a key
    /// built from /proc) is the pid's first.
    pub fn image(&self, pid: u32, started_ns: u64) -> Option<&Image> {
        let images = self.images.get(&pid)?;
        if started_ns == 0 {
            return images.first();
        }
        let after = images.partition_point(|image| image.begins_ns <= started_ns);
        images.get(after.checked_sub(1)?)
    }

    /// The complete image of (pid, start), which the symbolizer is about to
    /// hold as `pid`: later mappings of it come back from `apply` as
    /// `Change::Mapped` while it is the pid's latest image. None when the
    /// image is not complete (or unknown): /proc has to tell.
    pub fn install(&mut self, pid: u32, started_ns: u64) -> Option<Image> {
        let image = self.image(pid, started_ns).filter(|image| image.complete)?.clone();
        if self.latest(pid).is_some_and(|latest| latest.begins_ns == image.begins_ns) {
            self.installed.insert(pid, image.begins_ns);
        }
        Some(image)
    }

    /// Forgets images that ended before `before_ns` (their processes were
    /// installed by then, or had no samples), so a long recording keeps
    /// only recent ones; and pids with nothing left.
    pub fn forget_ended(&mut self, before_ns: u64) {
        self.images.retain(|_, images| {
            images.retain(|image| image.ended_ns.is_none_or(|ended| ended >= before_ns));
            !images.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::sideband::record::FileIdentity;

    fn mapping(pid: u32, start: u64, name: &str) -> Record {
        let mapping = MappingRecord {
            pid,
            start,
            len: 0x1000,
            offset: 0,
            identity: FileIdentity::DeviceInode { dev: 1, inode: start },
            executable: true,
            filename: name.into(),
        };
        Record::Mapping { time: 0, mapping }
    }

    fn names(image: Option<&Image>) -> Vec<&str> {
        image.map(|image| image.mappings.iter().map(|(_, m)| m.filename.as_str()).collect()).unwrap_or_default()
    }

    #[test]
    fn fork_inherits_and_exec_starts_over() {
        let mut timeline = Timeline::new(Follow::Descendants(HashSet::from([10])));
        let exec = |time, pid: u32, name: &str| Record::Comm { time, pid, tid: pid, exec: true, name: name.into() };
        timeline.apply(&exec(100_000_000, 10, "make"));
        timeline.apply(&mapping(10, 0x1000, "/usr/bin/make"));
        assert_eq!(
            timeline.apply(&Record::Fork { time: 200_000_000, pid: 11, ppid: 10, tid: 11 }),
            Change::NewImage { pid: 11 }
        );
        timeline.apply(&exec(200_300_000, 11, "cc1"));
        timeline.apply(&mapping(11, 0x2000, "/usr/lib/cc1"));
        // Not followed: not a descendant.
        timeline.apply(&mapping(12, 0x3000, "/usr/bin/other"));
        assert!(timeline.image(12, 1).is_none());
        // The child's start is stamped just before its fork record.
        let child_start = 199_999_000;
        assert_eq!(names(timeline.image(11, child_start)), ["/usr/bin/make"]);
        assert_eq!(names(timeline.image(11, 200_400_000)), ["/usr/lib/cc1"]);
        assert_eq!(names(timeline.image(10, 99_000_000 + 1)), Vec::<&str>::new());
        assert_eq!(names(timeline.image(10, 100_000_001)), ["/usr/bin/make"]);
        assert!(timeline.image(11, child_start).is_some_and(|image| image.complete));
    }

    #[test]
    fn an_installed_image_gets_later_mappings_until_it_is_replaced() {
        let mut timeline = Timeline::new(Follow::Everything);
        timeline.apply(&Record::Comm { time: 5, pid: 3, tid: 3, exec: true, name: "a".into() });
        assert!(timeline.install(3, 6).is_some());
        assert!(matches!(
            timeline.apply(&mapping(3, 0x1000, "/lib/libc.so.6")),
            Change::Mapped { installed: true, .. }
        ));
        timeline.apply(&Record::Comm { time: 9, pid: 3, tid: 3, exec: true, name: "b".into() });
        assert!(matches!(timeline.apply(&mapping(3, 0x1000, "/lib/b")), Change::Mapped { installed: false, .. }));
        assert_eq!(names(timeline.image(3, 6)), ["/lib/libc.so.6"]);
        // Before the recording: not complete, /proc tells.
        timeline.apply(&mapping(4, 0x1000, "/lib/c"));
        assert!(timeline.install(4, 1).is_none());
        timeline.apply(&Record::Exit { time: 20, pid: 3, tid: 3 });
        timeline.forget_ended(21);
        assert!(timeline.image(3, 6).is_none() && timeline.image(4, 1).is_some());
    }

    #[test]
    fn a_mapping_over_a_files_code_replaces_code() {
        let mut timeline = Timeline::new(Follow::Everything);
        timeline.apply(&Record::Comm { time: 5, pid: 3, tid: 3, exec: true, name: "a".into() });
        let replaces = |change| matches!(change, Change::Mapped { replaces_code: true, .. });
        assert!(!replaces(timeline.apply(&mapping(3, 0x1000, "/lib/a.so"))));
        assert!(!replaces(timeline.apply(&mapping(3, 0x4000, "//anon"))));
        assert!(replaces(timeline.apply(&mapping(3, 0x1800, "/lib/b.so"))));
        // Over anonymous code only: not kept apart.
        assert!(!replaces(timeline.apply(&mapping(3, 0x4000, "//anon"))));
    }

    #[test]
    fn a_reused_pid_begins_after_the_earlier_process_ended() {
        let mut timeline = Timeline::new(Follow::Everything);
        timeline.apply(&Record::Comm { time: 1_000, pid: 8, tid: 8, exec: true, name: "first".into() });
        timeline.apply(&mapping(8, 0x1000, "/bin/first"));
        timeline.apply(&Record::Exit { time: 2_000, pid: 8, tid: 8 });
        timeline.apply(&Record::Fork { time: 2_500, pid: 8, ppid: 1, tid: 8 });
        // Within the fork slack of the earlier process: its exit bounds it.
        assert_eq!(names(timeline.image(8, 1_500)), ["/bin/first"]);
        assert_eq!(timeline.image(8, 2_100).map(|image| image.begins_ns), Some(2_000));
    }
}
