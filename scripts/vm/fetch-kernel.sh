#!/usr/bin/env bash
# scripts/vm/fetch-kernel.sh KERNEL: prints the path of the cached vmlinuz of
# one of Debian 12's packaged kernels, downloading it the first time.
#   6.1      linux-image-amd64 (bookworm, with its security updates)
#   6.12     linux-image-amd64 from bookworm-backports
#   6.12-rt  linux-image-rt-amd64 from bookworm-backports (PREEMPT_RT)
# The kernel stays as first downloaded; remove the cache folder
# (~/.cache/flameprof-vm/kernels/KERNEL) to take Debian's newest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/apt.sh"

kernel=${1:?usage: fetch-kernel.sh 6.1|6.12|6.12-rt}
case $kernel in
    6.1) meta=linux-image-amd64/bookworm-security prefix=linux-image-6.1. ;;
    6.12) meta=linux-image-amd64/bookworm-backports prefix=linux-image-6.12. ;;
    6.12-rt) meta=linux-image-rt-amd64/bookworm-backports prefix=linux-image-6.12. ;;
    *)
        echo "fetch-kernel.sh: unknown kernel '$kernel': use 6.1, 6.12 or 6.12-rt" >&2
        exit 2
        ;;
esac

dir=$vm_cache/kernels/$kernel
if [[ ! -f $dir/vmlinuz ]]; then
    vm_apt_update
    package=$(vm_depends "$meta" "$prefix") || {
        echo "fetch-kernel.sh: no $prefix* package behind $meta in Debian's lists" >&2
        exit 1
    }
    rm -rf "$dir.partial"
    vm_extract "$package" "$dir.partial" './boot/vmlinuz-*' './boot/config-*'
    mv "$dir.partial"/boot/vmlinuz-* "$dir.partial/vmlinuz"
    mv "$dir.partial"/boot/config-* "$dir.partial/config"
    rmdir "$dir.partial/boot"
    echo "$package" >"$dir.partial/package"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
fi
echo "$dir/vmlinuz"
