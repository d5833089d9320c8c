//! The FLAMEPROF_BENCH_* environment knobs (listed in main.rs); a malformed
//! value stops the bench rather than silently using the default.

use crate::process::die;

pub fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| die(&format!("{name}={v}: not a number"))),
        Err(_) => default,
    }
}

pub fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| die(&format!("{name}={v}: not an integer"))),
        Err(_) => default,
    }
}
