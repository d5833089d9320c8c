#!/usr/bin/env bash
# Benchmark (issue 11): what a system-wide recording costs after it ends.
# While a loop starts short-lived processes of one large binary (`rustc
# -vV`: librustc_driver, about 140 MB), records SECONDS (default 20) at
# 999 Hz with flameprof (`-a`, SVG out) and then with `perf record -a -g`,
# whose profile becomes an SVG through `perf script | inferno-collapse-perf
# | inferno-flamegraph`. Prints, side by side: flameprof's post-processing
# (its summary line: symbolize, render, write) and peak RSS; perf's
# pipeline wall time and the largest peak RSS among its steps; and their
# ratio. One after the other on the same load; run it alone, as root,
# after `cargo build --release --locked -p flameprof`.
# Peak RSS is what /usr/bin/time reports for each (the kernel's maxrss:
# anonymous memory and the pages of mapped files, as VmHWM), the same
# measure for both. With BENCH_CACHE=cold flameprof starts from an empty
# row cache (it compiles every file's unwind rows); by default it uses
# its own (warm from the second run of a build on).
#   [BENCH_CACHE=cold] scripts/bench-post.sh [SECONDS]
set -euo pipefail
seconds=${1:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
flameprof="$here/target/release/flameprof"
[[ -x $flameprof ]] || { echo "bench-post: build first: cargo build --release --locked -p flameprof" >&2; exit 2; }
for tool in perf rustc /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "bench-post: $tool is missing" >&2; exit 2; }
done
# inferno's command-line tools, the version flameprof's Cargo.lock has,
# installed once under target/tools.
tools="$here/target/tools"
if [[ ! -x $tools/bin/inferno-flamegraph ]]; then
    version=$(awk '/^name = "inferno"$/ { getline; gsub(/"/, "", $3); print $3 }' "$here/Cargo.lock")
    cargo install --quiet --locked inferno --version "$version" --root "$tools" >&2
fi

out=$(mktemp -d /tmp/flameprof-bench-post.XXXXXX)
trap 'kill "$load_pid" 2>/dev/null || true' EXIT
(while :; do rustc -vV >/dev/null; done) &
load_pid=$!
sleep 1

cache=warm
if [[ ${BENCH_CACHE:-} == cold ]]; then
    cache=cold
    export FLAMEPROF_CACHE_DIR="$out/cache"
fi
/usr/bin/time -f '%M' -o "$out/flameprof.maxrss" \
    "$flameprof" -a -F 999 -d "$seconds" -o "$out/flameprof.svg" 2>"$out/flameprof.txt"
flameprof_post=$(sed -n 's/.*post-processing (symbolize, render, write): \([0-9.]*\) s.*/\1/p' "$out/flameprof.txt")
flameprof_kib=$(cat "$out/flameprof.maxrss")

perf record -q -a -g -F 999 -o "$out/perf.data" -- sleep "$seconds" 2>/dev/null
kill "$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
# The pipeline on a quiet machine, as flameprof's post-processing ran
# after its recording (its load loop was still running then: favours perf).
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$out/script.maxrss" perf script -i "$out/perf.data" 2>/dev/null |
    /usr/bin/time -f '%M' -o "$out/collapse.maxrss" "$tools/bin/inferno-collapse-perf" |
    /usr/bin/time -f '%M' -o "$out/flamegraph.maxrss" "$tools/bin/inferno-flamegraph" >"$out/perf.svg"
end=$(date +%s.%N)
perf_seconds=$(echo "$end - $start" | bc -l)
perf_kib=$(cat "$out"/{script,collapse,flamegraph}.maxrss | sort -n | tail -1)

printf 'bench-post: %s s at 999 Hz, -a, while rustc -vV ran in a loop; files in %s\n' "$seconds" "$out"
printf '  flameprof post-processing: %.3f s, peak RSS %d MiB (row cache: %s)\n' "$flameprof_post" "$((flameprof_kib / 1024))" "$cache"
# What it had to do: the load differs from run to run on a shared machine.
sed -n 's/^  \(processes: [0-9]*, distinct stacks: [0-9]*\).*/    \1/p; s/^  \(unwind tables: .*\)/    \1/p' "$out/flameprof.txt"
printf '  perf script | inferno-collapse-perf | inferno-flamegraph: %.3f s, largest peak RSS %d MiB\n' \
    "$perf_seconds" "$((perf_kib / 1024))"
printf '  ratio flameprof / perf pipeline: %.2f (target: at most 0.5); flameprof peak RSS target: at most 128 MiB\n' \
    "$(echo "$flameprof_post / $perf_seconds" | bc -l)"
