#!/usr/bin/env bash
# Installs what this host needs to build (`run`) or also to test (`test`) the project, chosen
# from /etc/os-release and `uname -m`:
#   Debian/Ubuntu x86_64   apt: compiler, cmake, libcurl; tests add cmocka, clang (fuzz),
#                          ShellCheck, the aarch64 cross compiler + qemu-user + arm64 multiarch
#                          libraries (test-arm64), podman + debootstrap (test-container)
#   Debian/Ubuntu arm64    apt: the same, natively: no cross compiler, no qemu, no multiarch
#   Amazon Linux 2023      dnf: compiler, cmake, libcurl; tests add clang. Its repositories have
#                          no cmocka, ShellCheck, qemu-user, aarch64 cross compiler or
#                          debootstrap, so those steps report SKIPPED there.
# Uses sudo when not root.
#
#   tools/deps.sh run|test [--dry-run] [--if-missing] [--os-release FILE] [--machine M]
#
# --if-missing (test only): install only when one of the host's test tools is absent (what
# `make test` runs first, so that `make deps && make test` is enough).
# The choice is made by functions (deps_host, deps_manager, deps_packages, deps_missing) that
# tests/deps/test_deps.sh checks against os-release fixtures of each host.
set -euo pipefail

# deps_host OS_RELEASE_FILE MACHINE -> debian-x86_64 | debian-arm64 | al2023-x86_64 |
# al2023-arm64 | unsupported:<id>-<machine>
deps_host() {
    local file=$1 machine=$2 id="" like="" arch
    if [ -r "$file" ]; then
        id=$(sed -n 's/^ID=//p' "$file" | tr -d '"' | head -1)
        like=$(sed -n 's/^ID_LIKE=//p' "$file" | tr -d '"' | head -1)
    fi
    case "$machine" in
        x86_64 | amd64) arch=x86_64 ;;
        aarch64 | arm64) arch=arm64 ;;
        *) arch=$machine ;;
    esac
    local family=""
    case "$id" in
        debian | ubuntu) family=debian ;;
        amzn) family=al2023 ;;
        *) case " $like " in *" debian "*) family=debian ;; esac ;;
    esac
    if [ "$family" = al2023 ] && ! grep -q '^VERSION_ID="\?2023' "$file"; then
        family="" # Amazon Linux 2 and older: yum and other package names
    fi
    if [ -z "$family" ] || { [ "$arch" != x86_64 ] && [ "$arch" != arm64 ]; }; then
        echo "unsupported:${id:-unknown}-$machine"
        return 0
    fi
    echo "$family-$arch"
}

# deps_manager HOST -> apt | dnf
deps_manager() {
    case "$1" in
        debian-*) echo apt ;;
        al2023-*) echo dnf ;;
        *) return 1 ;;
    esac
}

# deps_packages HOST run|test -> the packages, one line (test = only those beyond run).
# Multiarch packages (name:arch) need `dpkg --add-architecture` first; deps_install does it.
deps_packages() {
    local host=$1 set=$2
    case "$host/$set" in
        debian-*/run) echo "build-essential cmake pkg-config libcurl4-openssl-dev curl ca-certificates" ;;
        debian-x86_64/test)
            echo "libcmocka-dev clang clang-format libclang-rt-dev llvm shellcheck unicode-data podman debootstrap nodejs npm" \
                "gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" \
                "libcmocka-dev:arm64 libcurl4-openssl-dev:arm64" ;;
        debian-arm64/test)
            echo "libcmocka-dev clang clang-format libclang-rt-dev llvm shellcheck unicode-data podman debootstrap nodejs npm" ;;
        al2023-*/run) echo "gcc make cmake pkgconf-pkg-config libcurl-devel ca-certificates" ;;
        al2023-*/test) echo "clang clang-tools-extra compiler-rt llvm nodejs npm" ;;
        *) return 1 ;;
    esac
}

# deps_missing HOST -> the test steps this host's repositories cannot serve (empty: none).
deps_missing() {
    case "$1" in
        debian-x86_64) echo "" ;;
        debian-arm64) echo "test-arm64 (it is the native test-native here)" ;;
        al2023-*) echo "cmocka tests (no libcmocka-devel: test-native runs only the layering and configure checks)," \
            "test-scripts (no ShellCheck), test-arm64 (no cross compiler, no qemu-user)," \
            "test-container (no debootstrap), test_unicode's UCD comparison (no unicode-data)" ;;
        *) return 1 ;;
    esac
}

