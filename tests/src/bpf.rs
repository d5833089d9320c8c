//! BPF programs loaded in the kernel: none may be left behind by a run.

use std::time::{Duration, Instant};

/// Ids of all BPF programs loaded in the kernel (bpf(BPF_PROG_GET_NEXT_ID)).
/// None when the syscall is not usable.
pub fn loaded_bpf_program_ids() -> Option<Vec<u32>> {
    const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
    let mut ids = Vec::new();
    let mut start = 0u32;
    loop {
        // union bpf_attr { struct { __u32 start_id; __u32 next_id; __u32 open_flags; } }
        let mut attr = [0u32; 4];
        attr[0] = start;
        // SAFETY: `attr` is a live, writable 16-byte bpf_attr prefix; the kernel reads and writes at most
        // `size_of_val(&attr)` bytes of it.
        let r = unsafe {
            libc::syscall(libc::SYS_bpf, BPF_PROG_GET_NEXT_ID, attr.as_mut_ptr(), std::mem::size_of_val(&attr) as u32)
        };
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
