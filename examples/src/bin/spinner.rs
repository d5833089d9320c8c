//! `spinner [SECONDS]` — burns CPU in `spinner::spin` (called from
//! `spinner::main`) for SECONDS of wall time (default 5, fractions allowed),
//! then exits. Used for "a process that exits mid-recording" and exit-status
//! tests: with the environment variable `EXIT_CODE=n` (0..=255) it exits with
//! status n at the end (default 0).

use flameprof_examples::{args, burn_until, die, seconds_arg};
use std::time::{Duration, Instant};

#[inline(never)]
fn spin(duration: Duration) -> u64 {
    burn_until!(0x5bd1_e995u64, Instant::now() + duration)
}

fn main() {
    let args = args("[SECONDS]  (env EXIT_CODE=n sets the exit status)", 1);
    let duration = seconds_arg(&args, 0, "SECONDS", 5.0);
    let code = match std::env::var("EXIT_CODE") {
        Err(std::env::VarError::NotPresent) => 0,
        Ok(s) => match s.parse::<u8>() {
            Ok(c) => c as i32,
            Err(_) => die(&format!("invalid EXIT_CODE {s:?}: expected 0 to 255")),
        },
        Err(_) => die("invalid EXIT_CODE: not valid UTF-8"),
    };
    std::hint::black_box(spin(duration));
    std::process::exit(code);
}
