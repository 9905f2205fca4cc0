#!/usr/bin/env bash
# Builds the Lambda image for one architecture with docker buildx and pushes it to ECR
# (creating the repository when missing). Prints the image URI for deploy/deploy.sh.
set -euo pipefail
# shellcheck source=deploy/common.sh
. "$(dirname "$0")/common.sh"
# shellcheck source=tools/gguf-name.sh
. "$(dirname "$0")/../tools/gguf-name.sh"

ARCH=arm64
TAG=""
MODEL_SOURCE=context
ALLOW_SYNTHETIC=0

usage() {
    cat <<EOF2
usage: deploy/build-push.sh [--arch arm64|x86_64] [--repo NAME] [--tag TAG] [--region REGION]
                            [--model-source context|download] [--allow-synthetic] [--dry-run]

Builds ./Dockerfile for linux/ARCH (default arm64: Graviton, built with -mcpu=neoverse-n1) and
pushes it to the ECR repository NAME (default ${REPO_NAME}) in REGION (default ${REGION}).
The same Dockerfile serves both architectures: its builder cross-compiles on the machine's own
architecture and the final image (FROM scratch) holds the bootstrap, its libraries and the model.
  --model-source context   copy models/ggml-model-i2_s.gguf from the checkout (default;
                           tools/download-model.sh puts it there)
  --model-source download  download and verify it inside the builder instead
  --tag TAG                image tag (default ARCH-<git short hash>)
  --allow-synthetic        put a synthetic model (random weights) in the image anyway; without
                           it such a file is refused
  --dry-run                print the aws/docker commands, run nothing
Needs: docker with buildx (no QEMU binfmt: no build step runs target code), aws CLI v2.
EOF2
}

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) need_value "$1" $#; ARCH="$2"; shift 2 ;;
        --repo) need_value "$1" $#; REPO_NAME="$2"; shift 2 ;;
        --tag) need_value "$1" $#; TAG="$2"; shift 2 ;;
        --region) need_value "$1" $#; REGION="$2"; shift 2 ;;
        --model-source) need_value "$1" $#; MODEL_SOURCE="$2"; shift 2 ;;
        --allow-synthetic) ALLOW_SYNTHETIC=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown option $1" ;;
    esac
done
case "$ARCH" in arm64|x86_64) ;; *) die "--arch must be arm64 or x86_64, got $ARCH" ;; esac
case "$MODEL_SOURCE" in context|download) ;; *) die "--model-source must be context or download" ;; esac
platform="linux/$ARCH"
[ "$ARCH" = x86_64 ] && platform=linux/amd64
root=$(repo_root)
if [ -z "$TAG" ]; then
    TAG="$ARCH-$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo latest)"
fi
if [ "$MODEL_SOURCE" = context ] && [ "$DRY_RUN" = 0 ] && [ ! -s "$root/models/ggml-model-i2_s.gguf" ]; then
    die "models/ggml-model-i2_s.gguf is missing: run tools/download-model.sh, or use --model-source download"
fi
# A synthetic model answers with noise: it goes into an image only when asked for explicitly.
if [ "$MODEL_SOURCE" = context ] && [ -s "$root/models/ggml-model-i2_s.gguf" ]; then
    gguf_refuse_synthetic "$root/models/ggml-model-i2_s.gguf" "$ALLOW_SYNTHETIC" build-push || exit 1
fi
need aws "AWS CLI v2"
need docker "Docker with buildx"

account=$(capture 123456789012 aws sts get-caller-identity --query Account --output text)
registry="$account.dkr.ecr.$REGION.amazonaws.com"
uri="$registry/$REPO_NAME:$TAG"

if [ "$DRY_RUN" = 1 ] || ! aws ecr describe-repositories --region "$REGION" \
        --repository-names "$REPO_NAME" >/dev/null 2>&1; then
    run aws ecr create-repository --region "$REGION" --repository-name "$REPO_NAME" \
        --image-scanning-configuration scanOnPush=true
fi
echo "+ aws ecr get-login-password --region $REGION | docker login --username AWS --password-stdin $registry"
if [ "$DRY_RUN" = 0 ]; then
    aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$registry"
fi
mkdir -p "$root/models"
# --provenance=false: Lambda refuses image indexes that carry attestation manifests
run docker buildx build --platform "$platform" --provenance=false \
    --build-arg MODEL_SOURCE="$MODEL_SOURCE" -t "$uri" --push "$root"
echo "image: $uri"
