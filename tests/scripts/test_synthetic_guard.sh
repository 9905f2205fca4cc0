#!/usr/bin/env bash
# No synthetic-model trap: tools/download-model.sh never accepts a synthetic file as the real
# model (not even with --no-sha), and deploy/build-push.sh's guard refuses one unless
# --allow-synthetic. Models come from bitnet-make-model (run through $BN_EMULATOR when cross
# testing). Usage: test_synthetic_guard.sh BIN_DIR. Run by ctest (synthetic_guard).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
bin=$1
# shellcheck disable=SC1091 # checked on its own by make test-scripts
. "$src/tools/gguf-name.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }

# shellcheck disable=SC2086 # BN_EMULATOR is a command with its words
${BN_EMULATOR:-} "$bin/bitnet-make-model" --preset tiny --out "$tmp/synthetic.gguf" >/dev/null
# shellcheck disable=SC2086
${BN_EMULATOR:-} "$bin/bitnet-make-model" --preset tiny --name "BitNet b1.58 2B4T" --out "$tmp/named.gguf" >/dev/null

name=$(gguf_general_name "$tmp/synthetic.gguf")
if [ "$name" = bitnet2b-synthetic-tiny ]; then ok "name read"; else bad "name: $name"; fi
if gguf_is_synthetic "$tmp/synthetic.gguf"; then ok "synthetic detected"; else bad "synthetic not detected"; fi
if gguf_is_synthetic "$tmp/named.gguf"; then bad "named model taken for synthetic"; else ok "named model is not synthetic"; fi

# download-model.sh: a synthetic file at --out is refused, also with --no-sha
for extra in "" --no-sha; do
    if out=$(BITNET_BIN_DIR="$bin" "$src/tools/download-model.sh" --out "$tmp/synthetic.gguf" $extra 2>&1); then
        bad "download-model.sh $extra accepted a synthetic model: $out"
    else
        case "$out" in *"is a synthetic model"*) ok "download-model.sh $extra refuses it" ;;
            *) bad "download-model.sh $extra: wrong reason: $out" ;; esac
    fi
done

# build-push.sh's guard
if out=$(gguf_refuse_synthetic "$tmp/synthetic.gguf" 0 build-push 2>&1); then
    bad "guard let a synthetic model into an image"
else
    case "$out" in *"--allow-synthetic"*) ok "guard refuses, names --allow-synthetic" ;; *) bad "guard: $out" ;; esac
fi
if out=$(gguf_refuse_synthetic "$tmp/synthetic.gguf" 1 build-push 2>&1); then
    ok "--allow-synthetic lets it through"
else
    bad "allow: $out"
fi
case "$out" in *warning*) ok "--allow-synthetic still warns" ;; *) bad "no warning: $out" ;; esac
if gguf_refuse_synthetic "$tmp/named.gguf" 0 build-push; then
    ok "guard passes a named model"
else
    bad "guard refused a named model"
fi

if [ "$fails" -gt 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all synthetic-guard checks passed"
