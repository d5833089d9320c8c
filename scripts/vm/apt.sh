# Sourced by the VM scripts: Debian packages fetched with apt into a private
# cache (its own sources and lists), so neither this machine's apt sources
# nor its installed packages change. bookworm-backports is one of the
# sources: Debian 12's 6.12 kernels come from there.

vm_cache=${FLAMEPROF_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flameprof-vm}
vm_apt_dir=$vm_cache/apt

vm_log() { printf 'vm-test: %s\n' "$*" >&2; }

vm_apt() {
    local tool=$1
    shift
    "$tool" -q -o Dir::Etc::SourceList="$vm_apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$vm_apt_dir/lists" -o Dir::Cache="$vm_apt_dir/cache" \
        -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

# Package lists, fetched once (the first download needs them).
vm_apt_update() {
    [[ -f $vm_apt_dir/updated ]] && return
    mkdir -p "$vm_apt_dir/lists/partial" "$vm_apt_dir/cache/archives/partial"
    cat >"$vm_apt_dir/sources.list" <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main
LIST
    vm_log "fetching Debian's package lists (bookworm, -security, -backports)"
    vm_apt apt-get update >/dev/null
    touch "$vm_apt_dir/updated"
}

# vm_extract PACKAGE DEST PATTERN...: downloads PACKAGE's .deb and unpacks
# the files matching PATTERN (tar wildcards, e.g. './boot/vmlinuz-*') into
# DEST; the .deb itself is not kept.
vm_extract() {
    local package=$1 dest=$2
    shift 2
    local work
    work=$(mktemp -d)
    vm_log "downloading $package"
    (cd "$work" && vm_apt apt-get download "$package" >/dev/null)
    mkdir -p "$dest"
    dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$dest" --wildcards "$@"
    rm -rf "$work"
}

# vm_depends PACKAGE[/SUITE] PREFIX: the dependency of the candidate version
# of PACKAGE whose name starts with PREFIX (a meta package's real kernel).
vm_depends() {
    vm_apt apt-cache show --no-all-versions "$1" | sed -n 's/^Depends: //p' | tr ',' '\n' |
        sed 's/^ *//; s/ .*//' | grep -m1 "^$2"
}
