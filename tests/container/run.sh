#!/usr/bin/env bash
# Builds the Lambda container image for linux/arm64 and linux/amd64 WITHOUT Docker and checks
# that each is what Lambda runs and that its entrypoint answers:
#   1. the builder's base image: `debootstrap --variant=minbase bookworm` from the Debian mirror
#      apt is configured with (read from the apt sources, never hard-coded), imported into podman
#      as debian:bookworm-slim (cached in $BN_CONTAINER_CACHE, reused when present);
#   2. `podman build --isolation chroot --platform linux/ARCH` of the repo's Dockerfile with the
#      tiny reference model. The builder runs natively and cross-compiles and the final stage is
#      FROM scratch without RUN, so the arm64 build runs no arm64 code (no binfmt needed);
#   3. the image's filesystem exported (podman create + export) and checked: no RUN in its
#      history, every ELF file of the image's architecture, every loader and library they need
#      present in the image (tools/elf-deps.sh --root), and the bootstrap's recorded compile flags
#      (-mcpu=neoverse-n1 on arm64, no -mcpu/-march on amd64);
#   4. its ENTRYPOINT run by BUILD_DIR/bin/test_container against the in-repo Runtime API test
#      server: amd64 under chroot, arm64 under qemu-aarch64 with the image's own loader and
#      libraries (tests/container/qemu-run.sh);
#   5. the amd64 image under AWS's Runtime Interface Emulator, when `aws-lambda-rie` is on PATH
#      (or BN_LAMBDA_RIE names it): one invocation through its HTTP endpoint.
# Prints both image sizes, the build times and the arm64 image's files.
# When it cannot run (not root, podman/debootstrap/the model missing) it prints
# "test-container: SKIPPED (reason)" and exits 77, never 0: a test that did not run must not
# look passed (the Makefile shows it as skipped in the summary table). A missing qemu-aarch64
# or emulator skips only that run, with a message.
#
# usage: tests/container/run.sh [BUILD_DIR]      (default: build-asan; needs bin/test_container)
#        BN_CONTAINER_ARCHS="arm64 amd64"         the platforms to build and check
set -euo pipefail

cd "$(dirname "$0")/../.."
BUILD_DIR="${1:-build-asan}"
CACHE="${BN_CONTAINER_CACHE:-/var/tmp/bitnet-container}"
SHARED="${BN_SHARED_DIR:-../shared}"
MODEL="$SHARED/reference/models/tiny-a.gguf"
IMAGE="localhost/bitnet-lambda"
ARCHS="${BN_CONTAINER_ARCHS:-arm64 amd64}"
start=$(date +%s)

skip() {
    echo "test-container: SKIPPED ($*)"
    exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root for debootstrap and chroot"
command -v podman >/dev/null || skip "needs podman (apt-get install podman)"
command -v debootstrap >/dev/null || skip "needs debootstrap (apt-get install debootstrap)"
[ -f "$MODEL" ] || skip "no tiny model at $MODEL"
command -v readelf >/dev/null || skip "needs readelf (binutils)"
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
cids=()
rie_pid=""
cleanup() {
    if [ -n "$rie_pid" ]; then kill "$rie_pid" 2>/dev/null || true; fi
    for c in "${cids[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "test-container: $*" >&2
    exit 1
}

# Build context: the tracked (and new, not ignored) files the image needs, plus the tiny model.
mkdir -p "$work/ctx/models"
git ls-files -co --exclude-standard -z -- CMakeLists.txt Dockerfile .dockerignore cmake kernels src tools \
        tests/layering tests/support |
    xargs -0 cp --parents -t "$work/ctx"
cp "$MODEL" "$work/ctx/models/tiny-a.gguf"

if [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    echo "test-container: note: this host has a binfmt handler for aarch64, so an arm64 RUN step" \
         "would be emulated silently here; the history check below still catches one in the final stage"
fi

# The builder stage runs on this machine's architecture (podman 4.3 does not fill in
# $BUILDPLATFORM in FROM lines by itself).
case "$(uname -m)" in
    x86_64) build_arch=amd64 ;;
    aarch64) build_arch=arm64 ;;
    *) skip "the builder stage runs on amd64 or arm64, not $(uname -m)" ;;
esac

