#!/usr/bin/env bash
# Invokes the function once with the blog's request body and prints the answer.
set -euo pipefail
# shellcheck source=deploy/common.sh
. "$(dirname "$0")/common.sh"

PROMPT="$DEFAULT_PROMPT"
N_PREDICT=128
STREAM=0
OUT="${TMPDIR:-/tmp}/bitnet-invoke.json"

usage() {
    cat <<EOF2
usage: deploy/invoke.sh [--function NAME] [--prompt TEXT] [--n-predict N] [--stream]
                        [--region REGION] [--dry-run]

Sends {"prompt","n_predict","temperature":0.8,"top_p":0.95,"top_k":40,"repeat_penalty":1.1}
to function NAME (default ${FUNCTION}) and prints the JSON answer
({"text","tokens_generated","stop_reason","timings",...}).
  --stream    use InvokeWithResponseStream ("stream": true): text arrives as it is generated
  --dry-run   print the aws command, run nothing
EOF2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --function) need_value "$1" $#; FUNCTION="$2"; shift 2 ;;
        --prompt) need_value "$1" $#; PROMPT="$2"; shift 2 ;;
        --n-predict) need_value "$1" $#; N_PREDICT="$2"; shift 2 ;;
        --stream) STREAM=1; shift ;;
        --region) need_value "$1" $#; REGION="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
[[ "$N_PREDICT" =~ ^-?[0-9]+$ ]] || die "--n-predict must be an integer"
need aws "AWS CLI v2"

if [ "$STREAM" = 1 ]; then
    payload=$(sample_payload "$PROMPT" "$N_PREDICT" ',"stream":true')
    run aws lambda invoke-with-response-stream --region "$REGION" --function-name "$FUNCTION" \
        --cli-binary-format raw-in-base64-out --payload "$payload" /dev/stdout
else
    payload=$(sample_payload "$PROMPT" "$N_PREDICT")
    run aws lambda invoke --region "$REGION" --function-name "$FUNCTION" \
        --cli-binary-format raw-in-base64-out --payload "$payload" "$OUT"
    if [ "$DRY_RUN" = 0 ]; then
        cat "$OUT"
        echo
    fi
fi
