//! `jit [SECONDS] [MAP]` — JIT code: machine code written at run time into
//! anonymous memory, named only by the perf map the program writes, as JIT
//! runtimes do. Runs for `SECONDS` (default 5, fractions allowed) of wall
//! time.
//!
//! It maps an anonymous read-write region, writes two x86-64 functions into
//! it, makes it read-execute (`mprotect`), and writes `/tmp/perf-PID.map`
//! (PID being its own pid) with their ranges and names `jit_hot` and
//! `jit_cold`. Both keep a frame pointer (`push rbp; mov rbp, rsp`, a
//! counted loop, `pop rbp; ret`) and run the same loop body, `jit_hot(n)`
//! 3n times and `jit_cold(n)` n times: the leaf of a sample is `jit_hot`
//! with share 0.75 and `jit_cold` with 0.25 (of the samples in JIT code,
//! nearly all of them). Both are called through function pointers from
//! `jit::run_jit_code`, called from `jit::main`: a frame-pointer walk from
//! the JIT code finds them above it. Rounds run a pseudo-random number of
//! units (as in `cpu_split`), so a periodic sampler cannot lock onto them.
//!
//! MAP says what becomes of the perf map:
//! - `keep` (the default): left behind at exit, as JIT runtimes leave theirs;
//! - `remove`: deleted at exit (a profiler must have read it before);
//! - `garbage`: malformed lines (garbage, numbers too large, empty ranges,
//!   bytes that are not UTF-8) around one good entry, for `jit_cold`:
//!   `jit_hot` stays unnamed; deleted at exit;
//! - `none`: no map at all.
//!
//! x86-64 only.

use flameprof_examples::{args, die, seconds_arg};
use std::time::Instant;

/// Loop iterations of `jit_cold` per unit of work (`jit_hot` runs 3 times as many).
const UNIT: u64 = 200_000;

/// Most units in one round.
const MAX_UNITS_PER_ROUND: u64 = 16;

/// `jit_hot(n)`: 3n rounds of `add rax, rcx; dec rcx`, in its own frame.
const JIT_HOT: &[u8] = &[
    0x55, // push rbp
    0x48, 0x89, 0xe5, // mov rbp, rsp
    0x48, 0x8d, 0x0c, 0x7f, // lea rcx, [rdi + rdi*2]
    0x31, 0xc0, // xor eax, eax
    0x48, 0x85, 0xc9, // test rcx, rcx
    0x74, 0x08, // jz done
    0x48, 0x01, 0xc8, // loop: add rax, rcx
    0x48, 0xff, 0xc9, // dec rcx
    0x75, 0xf8, // jnz loop
    0x5d, // done: pop rbp
    0xc3, // ret
];

/// `jit_cold(n)`: n rounds of the same loop.
const JIT_COLD: &[u8] = &[
    0x55, // push rbp
    0x48, 0x89, 0xe5, // mov rbp, rsp
    0x48, 0x89, 0xf9, // mov rcx, rdi
    0x31, 0xc0, // xor eax, eax
    0x48, 0x85, 0xc9, // test rcx, rcx
    0x74, 0x08, // jz done
    0x48, 0x01, 0xc8, // loop: add rax, rcx
    0x48, 0xff, 0xc9, // dec rcx
    0x75, 0xf8, // jnz loop
    0x5d, // done: pop rbp
    0xc3, // ret
];

/// Where `jit_cold` starts in the region (`jit_hot` starts at 0).
const COLD_OFFSET: usize = 64;

const REGION: usize = 4096;

type JitFn = extern "C" fn(u64) -> u64;

/// What becomes of the perf map.
#[derive(Clone, Copy, PartialEq)]
enum Map {
    Keep,
    Remove,
    Garbage,
    None,
}

