//! Memory bombs: inputs that claim or inflate to gigabytes end with a clear
//! error (or, for a program's own binary, a profile without what the bomb
//! held) within the memory bounds the README documents (Reliability).

use flameprof_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);
const MIB: u64 = 1 << 20;

/// What the README promises beyond the input for `diff` and `report`, and
/// for a recording whose binaries hold bombs; measured peaks are far below.
const REPORT_BEYOND_INPUT: u64 = 64 * MIB;
const RECORDING_PEAK: u64 = 256 * MIB;

fn assert_peak_below(what: &str, peak: u64, bound: u64) {
    assert!(peak < bound, "{what}: peak memory {} MiB, bound {} MiB", peak / MIB, bound / MIB);
    println!("{what}: peak memory {} MiB (bound {} MiB)", peak / MIB, bound / MIB);
}

/// `report` and `diff` of a folded file whose one line is 100 MB: refused
/// at that line, holding little more than the file.
#[test]
fn a_folded_line_of_100_mb_is_refused() {
    let dir = TempDir::new("bomb-folded");
    let (bomb, good) = (dir.join("line.folded"), dir.join("good.folded"));
    folded_line(&bomb, 100_000_000);
    std::fs::write(&good, "main;work 10\n").unwrap();
    for args in [vec!["report", &s(&bomb)], vec!["diff", &s(&good), &s(&bomb)]] {
        let (run, peak) = flameprof_with_peak(&args, T);
        let what = format!("flameprof {}", args[0]);
        assert_clean_error(&what, &run, &["line 1 is longer than 1 MiB"], None);
        assert!(run.stderr.contains(&s(&bomb)), "{what}: the error names no file: {}", run.stderr);
        assert_peak_below(&what, peak, 100_000_000 + REPORT_BEYOND_INPUT);
    }
}

/// `report` of a 2 MB gzipped pprof file declaring a billion locations
/// (2 GB of protobuf): refused once inflating passes the 256 MiB input bound.
#[test]
fn a_pprof_file_of_a_billion_locations_is_refused() {
    let dir = TempDir::new("bomb-pprof");
    let bomb = dir.join("locations.pb.gz");
    let count = pprof_of_empty_locations(&bomb, 1_000_000_000);
    assert!(count >= 1_000_000_000 && std::fs::metadata(&bomb).unwrap().len() < 4 * MIB);
    let (run, peak) = flameprof_with_peak(&["report", &s(&bomb)], T);
    assert_clean_error("flameprof report", &run, &["decompressed, it holds more than 256 MiB"], None);
    assert_peak_below("flameprof report", peak, 256 * MIB + REPORT_BEYOND_INPUT);
}

/// A program whose `.eh_frame` and `.debug_info` claim (and inflate to) 4
/// GiB: profiled without its unwind table (its stacks end at the leaf:
/// no frame pointers either) and its DWARF, named from its symbol table,
/// the bombs never inflated.
#[test]
fn sections_of_4_gib_in_a_profiled_binary_are_not_inflated() {
    root_or_skip!();
    let dir = TempDir::new("bomb-elf");
    let original = c_program("no_frame_pointers", &["-O2", "-fomit-frame-pointer", "-fno-optimize-sibling-calls"]);
    let bomb = dir.join("no_frame_pointers-bomb");
    elf_with_4_gib_sections(&original, &bomb, &[".eh_frame", ".debug_info"]);
    let (out, summary) = (dir.join("p.folded"), dir.join("summary.json"));
    let (out, summary, bomb) = (s(&out), s(&summary), s(&bomb));
    let args = ["-F", "199", "--call-graph", "table", "-o", &out, "--summary-json", &summary, "--", &bomb, "cpu", "1"];
    let (run, peak) = flameprof_with_peak(&args, T);
    run.assert_success("flameprof -- crafted binary");
    let summary = Summary::read(std::path::Path::new(&summary));
    assert!(summary.get("table_unwinding.tables.files_without_tables") >= 1.0, "{summary}");
    let folded = Folded::read(std::path::Path::new(&out));
    let (spin, total) = (folded.with_frame("spin"), folded.total());
    assert!(total >= 50 && spin * 10 >= total * 9, "spin in {spin} of {total} samples:\n{}", folded.describe_top(10));
    assert_peak_below("flameprof -- crafted binary", peak, RECORDING_PEAK);
}
