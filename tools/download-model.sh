#!/usr/bin/env bash
# Downloads BitNet b1.58 2B-4T (ggml-model-i2_s.gguf from the Hugging Face repository
# microsoft/bitnet-b1.58-2B-4T-gguf) with resume, retries with backoff and an optional HF_TOKEN,
# then verifies it before moving it into place.
#
# Verification, and why it looks like this: the file's full SHA-256 is not recorded anywhere we
# could check (FORMAT.md 1.1 quotes one third-party page: 4221b252…2c2162), so the script checks
#   1. the size is plausible (the tensor data alone is 1124.81 MiB; the file is ~1.19 GB);
#   2. the SHA-256 begins with 4221b252 and ends with 2c2162 (the recorded prefix and suffix;
#      --no-sha skips this if that single-source value turns out wrong);
#   3. the GGUF structure with gguf-inspect: GGUF v3, architecture bitnet-b1.58, 332 tensors
#      (121 F32, 1 F16, 210 I2_S), and the tensor table ends exactly at the end of the file;
#   4. bitnet-run --inspect loads it as a model (every tensor's name, type and shape).
# Steps 3-4 need the built programs (make build); without them the script says it skipped them.
# A synthetic model (general.name "...synthetic...", from bitnet-make-model) is never accepted
# as the real one, with or without --no-sha: that check needs no built program.
set -euo pipefail
# shellcheck source=tools/gguf-name.sh
. "$(dirname "$0")/gguf-name.sh"

REPO="microsoft/bitnet-b1.58-2B-4T-gguf"
FILE_NAME="ggml-model-i2_s.gguf"
URL="https://huggingface.co/${REPO}/resolve/main/${FILE_NAME}"
SHA_PREFIX="4221b252"
SHA_SUFFIX="2c2162"
MIN_BYTES=1150000000
MAX_BYTES=1250000000
OUT="models/${FILE_NAME}"
RETRIES=5
DRY_RUN=0
CHECK_SHA=1
BIN_DIR="${BITNET_BIN_DIR:-}"

usage() {
    cat <<EOF
usage: tools/download-model.sh [--out FILE] [--url URL] [--retries N] [--no-sha] [--dry-run]

Downloads ${FILE_NAME} of ${REPO} (about 1.19 GB) to FILE
(default: ${OUT}; models/ is git-ignored), resuming a partial FILE.part.

  --out FILE     where to put the model
  --url URL      download from another address (a mirror)
  --retries N    attempts before giving up, with 2, 4, 8, ... s between them (default ${RETRIES})
  --no-sha       skip the SHA-256 prefix/suffix check (${SHA_PREFIX}…${SHA_SUFFIX}, single source)
  --dry-run      print what would be done; touch nothing, no network
  -h, --help     this text

Environment: HF_TOKEN (sent as a bearer token when set), BITNET_BIN_DIR (where gguf-inspect
and bitnet-run are; default: build/bin, then PATH).
Without network access, make a synthetic model of the same shape instead:
  build/bin/bitnet-make-model --preset 2b4t --out models/synthetic-2b4t.gguf
EOF
}

die() {
    echo "download-model: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --out) [ $# -ge 2 ] || die "--out needs a value"; OUT="$2"; shift 2 ;;
        --url) [ $# -ge 2 ] || die "--url needs a value"; URL="$2"; shift 2 ;;
        --retries)
            [ $# -ge 2 ] || die "--retries needs a value"
            case "$2" in '' | *[!0-9]*) die "--retries expects a positive integer, got '$2'" ;; esac
            [ "$2" -ge 1 ] || die "--retries must be at least 1"
            RETRIES="$2"; shift 2 ;;
        --no-sha) CHECK_SHA=0; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "download-model: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

PART="${OUT}.part"

# A program from the build (BITNET_BIN_DIR, build/bin) or PATH; empty when absent.
find_prog() {
    local name="$1" dir
    for dir in "$BIN_DIR" build/bin; do
        if [ -n "$dir" ] && [ -x "$dir/$name" ]; then
            echo "$dir/$name"
            return
        fi
    done
    command -v "$name" 2>/dev/null || true
}

file_size() {
    stat -c %s "$1" 2>/dev/null || wc -c <"$1"
}

suggest_synthetic() {
    # the real Llama-3 vocabulary when the reference material (../shared) has it
    local vocab="" shared
    shared="$(cd "$(dirname "$0")/.." && pwd)/../shared/tokenizer/llama3-vocab.gguf"
    [ -f "$shared" ] && vocab="--vocab-gguf ../shared/tokenizer/llama3-vocab.gguf "
    echo "download-model: make a synthetic model of the same shape instead (random weights: its" >&2
    echo "  output is meaningless; for trying the engine and benchmarking), under its own name:" >&2
    echo "  build/bin/bitnet-make-model --preset 2b4t ${vocab}--out models/synthetic-2b4t.gguf" >&2
}

