//! Probes of hash maps that aya does not have, with raw bpf(2) calls:
//! - may perf_event programs use hash maps whose entries are allocated as
//!   they are used (BPF_F_NO_PREALLOC)? Before Linux 6.1 the verifier
//!   refuses them there ("perf_event programs can only use preallocated
//!   hash map"). The probe creates such a map and loads a perf_event
//!   program that looks a key up in it.
//! - may a hash map's key be larger than 512 bytes (the BPF stack)? Not
//!   before Linux 5.11; flameprof counts whole stacks by key.
use std::{
    io,
    os::fd::{FromRawFd, OwnedFd},
};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_F_NO_PREALLOC: u32 = 1;
const BPF_PROG_TYPE_PERF_EVENT: u32 = 7;
const BPF_PSEUDO_MAP_FD: u8 = 1;

/// The first fields of `union bpf_attr` for BPF_MAP_CREATE; the kernel
/// zero-fills what a shorter attribute leaves out.
#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
}

/// The first fields of `union bpf_attr` for BPF_PROG_LOAD.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

/// `struct bpf_insn`: opcode, registers (dst low nibble, src high), offset,
/// immediate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

fn bpf<T>(command: libc::c_long, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a live, initialized repr(C) prefix of bpf_attr of
    // the size passed; the kernel reads at most that many bytes (and writes
    // only through pointers inside it that point to live buffers).
    let fd = unsafe { libc::syscall(libc::SYS_bpf, command, attr as *mut T, size_of::<T>() as u32) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a non-negative result of these two commands is a new file
    // descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Whether this kernel creates a hash map whose key has `key_size` bytes:
/// Ok(false) when it says the key is too big (E2BIG).
pub fn hash_map_takes_keys_of(key_size: u32) -> io::Result<bool> {
    let mut map = MapCreate { map_type: BPF_MAP_TYPE_HASH, key_size, value_size: 8, max_entries: 1, map_flags: 0 };
    match bpf(BPF_MAP_CREATE, &mut map) {
        Ok(_map) => Ok(true),
        Err(error) if error.raw_os_error() == Some(libc::E2BIG) => Ok(false),
        Err(error) => Err(error),
    }
}

/// Whether this kernel lets perf_event programs use hash maps allocated as
/// used: Ok(false) when the verifier refuses them, an error when the probe
/// could not run (no privileges, no BPF).
pub fn perf_event_may_use_allocated_maps() -> io::Result<bool> {
    let mut map = MapCreate {
        map_type: BPF_MAP_TYPE_HASH,
        key_size: 8,
        value_size: 8,
        max_entries: 1,
        map_flags: BPF_F_NO_PREALLOC,
    };
    let map = bpf(BPF_MAP_CREATE, &mut map)?;
    let map_fd = std::os::fd::AsRawFd::as_raw_fd(&map);
    // *(u64 *)(r10 - 8) = 0; r1 = map; r2 = r10 - 8; call map_lookup_elem;
    // r0 = 0; exit
    let program = [
        insn(0x7a, 10, 0, -8, 0),
        insn(0x18, 1, BPF_PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        insn(0xbf, 2, 10, 0, 0),
        insn(0x07, 2, 0, 0, -8),
        insn(0x85, 0, 0, 0, 1),
        insn(0xb7, 0, 0, 0, 0),
        insn(0x95, 0, 0, 0, 0),
    ];
    let license = c"GPL";
    let mut log = vec![0u8; 4096];
    let mut load = ProgLoad {
        prog_type: BPF_PROG_TYPE_PERF_EVENT,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 1,
        log_size: log.len() as u32,
        log_buf: log.as_mut_ptr() as u64,
    };
    match bpf(BPF_PROG_LOAD, &mut load) {
        Ok(_program) => Ok(true),
        Err(error) => {
            let text = String::from_utf8_lossy(&log);
            if error.raw_os_error() == Some(libc::EINVAL) && text.contains("preallocated") {
                Ok(false)
            } else {
                Err(error)
            }
        }
    }
}
