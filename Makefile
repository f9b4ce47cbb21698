# SPDX-License-Identifier: MIT OR Apache-2.0
#
# Convenience targets over the CMake presets (GNU make).
#
#   make test          check/install the Debian packages, build and run the tests
#   make demo          Release build, then run the demo
#   make bench         Release build, then the whole suite against every peer:
#                      BENCHMARKS.md and docs/img/*.png (about 8 minutes)
#   make bench-smoke   every benchmark briefly (part of ci)
#   make asan tsan clang valgrind
#                      the suite under ASan+UBSan, TSan, clang, valgrind
#   make format        clang-format every source in place
#   make format-check  fail when a source is not clang-format clean
#   make tidy          clang-tidy over the library sources (not part of ci)
#   make install-check install the release build into build/install-prefix,
#                      build and run the consumers in tests/install
#   make docs          Doxygen API reference into build/docs (installs
#                      doxygen when missing; not part of ci)
#   make fuzz          the API fuzzer (libFuzzer, ASan+UBSan) in build/fuzz
#                      for FUZZ_TIME seconds (60) over a copy of the corpus
#   make ci            every step of CI_STEPS below, with timings
#   make clean         remove build/
#
# Variables: JOBS (2), CTEST_TIMEOUT (seconds per test, 600),
# CLANG_FORMAT (clang-format), CLANG_TIDY (clang-tidy).

SHELL := /bin/bash
# Quieter nested makes (CMake's generated Makefiles run under this one).
MAKEFLAGS += --no-print-directory
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

JOBS ?= 2
CTEST_TIMEOUT ?= 600
CLANG_FORMAT ?= clang-format
CLANG_TIDY ?= clang-tidy
CMAKE ?= cmake
CTEST ?= ctest

CTEST_ARGS = --output-on-failure -j$(JOBS) --timeout $(CTEST_TIMEOUT)

# Debian 12 packages. DEPS_CORE builds and tests (llvm: llvm-symbolizer for
# readable sanitizer reports; clang-format: format-check; gdb: gcore for
# test_coredump); DEPS_BENCH is for the benchmarks (the comparison
# allocators and wipers).
DEPS_CORE := make cmake gcc g++ clang llvm pkg-config libcmocka-dev \
	libhwloc-dev libbenchmark-dev valgrind clang-format gdb \
	libclang-rt-14-dev liburing-dev
DEPS_BENCH := libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev \
	libsodium-dev libssl-dev python3 gnuplot-nox
DEPS := $(DEPS_CORE) $(DEPS_BENCH)

# Sources that clang-format owns.
FORMAT_DIRS := include src tests bench examples tools
FORMAT_FILES = $(shell find $(wildcard $(FORMAT_DIRS)) -type f \
	\( -name '*.c' -o -name '*.h' -o -name '*.cc' -o -name '*.cpp' \
	-o -name '*.hpp' \) | LC_ALL=C sort)

# The steps of `make ci`, in order.
CI_STEPS := test asan tsan clang valgrind fuzz format-check bench-smoke install-check

.PHONY: deps test demo bench asan tsan clang valgrind format format-check \
	tidy ci clean

# ---- packages -----------------------------------------------------------------

# Installs what is missing when run as root; otherwise prints the command and
# fails. Skipped (with a note) where dpkg-query does not exist. ZP_APT_UPDATED=1
# skips the apt-get update (.ci/run has just done it).
deps:
	@if ! command -v dpkg-query >/dev/null 2>&1; then \
	  echo "deps: not a Debian system, not checking packages: $(DEPS)"; \
	  exit 0; \
	fi; \
	missing=""; \
	for p in $(DEPS); do \
	  s=$$(dpkg-query -W -f='$${db:Status-Status}' "$$p" 2>/dev/null || true); \
	  [ "$$s" = installed ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all packages installed"; exit 0; fi; \
	echo "deps: missing:$$missing"; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "deps: not root; install them with:"; \
	  echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$$missing"; \
	  exit 1; \
	fi; \
	[ -n "$${ZP_APT_UPDATED:-}" ] || apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

# ---- builds -------------------------------------------------------------------

# configure + build + test one preset: $(call preset,NAME)
define preset
	$(CMAKE) --preset $(1)
	$(CMAKE) --build --preset $(1) -j $(JOBS)
	$(CTEST) --preset $(1) $(CTEST_ARGS)
endef

test: deps
	$(call preset,default)

asan: deps
	$(call preset,asan)

# ZP_TEST_QUICK (also in the tsan test preset) shrinks the tests' loops.
# TSan cannot map its shadow memory on kernels with a large mmap
# randomisation (vm.mmap_rnd_bits > 28): run the tests without ASLR there.
tsan: export ZP_TEST_QUICK := 1
tsan: deps
	$(CMAKE) --preset tsan
	$(CMAKE) --build --preset tsan -j $(JOBS)
	@bits=$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28); \
	wrap=""; \
	if [ "$$bits" -gt 28 ] && setarch "$$(uname -m)" -R true 2>/dev/null; then \
	  echo "tsan: vm.mmap_rnd_bits=$$bits, running the tests without ASLR"; \
	  wrap="setarch $$(uname -m) -R"; \
	fi; \
	cmd="$(CTEST) --preset tsan $(CTEST_ARGS)"; \
	[ -z "$$wrap" ] || cmd="$$wrap $$cmd"; \
	echo "$$cmd"; \
	$$cmd $(CTEST) --preset tsan $(CTEST_ARGS)

