#!/usr/bin/env bash
# Soak run (issue 8, "Long runs and churn hold"): flameprof records the whole
# system (-a) at 999 Hz for SECONDS (default 600) while `churn` starts RATE
# processes a second (default 500; pids wrap and get reused) and a second
# process starts and ends threads. flameprof runs under `ulimit -n 1024`.
# Prints flameprof's peak RSS and peak open file descriptors, every lost or
# dropped counter of the summary, and whether the output is complete (the
# folded file parses and holds exactly the recorded samples). Exits non-zero
# when flameprof fails, the output is incomplete or the fds pass the bound.
# A benchmark, not a test: it loads the machine for SECONDS; run it alone.
#   scripts/soak.sh [SECONDS] [RATE]        (as root, after building:
#   cargo build --release --locked -p flameprof -p flameprof-examples)
set -euo pipefail
seconds=${1:-600}
rate=${2:-500}
fd_limit=1024
# The bound the peak must stay under: room left for what a user's shell
# and a wrapper take of the same limit.
fd_bound=256

here=$(cd "$(dirname "$0")/.." && pwd)
bin="$here/target/release"
for tool in jq /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "soak: $tool is missing (Debian: apt-get install jq time)" >&2; exit 2; }
done
for program in flameprof churn; do
    [[ -x "$bin/$program" ]] || { echo "soak: build first: cargo build --release --locked -p flameprof -p flameprof-examples" >&2; exit 2; }
done

out=$(mktemp -d /tmp/flameprof-soak.XXXXXX)
echo "soak: $(date -u +%FT%TZ), $seconds s, -a -F 999, churn at $rate processes/s; files in $out" >&2

"$bin/churn" "$((seconds + 10))" "$rate" 2>"$out/churn.txt" &
churn_pid=$!
sleep 1
# /usr/bin/time reports flameprof's peak RSS (its maxrss) once it has ended.
(
    ulimit -n "$fd_limit"
    exec /usr/bin/time -f '%M' -o "$out/maxrss_kib" \
        "$bin/flameprof" -a -F 999 -d "$seconds" -o "$out/soak.folded" --summary-json "$out/summary.json"
) 2>"$out/stderr.txt" &
time_pid=$!

# Peak open descriptors of flameprof itself (the child of time), sampled
# every 0.2 s.
peak_fds=0
fp_pid=
while kill -0 "$time_pid" 2>/dev/null; do
    [[ -n "$fp_pid" ]] || fp_pid=$(pgrep -P "$time_pid" -x flameprof || true)
    if [[ -n "$fp_pid" ]]; then
        fds=$(find "/proc/$fp_pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        ((fds > peak_fds)) && peak_fds=$fds
    fi
    sleep 0.2
done
status=0
wait "$time_pid" || status=$?
kill "$churn_pid" 2>/dev/null || true
wait "$churn_pid" 2>/dev/null || true

echo "--- results"
echo "flameprof exit status: $status"
if ((status != 0)); then
    echo "soak: flameprof failed:" >&2
    tail -5 "$out/stderr.txt" >&2
    exit 1
fi
maxrss=$(tail -1 "$out/maxrss_kib")
echo "peak RSS: $((maxrss / 1024)) MiB ($maxrss KiB)"
echo "peak open file descriptors: $peak_fds (limit $fd_limit, bound $fd_bound)"
echo "churn: $(tr '\n' ';' <"$out/churn.txt")"
s="$out/summary.json"
jq -r '"duration: \(.duration_seconds) s, stopped by \(.stopped_by)",
  "samples: taken \(.samples.taken), recorded \(.samples.recorded), lost \(.samples.lost) \(.samples.lost_by_cause)",
  "stack faults: kernel \(.samples.kernel_stack_faults), user \(.samples.user_stack_faults); at depth limit \(.samples.stacks_at_depth_limit)",
  "processes: \(.frames.processes) in the profile; ended before snapshot \(.processes.ended_before_snapshot), not announced \(.processes.not_announced)",
  "table unwinding: \(.table_unwinding | del(.tables))",
  "unwind tables: processes \(.table_unwinding.tables.processes), not loaded \(.table_unwinding.tables.processes_not_loaded), files \(.table_unwinding.tables.files_loaded), \(.table_unwinding.tables.bytes) bytes",
  "distinct stacks: \(.frames.distinct_stacks), stack ids not read back \(.frames.stack_ids_not_read_back), unresolved \(.frames.unresolved_percent) %"' "$s"
recorded=$(jq '.samples.recorded' "$s")
taken=$(jq '.samples.taken' "$s")
lost=$(jq '.samples.lost' "$s")
# Complete: every line is `stack COUNT` after the header, and the counts add
# up to the recorded samples; recorded + lost = taken.
folded_total=$(awk '/^#/ && !started { next } { started = 1; if ($NF !~ /^[0-9]+$/) { bad++ } else { sum += $NF } }
    END { if (bad) { print "malformed " bad } else { printf "%d\n", sum } }' "$out/soak.folded")
echo "folded output: $folded_total samples in $(grep -vc '^#' "$out/soak.folded") lines"
complete=yes
[[ "$folded_total" == "$recorded" ]] || complete="no: folded $folded_total, recorded $recorded"
((recorded + lost == taken)) || complete="no: recorded $recorded + lost $lost != taken $taken"
echo "output complete: $complete"
[[ "$complete" == yes ]] || exit 1
((peak_fds < fd_bound)) || { echo "soak: $peak_fds descriptors, over the bound $fd_bound" >&2; exit 1; }
