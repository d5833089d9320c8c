#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo-fuzz, nightly; README: Reliability).
#   scripts/fuzz.sh build                  builds every target (what smoke
#                                          and run would build first)
#   scripts/fuzz.sh smoke [SECONDS]        every target for SECONDS (default 3)
#                                          from its seeds, one after another
#   scripts/fuzz.sh run TARGET SECONDS     one target, its corpus kept in
#                                          fuzz/corpus/TARGET between runs
#   scripts/fuzz.sh cpu TARGET SECONDS     the same, until the fuzzer has used
#                                          SECONDS of CPU time (on a shared
#                                          machine wall time says little);
#                                          ends with a `fuzz-run:` line
# One job, at the lowest priority: the machine's other work goes first.
# A crash stops with the failing input in fuzz/artifacts/TARGET/.
set -euo pipefail
"$(dirname "$0")/setup.sh" --fuzz
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
    trap "pkill -INT -f 'release/$target .*-max_total_time'; kill $runner 2>/dev/null; true" INT TERM EXIT
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

case "${1:-}" in
    cpu)
        run_for_cpu "$2" "$3"
        ;;
    build)
        nice -n 19 cargo +nightly fuzz build --debug-assertions
        ;;
    smoke)
        seconds=${2:-3}
        nice -n 19 cargo +nightly fuzz build --debug-assertions
        scratch=$(mktemp -d)
        trap 'rm -rf "$scratch"' EXIT
        for target in $(cargo +nightly fuzz list); do
            printf 'fuzz: %s for %ss\n' "$target" "$seconds" >&2
            run "$target" "$seconds" "$scratch/$target" 2>"$scratch/log" || { cat "$scratch/log" >&2; exit 1; }
        done
        ;;
    run)
        run "$2" "$3" "corpus/$2"
        ;;
    *)
        echo "usage: scripts/fuzz.sh build | smoke [SECONDS] | run TARGET SECONDS | cpu TARGET CPU_SECONDS" >&2
        exit 2
        ;;
esac