clang: deps
	$(call preset,clang)

release: deps
	$(CMAKE) --preset release
	$(CMAKE) --build --preset release -j $(JOBS)

demo: release
	./build/release/examples/zp_demo

# Every workload over every implementation, one process per implementation,
# in 7 interleaved passes (bench/zpb_run.py, about 8 minutes on 2 cores):
# BENCHMARKS.md, docs/img/*.png, raw JSON in bench/results/. BENCH_ARGS
# passes options to zpb_run.py (--passes, --min-time, --filter...).
BENCH_ARGS ?=
bench: release
	python3 bench/zpb_run.py $(BENCH_ARGS)

# The same workloads over the same implementations, a few iterations each
# (under a minute): keeps the benchmarks (and zpb_pair) building and
# running. The report goes to bench/results/smoke/, never over BENCHMARKS.md.
.PHONY: bench-smoke
bench-smoke: release
	python3 bench/zpb_run.py --smoke
	build/release/bench/zpb_pair build/release/libzeropool.so \
	    build/release/libzeropool.so prodcons 4096 2000 2
	build/release/bench/zpb_pair build/release/libzeropool.so \
	    build/release/libzeropool.so cycle 1024 2000 2

# valgrind memcheck over the default build. ctest -T memcheck by itself exits
# 0 when valgrind reports defects in a test that passes, so valgrind runs with
# --error-exitcode=99 (MEMORYCHECK_COMMAND_OPTIONS in CMakeLists.txt): any
# error or definite leak fails that test. As a second net, the memcheck logs
# are scanned for a nonzero ERROR SUMMARY (a defect in a test whose exit
# status is not checked, e.g. WILL_FAIL tests).
VG_LOGS := build/default/Testing/Temporary
valgrind: export ZP_TEST_QUICK := 1
# hwloc's x86 CPUID backend cannot run under valgrind and says so on stderr.
valgrind: export HWLOC_COMPONENTS := -x86
valgrind: deps
	$(CMAKE) --preset default
	$(CMAKE) --build --preset default -j $(JOBS)
	rm -f $(VG_LOGS)/MemoryChecker.*.log
	@rc=0; \
	$(CTEST) --test-dir build/default -T memcheck $(CTEST_ARGS) || rc=$$?; \
	bad=$$(grep -lE 'ERROR SUMMARY: [1-9]' $(VG_LOGS)/MemoryChecker.*.log \
	  2>/dev/null || true); \
	if [ -n "$$bad" ]; then \
	  echo "valgrind: defects reported in:"; \
	  for f in $$bad; do echo "== $$f"; cat "$$f"; done; \
	  rc=1; \
	fi; \
	if [ "$$rc" -ne 0 ]; then echo "valgrind: FAILED"; exit 1; fi; \
	echo "valgrind: no defects"

# ---- fuzzing -------------------------------------------------------------------

