#!/usr/bin/env bash
# make deps' host detection (tools/deps.sh) against os-release fixtures: the package manager,
# the packages for `make run` and `make test`, what each host lacks, and the commands it would
# run (--dry-run). Run by ctest (deps_host_selection).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091 # tools/deps.sh is checked on its own by make test-scripts
. "$here/../../tools/deps.sh"
fx=$here/fixtures
fails=0

check() { # check NAME GOT WANT
    if [ "$2" != "$3" ]; then
        echo "FAIL $1: got '$2', want '$3'"
        fails=$((fails + 1))
    else
        echo "ok   $1"
    fi
}
has() { # has NAME LIST WORD: WORD is one of LIST's words
    case " $2 " in
        *" $3 "*) echo "ok   $1" ;;
        *) echo "FAIL $1: '$3' not in '$2'"; fails=$((fails + 1)) ;;
    esac
}
lacks() {
    case " $2 " in
        *" $3 "*) echo "FAIL $1: '$3' in '$2'"; fails=$((fails + 1)) ;;
        *) echo "ok   $1" ;;
    esac
}

# Debian 12 x86_64 (this project's CI host): today's full set, cross tools included
check "debian12 x86_64 host" "$(deps_host "$fx/debian-12.os-release" x86_64)" debian-x86_64
check "debian12 manager" "$(deps_manager debian-x86_64)" apt
run_pk=$(deps_packages debian-x86_64 run)
test_pk=$(deps_packages debian-x86_64 test)
for p in build-essential cmake pkg-config libcurl4-openssl-dev; do has "debian run has $p" "$run_pk" "$p"; done
lacks "debian run has no cmocka" "$run_pk" libcmocka-dev
for p in libcmocka-dev clang clang-format shellcheck gcc-aarch64-linux-gnu qemu-user libcmocka-dev:arm64 podman debootstrap; do
    has "debian x86_64 test has $p" "$test_pk" "$p"
done
check "debian x86_64 lacks nothing" "$(deps_missing debian-x86_64)" ""

# Ubuntu 24.04 arm64 (Graviton, Raspberry Pi 5, Ampere): native build, no cross tools
check "ubuntu24.04 arm64 host" "$(deps_host "$fx/ubuntu-24.04.os-release" aarch64)" debian-arm64
check "ubuntu arm64 'arm64' machine name" "$(deps_host "$fx/ubuntu-24.04.os-release" arm64)" debian-arm64
test_pk=$(deps_packages debian-arm64 test)
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libcmocka-dev:arm64 libcurl4-openssl-dev:arm64; do
    lacks "ubuntu arm64 test has no $p" "$test_pk" "$p"
done
has "ubuntu arm64 test has cmocka" "$test_pk" libcmocka-dev
out=$(deps_main test --dry-run --os-release "$fx/ubuntu-24.04.os-release" --machine aarch64)
case "$out" in *"dpkg --add-architecture"*) check "ubuntu arm64 no multiarch" yes no ;;
    *) check "ubuntu arm64 no multiarch" no no ;; esac

# Amazon Linux 2023, both machines: dnf, and the test tools it lacks are named
for m in aarch64 x86_64; do
    want=al2023-arm64
    [ "$m" = x86_64 ] && want=al2023-x86_64
    host=$(deps_host "$fx/al2023.os-release" "$m")
    check "al2023 $m host" "$host" "$want"
    check "al2023 $m manager" "$(deps_manager "$host")" dnf
    run_pk=$(deps_packages "$host" run)
    for p in gcc make cmake libcurl-devel; do has "al2023 $m run has $p" "$run_pk" "$p"; done
    lacks "al2023 $m run has no apt names" "$run_pk" build-essential
    missing=$(deps_missing "$host")
    for w in cmocka ShellCheck qemu-user debootstrap; do
        case "$missing" in *"$w"*) echo "ok   al2023 $m says it lacks $w" ;;
            *) echo "FAIL al2023 $m: '$w' not named in '$missing'"; fails=$((fails + 1)) ;; esac
    done
    out=$(deps_main run --dry-run --os-release "$fx/al2023.os-release" --machine "$m")
    case "$out" in *"dnf install -y gcc make cmake"*) echo "ok   al2023 $m dry run uses dnf" ;;
        *) echo "FAIL al2023 $m dry run: $out"; fails=$((fails + 1)) ;; esac
