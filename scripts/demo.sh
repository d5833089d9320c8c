#!/usr/bin/env bash
# README command 1: set up, build, and profile an example workload with a
# known 3:1 CPU split into demo.svg (open it in a browser: search, zoom).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked -p flameprof -p flameprof-examples
bin="${CARGO_TARGET_DIR:-target}/release"
"$bin/flameprof" -F 999 -o demo.svg -- "$bin/cpu_split" 3
echo "wrote $(pwd)/demo.svg" >&2
