# Thin wrapper over CMake. `make` builds the programs, `make test` builds and runs every test
# (native with ASan+UBSan, then aarch64 under qemu when the cross tools are installed).
JOBS      ?= $(shell nproc)
BUILD     ?= build
MODEL     ?= models/ggml-model-i2_s.gguf
PROMPT    ?= The capital of France is
SHARED    ?= $(abspath ../shared)
SYNTH_MODEL ?= models/synthetic-2b4t.gguf
# What `make run` builds: the program it runs and the tools download-model.sh uses to check the
# file (and the one that makes a synthetic model when there is no network)
RUN_TARGETS = bitnet-run gguf-inspect bitnet-make-model

.PHONY: all build build-run run test test-tools test-native test-arm64 test-fuzz test-scripts test-container deps deps-test clean bench

all: build

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBITNET_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-run:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DBITNET_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target $(RUN_TARGETS)

# Builds only what it runs, fetches the real model when it is missing, and runs one prompt.
# The synthetic model it suggests goes to its own name, never to the real model's.
run: build-run
	@if [ ! -f "$(MODEL)" ]; then BITNET_BIN_DIR=$(BUILD)/bin tools/download-model.sh --out "$(MODEL)" || { \
	  echo "make run: could not download the model to $(MODEL)."; \
	  echo "  A synthetic model of the same shape (random weights: its output is meaningless):"; \
	  echo "    $(BUILD)/bin/bitnet-make-model --preset 2b4t $$( [ -f $(SHARED)/tokenizer/llama3-vocab.gguf ] && echo '--vocab-gguf $(SHARED)/tokenizer/llama3-vocab.gguf ')--out $(SYNTH_MODEL)"; \
	  echo "    make run MODEL=$(SYNTH_MODEL)"; \
	  exit 1; }; fi
	$(BUILD)/bin/bitnet-run -m "$(MODEL)" -p "$(PROMPT)" -n 32

test: test-tools test-native test-scripts test-arm64 test-fuzz test-container
	@echo "make test: all test suites passed"

# `make deps && make test`: the test tools (cmocka, clang, shellcheck, cross tools, ...) come
# with `make deps-test`, which make test runs itself when this host's test tools are missing.
test-tools:
	@tools/deps.sh test --if-missing

test-native:
	@[ -f /usr/include/cmocka.h ] || [ -f /usr/local/include/cmocka.h ] || \
	  echo "test-native: cmocka tests SKIPPED (no cmocka on this host); only the configure and layering checks run"
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBITNET_SANITIZE=ON -DBITNET_WERROR=ON \
	      -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DBITNET_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS)

# aarch64 cross build; ctest runs each test under qemu-aarch64 as a Graviton2 (neoverse-n1),
# and the kernel/golden tests again on `max` (i8mm) and cortex-a53 (Armv8.0, no dotprod).
test-arm64:
	@if [ "$$(uname -m)" = aarch64 ]; then \
	  echo "test-arm64: SKIPPED (this host is aarch64: test-native ran the arm64 tests natively)"; exit 0; fi; \
	if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then \
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
	files=$$(ls tools/*.sh deploy/*.sh tests/container/*.sh tests/deps/*.sh tests/scripts/*.sh .ci/run 2>/dev/null); \
	if [ -n "$$files" ]; then shellcheck $$files && echo "test-scripts: shellcheck clean: $$files"; fi

# The Lambda image for linux/arm64 and linux/amd64, built without Docker (podman build
# --isolation chroot; the builder, on a debootstrap'd bookworm base, cross-compiles), checked
# (ELF machine, libraries, no RUN, -mcpu) and its entrypoint run against the test Runtime API
# server: amd64 under chroot, arm64 under qemu-aarch64 with the image's own libraries.
# Uses build-asan/bin/test_container (from test-native); skips without root/podman/debootstrap.
test-container:
	BN_SHARED_DIR=$(SHARED) tests/container/run.sh build-asan

bench: build
	@ls $(BUILD)/bin/bench-* 2>/dev/null

# Packages per host (Debian/Ubuntu x86_64 or arm64, Amazon Linux 2023): tools/deps.sh, whose
# choice tests/deps/test_deps.sh checks. deps = what `make run` needs; deps-test = the rest.
deps:
	tools/deps.sh run

deps-test: deps
	tools/deps.sh test

clean:
	rm -rf build build-asan build-arm64 build-fuzz
