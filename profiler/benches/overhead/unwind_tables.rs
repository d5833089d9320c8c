//! Sections 6 and 6b, the unwind tables of `--call-graph table`: what
//! compiling a file's call-frame information costs (time, kernel memory) for
//! libc, libpython and flameprof's own binary, checked against a recording's
//! summary; and (6b, its own section for its length) the tables of a
//! system-wide recording of a busy machine. The walk's cost per sample and
//! per switch is in sections 1c, 1e and 4.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use crate::ctx::Ctx;
use crate::knobs::{env_f64, env_usize};
use crate::parse::line_numbers;
use crate::post::record_busy_machine;
use crate::process::{check, run};
use crate::stats::{median, min_max};
use crate::table::print_table;

/// What one row of the kernel's table takes (profiler_ebpf::UnwindRow, as
/// the BPF array stores it).
const ROW_BYTES: usize = std::mem::size_of::<profiler_ebpf::UnwindRow>();

/// Debian's libpython, and the python3.11 binary that Debian's `python3`
/// runs (libpython linked in statically: the file a python process maps).
const PYTHON_FILES: [&str; 2] = ["/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", "/usr/bin/python3.11"];

/// The C library this binary runs with, from its own mappings.
fn libc_path() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.contains("/libc.so")).map(PathBuf::from)
}

/// Section 6: compiles each file's table FLAMEPROF_BENCH_TABLE_ROUNDS times
/// (interleaved) with `symbolize::compile_unwind_table`, the function
/// flameprof calls; then records a python run with `--call-graph table` to
/// see what flameprof's summary reports for the same work.
pub fn bench(ctx: &mut Ctx) {
    let rounds = env_usize("FLAMEPROF_BENCH_TABLE_ROUNDS", 5).max(1);
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    match libc_path() {
        Some(p) => files.push(("libc".into(), p)),
        None => eprintln!("tables: libc not found in /proc/self/maps"),
    }
    for p in PYTHON_FILES.iter().map(Path::new) {
        if p.exists() {
            files.push((p.file_name().unwrap_or_default().to_string_lossy().into_owned(), p.to_path_buf()));
        } else {
            eprintln!("tables: {} is missing: its row is left out", p.display());
        }
    }
    files.push(("flameprof".into(), ctx.flameprof.clone()));
    let mut seconds = vec![Vec::new(); files.len()];
    let mut tables = Vec::new();
    for round in 0..rounds {
        for k in 0..files.len() {
            let i = (k + round) % files.len();
            let t = Instant::now();
            let table = symbolize::compile_unwind_table(&files[i].1);
            seconds[i].push(t.elapsed().as_secs_f64());
            if round == 0 {
                tables.push((i, table));
            }
        }
    }
    tables.sort_by_key(|(i, _)| *i);
    let mut rows = Vec::new();
    for ((name, path), ((_, table), secs)) in files.iter().zip(tables.iter().zip(&seconds)) {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let (lo, hi) = min_max(secs);
        let (stats, memory) = match table {
            Ok(t) => (t.stats, format!("{:.2}", (t.stats.rows * ROW_BYTES) as f64 / (1 << 20) as f64)),
            Err(e) => {
                eprintln!("tables: {}: {e}", path.display());
                (Default::default(), format!("no table: {e}"))
            }
        };
        rows.push(vec![
            format!("{name} ({})", path.display()),
            format!("{:.1}", size as f64 / (1 << 20) as f64),
            format!("{}", stats.fdes),
            format!("{}", stats.rows),
            format!("{}", stats.rows_by_kind.unsupported),
            memory,
            format!("{:.1} ({:.1} … {:.1})", 1e3 * median(secs), 1e3 * lo, 1e3 * hi),
        ]);
    }
    print_table(
        &format!(
            "6. Unwind tables (--call-graph table): compiling a file's .eh_frame/.debug_frame, median (min … max) of {rounds} interleaved rounds"
        ),
        &["file", "file MiB", "FDEs", "rows", "rows unsupported", "kernel MiB", "build ms"],
        &rows,
    );
    println!(
        "\nBuild: symbolize::compile_unwind_table, the function flameprof runs once per file (by device and\n\
         inode) when a process mapping it is first seen, on files in the page cache. Kernel memory:\n\
         rows × {ROW_BYTES} bytes (profiler_ebpf::UnwindRow) in the preallocated UNWIND_ROWS array\n\
         (--table-memory, 32 MiB by default, allocated whatever the tables use)."
    );
    for (i, (name, _)) in files.iter().enumerate() {
        let rows = tables[i].1.as_ref().map_or(0, |t| t.stats.rows);
        ctx.verdict(
            &format!("unwind table of {name}: build; kernel memory"),
            format!("{:.1} ms; {:.2} MiB", 1e3 * median(&seconds[i]), (rows * ROW_BYTES) as f64 / (1 << 20) as f64),
            "reported",
            None,
        );
    }
    python_recording(ctx, rounds);
}

