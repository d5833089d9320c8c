#!/usr/bin/env bash
# README command 2: set up, build, and run every test: unit tests of each
# crate and the end-to-end tests of the real binary (as root; under CI=true a
# test that cannot run BPF fails instead of skipping), then an end-to-end
# subset on another kernel in a VM (scripts/vm-test.sh).
#   FLAMEPROF_VM_KERNELS   kernels for the VM part: default 6.1 (Debian 12's,
#                          the oldest supported); `all` for 6.1, 6.12 and
#                          6.12-rt; `none` to leave the VM part out
#   FLAMEPROF_FUZZ_SMOKE   0: leave out the short run of every fuzz target
#                          (3 s each from its seeds; default 1)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
# The committed BPF object (what stable-only installs embed) is the source's.
scripts/bpf-object.sh --check
# House rules first: they fail in seconds where the suite takes minutes.
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo build --release --locked -p flameprof -p flameprof-examples
# The fuzz targets' smoke build (unoptimized, coverage-instrumented, no
# sanitizer: about 3 minutes of CPU) runs at the lowest priority beside the
# suite, which leaves a CPU idle much of the time (sleeps, off-CPU waits):
# the smoke run at the end then finds it built, or nearly.
fuzz_smoke=${FLAMEPROF_FUZZ_SMOKE:-1}
fuzz_build=""
if [[ $fuzz_smoke == 1 ]]; then
    mkdir -p target
    scripts/fuzz.sh smoke-build >target/fuzz-build.log 2>&1 &
    fuzz_build=$!
    # A failing suite ends the script: the build must not outlive it. Each
    # step `|| true`: under `set -e` a trap's failing command (pkill finding
    # nothing) would become the script's exit status.
    # shellcheck disable=SC2064 # this checkout's path, fixed now
    trap "pkill -f '$PWD/fuzz/Cargo.toml' || true; kill $fuzz_build 2>/dev/null || true" EXIT
fi
# One test thread for the end-to-end suite: each run profiles real CPU time,
# and two at once on a 2-CPU machine would distort each other's shares.
# --no-fail-fast: one failing test file does not hide the others' results.
cargo test --release --locked --workspace --no-fail-fast -- --test-threads=1
# The host's kernel just ran the whole suite: `all` here means the VMs.
kernels=${FLAMEPROF_VM_KERNELS:-6.1}
[[ $kernels == all ]] && kernels="6.1 6.12 6.12-rt"
if [[ $kernels != none ]]; then
    # shellcheck disable=SC2086 # a list of kernels
    scripts/vm-test.sh $kernels
fi
# Every fuzz target for a few seconds from its seeds (scripts/fuzz.sh; the
# long runs are in the README, Reliability).
if [[ -n $fuzz_build ]]; then
    wait "$fuzz_build" || { cat target/fuzz-build.log >&2; exit 1; }
    scripts/fuzz.sh smoke 3
fi
