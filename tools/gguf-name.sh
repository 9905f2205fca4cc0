#!/usr/bin/env bash
# Shell helpers (sourced by tools/download-model.sh and deploy/build-push.sh) that read a GGUF
# file's general.name without any built program, to refuse synthetic models
# (bitnet-make-model names them "...synthetic..."; their weights are random).

# gguf_general_name FILE: the value of general.name (from the first 64 KiB, where GGUF keeps
# its first metadata keys), or nothing. Bytes around the string (its type and length) become
# line breaks, so the first non-empty line after the key is the name (a length byte that
# happens to be printable may stick to its front; the synthetic check does not mind). awk reads
# to the end instead of exiting at the name: an early exit would make `tr` die of SIGPIPE, which
# callers running with `set -o pipefail` saw as a failure, now and then.
gguf_general_name() {
    head -c 65536 "$1" 2>/dev/null | LC_ALL=C tr -c '[:print:]' '\n' |
        awk '!done && found && length($0) > 0 { print; done = 1 } $0 == "general.name" { found = 1 }'
}

# gguf_is_synthetic FILE: success when general.name contains "synthetic" (any case).
gguf_is_synthetic() {
    local name
    name=$(gguf_general_name "$1")
    case "$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]')" in
        *synthetic*) return 0 ;;
        *) return 1 ;;
    esac
}

# gguf_refuse_synthetic FILE ALLOW WHO: fails with a message naming the file when FILE is
# synthetic and ALLOW is not 1; with ALLOW=1 only warns. (deploy/build-push.sh: an image must
# not ship random weights by accident.)
gguf_refuse_synthetic() {
    local f=$1 allow=$2 who=$3
    gguf_is_synthetic "$f" || return 0
    if [ "$allow" = 1 ]; then
        echo "$who: warning: $f is a synthetic model (random weights); using it anyway (--allow-synthetic)" >&2
        return 0
    fi
    echo "$who: $f is a synthetic model (general.name \"$(gguf_general_name "$f")\"): random" \
        "weights; get the real one with tools/download-model.sh, or pass --allow-synthetic" >&2
    return 1
}
