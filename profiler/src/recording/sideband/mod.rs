//! Mappings from the kernel, as they happen: side-band perf events (one per
//! CPU) report every executable mapping, exec, fork and exit when it
//! happens, so a process that lived 20 ms is symbolized like one that lived
//! 20 s, and an exec'd process's two programs each keep their own mappings.
//! `event` opens one CPU's event and maps its ring, `ring` reads records out
//! of it, `record` decodes them, `timeline` keeps what they say per process.
mod event;
pub mod record;
pub mod ring;
pub mod timeline;

use serde::Serialize;

use crate::error::{Error, Result};
use event::SidebandEvent;
use record::Record;

/// Records stamped within this much of the read are kept for the next
/// pass: a record of another CPU stamped earlier may still be on its way
/// into its ring, and records are applied in time order.
pub(crate) const HOLD_BACK_NS: u64 = 1_000_000;
pub(crate) const HOLD_BACK: std::time::Duration = std::time::Duration::from_nanos(HOLD_BACK_NS);

/// What the side-band events delivered, for the summary.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct SidebandStats {
    pub mappings: u64,
    pub execs: u64,
    pub forks: u64,
    pub exits: u64,
    /// Records the kernel dropped because a ring was full (PERF_RECORD_LOST):
    /// mappings of those moments may be missing (then /proc is read).
    pub lost: u64,
    /// Records too short for their type or with a size that made no sense.
    pub malformed: u64,
}

pub struct Sideband {
    events: Vec<SidebandEvent>,
    /// Records read but stamped too recently to apply yet.
    held: Vec<Record>,
    scratch: Vec<u8>,
    pub stats: SidebandStats,
}

impl Sideband {
    /// Opens one event per online CPU; every one is closed again on error.
    pub fn open() -> Result<Self> {
        let cpus =
            aya::util::online_cpus().map_err(|(what, source)| Error::OnlineCpus { what: what.to_string(), source })?;
        let events = cpus
            .into_iter()
            .map(|cpu| SidebandEvent::open(cpu).map_err(|source| Error::Sideband { cpu, source }))
            .collect::<Result<Vec<_>>>()?;
        Ok(Sideband { events, held: Vec::new(), scratch: Vec::new(), stats: SidebandStats::default() })
    }

    /// Descriptors that poll readable once a ring is a quarter full.
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.events.iter().map(SidebandEvent::fd)
    }

    /// Records stamped before `now_ns - HOLD_BACK_NS` (all of them when
    /// `now_ns` is None: the end), in time order.
    pub fn read(&mut self, now_ns: Option<u64>) -> Vec<Record> {
        let mut records = std::mem::take(&mut self.held);
        let stats = &mut self.stats;
        for event in &mut self.events {
            let pass = event.drain(&mut self.scratch, |bytes| match record::parse(bytes) {
                Some(record) => {
                    match &record {
                        Record::Mapping { .. } => stats.mappings += 1,
                        Record::Comm { exec: true, .. } => stats.execs += 1,
                        Record::Fork { .. } => stats.forks += 1,
                        Record::Exit { .. } => stats.exits += 1,
                        Record::Lost { lost } => stats.lost += lost,
                        Record::Comm { .. } | Record::Other => {}
                    }
                    records.push(record);
                }
                None => stats.malformed += 1,
            });
            stats.malformed += pass.malformed;
        }
        // Stable: a CPU's records of one instant stay in their order.
        records.sort_by_key(Record::time);
        if let Some(now_ns) = now_ns {
            let cutoff = now_ns.saturating_sub(HOLD_BACK_NS);
            let applied = records.partition_point(|record| record.time() < cutoff);
            self.held = records.split_off(applied);
        }
        records
    }
}

/// CLOCK_BOOTTIME now, in ns: the records' clock (symbolize's, which
/// stamps what it reads with the same clock).
pub use symbolize::boottime_ns;
