# Thin wrapper over CMake. `make` builds the programs, `make test` builds and runs every test
# (native with ASan+UBSan, then aarch64 under qemu when the cross tools are installed).
JOBS      ?= $(shell nproc)
BUILD     ?= build
MODEL     ?= models/ggml-model-i2_s.gguf
PROMPT    ?= The capital of France is
SHARED    ?= $(abspath ../shared)
DEB_PACKAGES = build-essential cmake pkg-config libcurl4-openssl-dev libcmocka-dev \
               clang libclang-rt-14-dev llvm shellcheck unicode-data curl ca-certificates \
               gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
               podman debootstrap nodejs npm
DEB_ARM64_PACKAGES = libcmocka-dev:arm64 libcurl4-openssl-dev:arm64

.PHONY: all build run test test-native test-arm64 test-fuzz test-scripts test-container deps clean bench

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBITNET_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# Builds, fetches the real model when it is missing, and runs one prompt.
run: build
	@if [ ! -f "$(MODEL)" ]; then tools/download-model.sh --out "$(MODEL)" || { \
	  echo "make run: could not download the model to $(MODEL)."; \
	  echo "  Make a synthetic one instead: $(BUILD)/bin/bitnet-make-model --preset 2b4t --out $(MODEL)"; \
	  exit 1; }; fi
	$(BUILD)/bin/bitnet-run -m "$(MODEL)" -p "$(PROMPT)" -n 32

test: test-native test-scripts test-arm64 test-fuzz test-container
	@echo "make test: all test suites passed"

test-native:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBITNET_SANITIZE=ON -DBITNET_WERROR=ON \
	      -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DBITNET_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# aarch64 cross build; ctest runs each test under qemu-aarch64 as a Graviton2 (neoverse-n1),
# and the kernel/golden tests again on `max` (i8mm) and cortex-a53 (Armv8.0, no dotprod).
test-arm64:
	@if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then \
	  echo "test-arm64: SKIPPED (needs gcc-aarch64-linux-gnu and qemu-user; see README)"; exit 0; fi; \
	set -e; \
	cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	      -DBITNET_WERROR=ON -DBITNET_SHARED_DIR=$(SHARED) >/dev/null; \
	cmake --build build-arm64 -j $(JOBS); \
	cd build-arm64 && ctest --output-on-failure -j $(JOBS)

# Short fixed-time libFuzzer smoke runs (clang only). New inputs go to a scratch corpus in
# build-fuzz/ (libFuzzer writes into its first corpus directory), never into tests/fuzz/corpus.
test-fuzz:
	@if ! command -v clang >/dev/null; then echo "test-fuzz: SKIPPED (needs clang)"; exit 0; fi; \
	set -e; \
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DBITNET_FUZZ=ON -DBITNET_SANITIZE=ON \
	      -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null; \
	cmake --build build-fuzz -j $(JOBS); \
	for f in build-fuzz/bin/fuzz_*; do \
	  [ -x "$$f" ] || continue; \
	  corpus=tests/fuzz/corpus/$$(basename $$f | sed 's/^fuzz_//'); \
	  echo "test-fuzz: $$f (20 s)"; \
	  scratch=build-fuzz/corpus-$$(basename $$f); mkdir -p $$scratch; \
	  "$$f" -max_total_time=20 -timeout=10 -rss_limit_mb=2048 $$scratch $$( [ -d $$corpus ] && echo $$corpus ) \
	    > build-fuzz/$$(basename $$f).log 2>&1 || { tail -40 build-fuzz/$$(basename $$f).log; exit 1; }; \
	  tail -1 build-fuzz/$$(basename $$f).log; \
	done

test-scripts:
	@if ! command -v shellcheck >/dev/null; then echo "test-scripts: SKIPPED (needs shellcheck)"; exit 0; fi; \
	files=$$(ls tools/*.sh deploy/*.sh tests/container/*.sh .ci/run 2>/dev/null); \
	if [ -n "$$files" ]; then shellcheck $$files && echo "test-scripts: shellcheck clean: $$files"; fi

# The Lambda image built without Docker (podman build --isolation chroot on a debootstrap'd
# bookworm base) and its entrypoint run under chroot against the test Runtime API server.
# Uses build-asan/bin/test_container (from test-native); skips without root/podman/debootstrap.
test-container:
	BN_SHARED_DIR=$(SHARED) tests/container/run.sh build-asan

bench: build
	@ls $(BUILD)/bin/bench-* 2>/dev/null

deps:
	apt-get update
	apt-get install -y --no-install-recommends $(DEB_PACKAGES)
	dpkg --add-architecture arm64
	apt-get update
	apt-get install -y --no-install-recommends $(DEB_ARM64_PACKAGES)

clean:
	rm -rf build build-asan build-arm64 build-fuzz
