//! What this kernel's BPF offers flameprof, probed once at start (the
//! kernel is asked, its version string is not read): each feature flameprof
//! can lack has one line naming it, the first Linux that has it, and what
//! still works without it.
use std::{path::Path, sync::OnceLock};

use aya::{
    maps::MapType,
    programs::ProgramType,
    sys::{BpfHelper, is_helper_supported, is_map_supported},
};

use super::map_probe;

pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// A kernel feature that flameprof uses where it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// BPF_MAP_TYPE_RINGBUF: how new processes are announced; every
    /// recording needs it.
    RingBuffer,
    /// Hash map keys larger than 512 bytes: the maps of whole stacks
    /// (counts of stacks whose id collided, waits joined with wakers).
    LargeHashKeys,
    /// The kernel's BTF (/sys/kernel/btf/vmlinux): tp_btf programs and the
    /// struct offsets the programs read.
    Btf,
    /// The bpf_task_pt_regs helper: a task's user registers from the
    /// kernel, for the table walker and stack copies.
    TaskPtRegs,
    /// Hash maps allocated as used (BPF_F_NO_PREALLOC) in perf_event programs.
    AllocatedMapsInSamplers,
    /// A verifier that accepts the frame-pointer off-CPU program within its
    /// budget of a million instructions (5.15's gives up, though it takes
    /// the table walker's; 6.1's, the next tested, takes both). Only loading
    /// the program tells: not probed at start.
    OffCpuVerifier,
}

impl Feature {
    pub const ALL: [Feature; 6] = [
        Feature::RingBuffer,
        Feature::LargeHashKeys,
        Feature::Btf,
        Feature::TaskPtRegs,
        Feature::AllocatedMapsInSamplers,
        Feature::OffCpuVerifier,
    ];

    /// Whether a recording cannot run at all without it.
    pub fn every_recording_needs(self) -> bool {
        matches!(self, Feature::RingBuffer | Feature::LargeHashKeys)
    }

    /// A stable name for machines (`doctor --json`).
    pub fn id(self) -> &'static str {
        match self {
            Feature::RingBuffer => "ring_buffer",
            Feature::LargeHashKeys => "large_hash_keys",
            Feature::Btf => "btf",
            Feature::TaskPtRegs => "bpf_task_pt_regs",
            Feature::AllocatedMapsInSamplers => "perf_event_allocated_maps",
            Feature::OffCpuVerifier => "off_cpu_fp_verifier",
        }
    }

    /// What it is, for people.
    pub fn name(self) -> &'static str {
        match self {
            Feature::RingBuffer => "the BPF ring buffer",
            Feature::LargeHashKeys => "hash map keys over 512 bytes",
            Feature::Btf => "BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y; tp_btf programs)",
            Feature::TaskPtRegs => "the bpf_task_pt_regs helper",
            Feature::AllocatedMapsInSamplers => "hash maps allocated as used in perf_event programs",
            Feature::OffCpuVerifier => "a BPF verifier that accepts the frame-pointer off-CPU program",
        }
    }

    /// The first Linux release that has it.
    pub fn since(self) -> &'static str {
        match self {
            Feature::RingBuffer => "5.8",
            Feature::LargeHashKeys => "5.11",
            Feature::Btf => "5.5",
            Feature::TaskPtRegs => "5.15",
            Feature::AllocatedMapsInSamplers | Feature::OffCpuVerifier => "6.1",
        }
    }

    /// What needs it.
    pub fn needed_by(self) -> &'static str {
        match self {
            Feature::RingBuffer => "every recording",
            Feature::LargeHashKeys => "every recording: the maps that count whole stacks",
            Feature::Btf => "off-CPU, --wall, following -- CMD's children and --call-graph table",
            Feature::TaskPtRegs => "--call-graph table (the default) and --call-graph dwarf",
            Feature::AllocatedMapsInSamplers => "on-CPU count maps sized for 131072 stacks",
            Feature::OffCpuVerifier => "--off-cpu, --wall and --wakers with --call-graph fp",
        }
    }

    /// What flameprof does without it.
    pub fn without(self) -> &'static str {
        match self {
            Feature::RingBuffer | Feature::LargeHashKeys => {
                "nothing can be recorded here; `flameprof doctor`, and `report` and `diff` of saved profiles, work"
            }
            Feature::Btf => "on-CPU profiling of -p and -a with --call-graph fp still works",
            Feature::TaskPtRegs => {
                "user stacks are walked with frame pointers (--call-graph fp), on-CPU and off-CPU alike"
            }
            Feature::AllocatedMapsInSamplers => {
                "the samplers' hash maps are preallocated instead, each within 8 MiB of kernel memory (22 MiB in all), so on-CPU counts hold 32768 stacks (not 131072) and table walks 1024 processes; everything else works"
            }
            Feature::OffCpuVerifier => {
                "off-CPU with the table walker (the default where bpf_task_pt_regs exists) and on-CPU profiling still work"
            }
        }
    }

    /// The one line that says it is missing.
    pub fn missing_line(self) -> String {
        format!(
            "this kernel lacks {} (Linux {}+, needed by {}): {}",
            self.name(),
            self.since(),
            self.needed_by(),
            self.without()
        )
    }
}

/// What the probes found; None where a probe could not run (without
/// privileges), which the programs' load then decides.
#[derive(Debug, Clone, Copy)]
pub struct KernelFeatures {
    found: [Option<bool>; Feature::ALL.len()],
}

impl KernelFeatures {
    /// This kernel's, probed on first use.
    pub fn get() -> &'static KernelFeatures {
        static FEATURES: OnceLock<KernelFeatures> = OnceLock::new();
        FEATURES.get_or_init(KernelFeatures::probe)
    }

    fn probe() -> KernelFeatures {
        let found = Feature::ALL.map(|feature| match feature {
            Feature::RingBuffer => is_map_supported(MapType::RingBuf).ok(),
            // The largest key of the object: a wait joined with its waker.
            Feature::LargeHashKeys => {
                map_probe::hash_map_takes_keys_of(size_of::<profiler_ebpf::WokenKey>() as u32).ok()
            }
            Feature::Btf => Some(Path::new(KERNEL_BTF).exists()),
            Feature::TaskPtRegs => is_helper_supported(ProgramType::PerfEvent, BpfHelper::BPF_FUNC_task_pt_regs).ok(),
            Feature::AllocatedMapsInSamplers => map_probe::perf_event_may_use_allocated_maps().ok(),
            // Loading the program takes the verifier's time: `doctor` does,
            // a recording finds out as it loads.
            Feature::OffCpuVerifier => None,
        });
        KernelFeatures { found }
    }

    /// Whether the probe found `feature`: Some(true) or Some(false), None
    /// when it could not tell.
    pub fn probed(&self, feature: Feature) -> Option<bool> {
        self.found[Feature::ALL.iter().position(|&f| f == feature).expect("every feature is in ALL")]
    }

    /// Whether `feature` is known to be missing.
    pub fn lacks(&self, feature: Feature) -> bool {
        self.probed(feature) == Some(false)
    }

    /// The first missing feature among `needed`, if any.
    pub fn first_missing(&self, needed: &[Feature]) -> Option<Feature> {
        needed.iter().copied().find(|&feature| self.lacks(feature))
    }
}

#[cfg(test)]
mod tests {
    use super::Feature;

    #[test]
    fn each_missing_line_names_the_feature_its_release_and_what_still_works() {
        for feature in Feature::ALL {
            let line = feature.missing_line();
            assert!(line.contains(feature.name()) && line.contains(&format!("Linux {}+", feature.since())), "{line}");
            assert!(line.ends_with(feature.without()), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