done

# Debian x86_64 dry run: multiarch after the native packages; sudo only when not root
out=$(deps_main test --dry-run --os-release "$fx/debian-12.os-release" --machine x86_64)
case "$out" in *"dpkg --add-architecture arm64"*"libcmocka-dev:arm64"*) echo "ok   debian multiarch step" ;;
    *) echo "FAIL debian multiarch step: $out"; fails=$((fails + 1)) ;; esac
if [ "$(id -u)" = 0 ]; then lacks "root: no sudo" "$out" "sudo"; else has "user: sudo" "$out" "+ sudo"; fi

# Unsupported hosts get a clear error, not a wrong package manager
check "fedora unsupported" "$(deps_host "$fx/fedora-40.os-release" x86_64)" unsupported:fedora-x86_64
check "riscv unsupported" "$(deps_host "$fx/debian-12.os-release" riscv64)" unsupported:debian-riscv64
if deps_main run --dry-run --os-release "$fx/fedora-40.os-release" --machine x86_64 2>/dev/null; then
    echo "FAIL fedora: deps.sh succeeded"; fails=$((fails + 1))
else
    echo "ok   fedora: deps.sh refuses"
fi

# --if-missing: nothing to do when every tool is there, the missing ones named otherwise
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/usr/include" "$tmp/usr/lib/aarch64-linux-gnu"
check "debian x86_64 all missing" "$(PATH=$tmp/bin DEPS_ROOT=$tmp deps_tools_missing debian-x86_64)" \
    "clang clang-format shellcheck aarch64-linux-gnu-gcc qemu-aarch64 podman debootstrap /usr/include/cmocka.h /usr/lib/aarch64-linux-gnu/libcmocka.so"
for c in clang clang-format shellcheck aarch64-linux-gnu-gcc qemu-aarch64 podman debootstrap; do
    printf '#!/bin/sh\n' >"$tmp/bin/$c"
    chmod +x "$tmp/bin/$c"
done
touch "$tmp/usr/include/cmocka.h" "$tmp/usr/lib/aarch64-linux-gnu/libcmocka.so"
check "debian x86_64 nothing missing" "$(PATH=$tmp/bin DEPS_ROOT=$tmp deps_tools_missing debian-x86_64)" ""
rm "$tmp/bin/qemu-aarch64"
check "debian x86_64 qemu missing" "$(PATH=$tmp/bin DEPS_ROOT=$tmp deps_tools_missing debian-x86_64)" qemu-aarch64
check "debian arm64 needs no qemu" "$(PATH=$tmp/bin DEPS_ROOT=$tmp deps_tools_missing debian-arm64)" ""
out=$(PATH=$tmp/bin:/usr/bin:/bin DEPS_ROOT=$tmp deps_main test --if-missing --dry-run \
    --os-release "$fx/ubuntu-24.04.os-release" --machine aarch64)
case "$out" in *"test tools for debian-arm64 are installed"*) echo "ok   --if-missing installs nothing" ;;
    *) echo "FAIL --if-missing: $out"; fails=$((fails + 1)) ;; esac

# a Node.js already on PATH (e.g. NodeSource's, whose nodejs conflicts with Debian's npm) is kept
printf '#!/bin/sh\n' >"$tmp/bin/node"
printf '#!/bin/sh\n' >"$tmp/bin/npm"
chmod +x "$tmp/bin/node" "$tmp/bin/npm"
out=$(PATH=$tmp/bin:/usr/bin:/bin deps_main test --dry-run --os-release "$fx/debian-12.os-release" \
    --machine x86_64)
case "$out" in *" nodejs"* | *" npm"*) echo "FAIL node present: $out"; fails=$((fails + 1)) ;;
    *) echo "ok   an installed Node.js is kept" ;; esac
rm "$tmp/bin/node" "$tmp/bin/npm"
case " $(deps_packages debian-x86_64 test) " in *" nodejs npm "*) echo "ok   nodejs npm in the list" ;;
    *) echo "FAIL nodejs npm not in the test list"; fails=$((fails + 1)) ;; esac

if [ "$fails" -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all deps.sh checks passed"
