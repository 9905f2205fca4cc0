# shellcheck shell=bash
# Shared by the deploy/*.sh scripts (sourced, not run): option defaults, the --dry-run runner
# and small checks. Every script prints the aws/docker commands it runs; with --dry-run it
# prints them and runs nothing (no AWS credentials or network needed).

# shellcheck disable=SC2034  # used by the scripts that source this file
DRY_RUN=0
# shellcheck disable=SC2034
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
# shellcheck disable=SC2034
STACK="${BITNET_STACK:-bitnet-lambda}"
# shellcheck disable=SC2034
FUNCTION="${BITNET_FUNCTION:-bitnet}"
# shellcheck disable=SC2034
REPO_NAME="${BITNET_REPO:-bitnet-lambda}"

die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}

# Prints a command (shell-quoted) and runs it unless --dry-run.
run() {
    printf '+'
    printf ' %q' "$@"
    printf '\n'
    if [ "$DRY_RUN" = 0 ]; then
        "$@"
    fi
}

# Like run, but returns the command's stdout; in a dry run prints the command and returns $1.
capture() {
    local placeholder="$1"
    shift
    printf '+' >&2
    printf ' %q' "$@" >&2
    printf '\n' >&2
    if [ "$DRY_RUN" = 0 ]; then
        "$@"
    else
        echo "$placeholder"
    fi
}

need() {
    [ "$DRY_RUN" = 1 ] && return 0
    command -v "$1" >/dev/null || die "needs $1 ($2)"
}

need_value() {
    [ "$2" -ge 2 ] || die "$1 needs a value"
}

# The repository root (scripts may be run from anywhere).
repo_root() {
    cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd
}

# A JSON string literal for $1 (quotes, backslashes and the usual control characters escaped).
json_str() {
    local s="$1"
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

# The blog's direct-invoke body (its six fields) for PROMPT and N_PREDICT.
sample_payload() {
    printf '{"prompt":%s,"n_predict":%s,"temperature":0.8,"top_p":0.95,"top_k":40,"repeat_penalty":1.1%s}' \
        "$(json_str "$1")" "$2" "${3:-}"
}

# shellcheck disable=SC2034
DEFAULT_PROMPT="What is the capital of France? Answer in one sentence."

# True when $1 is an integer in [$2, $3].
in_range() {
    [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]
}