# build ARCH: the image localhost/bitnet-lambda:ci-ARCH
build() {
    local arch="$1" t0
    t0=$(date +%s)
    if ! podman build --isolation chroot --pull=never --platform "linux/$arch" -t "$IMAGE:ci-$arch" \
            --build-arg BUILDPLATFORM="linux/$build_arch" --build-arg MODEL_FILE=tiny-a.gguf \
            "$work/ctx" >"$work/build-$arch.log" 2>&1; then
        tail -40 "$work/build-$arch.log"
        fail "podman build --platform linux/$arch failed (log above)"
    fi
    echo "test-container: linux/$arch: podman build in $(( $(date +%s) - t0 )) s;" \
         "image $(podman image inspect "$IMAGE:ci-$arch" --format '{{.Size}}') bytes"
}

# export ARCH: the image's filesystem in $work/root-ARCH
export_root() {
    local arch="$1" cid
    cid=$(podman create --platform "linux/$arch" "$IMAGE:ci-$arch")
    cids+=("$cid")
    mkdir "$work/root-$arch"
    podman export "$cid" | tar -C "$work/root-$arch" -x
}

# check ARCH MACHINE: the static checks of step 3 (MACHINE as readelf names it)
check() {
    local arch="$1" machine="$2"
    local root="$work/root-$arch" history f m entry lines elfs=()
    # COPY, ENV and ENTRYPOINT are recorded as "#(nop)"; anything else ran a command in the image
    history=$(podman history --no-trunc --format '{{.CreatedBy}}' "$IMAGE:ci-$arch")
    if grep -v -e '#(nop)' <<<"$history" | grep -q .; then
        echo "$history" >&2
        fail "linux/$arch: the final image has a RUN step (it would need an emulated CPU to build)"
    fi
    while IFS= read -r -d '' f; do
        [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] || continue
        m=$(LC_ALL=C readelf -h "$f" | sed -n 's/^ *Machine: *//p')
        [ "$m" = "$machine" ] || fail "linux/$arch: ${f#"$root"} is an ELF file for '$m', not '$machine'"
        elfs+=("$f")
    done < <(find "$root" -type f -print0)
    [ "${#elfs[@]}" -gt 0 ] || fail "linux/$arch: no ELF file in the image"
    # Lambda runs the entrypoint as a non-root user
    f=$(find "$root" \( -type f ! -perm -o=r \) -o \( -type d ! -perm -o=rx \) | head -1)
    [ -z "$f" ] || fail "linux/$arch: ${f#"$root"} is not readable by every user ($(stat -c %A "$f"))"
    tools/elf-deps.sh --root "$root" "${elfs[@]}" >"$work/deps-$arch" ||
        fail "linux/$arch: the image lacks libraries its programs need (above)"
    echo "test-container: linux/$arch: ${#elfs[@]} ELF files, all $machine; loader and" \
         "$(( $(wc -l <"$work/deps-$arch") - 1 )) libraries needed, all in the image"
    entry=$(podman image inspect "$IMAGE:ci-$arch" --format '{{range .Config.Entrypoint}}{{.}} {{end}}')
    entry="${entry% }"
    case "$entry" in
        *" "*|"") fail "linux/$arch: expected a one-path ENTRYPOINT, got '$entry'" ;;
    esac
    [ "$(( 0$(stat -c %a "$root$entry") & 1 ))" = 1 ] ||
        fail "linux/$arch: the ENTRYPOINT $entry is not executable by every user"
    # -frecord-gcc-switches (Dockerfile): one line per distinct compiler command line
    lines=$(LC_ALL=C readelf -p .GCC.command.line "$root$entry" | sed -n 's/^ *\[ *[0-9a-f]*\] *//p')
    [ -n "$lines" ] || fail "linux/$arch: $entry has no .GCC.command.line (built without -frecord-gcc-switches?)"
    if [ "$arch" = arm64 ]; then
        if grep -v -e '-mcpu=neoverse-n1' <<<"$lines" | grep -q .; then
            fail "linux/$arch: $entry has code not compiled with -mcpu=neoverse-n1: $(grep -v -e '-mcpu=neoverse-n1' <<<"$lines" | head -1)"
        fi
    elif grep -e '-mcpu=\|-march=' <<<"$lines" | grep -v -e '-march=x86-64 ' | grep -q .; then
        # gcc records its default as -march=x86-64: the baseline every x86_64 CPU runs
        fail "linux/$arch: $entry is not a generic build: $(grep -e '-mcpu=\|-march=' <<<"$lines" | head -1)"
    fi
    echo "test-container: linux/$arch: $entry compiled with: $(head -1 <<<"$lines")"
}

