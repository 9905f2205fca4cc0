#!/usr/bin/env bash
# Builds the Lambda container image WITHOUT Docker and checks its entrypoint answers:
#   1. base image: `debootstrap --variant=minbase bookworm` from the Debian mirror apt is
#      configured with (read from the apt sources, never hard-coded), imported into podman as
#      debian:bookworm-slim (cached in $BN_CONTAINER_CACHE, reused when present);
#   2. `podman build --isolation chroot` of the repo's Dockerfile with the tiny reference model;
#   3. the image's filesystem exported (podman create + export) and its ENTRYPOINT run under
#      chroot by BUILD_DIR/bin/test_container against the in-repo Runtime API test server.
# When it cannot run (not root, podman/debootstrap/the model missing) it prints
# "test-container: SKIPPED (reason)" and exits 77, never 0: a test that did not run must not
# look passed (the Makefile shows it as skipped in the summary table).
#
# usage: tests/container/run.sh [BUILD_DIR]      (default: build-asan; needs bin/test_container)
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD_DIR="${1:-build-asan}"
CACHE="${BN_CONTAINER_CACHE:-/var/tmp/bitnet-container}"
SHARED="${BN_SHARED_DIR:-../shared}"
MODEL="$SHARED/reference/models/tiny-a.gguf"
IMAGE="localhost/bitnet-lambda:ci"
start=$(date +%s)

skip() {
    echo "test-container: SKIPPED ($*)"
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root for debootstrap and chroot"
command -v podman >/dev/null || skip "needs podman (apt-get install podman)"
command -v debootstrap >/dev/null || skip "needs debootstrap (apt-get install debootstrap)"
[ -f "$MODEL" ] || skip "no tiny model at $MODEL"
[ -x "$BUILD_DIR/bin/test_container" ] || { echo "test-container: $BUILD_DIR/bin/test_container is not built" >&2; exit 1; }

# The Debian mirror apt uses: deb822 *.sources first, then one-line sources.list entries.
debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '
            /^[[:space:]]*$/ { if (uri != "" && suites ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) { print uri; exit } uri = ""; suites = ""; next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { $1 = ""; suites = $0 }
            END { if (uri != "" && suites ~ /(^|[[:space:]])bookworm([[:space:]]|$)/) print uri }
        ' "$f" | head -n 1)
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == "bookworm") { print $i; exit } }' "$f")
        if [ -n "$uri" ]; then echo "$uri"; return; fi
    done
}

mkdir -p "$CACHE"
base_tar="$CACHE/bookworm-minbase.tar"
if ! podman image exists debian:bookworm-slim; then
    if [ ! -s "$base_tar" ]; then
        mirror=$(debian_mirror)
        [ -n "$mirror" ] || { echo "test-container: no bookworm mirror found in the apt sources" >&2; exit 1; }
        echo "test-container: debootstrap --variant=minbase bookworm from $mirror"
        t0=$(date +%s)
        rm -rf "$CACHE/rootfs"
        debootstrap --variant=minbase bookworm "$CACHE/rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
            { tail -20 "$CACHE/debootstrap.log"; exit 1; }
        tar -C "$CACHE/rootfs" -cf "$base_tar.tmp" .
        mv "$base_tar.tmp" "$base_tar"
        rm -rf "$CACHE/rootfs"
        echo "test-container: base filesystem in $(( $(date +%s) - t0 )) s"
    fi
    podman import --quiet "$base_tar" debian:bookworm-slim >/dev/null
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bitnet-container.XXXXXX")
cid=""
cleanup() {
    if [ -n "$cid" ]; then podman rm -f "$cid" >/dev/null 2>&1 || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Build context: the tracked (and new, not ignored) files the image needs, plus the tiny model.
mkdir -p "$work/ctx/models"
git ls-files -co --exclude-standard -z -- CMakeLists.txt Dockerfile .dockerignore cmake kernels src tools |
    xargs -0 cp --parents -t "$work/ctx"
cp "$MODEL" "$work/ctx/models/tiny-a.gguf"

t0=$(date +%s)
if ! podman build --isolation chroot --pull=never -t "$IMAGE" --build-arg MODEL_FILE=tiny-a.gguf \
        "$work/ctx" >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log"
    exit 1
fi
echo "test-container: podman build in $(( $(date +%s) - t0 )) s;" \
     "image $(( $(podman image inspect "$IMAGE" --format '{{.Size}}') / 1000000 )) MB" \
     "(base $(( $(podman image inspect debian:bookworm-slim --format '{{.Size}}') / 1000000 )) MB)"

cid=$(podman create "$IMAGE")
mkdir "$work/rootfs"
podman export "$cid" | tar -C "$work/rootfs" -x
entry=$(podman image inspect "$IMAGE" --format '{{range .Config.Entrypoint}}{{.}} {{end}}')
entry="${entry% }"
case "$entry" in
    *" "*|"") echo "test-container: expected a one-path ENTRYPOINT, got '$entry'" >&2; exit 1 ;;
esac
envs=$(podman image inspect "$IMAGE" --format '{{range .Config.Env}}{{.}}{{"\n"}}{{end}}')

BN_CONTAINER_ROOT="$work/rootfs" BN_CONTAINER_ENTRYPOINT="$entry" BN_CONTAINER_ENV="$envs" \
    "$BUILD_DIR/bin/test_container"
echo "test-container: passed in $(( $(date +%s) - start )) s"
