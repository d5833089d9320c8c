//! The per-CPU event counters of the BPF side, summed over CPUs.
use aya::maps::{Map, PerCpuArray};
use profiler_ebpf::counter;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Counters {
    values: Vec<u64>,
}

impl Counters {
    pub fn read(map: &Map) -> Result<Self> {
        let array: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|e| Error::bpf("opening the counters", e))?;
        let mut values = Vec::with_capacity(counter::COUNT as usize);
        for index in 0..counter::COUNT {
            let per_cpu = array.get(&index, 0).map_err(|e| Error::bpf("reading the counters", e))?;
            values.push(per_cpu.iter().sum());
        }
        Ok(Counters { values })
    }

    /// The value of one `profiler_ebpf::counter` index.
    pub fn get(&self, index: u32) -> u64 {
        self.values.get(index as usize).copied().unwrap_or(0)
    }
}
