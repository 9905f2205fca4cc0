#!/usr/bin/env bash
# Invokes the function once with the blog's request body and prints the answer; with --url,
# calls one HTTP route of its Function URL with curl instead.
set -euo pipefail
# shellcheck source=deploy/common.sh
. "$(dirname "$0")/common.sh"

PROMPT="$DEFAULT_PROMPT"
N_PREDICT=128
STREAM=0
URL=""
ROUTE=/completion
API_KEY=""
OUT="${TMPDIR:-/tmp}/bitnet-invoke.json"

usage() {
    cat <<EOF2
usage: deploy/invoke.sh [--function NAME] [--prompt TEXT] [--n-predict N] [--stream]
                        [--url URL [--path ROUTE] [--api-key KEY]] [--region REGION] [--dry-run]

Sends {"prompt","n_predict","temperature":0.8,"top_p":0.95,"top_k":40,"repeat_penalty":1.1}
to function NAME (default ${FUNCTION}) and prints the JSON answer (llama-server's completion
object: {"content","tokens_predicted","timings",...}).
  --stream    "stream": true: Server-Sent Events (InvokeWithResponseStream, or curl -N)
  --url URL   call the Function URL instead, route --path (default /completion; also
              /v1/completions, /v1/chat/completions, /tokenize, /health, /v1/models, /props)
  --api-key KEY  send Authorization: Bearer KEY (a URL with AuthType NONE); without it the
              request is signed with curl --aws-sigv4 (AuthType AWS_IAM, credentials from
              AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN)
  --dry-run   print the command, run nothing

Examples:
  deploy/invoke.sh --url https://abc.lambda-url.us-east-1.on.aws --path /v1/chat/completions
  deploy/invoke.sh --url https://abc.lambda-url.us-east-1.on.aws --api-key s3cret --stream
EOF2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --function) need_value "$1" $#; FUNCTION="$2"; shift 2 ;;
        --prompt) need_value "$1" $#; PROMPT="$2"; shift 2 ;;
        --n-predict) need_value "$1" $#; N_PREDICT="$2"; shift 2 ;;
        --stream) STREAM=1; shift ;;
        --url) need_value "$1" $#; URL="${2%/}"; shift 2 ;;
        --path) need_value "$1" $#; ROUTE="$2"; shift 2 ;;
        --api-key) need_value "$1" $#; API_KEY="$2"; shift 2 ;;
        --region) need_value "$1" $#; REGION="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
[[ "$N_PREDICT" =~ ^-?[0-9]+$ ]] || die "--n-predict must be an integer"

if [ -n "$URL" ]; then
    stream_field=""
    [ "$STREAM" = 1 ] && stream_field=',"stream":true'
    case "$ROUTE" in
        /completion|/completions) body=$(sample_payload "$PROMPT" "$N_PREDICT" "$stream_field") ;;
        /v1/completions) body=$(printf '{"prompt":%s,"max_tokens":%s%s}' "$(json_str "$PROMPT")" "$N_PREDICT" "$stream_field") ;;
        /v1/chat/completions|/chat/completions)
            body=$(printf '{"messages":[{"role":"user","content":%s}],"max_tokens":%s%s}' \
                "$(json_str "$PROMPT")" "$N_PREDICT" "$stream_field") ;;
        /tokenize) body=$(printf '{"content":%s}' "$(json_str "$PROMPT")") ;;
        /health|/v1/models|/models|/props) body="" ;;
        *) die "--path must be one of the routes in --help" ;;
    esac
    need curl "curl (7.75 or newer for --aws-sigv4)"
    # args is run; shown is printed (credentials masked)
    args=(curl -sS -N)
    shown=(curl -sS -N)
    if [ -n "$API_KEY" ]; then
        args+=(-H "Authorization: Bearer $API_KEY")
        shown+=(-H "Authorization: Bearer ***")
    else
        args+=(--aws-sigv4 "aws:amz:$REGION:lambda" --user "${AWS_ACCESS_KEY_ID:-}:${AWS_SECRET_ACCESS_KEY:-}")
        shown+=(--aws-sigv4 "aws:amz:$REGION:lambda" --user "***:***")
        if [ -n "${AWS_SESSION_TOKEN:-}" ]; then
            args+=(-H "X-Amz-Security-Token: $AWS_SESSION_TOKEN")
            shown+=(-H "X-Amz-Security-Token: ***")
        fi
    fi
    if [ -n "$body" ]; then
        args+=(-H "Content-Type: application/json" --data-binary "$body")
        shown+=(-H "Content-Type: application/json" --data-binary "$body")
    fi
    args+=("$URL$ROUTE")
    shown+=("$URL$ROUTE")
    printf '+'
    printf ' %q' "${shown[@]}"
    printf '\n'
    if [ "$DRY_RUN" = 0 ]; then
        if [ -z "$API_KEY" ] && [ -z "${AWS_ACCESS_KEY_ID:-}" ]; then
            die "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set (needed to sign for an AWS_IAM URL; or pass --api-key)"
        fi
        "${args[@]}"
    fi
    echo
    exit 0
fi
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
