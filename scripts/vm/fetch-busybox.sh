#!/usr/bin/env bash
# scripts/vm/fetch-busybox.sh: prints the path of a cached static busybox
# (Debian 12's busybox-static), the guest's shell and tools.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/apt.sh"

dir=$vm_cache/busybox
if [[ ! -x $dir/busybox ]]; then
    vm_apt_update
    rm -rf "$dir.partial"
    vm_extract busybox-static/bookworm "$dir.partial" './bin/busybox'
    mv "$dir.partial/bin/busybox" "$dir.partial/busybox"
    rmdir "$dir.partial/bin"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
fi
echo "$dir/busybox"
