#!/usr/bin/env bash
# Installs what building the BPF side needs: nightly's rust-src and a bpf-linker
# built against the same LLVM major as nightly's rustc. Idempotent and quick
# when everything is already there.
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

if ! rustup toolchain list | grep -q '^nightly'; then
    log "installing the nightly toolchain"
    rustup toolchain install nightly --profile minimal
fi
# cargo fmt --check and cargo clippy run in scripts/test.sh.
for component in rustfmt clippy; do
    if ! rustup component list --installed | grep -q "^${component}"; then
        log "adding ${component} to the default toolchain"
        rustup component add "${component}"
    fi
done
if ! rustup component list --toolchain nightly --installed | grep -q '^rust-src'; then
    log "adding rust-src to nightly (needed for -Z build-std=core)"
    rustup component add rust-src --toolchain nightly
fi

sysroot=$(rustc +nightly --print sysroot)
llvm_major=$(rustc +nightly -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')

linker_ok() {
    command -v bpf-linker >/dev/null 2>&1 || return 1
    bpf-linker --version >/dev/null 2>&1 || return 1
    # bpf-linker must link against the same LLVM major as the rustc producing bitcode.
    ldd "$(command -v bpf-linker)" 2>/dev/null | grep -q "libLLVM.so.${llvm_major}\b\|libLLVM-${llvm_major}\|libLLVM.so.${llvm_major}\." || return 1
}

if ! linker_ok; then
    log "building bpf-linker against rustc's LLVM ${llvm_major} (about a minute)"
    lib=$(cd "$sysroot/lib" && ls libLLVM.so.* | head -n1)
    ln -sf "$lib" "$sysroot/lib/libLLVM.so"
    LLVM_PREFIX=$sysroot cargo install --locked bpf-linker \
        --no-default-features --features "llvm-${llvm_major}"
fi
log "toolchain ready (nightly + rust-src, bpf-linker for LLVM ${llvm_major})"
