#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo-fuzz, nightly; README: Reliability).
#   scripts/fuzz.sh smoke [SECONDS]        every target for SECONDS (default 3)
#                                          from its seeds, one after another
#   scripts/fuzz.sh run TARGET SECONDS     one target, its corpus kept in
#                                          fuzz/corpus/TARGET between runs
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

case "${1:-}" in
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
        echo "usage: scripts/fuzz.sh smoke [SECONDS] | run TARGET SECONDS" >&2
        exit 2
        ;;
esac
