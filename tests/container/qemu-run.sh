#!/bin/sh
# Runs an aarch64 image's entrypoint from its exported filesystem under qemu-aarch64, with the
# image's own loader and libraries: qemu's -L makes the guest's absolute paths resolve inside
# ROOT first, but falls back to the host's files when ROOT lacks one, so this runs in a private
# mount namespace where the host's aarch64 libraries (Debian multiarch, the cross libc) and its
# ld.so.cache are hidden: a library missing from the image makes the entrypoint fail to start.
# Needs root (unshare --mount). Used by tests/container/run.sh as BN_CONTAINER_RUNNER.
#
# usage: tests/container/qemu-run.sh ROOT ENTRYPOINT     (qemu CPU: $BN_QEMU_CPU, neoverse-n1)
set -eu
[ $# -eq 2 ] || { echo "usage: tests/container/qemu-run.sh ROOT ENTRYPOINT" >&2; exit 2; }
# shellcheck disable=SC2016  # expanded by the inner shell
exec unshare --mount -- sh -c '
    set -eu
    for d in /usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu /usr/aarch64-linux-gnu; do
        if [ -d "$d" ] && [ ! -L "$d" ]; then mount -t tmpfs -o size=1m none "$d"; fi
    done
    if [ -f /etc/ld.so.cache ]; then mount --bind /dev/null /etc/ld.so.cache; fi
    exec qemu-aarch64 -cpu "$0" -L "$1" "$1$2"
' "${BN_QEMU_CPU:-neoverse-n1}" "$1" "$2"