/// Maps the region, writes both functions, makes it executable.
fn compile() -> (JitFn, JitFn, u64) {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory; the result is checked.
    let region = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            REGION,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if region == libc::MAP_FAILED {
        die("mmap of the code region failed");
    }
    // SAFETY: the region is REGION bytes, writable and ours alone; both
    // functions fit in it without overlapping (checked by the asserts).
    unsafe {
        assert!(JIT_HOT.len() <= COLD_OFFSET && COLD_OFFSET + JIT_COLD.len() <= REGION);
        let base = region.cast::<u8>();
        std::ptr::write_bytes(base, 0xcc, REGION); // int3 between and after them
        std::ptr::copy_nonoverlapping(JIT_HOT.as_ptr(), base, JIT_HOT.len());
        std::ptr::copy_nonoverlapping(JIT_COLD.as_ptr(), base.add(COLD_OFFSET), JIT_COLD.len());
    }
    // SAFETY: the region is the mapping made above, page-aligned, REGION long.
    if unsafe { libc::mprotect(region, REGION, libc::PROT_READ | libc::PROT_EXEC) } != 0 {
        die("mprotect of the code region failed");
    }
    let base = region as usize;
    // SAFETY: each address is the start of a complete function written above
    // that follows the SysV calling convention for `extern "C" fn(u64) ->
    // u64`: it reads rdi, clobbers only rax, rcx and flags (caller-saved),
    // restores rbp and rsp, and returns. The region stays mapped (never
    // unmapped) and executable for the life of the process.
    let (hot, cold) =
        unsafe { (std::mem::transmute::<usize, JitFn>(base), std::mem::transmute::<usize, JitFn>(base + COLD_OFFSET)) };
    (hot, cold, base as u64)
}

/// The perf map's text: `START SIZE name` lines, in hex.
fn perf_map(base: u64, map: Map) -> Vec<u8> {
    let hot = format!("{base:x} {:x} jit_hot\n", JIT_HOT.len());
    let cold = format!("{:x} {:x} jit_cold\n", base + COLD_OFFSET as u64, JIT_COLD.len());
    if map != Map::Garbage {
        return format!("{hot}{cold}").into_bytes();
    }
    let mut text = b"this is not a perf map line\n".to_vec();
    text.extend_from_slice(format!("{base:x}\n{base:x} 0 empty_range\n").as_bytes());
    text.extend_from_slice(b"ffffffffffffffff ffffffffffffffff overflowing_range\n");
    text.extend_from_slice(b"123456789abcdef0123456789 10 too_many_digits\n-1 -1 negative\n");
    text.extend_from_slice(cold.as_bytes());
    text.extend_from_slice(b"\x00\x01\xff\xfe not utf-8 \xc3\x28\n");
    text.extend_from_slice(format!("{base:x} zz jit_hot\n").as_bytes());
    text
}

/// Units in the next round, 1..=MAX_UNITS_PER_ROUND (xorshift, fixed seed).
fn units_in_next_round(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    1 + *state % MAX_UNITS_PER_ROUND
}

/// Calls the JIT code until the deadline: the frame above it.
#[inline(never)]
fn run_jit_code(hot: JitFn, cold: JitFn, deadline: Instant) -> u64 {
    let mut acc = 0u64;
    let mut rng = 0x853c_49e6_748f_ea9bu64;
    while Instant::now() < deadline {
        let n = UNIT * units_in_next_round(&mut rng);
        acc ^= hot(std::hint::black_box(n));
        acc ^= cold(std::hint::black_box(n));
    }
    std::hint::black_box(acc)
}

fn main() {
    let args = args("[SECONDS] [keep|remove|garbage|none]", 2);
    let duration = seconds_arg(&args, 0, "SECONDS", 5.0);
    let map = match args.get(1).map(String::as_str) {
        None | Some("keep") => Map::Keep,
        Some("remove") => Map::Remove,
        Some("garbage") => Map::Garbage,
        Some("none") => Map::None,
        Some(other) => die(&format!("invalid MAP {other:?}: expected keep, remove, garbage or none")),
    };
    let (hot, cold, base) = compile();
    let path = format!("/tmp/perf-{}.map", std::process::id());
    if map != Map::None
        && let Err(err) = std::fs::write(&path, perf_map(base, map))
    {
        die(&format!("cannot write {path}: {err}"));
    }
    let deadline = Instant::now() + duration;
    std::hint::black_box(run_jit_code(hot, cold, deadline));
    if matches!(map, Map::Remove | Map::Garbage) {
        let _ = std::fs::remove_file(&path);
    }
}