# The API-sequence fuzzer (tests/fuzz) under libFuzzer + ASan + UBSan, built
# with clang in build/fuzz. It first replays the checked-in corpus, then
# fuzzes for FUZZ_TIME seconds over a working copy of it: new inputs go to
# build/fuzz/corpus, a failing input to build/fuzz/artifacts/;
# tests/fuzz/corpus is never written. FUZZ_ARGS passes more libFuzzer flags.
FUZZ_TIME ?= 60
FUZZ_ARGS ?=
FUZZ_DIR := build/fuzz
.PHONY: fuzz
fuzz: deps
	$(CMAKE) -S . -B $(FUZZ_DIR) -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZP_SANITIZE=address \
	  -DZP_BUILD_FUZZ=ON -DZP_BUILD_EXAMPLES=OFF
	$(CMAKE) --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_api fuzz_regress
	$(FUZZ_DIR)/tests/fuzz/fuzz_regress tests/fuzz/corpus >/dev/null
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts
	cp tests/fuzz/corpus/* $(FUZZ_DIR)/corpus/
	@export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; \
	cmd="$(FUZZ_DIR)/tests/fuzz/fuzz_api -max_total_time=$(FUZZ_TIME) \
	  -max_len=1024 -timeout=30 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_ARGS) $(FUZZ_DIR)/corpus"; \
	echo "$$cmd"; \
	if ! $$cmd; then \
	  echo "fuzz: FAILED; the input is in $(FUZZ_DIR)/artifacts/, replay it" \
	    "with ZP_FUZZ_TRACE=1 $(FUZZ_DIR)/tests/fuzz/fuzz_regress FILE"; \
	  exit 1; \
	fi; \
	echo "fuzz: no failure in $(FUZZ_TIME)s"

# ---- install check and docs ----------------------------------------------------

# Installs the release preset's libraries into a scratch prefix, then builds
# and runs the consumers of tests/install against it: with CMake
# (find_package) and with pkg-config, shared and static, as C and as C++.
INSTALL_PREFIX := build/install-prefix
.PHONY: install-check docs
install-check: deps
	$(CMAKE) --preset release
	$(CMAKE) --build --preset release -j $(JOBS) \
	  --target zeropool_static zeropool_shared
	rm -rf $(INSTALL_PREFIX)
	$(CMAKE) --install build/release --prefix $(INSTALL_PREFIX)
	tests/install/run.sh $(INSTALL_PREFIX) build/install-check

# The API reference (include/zeropool.h, zeropool.hpp, docs/*.md) with
# Doxygen, into build/docs/html. Installs doxygen on demand, as deps does
# for the build packages (as root; otherwise prints the apt-get line).
docs:
	@if ! command -v doxygen >/dev/null 2>&1; then \
	  echo "docs: doxygen is missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then \
	    echo "docs: not root; install it with:"; \
	    echo "  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends doxygen"; \
	    exit 1; \
	  fi; \
	  [ -n "$${ZP_APT_UPDATED:-}" ] || apt-get update; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends doxygen; \
	fi
	mkdir -p build/docs
	ZP_VERSION=$$(sed -n 's/^#define ZP_VERSION_STRING "\(.*\)"$$/\1/p' \
	  include/zeropool.h) doxygen docs/Doxyfile
	@echo "docs: build/docs/html/index.html," \
	  "$$(grep -c . build/docs/warnings.log || true) warning line(s) in build/docs/warnings.log"

# ---- formatting and linting -----------------------------------------------------

format:
	$(CLANG_FORMAT) -i $(FORMAT_FILES)

format-check:
	$(CLANG_FORMAT) --dry-run -Werror $(FORMAT_FILES)

tidy:
	$(CMAKE) --preset clang
	$(CLANG_TIDY) -p build/clang --quiet $(wildcard src/*.c)

# ---- everything -----------------------------------------------------------------

# Runs every step even when one fails, prints each step's time, and fails at
# the end when any step did.
ci:
	@failed=""; summary=""; total0=$$(date +%s); \
	for step in $(CI_STEPS); do \
	  t0=$$(date +%s); \
	  echo "==== ci: $$step"; \
	  if $(MAKE) $$step; then r=ok; \
	  else r=FAILED; failed="$$failed $$step"; fi; \
	  dt=$$(( $$(date +%s) - t0 )); \
	  echo "==== ci: $$step $$r in $${dt}s"; \
	  summary="$$summary$$(printf '%-14s %-7s %5ss' $$step $$r $$dt)\n"; \
	done; \
	echo "==== ci summary"; printf "$$summary"; \
	echo "total $$(( $$(date +%s) - total0 ))s"; \
	if [ -n "$$failed" ]; then echo "ci: FAILED:$$failed"; exit 1; fi; \
	echo "ci: all passed"

clean:
	rm -rf build
