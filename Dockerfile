# AWS Lambda container image: one C process (bin/bootstrap) that maps the model during init and
# serves the Runtime API. Multi-stage: a Debian builder compiles; the final image is
# debian:bookworm-slim + libcurl + bootstrap + the model (no compilers, no Python).
#
#   docker buildx build --platform linux/arm64 -t bitnet-lambda .              # model from models/
#   docker buildx build --platform linux/arm64 --build-arg MODEL_SOURCE=download -t bitnet-lambda .
#
# Build args: MODEL_SOURCE=context (default: copy models/$MODEL_FILE from the build context) or
# download (tools/download-model.sh fetches and verifies it in the builder); MODEL_FILE; BASE.
# arm64 builds use -mcpu=neoverse-n1 (Graviton2, the oldest Lambda arm64 core; the kernels pick
# faster paths at run time on newer cores); x86_64 builds are generic with run-time dispatch.
ARG BASE=debian:bookworm-slim

FROM ${BASE} AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make cmake libcurl4-openssl-dev \
      curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY kernels kernels
COPY src src
COPY tools tools
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBITNET_ARM_CPU=neoverse-n1 -DBITNET_TESTS=OFF \
 && cmake --build build -j"$(nproc)" --target bootstrap gguf-inspect bitnet-run \
 && strip build/bin/bootstrap

ARG MODEL_SOURCE=context
ARG MODEL_FILE=ggml-model-i2_s.gguf
# models/ must exist in the context (it may be empty when MODEL_SOURCE=download;
# deploy/build-push.sh creates it)
COPY models /src/models
RUN set -e; \
    if [ "$MODEL_SOURCE" = download ]; then \
      BITNET_BIN_DIR=/src/build/bin tools/download-model.sh --out "/src/models/$MODEL_FILE"; \
    elif [ "$MODEL_SOURCE" != context ]; then \
      echo "MODEL_SOURCE must be context or download, got $MODEL_SOURCE" >&2; exit 1; \
    fi; \
    test -s "/src/models/$MODEL_FILE" || { \
      echo "models/$MODEL_FILE is missing from the build context (or use --build-arg MODEL_SOURCE=download)" >&2; \
      exit 1; }; \
    mkdir -p /out && mv "/src/models/$MODEL_FILE" /out/model.gguf

FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libcurl4 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/*
COPY --from=builder /src/build/bin/bootstrap /usr/local/bin/bootstrap
COPY --from=builder /out/model.gguf /opt/bitnet/model.gguf
ENV BITNET_MODEL=/opt/bitnet/model.gguf
ENTRYPOINT ["/usr/local/bin/bootstrap"]