# Checks a downloaded file; prints what it checked. Non-zero when it is not the model.
verify() {
    local f="$1" size sha inspect run summary
    if gguf_is_synthetic "$f"; then
        echo "download-model: $f is a synthetic model (general.name \"$(gguf_general_name "$f")\"):" \
            "random weights, not $FILE_NAME; remove it (synthetic models belong under another" \
            "name, e.g. models/synthetic-2b4t.gguf)" >&2
        return 1
    fi
    size=$(file_size "$f")
    if [ "$size" -lt "$MIN_BYTES" ] || [ "$size" -gt "$MAX_BYTES" ]; then
        echo "download-model: $f is $size bytes, expected ${MIN_BYTES}..${MAX_BYTES}" >&2
        return 1
    fi
    echo "download-model: size ok ($size bytes)"
    if [ "$CHECK_SHA" = 1 ]; then
        sha=$(sha256sum "$f" | cut -d' ' -f1)
        case "$sha" in
            "${SHA_PREFIX}"*"${SHA_SUFFIX}") echo "download-model: sha256 $sha matches ${SHA_PREFIX}…${SHA_SUFFIX}" ;;
            *)
                echo "download-model: sha256 $sha does not match the recorded ${SHA_PREFIX}…${SHA_SUFFIX}" >&2
                echo "  (that value has a single source; --no-sha accepts the file on the structural checks)" >&2
                return 1 ;;
        esac
    else
        echo "download-model: sha256 check skipped (--no-sha)"
    fi
    inspect=$(find_prog gguf-inspect)
    if [ -n "$inspect" ]; then
        summary=$("$inspect" "$f") || { echo "download-model: gguf-inspect rejects $f" >&2; return 1; }
        # here-strings, not pipes: with pipefail, `echo | grep -q` can fail on SIGPIPE
        grep -q "GGUF v3, .* 332 tensors" <<<"${summary%%$'\n'*}" ||
            { echo "download-model: not GGUF v3 with 332 tensors: ${summary%%$'\n'*}" >&2; return 1; }
        grep -q 'general.architecture .*"bitnet-b1.58"' <<<"$summary" ||
            { echo "download-model: architecture is not bitnet-b1.58" >&2; return 1; }
        local t
        for t in 'I2_S +210' 'F16 +1' 'F32 +121'; do
            grep -Eq "^ *$t tensors" <<<"$summary" ||
                { echo "download-model: tensor types differ from 121 F32 + 1 F16 + 210 I2_S" >&2; return 1; }
        done
        awk '/data offset/ { gsub(",", ""); if ($3 + $6 != $9) bad = 1 } END { exit bad }' <<<"$summary" ||
            { echo "download-model: the tensor table does not end at the end of the file" >&2; return 1; }
        echo "download-model: GGUF structure ok (gguf-inspect: v3, bitnet-b1.58, 121 F32 + 1 F16 + 210 I2_S, table = file)"
    else
        echo "download-model: gguf-inspect not found (make build): GGUF structure NOT checked" >&2
    fi
    run=$(find_prog bitnet-run)
    if [ -n "$run" ]; then
        "$run" -m "$f" --inspect >/dev/null || { echo "download-model: bitnet-run cannot load $f" >&2; return 1; }
        echo "download-model: bitnet-run loads it as a model"
    else
        echo "download-model: bitnet-run not found (make build): model load NOT checked" >&2
    fi
}

if [ "$DRY_RUN" = 1 ]; then
    echo "download-model: would download $URL"
    echo "  to $PART (resuming it if present), retries $RETRIES with 2, 4, 8, ... s backoff,"
    echo "  $([ -n "${HF_TOKEN:-}" ] && echo "with" || echo "without") HF_TOKEN;"
    echo "  then verify (size, sha256 ${SHA_PREFIX}…${SHA_SUFFIX}$([ "$CHECK_SHA" = 1 ] || echo " SKIPPED"), gguf-inspect, bitnet-run --inspect)"
    echo "  and move it to $OUT"
    [ -f "$OUT" ] && echo "  ($OUT already exists: it would only be verified)"
    exit 0
fi

command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"
mkdir -p "$(dirname "$OUT")"

if [ -f "$OUT" ]; then
    echo "download-model: $OUT exists; verifying it"
    verify "$OUT" || die "$OUT is present but fails verification; remove it to download again"
    exit 0
fi

curl_once() {
    local args=(--fail --location --continue-at - --output "$PART" --connect-timeout 20
                --speed-limit 1024 --speed-time 60)
    if [ -t 2 ]; then
        args+=(--progress-bar)
    else
        args+=(--silent --show-error)
    fi
    if [ -n "${HF_TOKEN:-}" ]; then
        # the token goes through a config on stdin, not the command line (ps would show it)
        printf 'header = "Authorization: Bearer %s"\n' "$HF_TOKEN" | curl --config - "${args[@]}" "$URL"
    else
        curl "${args[@]}" "$URL"
    fi
}

attempt=1
delay=2
while :; do
    echo "download-model: $URL -> $PART (attempt $attempt of $RETRIES)"
    rc=0
    curl_once || rc=$?
    [ "$rc" = 0 ] && break
    case "$rc" in
        6 | 5)
            echo "download-model: cannot resolve the host of $URL: no network access here?" >&2
            suggest_synthetic
            exit 1 ;;
        22)
            # 416 = the part is already complete; anything else (401, 403, 404) will not improve
            if [ -f "$PART" ] && verify "$PART" >/dev/null 2>&1; then break; fi
            echo "download-model: the server refused the request (HTTP error; a private or gated" >&2
            echo "  file needs HF_TOKEN=hf_...)" >&2
            exit 1 ;;
    esac
    if [ "$attempt" -ge "$RETRIES" ]; then
        echo "download-model: giving up after $attempt attempts (curl exit $rc)" >&2
        [ "$rc" = 7 ] && echo "download-model: could not connect: no network access here?" >&2
        suggest_synthetic
        exit 1
    fi
    echo "download-model: curl exit $rc; retrying in ${delay}s" >&2
    sleep "$delay"
    attempt=$((attempt + 1))
    delay=$((delay * 2))
done

verify "$PART" || die "the download failed verification; kept as $PART (remove it to start over)"
mv "$PART" "$OUT"
echo "download-model: $OUT ready"
