//! Section 2: post-processing of a 30 s system-wide recording of a busy
//! machine (FLAMEPROF_BENCH_RECORD_SECS), and the samples lost meanwhile.

use std::process::{Child, Command, Stdio};

use crate::ctx::Ctx;
use crate::knobs::env_f64;
use crate::parse::line_numbers;
use crate::process::{Ran, check, die, run, signal};
use crate::table::print_table;

pub fn bench(ctx: &mut Ctx) {
    let secs = env_f64("FLAMEPROF_BENCH_RECORD_SECS", 30.0);
    let svg = ctx.tmp.join("system.svg");
    let ran = record_busy_machine(ctx, secs, Command::new(&ctx.flameprof).args(["--call-graph", "fp", "-o"]).arg(&svg));
    check(&ran, "flameprof -a -d");
    let e = &ran.stderr;
    let recorded = line_numbers(e, "recorded").and_then(|n| n.first().copied()).unwrap_or(f64::NAN);
    let post = line_numbers(e, "post-processing").and_then(|n| n.last().copied()).unwrap_or(f64::NAN);
    let sm = line_numbers(e, "samples:").unwrap_or_default();
    let (kept, lost) = (sm.first().copied().unwrap_or(f64::NAN), sm.get(1).copied().unwrap_or(f64::NAN));
    let st = line_numbers(e, "stacks:").unwrap_or_default();
    let pr = line_numbers(e, "processes:").unwrap_or_default();
    let lost_share = lost / (kept + lost);
    let beyond = ran.wall.as_secs_f64() - secs;
    let svg_bytes = std::fs::metadata(&svg).map(|m| m.len()).unwrap_or(0);
    let g = |v: &Vec<f64>, i: usize| v.get(i).map_or("?".into(), |x| format!("{x:.0}"));
    let rows = vec![
        vec!["post-processing (flameprof's summary)".into(), format!("{post:.3} s")],
        vec![format!("wall time − {secs} s (includes start-up)"), format!("{beyond:.3} s")],
        vec!["recording reported".into(), format!("{recorded:.2} s")],
        vec!["samples recorded / lost".into(), format!("{kept:.0} / {lost:.0} ({:.3} %)", 100.0 * lost_share)],
        vec!["kernel / user stacks unreadable".into(), format!("{} / {}", g(&st, 0), g(&st, 1))],
        vec!["stacks at the depth limit".into(), g(&st, 2)],
        vec!["processes / distinct stacks".into(), format!("{} / {}", g(&pr, 0), g(&pr, 1))],
        vec!["unresolved frames".into(), pr.get(2).map_or("?".into(), |x| format!("{x:.2} %"))],
        vec!["SVG size".into(), format!("{:.1} KiB", svg_bytes as f64 / 1024.0)],
    ];
    print_table(
        &format!("2. Post-processing: {secs} s system-wide recording at 99 Hz of a busy machine"),
        &["figure", "value"],
        &rows,
    );
    ctx.verdict("post-processing time", format!("{post:.3} s"), "< 1 s", Some(post < 1.0));
    ctx.verdict(
        &format!("lost samples ({secs} s, -a, 99 Hz)"),
        format!("{:.3} % ({lost:.0} of {:.0})", 100.0 * lost_share, kept + lost),
        "< 0.1 %",
        Some(lost_share < 0.001),
    );
}

/// Runs `flameprof` (with its output arguments) as `-a -F 99 -d SECS`, a
/// system-wide recording of a busy machine: the example workloads and a
/// shell loop run for the recording's length.
pub fn record_busy_machine(ctx: &Ctx, secs: f64, flameprof: &mut Command) -> Ran {
    let load = busy_machine(ctx, secs);
    let ran = run(flameprof.args(["-a", "-F", "99", "-d", &format!("{secs}")]), 0);
    for mut child in load {
        signal(child.id(), libc::SIGKILL);
        let _ = child.wait();
    }
    ran
}

/// Starts the background load for `secs` seconds. It ends just before a
/// recording of that length does, so post-processing is timed on its own,
/// and the symbolizer has to cope with processes that exited during the
/// recording.
fn busy_machine(ctx: &Ctx, secs: f64) -> Vec<Child> {
    let s = format!("{secs}");
    let mut load: Vec<Child> = Vec::new();
    let mut bg = |mut cmd: Command| {
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        load.push(cmd.spawn().unwrap_or_else(|e| die(&format!("background load: {e}"))));
    };
    let mut c = Command::new(ctx.example("cpu_split"));
    c.args([&s, "3"]);
    bg(c);
    let mut c = Command::new(ctx.example("recursion"));
    c.args(["150", &s]);
    bg(c);
    let mut c = Command::new(ctx.example("syscall_loop"));
    c.arg(&s);
    bg(c);
    let mut c = Command::new(ctx.example("threads"));
    c.args([&format!("{}", (secs - 0.5).max(0.1)), "2"]);
    bg(c);
    // A shell loop: many short-lived processes (fork/exec, page faults, file
    // reads, pipes, sorting) in system binaries and libraries.
    let mut c = Command::new("timeout");
    c.args([
        &s,
        "sh",
        "-c",
        "while :; do ls -l /usr/lib /usr/bin | sort -k5 -n | tail -3 >/dev/null; \
         grep -c model /proc/cpuinfo >/dev/null; \
         sha256sum /etc/services | cut -c1-8 >/dev/null; \
         find /usr/share/doc -maxdepth 2 -name '*.gz' | head -50 | xargs -r gzip -dc | wc -l >/dev/null; \
         sleep 0.01; done",
    ]);
    bg(c);
    load
}
