#!/usr/bin/env bash
# Creates or updates the CloudFormation stack of deploy/template.yaml and prints its outputs.
set -euo pipefail
# shellcheck source=deploy/common.sh
. "$(dirname "$0")/common.sh"

IMAGE_URI=""
ARCH=arm64
MEMORY=6144
TIMEOUT=120
URL=NONE
URL_AUTH=AWS_IAM
API_KEY=""
PUBLIC=false
CORS=""
RESPONSE=llama
RETENTION=14

usage() {
    cat <<EOF2
usage: deploy/deploy.sh --image-uri URI [--arch arm64|x86_64] [--memory MB] [--timeout S]
                        [--url none|buffered|stream] [--url-auth iam|none] [--api-key KEY]
                        [--public] [--cors ORIGINS] [--envelope] [--retention DAYS]
                        [--stack NAME] [--function NAME] [--region REGION] [--dry-run]

Deploys stack NAME (default ${STACK}) with function NAME (default ${FUNCTION}) from the
image URI printed by deploy/build-push.sh. Defaults: arm64, 6144 MB, 120 s, no Function URL.
  --url buffered|stream   add a Function URL (stream = InvokeMode RESPONSE_STREAM)
  --url-auth iam|none     iam (default): callers sign with SigV4; none: no signature, and then
                          --api-key KEY is required (Authorization: Bearer KEY) unless --public
  --api-key KEY           the key the function requires on HTTP routes (implies --url-auth none)
  --public                allow --url-auth none without a key (anyone can spend your money)
  --cors ORIGINS          comma-separated origins for the URL's CORS
  --envelope              direct invokes answer {"statusCode","body"} (the Python wrapper's shape)
  --dry-run               print the aws commands, run nothing
EOF2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --image-uri) need_value "$1" $#; IMAGE_URI="$2"; shift 2 ;;
        --arch) need_value "$1" $#; ARCH="$2"; shift 2 ;;
        --memory) need_value "$1" $#; MEMORY="$2"; shift 2 ;;
        --timeout) need_value "$1" $#; TIMEOUT="$2"; shift 2 ;;
        --url) need_value "$1" $#
            case "$2" in
                none) URL=NONE ;; buffered) URL=BUFFERED ;; stream) URL=RESPONSE_STREAM ;;
                *) die "--url must be none, buffered or stream" ;;
            esac
            shift 2 ;;
        --url-auth) need_value "$1" $#
            case "$2" in
                iam) URL_AUTH=AWS_IAM ;; none) URL_AUTH=NONE ;;
                *) die "--url-auth must be iam or none" ;;
            esac
            shift 2 ;;
        --api-key) need_value "$1" $#; API_KEY="$2"; URL_AUTH=NONE; shift 2 ;;
        --public) PUBLIC=true; URL_AUTH=NONE; shift ;;
        --cors) need_value "$1" $#; CORS="$2"; shift 2 ;;
        --envelope) RESPONSE=envelope; shift ;;
        --retention) need_value "$1" $#; RETENTION="$2"; shift 2 ;;
        --stack) need_value "$1" $#; STACK="$2"; shift 2 ;;
        --function) need_value "$1" $#; FUNCTION="$2"; shift 2 ;;
        --region) need_value "$1" $#; REGION="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
[ -n "$IMAGE_URI" ] || die "--image-uri is required (deploy/build-push.sh prints it)"
case "$ARCH" in arm64|x86_64) ;; *) die "--arch must be arm64 or x86_64" ;; esac
in_range "$MEMORY" 2048 10240 ||
    die "--memory must be 2048..10240 MB (the model needs ~1.3 GB)"
in_range "$TIMEOUT" 10 900 ||
    die "--timeout must be 10..900 s"
if [ "$URL_AUTH" = NONE ] && [ -z "$API_KEY" ] && [ "$PUBLIC" = false ]; then
    die "--url-auth none needs --api-key KEY (or --public for a URL anyone may call)"
fi
need aws "AWS CLI v2"

run aws cloudformation deploy --region "$REGION" --stack-name "$STACK" \
    --template-file "$(repo_root)/deploy/template.yaml" --capabilities CAPABILITY_IAM \
    --no-fail-on-empty-changeset \
    --parameter-overrides "ImageUri=$IMAGE_URI" "FunctionName=$FUNCTION" "Architecture=$ARCH" \
    "MemorySize=$MEMORY" "Timeout=$TIMEOUT" "FunctionUrl=$URL" "FunctionUrlAuth=$URL_AUTH" \
    "LogRetentionDays=$RETENTION" "AllowPublicWithoutKey=$PUBLIC" "ResponseShape=$RESPONSE" \
    ${API_KEY:+"ApiKey=$API_KEY"} ${CORS:+"CorsAllowOrigins=$CORS"}
run aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK" \
    --query "Stacks[0].Outputs" --output table
