# AWS Lambda container image: one C process (bin/bootstrap) that maps the model during init and
# serves the Runtime API. The final image is FROM scratch: the bootstrap, the model, and exactly
# the shared libraries the bootstrap needs with their loader (tools/elf-deps.sh), nothing else.
#
#   docker buildx build --platform linux/arm64 -t bitnet-lambda .              # model from models/
#   docker buildx build --platform linux/amd64 -t bitnet-lambda .
#   docker buildx build --platform linux/arm64 --build-arg MODEL_SOURCE=download -t bitnet-lambda .
#
# The builder runs on the build machine's own architecture ($BUILDPLATFORM) and cross-compiles
# for the target one with Debian's cross compiler and multiarch libcurl, and the final stage has
# no RUN: building linux/arm64 on an x86_64 machine executes no arm64 code (no QEMU binfmt).
#
# Build args: MODEL_SOURCE=context (default: copy models/$MODEL_FILE from the build context) or
# download (tools/download-model.sh fetches and verifies it in the builder); MODEL_FILE; BASE
# (the builder's Debian image). arm64 builds use -mcpu=neoverse-n1 (Graviton2, the oldest
# Lambda arm64 core); x86_64 builds are generic with run-time kernel dispatch. Every object is
# compiled with -frecord-gcc-switches, so `readelf -p .GCC.command.line` on the bootstrap in the
# image shows the flags it was built with (tests/container/run.sh checks the -mcpu).
ARG BASE=debian:bookworm-slim
# Set by docker buildx; podman 4.3 leaves it empty in FROM lines unless it is passed as a
# --build-arg (tests/container/run.sh does).
ARG BUILDPLATFORM

# Both toolchains, native and cross, in one layer that the arm64 and amd64 builds share.
FROM --platform=$BUILDPLATFORM ${BASE} AS toolchain
ARG BUILDARCH
RUN set -e; \
    case "$BUILDARCH" in \
      amd64) other=arm64; other_gcc=gcc-aarch64-linux-gnu ;; \
      arm64) other=amd64; other_gcc=gcc-x86-64-linux-gnu ;; \
      *) echo "unsupported build architecture '$BUILDARCH' (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    dpkg --add-architecture "$other"; \
    apt-get update; \
    apt-get install -y --no-install-recommends gcc libc6-dev make cmake pkg-config binutils \
      libcurl4-openssl-dev "$other_gcc" "libc6-dev-$other-cross" "libcurl4-openssl-dev:$other" \
      curl ca-certificates; \
    rm -rf /var/lib/apt/lists/*

FROM toolchain AS builder
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY kernels kernels
COPY src src
COPY tools tools
# CMakeLists.txt declares the layering probes (tests, never built here) on these files
COPY tests/layering tests/layering
# tools/bitnet-lambda-local (a program CMake declares) compiles the tests' Runtime API server
COPY tests/support tests/support
ARG BUILDARCH
ARG TARGETARCH
# /image is the final image's filesystem: the stripped bootstrap, then every library it needs
# (resolved in the builder's multiarch directories, i.e. Debian's own libc6/libcurl4 for the
# target) and the loader, at the paths the loader searches.
RUN set -e; \
    case "$TARGETARCH" in \
      arm64) triplet=aarch64-linux-gnu; cpu=aarch64; flags=-DBITNET_ARM_MCPU=neoverse-n1 ;; \
      amd64) triplet=x86_64-linux-gnu; cpu=x86_64; flags= ;; \
      *) echo "unsupported target architecture '$TARGETARCH' (amd64 or arm64)" >&2; exit 1 ;; \
    esac; \
    if [ "$TARGETARCH" != "$BUILDARCH" ]; then \
      flags="$flags -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=$cpu"; \
      flags="$flags -DCMAKE_C_COMPILER=$triplet-gcc -DCMAKE_LIBRARY_ARCHITECTURE=$triplet"; \
      export PKG_CONFIG_LIBDIR="/usr/lib/$triplet/pkgconfig:/usr/share/pkgconfig"; \
    fi; \
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBITNET_TESTS=OFF -DCMAKE_C_FLAGS=-frecord-gcc-switches $flags; \
    cmake --build build -j"$(nproc)" --target bootstrap; \
    "$triplet-strip" build/bin/bootstrap; \
    mkdir -p /image/usr/local/bin /image/opt/bitnet; \
    cp build/bin/bootstrap /image/usr/local/bin/bootstrap; \
    tools/elf-deps.sh build/bin/bootstrap > /tmp/deps; \
    while read -r lib; do mkdir -p "/image${lib%/*}"; cp -L "$lib" "/image$lib"; done < /tmp/deps; \
    tools/elf-deps.sh --root /image /image/usr/local/bin/bootstrap > /dev/null

ARG MODEL_SOURCE=context
ARG MODEL_FILE=ggml-model-i2_s.gguf
# The model: models/$MODEL_FILE from the build context (models/ must exist; it may be empty when
# MODEL_SOURCE=download, deploy/build-push.sh creates it), or downloaded and verified here with
# gguf-inspect and bitnet-run built for the builder's own architecture. The final stage copies
# it from /src/models, so the 1.19 GB file is written once per layer, never moved.
COPY models /src/models
RUN set -e; \
    if [ "$MODEL_SOURCE" = download ]; then \
      cmake -S . -B build-host -DCMAKE_BUILD_TYPE=Release; \
      cmake --build build-host -j"$(nproc)" --target gguf-inspect bitnet-run; \
      BITNET_BIN_DIR=/src/build-host/bin tools/download-model.sh --out "/src/models/$MODEL_FILE"; \
    elif [ "$MODEL_SOURCE" != context ]; then \
      echo "MODEL_SOURCE must be context or download, got $MODEL_SOURCE" >&2; exit 1; \
    fi; \
    test -s "/src/models/$MODEL_FILE" || { \
      echo "models/$MODEL_FILE is missing from the build context (or use --build-arg MODEL_SOURCE=download)" >&2; \
      exit 1; }

FROM scratch
ARG MODEL_FILE=ggml-model-i2_s.gguf
COPY --from=builder /image/ /
# Lambda runs the function as a non-root user: the model must be readable by all, whatever
# mode the file had in the build context.
COPY --from=builder --chmod=0444 /src/models/${MODEL_FILE} /opt/bitnet/model.gguf
ENV BITNET_MODEL=/opt/bitnet/model.gguf
ENTRYPOINT ["/usr/local/bin/bootstrap"]
