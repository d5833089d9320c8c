//! `libc_sort [SECONDS]` — CPU time spent in a Rust function called back
//! from C code built without frame pointers: `libc_sort::sort_rounds` sorts
//! an array with libc's `qsort` (Debian's libc keeps no frame pointers) and
//! `libc_sort::compare`, the comparison callback, burns CPU on every call.
//! For SECONDS of wall time (default 3, fractions allowed).
//!
//! Nearly every sample is in `compare`, and its true stack is
//! `main -> sort_rounds -> qsort (libc frames) -> compare`. A frame-pointer
//! walk from `compare` goes astray in libc's frames; an unwinder that reads
//! the call-frame information (.eh_frame) finds `sort_rounds` and `main`.

use flameprof_examples::{args, seconds_arg, spin_iters};
use std::time::Instant;

/// Elements per sort: enough comparisons per sort that qsort's own code is
/// a small share of the time.
const ELEMENTS: usize = 4096;

#[inline(never)]
extern "C" fn compare(a: *const libc::c_void, b: *const libc::c_void) -> libc::c_int {
    // SAFETY: qsort calls this only with pointers to elements of the u64 array it sorts.
    let (a, b) = unsafe { (*(a as *const u64), *(b as *const u64)) };
    // The work of a costly comparison, in this frame.
    std::hint::black_box(spin_iters!(0x27d4_eb2fu64 ^ a, 200));
    a.cmp(&b) as libc::c_int
}

#[inline(never)]
fn sort_rounds(deadline: Instant) -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut values = vec![0u64; ELEMENTS];
    let mut sorts = 0;
    while Instant::now() < deadline {
        for v in values.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *v = state;
        }
        // SAFETY: the pointer and length describe `values`, elements of size_of::<u64>(), and `compare` reads
        // only such elements.
        unsafe { libc::qsort(values.as_mut_ptr().cast(), ELEMENTS, size_of::<u64>(), Some(compare)) };
        sorts += 1;
    }
    std::hint::black_box(sorts)
}

fn main() {
    let args = args("[SECONDS]", 1);
    let duration = seconds_arg(&args, 0, "SECONDS", 3.0);
    std::hint::black_box(sort_rounds(Instant::now() + duration));
}
