#!/usr/bin/env bash
# scripts/vm/fetch-kernel.sh KERNEL: prints the path of the cached vmlinuz of
# a distribution's packaged kernel, downloading it the first time.
#   5.10     linux-image-amd64 of Debian 11 (bullseye, with its security updates)
#   5.15     linux-image-generic of Ubuntu 22.04 (jammy, -updates, -security)
#   6.1      linux-image-amd64 of Debian 12 (bookworm, with its security updates)
#   6.12     linux-image-amd64 from bookworm-backports
#   6.12-rt  linux-image-rt-amd64 from bookworm-backports (PREEMPT_RT)
# The kernel stays as first downloaded; remove the cache folder
# (~/.cache/flameprof-vm/kernels/KERNEL) to take the distribution's newest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/apt.sh"

kernel=${1:?usage: fetch-kernel.sh 5.10|5.15|6.1|6.12|6.12-rt}
case $kernel in
    5.10) dist=bullseye meta=linux-image-amd64/bullseye-security prefix=linux-image-5.10. ;;
    5.15) dist=jammy meta=linux-image-generic prefix=linux-image-5.15. ;;
    6.1) dist=bookworm meta=linux-image-amd64/bookworm-security prefix=linux-image-6.1. ;;
    6.12) dist=bookworm meta=linux-image-amd64/bookworm-backports prefix=linux-image-6.12. ;;
    6.12-rt) dist=bookworm meta=linux-image-rt-amd64/bookworm-backports prefix=linux-image-6.12. ;;
    *)
        echo "fetch-kernel.sh: unknown kernel '$kernel': use 5.10, 5.15, 6.1, 6.12 or 6.12-rt" >&2
        exit 2
        ;;
esac
vm_apt_use "$dist"

dir=$vm_cache/kernels/$kernel
if [[ ! -f $dir/vmlinuz ]]; then
    vm_apt_update
    package=$(vm_depends "$meta" "$prefix") || {
        echo "fetch-kernel.sh: no $prefix* package behind $meta in $dist's package lists" >&2
        exit 1
    }
    rm -rf "$dir.partial"
    # Debian's image package holds the kernel's config too; Ubuntu's keeps
    # it in the modules package, which the initramfs-only guest does not need.
    vm_extract "$package" "$dir.partial" './boot/*'
    mv "$dir.partial"/boot/vmlinuz-* "$dir.partial/vmlinuz"
    if compgen -G "$dir.partial/boot/config-*" >/dev/null; then
        mv "$dir.partial"/boot/config-* "$dir.partial/config"
    fi
    rm -rf "$dir.partial/boot"
    echo "$package" >"$dir.partial/package"
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
fi
echo "$dir/vmlinuz"