/// Section 6's check: what flameprof's summary says its tables cost when it
/// records a short CPU-bound python3 run (the tables of every file the
/// process maps: python3.11, libc, libm, ld.so, the vDSO; plus reading
/// /proc/PID/maps and loading the rows into the kernel).
fn python_recording(ctx: &mut Ctx, rounds: usize) {
    if !Path::new("/usr/bin/python3").exists() {
        eprintln!("tables: no /usr/bin/python3: no recording");
        return;
    }
    let json = ctx.tmp.join("tables.json");
    let folded = ctx.tmp.join("tables.folded");
    let script = "import json, re\nfor i in range(60000): re.findall(r'[0-9]+', json.dumps(list(range(i % 50))))";
    let mut build = Vec::new();
    let mut last = Value::Null;
    for _ in 0..rounds {
        let ran = run(
            Command::new(&ctx.flameprof)
                .args(["-F", "999", "--call-graph", "table", "--summary-json"])
                .arg(&json)
                .arg("-o")
                .arg(&folded)
                .args(["--", "/usr/bin/python3", "-c", script]),
            ctx.nice,
        );
        check(&ran, "flameprof --call-graph table -- python3");
        last = read_summary(&json);
        build.push(last["table_unwinding"]["tables"]["build_seconds"].as_f64().unwrap_or(f64::NAN));
    }
    let t = &last["table_unwinding"];
    let (lo, hi) = min_max(&build);
    let rows = vec![
        vec!["files with tables (without; did not fit)".into(), files_line(&t["tables"])],
        vec!["rows; kernel memory".into(), rows_line(&t["tables"])],
        vec![
            format!("build time (compile + load), median (min … max) of {rounds} runs"),
            format!("{:.1} ms ({:.1} … {:.1})", 1e3 * median(&build), 1e3 * lo, 1e3 * hi),
        ],
        vec!["largest tables (rows)".into(), largest_line(&t["tables"])],
        vec!["user stacks complete to the outermost frame".into(), complete_line(t)],
        vec!["cut: depth limit / no unwind info / bad frame / before tables / walker unavailable".into(), cuts_line(t)],
    ];
    print_table(
        "6. check: flameprof --call-graph table -F 999 -- python3 (a 1–2 s json/regex loop), from --summary-json",
        &["figure", "value"],
        &rows,
    );
    ctx.verdict(
        "unwind tables of a python3 run: build (compile + load); rows",
        format!("{:.1} ms; {}", 1e3 * median(&build), rows_line(&t["tables"])),
        "reported",
        None,
    );
}

