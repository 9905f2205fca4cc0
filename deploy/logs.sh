#!/usr/bin/env bash
# Prints (or follows) the function's CloudWatch log group.
set -euo pipefail
# shellcheck source=deploy/common.sh
. "$(dirname "$0")/common.sh"

SINCE=10m
FOLLOW=()

usage() {
    cat <<EOF2
usage: deploy/logs.sh [--function NAME] [--since 10m|1h|...] [--follow] [--region REGION] [--dry-run]

Shows /aws/lambda/NAME (default ${FUNCTION}): init lines ("init: model ... mapped in ..."),
one "invocation" and one "done" line per request with tokens and tok/s, and Lambda's REPORT
lines (duration, billed duration, max memory, init duration).
EOF2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --function) need_value "$1" $#; FUNCTION="$2"; shift 2 ;;
        --since) need_value "$1" $#; SINCE="$2"; shift 2 ;;
        --follow) FOLLOW=(--follow); shift ;;
        --region) need_value "$1" $#; REGION="$2"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
need aws "AWS CLI v2"
run aws logs tail "/aws/lambda/$FUNCTION" --region "$REGION" --since "$SINCE" --format short \
    "${FOLLOW[@]}"