# run ARCH RUNNER: step 4
run_entrypoint() {
    local arch="$1" runner="$2" entry envs
    entry=$(podman image inspect "$IMAGE:ci-$arch" --format '{{range .Config.Entrypoint}}{{.}} {{end}}')
    entry="${entry% }"
    envs=$(podman image inspect "$IMAGE:ci-$arch" --format '{{range .Config.Env}}{{.}}{{"\n"}}{{end}}')
    BN_CONTAINER_ROOT="$work/root-$arch" BN_CONTAINER_ENTRYPOINT="$entry" BN_CONTAINER_ENV="$envs" \
        BN_CONTAINER_RUNNER="$runner" "$BUILD_DIR/bin/test_container" ||
        fail "linux/$arch: the entrypoint did not answer as expected (above)"
}

# The JSON string of "text" in the object on stdin (as the engine's JSON writer escaped it).
json_text() {
    grep -o '"text":"\([^"\\]\|\\.\)*"' | head -1
}

# rie ARCH: step 5 (amd64 only: the emulator runs natively beside the entrypoint)
rie() {
    local arch="$1" root="$work/root-$1" bin port body want got envs
    bin="${BN_LAMBDA_RIE:-$(command -v aws-lambda-rie || true)}"
    if [ -z "$bin" ]; then
        echo "test-container: linux/$arch under the Runtime Interface Emulator: SKIPPED" \
             "(no aws-lambda-rie on PATH; set BN_LAMBDA_RIE to its path)"
        return
    fi
    command -v curl >/dev/null || fail "the Runtime Interface Emulator run needs curl"
    cp "$bin" "$root/aws-lambda-rie"
    port=$(( 20000 + RANDOM % 20000 ))
    envs=$(podman image inspect "$IMAGE:ci-$arch" --format '{{range .Config.Env}}{{.}} {{end}}')
    # shellcheck disable=SC2086  # one word per K=V
    env -i $envs AWS_LAMBDA_FUNCTION_MEMORY_SIZE=2048 chroot "$root" /aws-lambda-rie \
        --runtime-interface-emulator-address "127.0.0.1:$port" \
        --runtime-api-address "127.0.0.1:$((port + 1))" /usr/local/bin/bootstrap \
        >"$work/rie.log" 2>&1 &
    rie_pid=$!
    body='{"prompt":"What is the capital of France?","n_predict":10,"temperature":0}'
    got=$(curl -sS --retry 30 --retry-connrefused --retry-delay 1 --max-time 120 -X POST \
        "http://127.0.0.1:$port/2015-03-31/functions/function/invocations" -d "$body" | json_text) ||
        { cat "$work/rie.log" >&2; fail "no answer through the Runtime Interface Emulator"; }
    want=$("$BUILD_DIR/bin/bitnet-run" -m "$root/opt/bitnet/model.gguf" -p "What is the capital of France?" \
        -n 10 --temp 0 --json 2>/dev/null | json_text)
    kill "$rie_pid" 2>/dev/null || true
    wait "$rie_pid" 2>/dev/null || true
    rie_pid=""
    if [ -z "$got" ] || [ "$got" != "$want" ]; then
        cat "$work/rie.log" >&2
        fail "the emulator's answer text $got is not bitnet-run's $want"
    fi
    echo "test-container: linux/$arch under the Runtime Interface Emulator ($bin): answered $got"
}

for arch in $ARCHS; do
    case "$arch" in
        arm64) machine=AArch64 ;;
        amd64) machine="Advanced Micro Devices X86-64" ;;
        *) fail "BN_CONTAINER_ARCHS: unknown architecture '$arch' (arm64 or amd64)" ;;
    esac
    build "$arch"
    export_root "$arch"
    check "$arch" "$machine"
    if [ "$arch" = arm64 ]; then
        echo "test-container: files in the linux/arm64 image (bytes):"
        (cd "$work/root-arm64" && find . -type f -printf '  %10s /%P\n' | sort -k2)
    fi
done

host=$(uname -m)
for arch in $ARCHS; do
    if { [ "$arch" = amd64 ] && [ "$host" = x86_64 ]; } || { [ "$arch" = arm64 ] && [ "$host" = aarch64 ]; }; then
        run_entrypoint "$arch" chroot
        [ "$arch" = amd64 ] && rie "$arch"
    elif [ "$arch" = arm64 ]; then
        if command -v qemu-aarch64 >/dev/null; then
            run_entrypoint "$arch" "$PWD/tests/container/qemu-run.sh"
        else
            echo "test-container: linux/arm64 entrypoint run: SKIPPED (needs qemu-aarch64: apt-get install qemu-user)"
        fi
    else
        echo "test-container: linux/$arch entrypoint run: SKIPPED (no way to run $arch code on $host here)"
    fi
done
echo "test-container: passed in $(( $(date +%s) - start )) s"
