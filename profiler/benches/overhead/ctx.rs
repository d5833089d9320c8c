//! What every section needs: where the binaries are, the scratch directory,
//! the niceness of measured commands, and the verdicts for the summary.

use std::path::PathBuf;

use crate::knobs::env_f64;
use crate::process::die;

pub struct Ctx {
    /// The flameprof binary cargo built for this bench, or FLAMEPROF_BENCH_FLAMEPROF.
    pub flameprof: PathBuf,
    /// Where the example workloads are: next to flameprof.
    pub bindir: PathBuf,
    /// Scratch directory for profiles and result files, removed at the end.
    pub tmp: PathBuf,
    /// Niceness of the measured commands (FLAMEPROF_BENCH_NICE).
    pub nice: i32,
    /// Rows of the final summary: (target, measured, goal, verdict).
    pub verdicts: Vec<[String; 4]>,
}

impl Ctx {
    /// Creates the scratch directory too.
    pub fn new() -> Ctx {
        let flameprof = std::env::var_os("FLAMEPROF_BENCH_FLAMEPROF")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_flameprof")), PathBuf::from);
        let bindir = flameprof.parent().expect("bin dir").to_path_buf();
        let tmp = std::env::temp_dir().join(format!("flameprof-bench-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).expect("create temp dir");
        Ctx { flameprof, bindir, tmp, nice: env_f64("FLAMEPROF_BENCH_NICE", -10.0) as i32, verdicts: Vec::new() }
    }

    /// The example workload `name`, or a stop that says how to build it.
    pub fn example(&self, name: &str) -> PathBuf {
        let p = self.bindir.join(name);
        if !p.exists() {
            die(&format!(
                "{} is missing: build the examples first with \
                 `cargo build --release -p flameprof -p flameprof-examples`",
                p.display()
            ));
        }
        p
    }

    pub fn verdict(&mut self, target: &str, measured: String, goal: &str, pass: Option<bool>) {
        let v = match pass {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "n/a",
        };
        self.verdicts.push([target.into(), measured, goal.into(), v.into()]);
    }
}
