//! BPF programs loaded in the kernel: none may be left behind by a run.

use std::time::{Duration, Instant};

/// Ids of all BPF programs loaded in the kernel (bpf(BPF_PROG_GET_NEXT_ID)).
/// None when the syscall is not usable.
pub fn loaded_bpf_program_ids() -> Option<Vec<u32>> {
    const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
    kernel_ids(BPF_PROG_GET_NEXT_ID)
}

/// Ids of all BPF maps in the kernel (bpf(BPF_MAP_GET_NEXT_ID)).
pub fn loaded_bpf_map_ids() -> Option<Vec<u32>> {
    const BPF_MAP_GET_NEXT_ID: libc::c_long = 12;
    kernel_ids(BPF_MAP_GET_NEXT_ID)
}

/// Walks one of the kernel's id lists (`command`: a *_GET_NEXT_ID).
fn kernel_ids(command: libc::c_long) -> Option<Vec<u32>> {
    let mut ids = Vec::new();
    let mut start = 0u32;
    loop {
        // union bpf_attr { struct { __u32 start_id; __u32 next_id; __u32 open_flags; } }
        let mut attr = [0u32; 4];
        attr[0] = start;
        // SAFETY: `attr` is a live, writable 16-byte bpf_attr prefix; the kernel reads and writes at most
        // `size_of_val(&attr)` bytes of it.
        let r =
            unsafe { libc::syscall(libc::SYS_bpf, command, attr.as_mut_ptr(), std::mem::size_of_val(&attr) as u32) };
        if r != 0 {
            let err = std::io::Error::last_os_error().raw_os_error();
            return if err == Some(libc::ENOENT) { Some(ids) } else { None };
        }
        start = attr[1];
        ids.push(start);
    }
}

/// Snapshot of the loaded BPF programs before a run.
pub struct BpfSnapshot(Option<Vec<u32>>);

impl BpfSnapshot {
    pub fn take() -> BpfSnapshot {
        BpfSnapshot(loaded_bpf_program_ids())
    }

    /// Asserts that no BPF program and no BPF map created after `before`
    /// (maps) and this snapshot (programs) is left after `wait` (the kernel
    /// frees some of them in deferred work after a process dies).
    pub fn assert_nothing_left(&self, maps_before: &[u32], wait: Duration, what: &str) {
        let Some(programs_before) = &self.0 else { panic!("{what}: bpf(BPF_PROG_GET_NEXT_ID) unavailable") };
        let deadline = Instant::now() + wait;
        loop {
            let programs: Vec<u32> = loaded_bpf_program_ids()
                .unwrap_or_default()
                .into_iter()
                .filter(|id| !programs_before.contains(id))
                .collect();
            let maps: Vec<u32> =
                loaded_bpf_map_ids().unwrap_or_default().into_iter().filter(|id| !maps_before.contains(id)).collect();
            if programs.is_empty() && maps.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!("{what}: BPF programs {programs:?} and maps {maps:?} still exist {wait:?} after flameprof died");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that no program loaded since the snapshot is still loaded
    /// (waiting up to 2 s for the kernel to free them).
    pub fn assert_none_left(&self, what: &str) {
        let Some(before) = &self.0 else {
            eprintln!("{what}: bpf(BPF_PROG_GET_NEXT_ID) unavailable: leftover-program check skipped");
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let now = loaded_bpf_program_ids().unwrap_or_default();
            let new: Vec<u32> = now.iter().copied().filter(|id| !before.contains(id)).collect();
            if new.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: BPF programs {new:?} were loaded during the failed run and are still \
                     loaded after flameprof exited (another profiler running at the same time \
                     would also explain this: rerun to confirm)"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
