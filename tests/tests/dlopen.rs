//! Issue 11: samples are matched with the mappings valid when they were
//! taken. `dlopen_reuse` loads library A, burns CPU in its busy_in_liba,
//! unloads it, and loads library B (same size and layout) at the very
//! address A had, to burn three times as much in busy_in_libb; twice. Every
//! sample is named from the library mapped there when it was taken: A gets
//! a quarter of the samples, B three quarters, and neither is named for the
//! other (the code at one address is A's, then B's, then A's again).

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(240);

#[test]
fn code_loaded_where_other_code_was_is_named_by_when_it_ran() {
    root_or_skip!();
    let program = c_program("dlopen_reuse", &["-O2"]);
    let lib_a = c_library("dl_busy", "libdl_busy_a", &["-O2", "-DBUSY=busy_in_liba"]);
    let lib_b = c_library("dl_busy", "libdl_busy_b", &["-O2", "-DBUSY=busy_in_libb"]);
    let dir = TempDir::new("dlopen-reuse");
    let out = s(&dir.join("dlopen.folded"));
    let (run, summary) = flameprof_with_summary(
        &["-F", "999", "-o", &out, "--", &s(&program), &s(&lib_a), &s(&lib_b), "2", "0.5", "1.5"],
        T,
        "flameprof -- dlopen_reuse (exit status 3: B was not loaded where A had been)",
    );
    // The test proves something only if B was loaded where A had been
    // (dlopen_reuse checks, and exits with 3 otherwise).
    let loads = run.stdout_str();
    assert_eq!(summary.value("command_exit_status"), 0, "{loads}\n{}", run.stderr);
    assert_eq!(loads.lines().filter(|line| line.starts_with("round ")).count(), 2, "{loads}");
    let folded = Folded::read(Path::new(&out));
    let (a, b) = (folded.with_frame("busy_in_liba"), folded.with_frame("busy_in_libb"));
    let busy = a + b;
    let report = format!("A {a}, B {b} samples; the loads:\n{loads}\n{}\n{}", folded.describe_top(8), run.stderr);
    // 4 s of CPU at 999 Hz; emulation or load may cost samples, not shares.
    assert!(busy >= 2000, "{report}");
    let share_a = 100.0 * a as f64 / busy as f64;
    assert!((share_a - 25.0).abs() <= 3.0, "A has {share_a:.1}% of the busy samples, 25% by construction: {report}");
    // Nothing else of the program runs long: the busy functions hold
    // nearly every sample.
    assert!(busy as f64 >= 0.9 * folded.total() as f64, "{report}");
}
