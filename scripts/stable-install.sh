#!/usr/bin/env bash
# `cargo install --path profiler --locked --root ROOT` as a machine with only
# stable Rust runs it: a RUSTUP_HOME that holds the stable toolchain alone (no
# nightly, so no rust-src for it), a PATH without bpf-linker. Fails unless the
# build embedded the committed BPF object (profiler/bpf/flameprof.bpf.o).
#
#   scripts/stable-install.sh ROOT               build from scratch (a new target directory)
#   scripts/stable-install.sh ROOT --reuse DIR   start from a copy of DIR/release (a workspace
#                                                build's target directory): only flameprof rebuilds
#
# CARGO_HOME stays the machine's for its registry (no download, and cargo
# reuses a build only for the same registry paths); its bin/, where
# bpf-linker lives, is left off PATH.
set -euo pipefail
workspace=$(cd "$(dirname "$0")/.." && pwd -P)
fail() { printf 'stable-install: %s\n' "$*" >&2; exit 1; }

[[ -n "${1:-}" ]] || fail "usage: scripts/stable-install.sh ROOT [--reuse TARGET_DIR]"
root=$(mkdir -p "$1" && cd "$1" && pwd -P)
reuse=
if [[ "${2:-}" == "--reuse" ]]; then
    reuse=${3:?--reuse needs a target directory}
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The stable toolchain that is installed, linked (not downloaded) into a
# RUSTUP_HOME of its own, as the default and only toolchain.
stable_sysroot=$(rustup run stable rustc --print sysroot)
toolchain=$(basename "$stable_sysroot")
mkdir -p "$scratch/rustup/toolchains" "$scratch/bin"
ln -s "$stable_sysroot" "$scratch/rustup/toolchains/$toolchain"
printf 'version = "12"\ndefault_toolchain = "%s"\nprofile = "minimal"\n' "$toolchain" >"$scratch/rustup/settings.toml"
# rustup's proxies (links named after the tool they run).
rustup_bin=$(command -v rustup)
for tool in cargo rustc rustup; do
    ln -s "$rustup_bin" "$scratch/bin/$tool"
done

export RUSTUP_HOME=$scratch/rustup
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH=$scratch/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
unset RUSTUP_TOOLCHAIN
while IFS='=' read -r name _; do
    case $name in CARGO_HOME) ;; CARGO_* | RUSTC* | RUSTFLAGS) unset "$name" ;; esac
done < <(env)

# What the install will find: stable only, and no linker for BPF.
if rustup run nightly rustc -V >/dev/null 2>&1; then fail "nightly is still reachable"; fi
if command -v bpf-linker >/dev/null 2>&1; then fail "bpf-linker is still on PATH ($(command -v bpf-linker))"; fi
echo "stable-install: $(rustc -V) only; no nightly, no bpf-linker" >&2

export CARGO_TARGET_DIR=$scratch/target
offline=()
if [[ -n $reuse ]]; then
    # That build fetched every crate already.
    offline=(--offline)
    mkdir -p "$CARGO_TARGET_DIR"
    cp -a "$reuse/release" "$CARGO_TARGET_DIR/"
    # Which object profiler/build.rs picks depends on the toolchains it
    # finds, which cargo does not track: flameprof itself must build again.
    rm -rf "$CARGO_TARGET_DIR"/release/{.fingerprint,build,deps}/flameprof-* "$CARGO_TARGET_DIR/release/flameprof"
fi
log=$scratch/install.log
(cd "$workspace" && cargo install --locked "${offline[@]}" --path profiler --root "$root" 2>&1) | tee "$log" >&2
grep -q "using the committed BPF object" "$log" ||
    fail "the build did not say it used the committed BPF object (see above)"
echo "stable-install: installed $root/bin/flameprof, with the committed BPF object" >&2
