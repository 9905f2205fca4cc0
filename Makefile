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
# Rows of the table `make test` ends with (tests/harness/summary.sh); each test-* target adds one.
SUMMARY   ?= build/test-summary.tsv
SUM        = tests/harness/summary.sh

.PHONY: all build build-run run format test test-format test-tools test-native test-arm64 test-fuzz test-scripts test-container mutation deps deps-test clean bench

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

# Every suite runs even when an earlier one failed; the table at the end says what ran, what
# was skipped and why, and what failed. No test run at all is a failure.
TEST_SUITES = native scripts format arm64 fuzz container
test: test-tools
	@$(SUM) reset $(SUMMARY); st=0; \
	for s in $(TEST_SUITES); do \
	  $(MAKE) --no-print-directory test-$$s || st=1; $(SUM) ensure $(SUMMARY) $$s; \
	done; \
	$(SUM) print $(SUMMARY) || st=1; exit $$st

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
	@cd build-asan && rm -f Testing/Temporary/LastTest.log && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --no-tests=error --output-on-failure -j $(JOBS); st=$$?; \
	cd .. && $(SUM) ctest $(SUMMARY) native build-asan $$st; exit $$st

# aarch64 cross build; ctest runs each test under qemu-aarch64 as a Graviton2 (neoverse-n1),
# and the kernel/golden tests again on `max` (i8mm) and cortex-a53 (Armv8.0, no dotprod).
test-arm64:
	@if [ "$$(uname -m)" = aarch64 ]; then \
	  echo "test-arm64: SKIPPED (this host is aarch64: test-native ran the arm64 tests natively)"; \
	  $(SUM) row $(SUMMARY) arm64 0 all 0 "aarch64 host: test-native ran the arm64 tests"; exit 0; fi; \
	if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then \
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
	files=$$(ls tools/*.sh deploy/*.sh tests/container/*.sh tests/deps/*.sh tests/scripts/*.sh tests/harness/*.sh tests/mutation/*.sh .ci/run 2>/dev/null); \
	n=$$(echo $$files | wc -w); \
	if [ $$n = 0 ]; then echo "test-scripts: FAILED: no script found"; \
	  $(SUM) row $(SUMMARY) scripts 0 0 1 "no script found"; exit 1; fi; \
	if shellcheck $$files; then echo "test-scripts: shellcheck clean: $$files"; \
	  $(SUM) row $(SUMMARY) scripts $$n 0 0 "shellcheck"; \
	else $(SUM) row $(SUMMARY) scripts $$n 0 1 "shellcheck findings above"; exit 1; fi

# The house style (.clang-format, clang-format 14 as Debian 12 ships it): every C file must be
# formatted already. `make format` applies it. src/text/unicode_tables.c is generated.
FORMAT_FILES = $(shell find src kernels tools tests bench -name '*.[ch]' ! -path src/text/unicode_tables.c | sort)
format:
	clang-format -i $(FORMAT_FILES)

test-format:
	@if ! command -v clang-format >/dev/null; then echo "test-format: SKIPPED (needs clang-format)"; \
	  $(SUM) row $(SUMMARY) format 0 all 0 "needs clang-format"; exit 0; fi; \
	n=$$(echo $(FORMAT_FILES) | wc -w); \
	if clang-format --dry-run --Werror $(FORMAT_FILES); then \
	  echo "test-format: $$n files formatted ($$(clang-format --version))"; \
	  $(SUM) row $(SUMMARY) format $$n 0 0 "clang-format --dry-run"; \
	else echo "test-format: FAILED: run make format"; \
	  $(SUM) row $(SUMMARY) format $$n 0 1 "files not formatted (make format)"; exit 1; fi

# The Lambda image for linux/arm64 and linux/amd64, built without Docker (podman build
# --isolation chroot; the builder, on a debootstrap'd bookworm base, cross-compiles), checked
# (ELF machine, libraries, no RUN, -mcpu) and its entrypoint run against the test Runtime API
# server: amd64 under chroot, arm64 under qemu-aarch64 with the image's own libraries.
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

# Packages per host (Debian/Ubuntu x86_64 or arm64, Amazon Linux 2023): tools/deps.sh, whose
# choice tests/deps/test_deps.sh checks. deps = what `make run` needs; deps-test = the rest.
deps:
	tools/deps.sh run

deps-test: deps
	tools/deps.sh test

clean:
	rm -rf build build-asan build-arm64 build-fuzz
