//! `late_wake [SECONDS]` — one thread that sleeps SECONDS (default 2,
//! fractions allowed) in `late_wake::doze` (`nanosleep`, called from
//! `late_wake::main`), then exits. Started before a `-p` recording, it is a
//! thread already blocked when the recording begins: its wait runs from the
//! start of the recording until it wakes (or the recording ends).

use flameprof_examples::{args, nanosleep_once, seconds_arg};
use std::time::Duration;

#[inline(never)]
fn doze(d: Duration) {
    nanosleep_once!(d);
}

fn main() {
    let args = args("[SECONDS]", 1);
    doze(seconds_arg(&args, 0, "SECONDS", 2.0));
}
