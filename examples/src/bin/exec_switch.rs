//! `exec_switch [MS]` — one process, two programs: burns MS ms of CPU
//! (default 300) in `exec_switch::before_exec`, then execs the `short_lived`
//! example next to it as `short_lived --after-exec MS`, which burns as much
//! in `short_lived::after_exec`. Same pid throughout: each half must be
//! named from its own program.

use flameprof_examples::{args, burn_cpu, die, num_arg};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

#[inline(never)]
fn before_exec(cpu: Duration) -> u64 {
    burn_cpu!(0x5eed, cpu)
}

fn main() {
    let args = args("[MS]", 1);
    let ms: u64 = num_arg(&args, 0, "MS", 300, 0, 1_000_000);
    std::hint::black_box(before_exec(Duration::from_millis(ms)));
    let me = std::env::current_exe().unwrap_or_else(|e| die(&format!("cannot find own executable: {e}")));
    let next = me.with_file_name("short_lived");
    let error = Command::new(&next).args(["--after-exec", &ms.to_string()]).exec();
    die(&format!("cannot exec {}: {error}", next.display()));
}