# deps_tools_missing HOST -> the test tools of HOST's list not installed yet (empty: all
# there). Files are looked up under $DEPS_ROOT (empty: /), commands on PATH.
deps_tools_missing() {
    local host=$1 root=${DEPS_ROOT:-} cmds=() files=() out=()
    case "$host" in
        debian-x86_64)
            cmds=(clang clang-format shellcheck aarch64-linux-gnu-gcc qemu-aarch64 podman debootstrap)
            files=(/usr/include/cmocka.h /usr/lib/aarch64-linux-gnu/libcmocka.so) ;;
        debian-arm64)
            cmds=(clang clang-format shellcheck podman debootstrap)
            files=(/usr/include/cmocka.h) ;;
        al2023-*) cmds=(clang) ;;
        *) return 1 ;;
    esac
    for c in "${cmds[@]}"; do command -v "$c" >/dev/null 2>&1 || out+=("$c"); done
    for f in "${files[@]}"; do [ -e "$root$f" ] || out+=("$f"); done
    echo "${out[*]}"
}

# deps_install HOST SET [DRY]: prints each command, runs it unless DRY is set.
deps_install() {
    local host=$1 set=$2 dry=${3:-} sudo="" pkgs native=() multi=()
    [ "$(id -u)" = 0 ] || sudo="sudo"
    pkgs=$(deps_packages "$host" "$set")
    for p in $pkgs; do
        # a Node.js already installed (NodeSource's, which bundles npm) conflicts with the
        # distribution's nodejs/npm packages: keep it
        case "$p" in nodejs | npm)
            if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then continue; fi ;;
        esac
        case "$p" in *:*) multi+=("$p") ;; *) native+=("$p") ;; esac
    done
    run() {
        echo "+ $*"
        [ -n "$dry" ] || "$@"
    }
    case "$(deps_manager "$host")" in
        apt)
            run $sudo apt-get update
            run $sudo apt-get install -y --no-install-recommends "${native[@]}"
            if [ ${#multi[@]} -gt 0 ]; then
                run $sudo dpkg --add-architecture arm64
                run $sudo apt-get update
                run $sudo apt-get install -y --no-install-recommends "${multi[@]}"
            fi
            ;;
        dnf)
            run $sudo dnf install -y "${native[@]}"
            ;;
    esac
}

deps_main() {
    local set="" dry="" if_missing="" osr=/etc/os-release machine
    machine=$(uname -m)
    while [ $# -gt 0 ]; do
        case "$1" in
            run | test) set=$1 ;;
            --dry-run) dry=1 ;;
            --if-missing) if_missing=1 ;;
            --os-release) osr=$2; shift ;;
            --machine) machine=$2; shift ;;
            -h | --help) sed -n '2,20p' "$0"; return 0 ;;
            *) echo "deps.sh: unknown argument '$1' (see --help)" >&2; return 2 ;;
        esac
        shift
    done
    if [ -z "$set" ]; then
        echo "deps.sh: say what for: run or test (see --help)" >&2
        return 2
    fi
    local host
    host=$(deps_host "$osr" "$machine")
    case "$host" in
        unsupported:*)
            echo "deps.sh: no package list for ${host#unsupported:} (supported: Debian/Ubuntu" \
                "x86_64 and arm64, Amazon Linux 2023); install a C11 compiler, cmake, pkg-config" \
                "and libcurl's development files by hand" >&2
            return 1 ;;
    esac
    if [ -n "$if_missing" ] && [ "$set" = test ]; then
        local absent
        absent=$(deps_tools_missing "$host")
        if [ -z "$absent" ]; then
            echo "deps.sh: the test tools for $host are installed"
            return 0
        fi
        echo "deps.sh: missing $absent: installing the test packages (make deps-test)"
    fi
    echo "deps.sh: host $host, $(deps_manager "$host"), packages for make $set"
    if [ "$set" = test ]; then
        local missing
        missing=$(deps_missing "$host")
        [ -z "$missing" ] || echo "deps.sh: not available here, so SKIPPED by make test: $missing"
    fi
    deps_install "$host" "$set" "$dry"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    deps_main "$@"
fi
