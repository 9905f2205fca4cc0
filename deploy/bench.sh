#!/usr/bin/env bash
# Cold and warm latency and tokens/s of the deployed function across memory sizes, printed as
# a table like the blog's. Each memory change makes the next invoke a cold start.
set -euo pipefail
# shellcheck source=deploy/common.sh
. "$(dirname "$0")/common.sh"

MEMORIES="2048 6144 10240"
WARM=3
N_PREDICT=64
PROMPT="$DEFAULT_PROMPT"

usage() {
    cat <<EOF2
usage: deploy/bench.sh [--function NAME] [--memory "2048 6144 10240"] [--warm N]
                       [--n-predict N] [--prompt TEXT] [--region REGION] [--dry-run]

For each memory size: set it (a new cold start follows), invoke once cold, then N times warm
(default ${WARM}), and print client-side latency, Lambda's Init Duration (from the REPORT line),
and the generation speed reported in the answer. Leaves the function at the last memory size.
EOF2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --function) need_value "$1" $#; FUNCTION="$2"; shift 2 ;;
        --memory) need_value "$1" $#; MEMORIES="$2"; shift 2 ;;
        --warm) need_value "$1" $#; WARM="$2"; shift 2 ;;
        --n-predict) need_value "$1" $#; N_PREDICT="$2"; shift 2 ;;
        --prompt) need_value "$1" $#; PROMPT="$2"; shift 2 ;;
        --region) need_value "$1" $#; REGION="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
for m in $MEMORIES; do
    in_range "$m" 2048 10240 || die "memory $m is not in 2048..10240"
done
[[ "$WARM" =~ ^[0-9]+$ ]] || die "--warm must be a number"
need aws "AWS CLI v2"

out="${TMPDIR:-/tmp}/bitnet-bench.json"
payload=$(sample_payload "$PROMPT" "$N_PREDICT")

now_ms() { date +%s%3N; }
# Numeric field NAME from the answer in $out ("-" when absent or in a dry run).
field() {
    local v=""
    [ "$DRY_RUN" = 0 ] && v=$(grep -o "\"$1\":[0-9.eE+-]*" "$out" | head -n 1 | cut -d: -f2)
    echo "${v:--}"
}
# One invoke: prints "latency_ms init_ms".
invoke_once() {
    local t0 t1 tail init
    t0=$(now_ms)
    tail=$(capture "" aws lambda invoke --region "$REGION" --function-name "$FUNCTION" \
        --cli-binary-format raw-in-base64-out --payload "$payload" --log-type Tail \
        --query LogResult --output text "$out")
    t1=$(now_ms)
    init=$(printf '%s' "$tail" | base64 -d 2>/dev/null | grep -o 'Init Duration: [0-9.]*' | cut -d' ' -f3 || true)
    if [ "$DRY_RUN" = 1 ]; then echo "- -"; else echo "$((t1 - t0)) ${init:--}"; fi
}

rows=()
for mem in $MEMORIES; do
    run aws lambda update-function-configuration --region "$REGION" --function-name "$FUNCTION" \
        --memory-size "$mem" --output text --query LastUpdateStatus
    run aws lambda wait function-updated-v2 --region "$REGION" --function-name "$FUNCTION"
    read -r cold init < <(invoke_once)
    cold_tok=$(field gen_tok_s)
    warm_sum=0
    warm_tok="-"
    for _ in $(seq 1 "$WARM"); do
        read -r w _ < <(invoke_once)
        [ "$w" != - ] && warm_sum=$((warm_sum + w))
        warm_tok=$(field gen_tok_s)
    done
    warm="-"
    [ "$DRY_RUN" = 0 ] && [ "$WARM" -gt 0 ] && warm=$((warm_sum / WARM))
    rows+=("$(printf '%-8s %12s %10s %12s %12s %12s' "$mem" "$cold" "$init" "$warm" "$cold_tok" "$warm_tok")")
done

printf '\n%-8s %12s %10s %12s %12s %12s\n' "memory" "cold ms" "init ms" "warm ms" "cold tok/s" "warm tok/s"
for r in "${rows[@]}"; do echo "$r"; done
echo "(${N_PREDICT} tokens per request; latency measured by this client, init from Lambda's REPORT)"
