#!/usr/bin/env bash
# All set-up for building and testing flameprof on a fresh Debian 12 machine
# (root, Rust stable + nightly installed). Idempotent: fast when done already.
#   scripts/setup.sh           toolchain for the BPF side
#   scripts/setup.sh --tests   also the reference tools tests and benchmarks use
#   scripts/setup.sh --fuzz    also cargo-fuzz (scripts/fuzz.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

log() { printf 'setup: %s\n' "$*" >&2; }

"$here/setup-toolchain.sh"

if [[ "${1:-}" == "--tests" ]]; then
    # perf (peer in benchmarks), bpftrace (off-CPU peer), go (go tool pprof
    # reads our pprof output in tests), setcap (the privileges tests), node
    # (the JIT tests), debuginfod (the stripped-binary tests).
    missing=()
    command -v perf >/dev/null 2>&1 || missing+=(linux-perf)
    command -v bpftrace >/dev/null 2>&1 || missing+=(bpftrace)
    command -v go >/dev/null 2>&1 || missing+=(golang-go)
    # Debian's own python3 (no frame pointers) and gcc: the unwinding tests
    # profile one and build C workloads without frame pointers with the other.
    [[ -x /usr/bin/python3 ]] || missing+=(python3)
    # Debian's xz (stripped, no frame pointers): the same, with perf's
    # DWARF mode as the reference.
    [[ -x /usr/bin/xz ]] || missing+=(xz-utils)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    command -v setcap >/dev/null 2>&1 || missing+=(libcap2-bin)
    # node --perf-basic-prof: JIT code named through its perf map.
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    # A real debuginfod server (and objcopy) for the stripped-binary tests.
    command -v debuginfod >/dev/null 2>&1 || missing+=(debuginfod)
    command -v objcopy >/dev/null 2>&1 || missing+=(binutils)
    # scripts/soak.sh reads the summary with jq and flameprof's peak RSS with time.
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    [[ -x /usr/bin/time ]] || missing+=(time)
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi
# cargo-fuzz (from crates.io, built with the installed nightly's cargo when
# run): only for scripts/fuzz.sh, which asks with --fuzz.
if [[ "${1:-}" == "--fuzz" ]] && ! cargo fuzz --version 2>/dev/null | grep -q '^cargo-fuzz 0\.13\.'; then
    log "installing cargo-fuzz (about two minutes)"
    cargo install --locked cargo-fuzz --version '^0.13.2'
fi
log "ready"
