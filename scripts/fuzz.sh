#!/usr/bin/env bash
# The fuzz targets of fuzz/ (libFuzzer, nightly; README: Reliability).
#   scripts/fuzz.sh build                  builds every target (what run and
#                                          cpu would build first)
#   scripts/fuzz.sh smoke [SECONDS]        every target for SECONDS (default 3)
#                                          from its seeds, one after another,
#                                          in a quick build (see smoke_build)
#   scripts/fuzz.sh smoke-build            that quick build alone
#   scripts/fuzz.sh run TARGET SECONDS     one target, its corpus kept in
#                                          fuzz/corpus/TARGET between runs
#   scripts/fuzz.sh cpu TARGET SECONDS     the same, until the fuzzer has used
#                                          SECONDS of CPU time (on a shared
#                                          machine wall time says little);
#                                          ends with a `fuzz-run:` line
# One job, at the lowest priority: the machine's other work goes first.
# A crash stops with the failing input in fuzz/artifacts/TARGET/.
set -euo pipefail
# cargo-fuzz only for the long runs: the smoke run builds without it.
case "${1:-}" in
    smoke | smoke-build) "$(dirname "$0")/setup-toolchain.sh" ;;
    *) "$(dirname "$0")/setup.sh" --fuzz ;;
esac
cd "$(dirname "$0")/../fuzz"

# ELF files are bigger than libFuzzer's default 4 KiB inputs.
max_len() {
    case "$1" in
        call_frame_information | plt_stubs | symbolize_file) echo 65536 ;;
        *) echo 16384 ;;
    esac
}

run() { # TARGET SECONDS CORPUS
    local target=$1 seconds=$2 corpus=$3
    mkdir -p "$corpus"
    # -timeout: an input taking 10 s is a hang; -rss_limit_mb: one taking
    # 2 GiB a memory bomb. Both count as crashes.
    nice -n 19 cargo +nightly fuzz run --debug-assertions "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1
}

# The libFuzzer process of TARGET's run (cargo fuzz is its parent).
fuzzer_pid() {
    pgrep -f "release/$1 .*-max_total_time" | head -1 || true
}

cpu_seconds() { # PID
    awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Runs TARGET until its fuzzer has used SECONDS of CPU, then interrupts it
# (libFuzzer prints its final stats and exits 72 on SIGINT).
run_for_cpu() { # TARGET SECONDS
    local target=$1 budget=$2 log pid="" used=0 start status=0
    log=target/logs/$target.log
    mkdir -p target/logs
    start=$(date +%s)
    run "$target" 604800 "corpus/$target" >"$log" 2>&1 &
    local runner=$!
    # Interrupted: the fuzzer must not go on without its budget.
    # shellcheck disable=SC2064 # the names are fixed now
    trap "pkill -INT -f 'release/$target .*-max_total_time' || true; kill $runner 2>/dev/null || true" INT TERM EXIT
    while kill -0 "$runner" 2>/dev/null; do
        sleep 5
        [[ -n "$pid" ]] || pid=$(fuzzer_pid "$target")
        [[ -n "$pid" ]] || continue
        used=$(cpu_seconds "$pid")
        if ((used >= budget)); then
            kill -INT "$pid" 2>/dev/null || true
            break
        fi
    done
    wait "$runner" || status=$?
    local execs crashes
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo '?')
    crashes=$(ls "artifacts/$target" 2>/dev/null | wc -l)
    printf 'fuzz-run: %s cpu %ss wall %ss executions %s artifacts %s log fuzz/%s\n' \
        "$target" "$used" "$(($(date +%s) - start))" "$execs" "$crashes" "$log"
    # libFuzzer exits 72 when interrupted (by us, at the budget) and cargo
    # fuzz passes that on as its own failure; anything else is a crash.
    [[ $status == 0 ]] || grep -q 'exited with exit status: 72' "$log"
}

# The targets, as fuzz/Cargo.toml names them.
targets() {
    sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^flameprof-fuzz$'
}

# The smoke run's build: the coverage instrumentation cargo-fuzz gives
# (cargo-fuzz 0.13's flags for `--dev -s none`), unoptimized, without a
# sanitizer, and without cargo-fuzz itself (two minutes to install): about
# a third of the CPU time of the long runs' optimized AddressSanitizer
# build, so that it fits beside the test suite.
SMOKE_BINARIES=target/smoke/x86_64-unknown-linux-gnu/debug
smoke_build() {
    local coverage="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4"
    coverage+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table"
    coverage+=" -Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth"
    coverage+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0 --cfg fuzzing -Cdebug-assertions"
    # --target: the flags reach the targets, not build scripts and macros.
    RUSTFLAGS="$coverage" nice -n 19 cargo +nightly build --locked --bins --target x86_64-unknown-linux-gnu \
        --manifest-path "$PWD/Cargo.toml" --target-dir target/smoke
}

case "${1:-}" in
    cpu)
        run_for_cpu "$2" "$3"
        ;;
    build)
        nice -n 19 cargo +nightly fuzz build --debug-assertions
        ;;
    smoke)
        seconds=${2:-3}
        smoke_build
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        for target in $(targets); do
            printf 'fuzz: %s for %ss\n' "$target" "$seconds" >&2
            # The seeds are copied: libFuzzer adds what it finds to the first directory.
            mkdir -p "$scratch/$target"
            nice -n 19 "$SMOKE_BINARIES/$target" "$scratch/$target" "seeds/$target" -max_total_time="$seconds" \
                -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 2>"$scratch/log" ||
                { cat "$scratch/log" >&2; exit 1; }
        done
        ;;
    smoke-build)
        smoke_build
        ;;
    run)
        run "$2" "$3" "corpus/$2"
        ;;
    *)
        echo "usage: scripts/fuzz.sh build | smoke [SECONDS] | smoke-build | run TARGET SECONDS | cpu TARGET CPU_SECONDS" >&2
        exit 2
        ;;
esac
