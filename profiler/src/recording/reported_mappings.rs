//! The side-band's reports put to use: every executable mapping of a
//! followed process, learnt when it is made, goes to the symbolizer (its
//! file opened while the process lives); a process announced by the kernel
//! side gets the mappings of the image its key names (see
//! `sideband::timeline`) instead of a read of /proc that may come too late
//! or show the program it exec'd since.
use symbolize::{ReportedMapping, Symbolizer};

use super::sideband::{
    Sideband, SidebandStats, boottime_ns,
    record::{FileIdentity, MappingRecord},
    timeline::{Change, Follow, Timeline},
};
use super::snapshots::Snapshots;
use crate::error::Result;

/// Images that ended this long ago are forgotten (their processes were
/// announced and installed long before, or had no samples).
const KEEP_ENDED_NS: u64 = 30_000_000_000;

pub struct ReportedMappings {
    sideband: Sideband,
    timeline: Timeline,
    /// Records stamped before this are applied: a process that started
    /// later may still have records on their way.
    applied_until_ns: u64,
    /// Processes symbolized from what the kernel reported.
    pub processes_installed: u64,
    /// Mappings made over a file's code (pid, when), since the last
    /// `take_replaced_code`.
    replaced_code: Vec<(u32, u64)>,
}

impl ReportedMappings {
    pub fn open(follow: Follow) -> Result<Self> {
        Ok(ReportedMappings {
            sideband: Sideband::open()?,
            timeline: Timeline::new(follow),
            applied_until_ns: 0,
            processes_installed: 0,
            replaced_code: Vec::new(),
        })
    }

    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.sideband.fds()
    }

    pub fn stats(&self) -> SidebandStats {
        self.sideband.stats
    }

    /// Reads the rings (everything when `at_end`) and applies the records.
    /// Returns the pids whose latest image changed (a new program, a new
    /// mapping): their unwind tables may be written again.
    pub fn update(&mut self, symbolizer: &mut Symbolizer, snapshots: &mut Snapshots, at_end: bool) -> Vec<u32> {
        let now_ns = boottime_ns();
        let records = self.sideband.read((!at_end).then_some(now_ns));
        self.applied_until_ns = if at_end { u64::MAX } else { now_ns.saturating_sub(super::sideband::HOLD_BACK_NS) };
        let mut changed = Vec::new();
        for record in &records {
            match self.timeline.apply(record) {
                Change::Nothing => {}
                Change::Mapped { mapping, mapped_ns, installed, replaces_code } => {
                    if replaces_code {
                        self.replaced_code.push((mapping.pid, mapped_ns));
                    }
                    // Opened now, while the process most likely lives:
                    // map_files reaches a file deleted or replaced since.
                    let pid = mapping.pid;
                    let made = reported(&(mapped_ns, mapping));
                    symbolizer.hold_reported_file(pid, &made);
                    if installed {
                        symbolizer.add_reported_mapping(pid, &made);
                    }
                    changed.push(pid);
                }
                // What was read of the pid is of its earlier program.
                Change::NewImage { pid } => {
                    snapshots.stop_reading(symbolizer, pid);
                    changed.push(pid);
                }
            }
        }
        self.timeline.forget_ended(now_ns.saturating_sub(KEEP_ENDED_NS));
        changed.sort_unstable();
        changed.dedup();
        changed
    }

    /// The mappings of the pid's latest image, when the kernel reported
    /// all of them and it still runs, and the start its keys carry when it
    /// is known (announced; else 0, which the table walker takes for any).
    pub fn latest_image(&self, pid: u32, announced_start_ns: u64) -> Option<(u64, Vec<ReportedMapping>)> {
        let image = self.timeline.latest_complete(pid)?;
        let started_ns = if self.timeline.latest_installed(pid) { announced_start_ns } else { 0 };
        Some((started_ns, image.mappings.iter().map(reported).collect()))
    }

    /// The mappings made over a file's code (pid, when) read since the last
    /// call: each begins a new mapping generation of its process.
    pub fn take_replaced_code(&mut self) -> Vec<(u32, u64)> {
        std::mem::take(&mut self.replaced_code)
    }

    /// Records stamped before this are applied (see `update`).
    pub fn applied_until_ns(&self) -> u64 {
        self.applied_until_ns
    }

    /// Whether an announcement of (pid, start) must wait for the next
    /// update: the process began after the records applied so far.
    pub fn not_caught_up(&self, started_ns: u64) -> bool {
        started_ns >= self.applied_until_ns
    }

    /// Every mapping of the image a key (pid, start) names, when the kernel
    /// reported all of them (for the unwind tables).
    pub fn complete_image(&self, pid: u32, started_ns: u64) -> Option<Vec<ReportedMapping>> {
        let image = self.timeline.image(pid, started_ns).filter(|image| image.complete)?;
        Some(image.mappings.iter().map(reported).collect())
    }

    /// The mappings and name of the image a key (pid, start) names, when
    /// the kernel reported all of them (a program run during the recording).
    pub fn take_image(&mut self, pid: u32, started_ns: u64) -> Option<(Vec<ReportedMapping>, Option<String>)> {
        let image = self.timeline.install(pid, started_ns)?;
        self.processes_installed += 1;
        Some((image.mappings.iter().map(reported).collect(), image.name))
    }
}

/// A record as the symbolizer takes it.
fn reported((mapped_ns, mapping): &(u64, MappingRecord)) -> ReportedMapping {
    let (dev, inode) = match &mapping.identity {
        FileIdentity::DeviceInode { dev, inode } => (*dev, *inode),
        // Not asked for (attr.build_id off), but decoded: a key of its own.
        FileIdentity::BuildId(id) => (build_id_key(id), 0),
    };
    ReportedMapping {
        start: mapping.start,
        end: mapping.start.saturating_add(mapping.len),
        file_offset: mapping.offset,
        dev,
        inode,
        name: mapping.filename.clone(),
        mapped_ns: *mapped_ns,
    }
}

/// A device number no real device has, from a build-id (FNV-1a).
fn build_id_key(id: &[u8]) -> u64 {
    let hash =
        id.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3));
    hash | 1 << 63
}
