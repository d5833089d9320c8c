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
    lowest_priority cargo +nightly fuzz run --debug-assertions "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1
}

# Runs a command at the lowest priority, also against other sessions: with
# the scheduler's autogroups (Debian's default) nice only orders the
# processes of one session, and a fuzzer started from another (a detached
# job) would take a whole CPU from the tests and benchmarks beside it. In a
# session of its own, whose autogroup is at nice 19.
lowest_priority() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid --wait bash -c 'echo 19 >/proc/self/autogroup 2>/dev/null; exec nice -n 19 "$@"' lowest_priority "$@"
}

# The libFuzzer process of TARGET's run (cargo fuzz is its parent).
fuzzer_pid() {
    pgrep -f "release/$1 .*-max_total_time" | head -1 || true
}

cpu_seconds() { # PID
    awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) / hz) }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# One fuzzer run of TARGET, its output appended to LOG, until it has used
# SECONDS of CPU (then interrupted: libFuzzer prints its final stats and
# exits 72 on SIGINT) or stops by itself. Sets SPENT to the CPU it used;
# succeeds only when it was interrupted at the budget.
fuzz_once() { # TARGET SECONDS LOG
    local target=$1 budget=$2 log=$3 pid="" now interrupted=0
    SPENT=0
    run "$target" 604800 "corpus/$target" >>"$log" 2>&1 &
    local runner=$!
    # Interrupted: the fuzzer must not go on without its budget.
    # shellcheck disable=SC2064 # the names are fixed now
    trap "pkill -INT -f 'release/$target .*-max_total_time' || true; kill $runner 2>/dev/null || true" INT TERM EXIT
    while kill -0 "$runner" 2>/dev/null; do
        sleep 5
        [[ -n "$pid" ]] || pid=$(fuzzer_pid "$target")
        [[ -n "$pid" ]] || continue
        # A fuzzer that has ended reads as 0: keep what it had used.
        now=$(cpu_seconds "$pid")
        ((now > SPENT)) && SPENT=$now
        if ((SPENT >= budget)); then
            kill -INT "$pid" 2>/dev/null || true
            interrupted=1
            break
        fi
    done
    wait "$runner" || true
    trap - INT TERM EXIT
    ((interrupted == 1))
}

# Whether a timeout input of TARGET is one: run alone at normal priority, it
# still takes longer than libFuzzer's 10 s. On a shared machine a fuzzer at
# nice 19 can wait that long for a CPU on an input that takes milliseconds.
times_out_alone() { # TARGET INPUT
    ! timeout 10 "target/x86_64-unknown-linux-gnu/release/$1" "$2" >/dev/null 2>&1
}

# Runs TARGET until its fuzzers have used SECONDS of CPU. A fuzzer stopped
# by a timeout that does not time out alone (above) is run again with the
# budget left, the input set aside in artifacts/TARGET/unconfirmed/; any
# other stop is a crash and ends the run.
run_for_cpu() { # TARGET SECONDS
    local target=$1 budget=$2 log used=0 start restarts=0 crashed=0
    log=target/logs/$target.log
    mkdir -p target/logs "artifacts/$target/unconfirmed"
    : >"$log"
    start=$(date +%s)
    while ((used < budget)); do
        local before input
        before=$(find "artifacts/$target" -maxdepth 1 -type f | sort)
        if fuzz_once "$target" $((budget - used)) "$log"; then
            used=$budget
            break
        fi
        used=$((used + SPENT))
        local moved=0
        for input in $(comm -13 <(echo "$before") <(find "artifacts/$target" -maxdepth 1 -type f | sort)); do
            if [[ $(basename "$input") == timeout-* ]] && ! times_out_alone "$target" "$input"; then
                mv "$input" "artifacts/$target/unconfirmed/"
                moved=1
            else
                crashed=1
            fi
        done
        # A stop that left no timeout to set aside is not the machine's.
        ((moved == 1)) || crashed=1
        restarts=$((restarts + 1))
        ((crashed == 0 && restarts < 10)) || break
    done
    local execs crashes
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" |
        awk '{ sum += $2 } END { print sum + 0 }')
    crashes=$(find "artifacts/$target" -maxdepth 1 -type f | wc -l)
    printf 'fuzz-run: %s cpu %ss wall %ss executions %s artifacts %s unconfirmed-timeouts %s log fuzz/%s\n' \
        "$target" "$used" "$(($(date +%s) - start))" "$execs" "$crashes" \
        "$(find "artifacts/$target/unconfirmed" -type f | wc -l)" "$log"
    ((crashed == 0 && used >= budget))
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
