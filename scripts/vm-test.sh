#!/usr/bin/env bash
# scripts/vm-test.sh KERNEL...: runs an end-to-end subset of flameprof's
# tests (scripts/vm/subset.txt) on other kernels, and ends with
# `N passed, M failed`; exit status 0 only when none failed.
#   5.10     Debian 11's kernel          } booted in qemu from the
#   5.15     Ubuntu 22.04's (generic)    } distributions' packages, with
#   6.1      Debian 12's kernel          } an initramfs of the release
#   6.12     its bookworm-backports one  } build
#   6.12-rt  the same with PREEMPT_RT    }
#   host     this machine's kernel, the same subset run directly (root)
#   all      all six
# Idempotent: installs qemu and fetches the kernels once (cached in
# ~/.cache/flameprof-vm). A VM that cannot start (no kernel download, no
# qemu) is a failure under CI=true, a loud SKIPPED line otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    echo "usage: scripts/vm-test.sh KERNEL... (5.10, 5.15, 6.1, 6.12, 6.12-rt, host, all)" >&2
    exit 2
}
kernels=()
for k in "$@"; do
    case $k in
        all) kernels+=(5.10 5.15 6.1 6.12 6.12-rt host) ;;
        5.10 | 5.15 | 6.1 | 6.12 | 6.12-rt | host) kernels+=("$k") ;;
        *) usage ;;
    esac
done
((${#kernels[@]})) || usage
if [[ $(id -u) != 0 ]]; then
    echo "vm-test.sh: needs root (it installs qemu, and the host kernel's run uses BPF): run it with sudo" >&2
    exit 1
fi
log() { printf 'vm-test: %s\n' "$*" >&2; }

# One install step: Debian's qemu, only when a VM is asked for.
if [[ " ${kernels[*]} " =~ " "[56]"." ]] && ! command -v qemu-system-x86_64 >/dev/null; then
    log "installing qemu-system-x86"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null ||
        log "qemu-system-x86 could not be installed"
fi

scripts/setup.sh
cargo build --release --locked -p flameprof -p flameprof-examples
initramfs=$(scripts/vm/initramfs.sh)
root=$(dirname "$initramfs")/root/fp

logs=$(dirname "$initramfs")
passed=0 failed=0 results=()
# Adds the closing `N passed, M failed` line of one kernel's log.
tally() {
    local kernel=$1 log=$2 line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)
    if [[ -z $line ]]; then
        # Started, but the subset did not finish (a crash, a hang).
        line="0 passed, 1 failed (stopped before the end)"
    fi
    results+=("$kernel: $line")
    read -r p _ f _ <<<"$line"
    passed=$((passed + p)) failed=$((failed + f))
}
cannot_start() {
    if [[ ${CI:-} == true ]]; then
        results+=("$1: 0 passed, 1 failed (the VM could not start: $2)")
        failed=$((failed + 1))
    else
        local line="!!!!! SKIPPED $1: the VM could not start: $2 !!!!!"
        echo "$line"
        results+=("$line")
    fi
}

for kernel in "${kernels[@]}"; do
    start=$SECONDS
    log=$logs/$kernel.log
    log "=== $kernel (output also in $log) ==="
    if [[ $kernel == host ]]; then
        "$root/run-subset.sh" "$root" | tee "$log" || true
        tally "host (Linux $(uname -r), run directly)" "$log"
    else
        if ! vmlinuz=$(scripts/vm/fetch-kernel.sh "$kernel"); then
            cannot_start "$kernel" "no kernel package"
            continue
        fi
        if ! command -v qemu-system-x86_64 >/dev/null; then
            cannot_start "$kernel" "no qemu-system-x86_64"
            continue
        fi
        scripts/vm/boot.sh "$vmlinuz" "$initramfs" 2>&1 | sed -u 's/\r$//' | tee "$log" || true
        release=$(sed -n 's/^flameprof-vm: guest up: //p' "$log")
        if [[ -z $release ]]; then
            cannot_start "$kernel" "no guest came up (see $log)"
            continue
        fi
        tally "$kernel ($release)" "$log"
    fi
    results[-1]+=" in $((SECONDS - start)) s"
done

echo "=== scripts/vm-test.sh ${kernels[*]}"
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
((failed == 0))
