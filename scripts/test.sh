#!/usr/bin/env bash
# README command 2: set up, build, and run every test: unit tests of each
# crate and the end-to-end tests of the real binary (as root; under CI=true a
# test that cannot run BPF fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
# The committed BPF object (what stable-only installs embed) is the source's.
scripts/bpf-object.sh --check
# House rules first: they fail in seconds where the suite takes minutes.
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo build --release --locked -p flameprof -p flameprof-examples
# One test thread for the end-to-end suite: each run profiles real CPU time,
# and two at once on a 2-CPU machine would distort each other's shares.
cargo test --release --locked --workspace -- --test-threads=1