/// Section 6b: the tables of a system-wide recording of a busy machine
/// (FLAMEPROF_BENCH_RECORD_SECS, 30 s at 99 Hz, the load of section 2).
pub fn system_wide(ctx: &mut Ctx) {
    let secs = env_f64("FLAMEPROF_BENCH_RECORD_SECS", 30.0);
    let json = ctx.tmp.join("tables-system.json");
    let svg = ctx.tmp.join("tables-system.svg");
    let ran = record_busy_machine(
        ctx,
        secs,
        Command::new(&ctx.flameprof).args(["--call-graph", "table", "--summary-json"]).arg(&json).arg("-o").arg(&svg),
    );
    check(&ran, "flameprof -a -d --call-graph table");
    let summary = read_summary(&json);
    let (t, samples) = (&summary["table_unwinding"], &summary["samples"]);
    let tables = &t["tables"];
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
    let (recorded, lost) = (n(samples, "recorded"), n(samples, "lost"));
    let post = line_numbers(&ran.stderr, "post-processing").and_then(|n| n.last().copied()).unwrap_or(f64::NAN);
    let build = tables["build_seconds"].as_f64().unwrap_or(f64::NAN);
    let rows = vec![
        vec!["processes with tables (not loaded: table full)".into(), {
            format!("{} ({})", n(tables, "processes"), n(tables, "processes_not_loaded"))
        }],
        vec!["files with tables (without; did not fit)".into(), files_line(tables)],
        vec!["rows; kernel memory".into(), rows_line(tables)],
        vec!["executable mappings beyond the per-process limit".into(), format!("{}", n(tables, "mappings_dropped"))],
        vec!["build time (compile + load), in all".into(), format!("{build:.3} s")],
        vec!["largest tables (rows)".into(), largest_line(tables)],
        vec!["user stacks complete to the outermost frame".into(), complete_line(t)],
        vec!["cut: depth limit / no unwind info / bad frame / before tables / walker unavailable".into(), cuts_line(t)],
        vec![
            "frames found by frame pointer (code without tables)".into(),
            format!("{}", n(t, "frames_by_frame_pointer")),
        ],
        vec![
            "samples recorded / lost".into(),
            format!("{recorded} / {lost} ({:.3} %)", 100.0 * lost as f64 / (recorded + lost).max(1) as f64),
        ],
        vec!["post-processing (flameprof's summary)".into(), format!("{post:.3} s")],
    ];
    print_table(
        &format!(
            "6b. Unwind tables of a {secs} s system-wide recording at 99 Hz of a busy machine (-a --call-graph table)"
        ),
        &["figure", "value"],
        &rows,
    );
    ctx.verdict(
        &format!("unwind tables, {secs} s system-wide: rows, memory; build time"),
        format!("{}; {build:.3} s", rows_line(tables)),
        "reported",
        None,
    );
    ctx.verdict(
        &format!("lost samples ({secs} s, -a, 99 Hz, --call-graph table)"),
        format!("{lost} of {}", recorded + lost),
        "< 0.1 %",
        Some((lost as f64) < 0.001 * (recorded + lost) as f64),
    );
}

fn read_summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// "N (M; K)": files with tables, without call-frame information, not fitting.
fn files_line(tables: &Value) -> String {
    let n = |k: &str| tables[k].as_u64().unwrap_or(0);
    format!("{} ({}; {})", n("files_loaded"), n("files_without_tables"), n("files_not_fitting"))
}

/// "ROWS; USED of CAPACITY MiB".
fn rows_line(tables: &Value) -> String {
    let mib = |k: &str| tables[k].as_u64().unwrap_or(0) as f64 / (1 << 20) as f64;
    format!("{}; {:.2} of {:.0} MiB", tables["rows"].as_u64().unwrap_or(0), mib("bytes"), mib("capacity_bytes"))
}

/// The rows of the summary's largest tables. Their paths are left out: the
/// summary names most files by the /proc/PID/map_files link it read them
/// through, which says nothing once the process is gone.
fn largest_line(tables: &Value) -> String {
    let list = tables["largest"].as_array().cloned().unwrap_or_default();
    list.iter().filter_map(|e| Some(e.get(1)?.as_u64()?.to_string())).collect::<Vec<_>>().join(", ")
}

/// How the walks that did not reach the outermost frame ended, "A / B / ...".
fn cuts_line(t: &Value) -> String {
    let ends = [
        "at_depth_limit",
        "cut_at_code_without_unwind_info",
        "cut_at_bad_frame",
        "before_tables_loaded",
        "walker_unavailable",
    ];
    ends.iter().map(|k| t[k].as_u64().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" / ")
}

/// "C of N (P %)": table walks that reached the outermost frame.
fn complete_line(t: &Value) -> String {
    let (complete, all) = (t["complete"].as_u64().unwrap_or(0), t["user_stacks"].as_u64().unwrap_or(0));
    format!("{complete} of {all} ({:.2} %)", 100.0 * complete as f64 / all.max(1) as f64)
}
