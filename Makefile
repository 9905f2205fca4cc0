# Thin wrapper over CMake. `make` builds the programs, `make test` builds and runs every test
# (native with ASan+UBSan, then aarch64 under qemu when the cross tools are installed).
JOBS      ?= $(shell nproc)
BUILD     ?= build
MODEL     ?= models/ggml-model-i2_s.gguf
PROMPT    ?= The capital of France is
SHARED    ?= $(abspath ../shared)
# Rows of the table `make test` ends with (tests/harness/summary.sh); each test-* target adds one.
SUMMARY   ?= build/test-summary.tsv
SUM        = tests/harness/summary.sh
DEB_PACKAGES = build-essential cmake pkg-config libcurl4-openssl-dev libcmocka-dev \
               clang libclang-rt-14-dev llvm shellcheck unicode-data curl ca-certificates \
               gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user \
               podman debootstrap
DEB_ARM64_PACKAGES = libcmocka-dev:arm64 libcurl4-openssl-dev:arm64

.PHONY: all build run test test-native test-arm64 test-fuzz test-scripts test-container mutation deps clean bench

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

# Every suite runs even when an earlier one failed; the table at the end says what ran, what
# was skipped and why, and what failed. No test run at all is a failure.
TEST_SUITES = native scripts arm64 fuzz container
test:
	@$(SUM) reset $(SUMMARY); st=0; \
	for s in $(TEST_SUITES); do \
	  $(MAKE) --no-print-directory test-$$s || st=1; $(SUM) ensure $(SUMMARY) $$s; \
	done; \
	$(SUM) print $(SUMMARY) || st=1; exit $$st

test-native:
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DBITNET_SANITIZE=ON -DBITNET_WERROR=ON \
	      -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DBITNET_SHARED_DIR=$(SHARED) >/dev/null
	cmake --build build-asan -j $(JOBS)
	@cd build-asan && rm -f Testing/Temporary/LastTest.log && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --no-tests=error --output-on-failure -j $(JOBS); st=$$?; \
	cd .. && $(SUM) ctest $(SUMMARY) native build-asan $$st; exit $$st

# aarch64 cross build; ctest runs each test under qemu-aarch64 as a Graviton2 (neoverse-n1),
# and the kernel/golden tests again on `max` (i8mm) and cortex-a53 (Armv8.0, no dotprod).
test-arm64:
	@if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then \
	  echo "test-arm64: SKIPPED (needs gcc-aarch64-linux-gnu and qemu-user; see README)"; \
	  $(SUM) row $(SUMMARY) arm64 0 all 0 "needs gcc-aarch64-linux-gnu and qemu-user"; exit 0; fi; \
	set -e; \
	cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	      -DBITNET_WERROR=ON -DBITNET_SHARED_DIR=$(SHARED) >/dev/null; \
	cmake --build build-arm64 -j $(JOBS); \
	set +e; cd build-arm64 && rm -f Testing/Temporary/LastTest.log; ctest --no-tests=error --output-on-failure -j $(JOBS); st=$$?; \
	cd .. && $(SUM) ctest $(SUMMARY) arm64 build-arm64 $$st; exit $$st

# Short fixed-time libFuzzer smoke runs (clang only). New inputs go to a scratch corpus in
# build-fuzz/ (libFuzzer writes into its first corpus directory), never into tests/fuzz/corpus.
test-fuzz:
	@if ! command -v clang >/dev/null; then echo "test-fuzz: SKIPPED (needs clang)"; \
	  $(SUM) row $(SUMMARY) fuzz 0 all 0 "needs clang"; exit 0; fi; \
	set -e; \
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DBITNET_FUZZ=ON -DBITNET_SANITIZE=ON \
	      -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null; \
	cmake --build build-fuzz -j $(JOBS); \
	n=0; \
	for f in build-fuzz/bin/fuzz_*; do \
	  [ -x "$$f" ] || continue; \
	  n=$$((n + 1)); \
	  corpus=tests/fuzz/corpus/$$(basename $$f | sed 's/^fuzz_//'); \
	  echo "test-fuzz: $$f (20 s)"; \
	  scratch=build-fuzz/corpus-$$(basename $$f); mkdir -p $$scratch; \
	  "$$f" -max_total_time=20 -timeout=10 -rss_limit_mb=2048 $$scratch $$( [ -d $$corpus ] && echo $$corpus ) \
	    > build-fuzz/$$(basename $$f).log 2>&1 || { tail -40 build-fuzz/$$(basename $$f).log; \
	    $(SUM) row $(SUMMARY) fuzz $$n 0 1 "$$f found a failure"; exit 1; }; \
	  tail -1 build-fuzz/$$(basename $$f).log; \
	done; \
	if [ $$n = 0 ]; then echo "test-fuzz: FAILED: no fuzz target was built in build-fuzz/bin"; \
	  $(SUM) row $(SUMMARY) fuzz 0 0 1 "no fuzz target built"; exit 1; fi; \
	$(SUM) row $(SUMMARY) fuzz $$n 0 0 "20 s per target"

test-scripts:
	@if ! command -v shellcheck >/dev/null; then echo "test-scripts: SKIPPED (needs shellcheck)"; \
	  $(SUM) row $(SUMMARY) scripts 0 all 0 "needs shellcheck"; exit 0; fi; \
	files=$$(ls tools/*.sh deploy/*.sh tests/container/*.sh tests/harness/*.sh tests/mutation/*.sh .ci/run 2>/dev/null); \
	n=$$(echo $$files | wc -w); \
	if [ $$n = 0 ]; then echo "test-scripts: FAILED: no script found"; \
	  $(SUM) row $(SUMMARY) scripts 0 0 1 "no script found"; exit 1; fi; \
	if shellcheck $$files; then echo "test-scripts: shellcheck clean: $$files"; \
	  $(SUM) row $(SUMMARY) scripts $$n 0 0 "shellcheck"; \
	else $(SUM) row $(SUMMARY) scripts $$n 0 1 "shellcheck findings above"; exit 1; fi

# The Lambda image built without Docker (podman build --isolation chroot on a debootstrap'd
# bookworm base) and its entrypoint run under chroot against the test Runtime API server.
# Uses build-asan/bin/test_container (from test-native). run.sh exits 77 with a SKIPPED line
# when it cannot run (not root, no podman/debootstrap): shown as skipped in the table, never
# as passed.
test-container:
	@mkdir -p build; { BN_SHARED_DIR=$(SHARED) tests/container/run.sh build-asan; echo $$? >build/test-container.rc; } \
	  2>&1 | tee build/test-container.log; \
	st=$$(cat build/test-container.rc); \
	if [ $$st = 77 ]; then \
	  $(SUM) row $(SUMMARY) container 0 all 0 "$$(sed -n 's/^test-container: SKIPPED (\(.*\))$$/\1/p' build/test-container.log)"; \
	  exit 0; fi; \
	$(SUM) row $(SUMMARY) container 1 0 $$([ $$st = 0 ] && echo 0 || echo 1) "image built, entrypoint run"; exit $$st

# Mutation smoke (tests/mutation/): each one-line mutation of mutations.tsv applied to a copy of
# the tree in /tmp, rebuilt incrementally, its module's tests run; prints caught/survived and
# the score. Not part of `make test`: it takes longer than 10 minutes on the shared machine.
mutation:
	BN_SHARED_DIR=$(SHARED) tests/mutation/run.sh --jobs $(JOBS)

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
