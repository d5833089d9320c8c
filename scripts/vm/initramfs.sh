#!/usr/bin/env bash
# scripts/vm/initramfs.sh: builds the guest's initramfs from the release
# build (flameprof, the examples, the end-to-end test binaries) and prints
# its path. The guest runs from it entirely: no disk image, no modules
# (Debian's kernels build in everything flameprof uses). Also leaves the same
# tree in target/vm/root, which the `host` kernel runs directly.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
release=$target/release
out=$target/vm
root=$out/root

busybox=$("$here/fetch-busybox.sh")
rm -rf "$root"
mkdir -p "$root"/{bin,proc,sys,dev,tmp,fp/tests,fp/target/release}
cp "$busybox" "$root/bin/busybox"
cp "$here/init" "$root/init"
cp "$here/run-subset.sh" "$here/subset.txt" "$root/fp/"

# flameprof and the examples: the executables at the top of target/release.
find "$release" -maxdepth 1 -type f -perm -u+x -exec cp {} "$root/fp/target/release/" \;
[[ -x $root/fp/target/release/flameprof ]] || {
    echo "initramfs.sh: $release/flameprof is missing: build it with" \
        "\`cargo build --release --locked -p flameprof -p flameprof-examples\`" >&2
    exit 1
}

# The end-to-end test binaries, by their test name (oncpu-HASH -> oncpu).
# Their debug info is left out: nothing profiles them, and it is most of
# their size.
(cd "$repo" && cargo test --release --locked -p flameprof-tests --no-run --message-format=json) |
    grep '"kind":\["test"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' |
    while read -r test; do
        name=${test##*/}
        objcopy --strip-debug "$test" "$root/fp/tests/${name%-*}"
    done

# The shared libraries all of them use, at the paths they are looked up at,
# with their separate debug files where this machine has them (libc6-dbg
# names libc's static functions, msort_with_tmp for one, as on the host).
copy() {
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}
find "$root/fp/tests" "$root/fp/target" -type f -exec ldd {} + 2>/dev/null | grep -o '/[^ ]*\.so[^ ]*' | sort -u |
    while read -r library; do
        copy "$library"
        id=$(readelf -n "$library" | sed -n 's/.*Build ID: //p')
        debug=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
        if [[ -n $id && -f $debug ]]; then copy "$debug"; fi
    done

# Uncompressed: the kernel unpacks it faster than it would decompress it
# under emulation.
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null) >"$out/initramfs.cpio.partial"
mv "$out/initramfs.cpio.partial" "$out/initramfs.cpio"
echo "$out/initramfs.cpio"
