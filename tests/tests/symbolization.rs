//! Symbolization across processes: what one process's lookups found serves
//! the others of the same binary.

use flameprof_tests::*;
use std::path::Path;
use std::time::Duration;

/// Twenty processes of one binary: each of its code addresses is looked up
/// once, the other processes' samples of it are answered from memory.
#[test]
fn processes_of_one_binary_share_their_symbol_lookups() {
    root_or_skip!();
    let dir = TempDir::new("symbolize-once");
    let out = s(&dir.join("p.folded"));
    let spinner = example("spinner");
    let script = format!("for i in $(seq 20); do {spinner} 0.1; done");
    let args = ["-F", "499", "-o", &out, "--", "sh", "-c", &script];
    let (run, summary) = flameprof_with_summary(&args, Duration::from_secs(60), "twenty spinners");
    let folded = Folded::read(Path::new(&out));
    let spinning = with_chain(&folded, &["spinner::main", "spinner::spin"]);
    assert!(spinning as f64 >= 0.8 * folded.total() as f64, "{}\n{}", folded.describe_top(5), run.stderr);
    let processes = summary.get("frames.processes");
    assert!(processes >= 20.0, "only {processes} processes\n{}", run.stderr);
    let looked_up = summary.get("symbolization.file_offsets_looked_up");
    let remembered = summary.get("symbolization.answered_from_memory");
    // Each spinner's stacks share their addresses with the others': at
    // least half of all lookups (19 of 20 processes' worth) are answered
    // from memory.
    assert!(remembered >= 0.5 * looked_up, "{remembered} of {looked_up} lookups remembered\n{}", run.stderr);
}
