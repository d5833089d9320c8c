# Sourced by the VM scripts: packages fetched with apt into a private cache
# (its own sources, lists and keyrings), so neither this machine's apt
# sources nor its installed packages change. One apt tree per distribution,
# picked with vm_apt_use before anything else:
#   bookworm  Debian 12 with -security and -backports (6.1, 6.12, busybox)
#   bullseye  Debian 11 with -security (5.10)
#   jammy     Ubuntu 22.04 with -updates and -security (5.15), checked
#             against Ubuntu's archive key from Debian's ubuntu-keyring

vm_cache=${FLAMEPROF_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flameprof-vm}
vm_apt_dist=bookworm
vm_apt_dir=$vm_cache/apt

vm_log() { printf 'vm-test: %s\n' "$*" >&2; }

# vm_apt_use DIST: the apt tree the next calls use.
vm_apt_use() {
    vm_apt_dist=$1
    case $1 in
        bookworm) vm_apt_dir=$vm_cache/apt ;;
        bullseye | jammy) vm_apt_dir=$vm_cache/apt-$1 ;;
        *)
            vm_log "unknown distribution '$1'"
            return 2
            ;;
    esac
}

vm_apt() {
    local tool=$1
    shift
    "$tool" -q -o Dir::Etc::SourceList="$vm_apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
        -o Dir::State::Lists="$vm_apt_dir/lists" -o Dir::Cache="$vm_apt_dir/cache" \
        -o APT::Sandbox::User=root -o Debug::NoLocking=1 "$@"
}

# The sources of the current distribution (one line each).
vm_sources() {
    local debian=/usr/share/keyrings/debian-archive-keyring.gpg
    case $vm_apt_dist in
        bookworm)
            echo "deb http://deb.debian.org/debian bookworm main"
            echo "deb http://deb.debian.org/debian-security bookworm-security main"
            echo "deb http://deb.debian.org/debian bookworm-backports main"
            ;;
        bullseye)
            echo "deb [signed-by=$debian] http://deb.debian.org/debian bullseye main"
            echo "deb [signed-by=$debian] http://deb.debian.org/debian-security bullseye-security main"
            ;;
        jammy)
            local ubuntu
            ubuntu=$(vm_ubuntu_keyring) || return 1
            echo "deb [signed-by=$ubuntu] http://archive.ubuntu.com/ubuntu jammy main"
            echo "deb [signed-by=$ubuntu] http://archive.ubuntu.com/ubuntu jammy-updates main"
            echo "deb [signed-by=$ubuntu] http://security.ubuntu.com/ubuntu jammy-security main"
            ;;
    esac
}

# Ubuntu's archive keyring, taken once from Debian's ubuntu-keyring package
# (which Debian's own keys vouch for); prints its path.
vm_ubuntu_keyring() {
    local dir=$vm_cache/keyrings keyring=ubuntu-archive-keyring.gpg
    if [[ ! -f $dir/$keyring ]]; then
        # && throughout: errexit does not hold inside a subshell tested by ||.
        (
            vm_apt_use bookworm && vm_apt_update && rm -rf "$dir.partial" &&
                vm_extract ubuntu-keyring "$dir.partial" "./usr/share/keyrings/$keyring" &&
                mv "$dir.partial/usr/share/keyrings/$keyring" "$dir.partial/$keyring" &&
                rm -rf "$dir.partial/usr" "$dir" && mv "$dir.partial" "$dir"
        ) >&2 || return 1
    fi
    echo "$dir/$keyring"
}

# Package lists, fetched once (the first download needs them).
vm_apt_update() {
    [[ -f $vm_apt_dir/updated ]] && return
    mkdir -p "$vm_apt_dir/lists/partial" "$vm_apt_dir/cache/archives/partial"
    vm_sources >"$vm_apt_dir/sources.list.partial" || return 1
    mv "$vm_apt_dir/sources.list.partial" "$vm_apt_dir/sources.list"
    vm_log "fetching the package lists of $vm_apt_dist"
    vm_apt apt-get update >/dev/null || return 1
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
    local status=0
    (cd "$work" && vm_apt apt-get download "$package" >/dev/null) && mkdir -p "$dest" &&
        dpkg-deb --fsys-tarfile "$work"/*.deb | tar -x -C "$dest" --wildcards "$@" || status=1
    rm -rf "$work"
    return $status
}

# vm_depends PACKAGE[/SUITE] PREFIX: the dependency of the candidate version
# of PACKAGE whose name starts with PREFIX (a meta package's real kernel).
vm_depends() {
    vm_apt apt-cache show --no-all-versions "$1" | sed -n 's/^Depends: //p' | tr ',' '\n' |
        sed 's/^ *//; s/ .*//' | grep -m1 "^$2"
}
