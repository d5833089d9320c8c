#!/usr/bin/env bash
# The committed BPF object (profiler/bpf/flameprof.bpf.o): built from
# profiler-ebpf with the installed nightly and bpf-linker, reproducibly (every
# path that names this machine is remapped), so that `cargo install` needs
# only stable Rust.
#
#   scripts/bpf-object.sh --update      rebuild it from source and record the toolchain (then commit both)
#   scripts/bpf-object.sh --check       fail (one line) when it differs from a fresh build of the source
#   scripts/bpf-object.sh --build FILE  build from source into FILE (profiler/build.rs uses this)
#
# Exit status: 0; 1 when --check finds a difference or the build fails; 3 when
# this machine cannot build BPF (no nightly rust-src or no bpf-linker:
# scripts/setup.sh installs them).
set -euo pipefail
workspace=$(cd "$(dirname "$0")/.." && pwd -P)
committed=$workspace/profiler/bpf/flameprof.bpf.o
record=$workspace/profiler/bpf/toolchain.txt

fail() { printf 'bpf-object: %s\n' "$*" >&2; exit "${status:-1}"; }

# The outer cargo's settings (when build.rs runs this: its CARGO_*, and the
# HOST, TARGET, ... it gives build scripts) and a developer's own flags must
# not reach the BPF build: only the settings below shape the object.
while IFS='=' read -r name _; do
    case $name in
        CARGO_HOME | RUSTUP_HOME) ;;
        CARGO_* | RUSTC* | RUSTFLAGS | RUSTDOCFLAGS | RUSTUP_TOOLCHAIN | DEP_* | AYA_* | BPF_TARGET_ARCH) unset "$name" ;;
        HOST | TARGET | OUT_DIR | PROFILE | OPT_LEVEL | DEBUG | NUM_JOBS) unset "$name" ;;
    esac
done < <(env)
# The programs read x86-64 registers (pt_regs): the object is x86-64's,
# whatever machine builds it.
export AYA_BPF_TARGET_ARCH=x86_64

# What the object depends on besides the source: nightly's rustc and the
# linker, one line each.
toolchain() {
    local rustc linker
    rustc=$(rustup run nightly rustc -vV)
    linker=$(bpf-linker --version)
    printf '%s, LLVM %s\n%s\n' "$(rustup run nightly rustc -V)" "$(sed -n 's/^LLVM version: //p' <<<"$rustc")" "$linker"
}

can_build() {
    command -v rustup >/dev/null 2>&1 || { echo "no rustup"; return 1; }
    local sysroot
    sysroot=$(rustup run nightly rustc --print sysroot 2>/dev/null) || { echo "no nightly toolchain"; return 1; }
    [[ -f $sysroot/lib/rustlib/src/rust/library/core/Cargo.toml ]] || { echo "nightly has no rust-src"; return 1; }
    command -v bpf-linker >/dev/null 2>&1 || { echo "no bpf-linker on PATH"; return 1; }
}

# Builds the object from source into $1.
build() {
    local reason
    reason=$(can_build) || status=3 fail "cannot build the BPF programs here ($reason): scripts/setup.sh installs nightly's rust-src and bpf-linker"
    local sysroot commit cargo_home target
    sysroot=$(rustup run nightly rustc --print sysroot)
    commit=$(rustup run nightly rustc -vV | sed -n 's/^commit-hash: //p')
    cargo_home=${CARGO_HOME:-$HOME/.cargo}
    cargo_home=$(cd "$cargo_home" && pwd -P)
    target=$workspace/target/bpf
    # Paths in the debug information (and so in BTF): the workspace (and the
    # target directory inside it), the registry sources under CARGO_HOME, and
    # core's source in the sysroot, named as rustc names its own prebuilt
    # library. The last matching prefix wins, so the longest come last.
    local flags=(
        -Cdebuginfo=2 -Clink-arg=--btf
        "--remap-path-prefix=$cargo_home=/cargo"
        "--remap-path-prefix=$workspace=/flameprof"
        "--remap-path-prefix=$sysroot/lib/rustlib/src/rust=/rustc/$commit"
    )
    # The workspace builds its host dependencies without DWARF (Cargo.toml);
    # the BPF side's dependencies keep theirs, as the object always had.
    local IFS=$'\x1f'
    (cd "$workspace/profiler-ebpf" &&
        CARGO_ENCODED_RUSTFLAGS="${flags[*]}" rustup run nightly cargo build --locked --release \
            --config 'profile.release.package."*".debug = 1' \
            --target bpfel-unknown-none -Z build-std=core --bin flameprof-bpf --target-dir "$target") ||
        fail "building the BPF programs failed (see above)"
    unset IFS
    cp "$target/bpfel-unknown-none/release/flameprof-bpf" "$1"
}

case "${1:-}" in
    --build)
        [[ -n "${2:-}" ]] || fail "--build needs the file to write"
        build "$2"
        ;;
    --update)
        build "$committed.new"
        mv "$committed.new" "$committed"
        used=$(toolchain)
        printf '# The toolchain that built flameprof.bpf.o (scripts/bpf-object.sh --update).\n%s\n' "$used" >"$record"
        echo "bpf-object: updated ${committed#"$workspace"/} (${used//$'\n'/, }): commit it with ${record#"$workspace"/}" >&2
        ;;
    --check)
        fresh=$(mktemp)
        trap 'rm -f "$fresh"' EXIT
        build "$fresh"
        if ! cmp -s "$fresh" "$committed"; then
            here=$(toolchain | paste -sd ';')
            built=$(grep -v '^#' "$record" 2>/dev/null | paste -sd ';' || true)
            if [[ $here != "$built" ]]; then
                fail "${committed#"$workspace"/} differs from a fresh build; it was built with '$built', this machine has '$here': install that toolchain, or run scripts/bpf-object.sh --update and commit the result"
            fi
            fail "${committed#"$workspace"/} differs from a fresh build of profiler-ebpf: run scripts/bpf-object.sh --update and commit the result"
        fi
        echo "bpf-object: ${committed#"$workspace"/} matches its source" >&2
        ;;
    *)
        fail "usage: scripts/bpf-object.sh --update | --check | --build FILE"
        ;;
esac
