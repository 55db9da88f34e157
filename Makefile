# Makefile: coffer's entry points. The README's two commands, `make run` and `make test`, must work
# on a fresh Debian 12 machine (scripts/deps installs or names what is missing).
#
#   make build   configure + compile into build/ (RelWithDebInfo)
#   make run     build, then scripts/run-demo: a demo token under ./var and how to use it
#   make test    every test (unit, module C tests, interop) in build/ with -Werror, then the unit
#                and module tests again under ASan+UBSan in build-asan/
#   make bench   build, then bench/run (signing throughput beside OpenSSL and SoftHSM2; 10k objects)
#   make fuzz    the libFuzzer harnesses of tests/fuzz, FUZZ_SECONDS each, in build-fuzz/
#   make clean   remove the build trees (./var, the demo state, stays; `make distclean` removes it)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
JOBS ?= 2
FUZZ_SECONDS ?= 20
CMAKE_GEN := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
FUZZ_NAMES := $(basename $(notdir $(wildcard tests/fuzz/*.c)))

.PHONY: all build run test test-asan bench fuzz clean distclean

all: build

build:
	scripts/deps build
	cmake -S . -B build $(CMAKE_GEN)
	ninja -C build -j$(JOBS)

run: build
	scripts/run-demo build

test:
	scripts/deps
	cmake -S . -B build $(CMAKE_GEN) -DCOFFER_WERROR=ON
	ninja -C build -j$(JOBS)
	ctest --test-dir build --output-on-failure -j$(JOBS)
	$(MAKE) --no-print-directory test-asan

# Unit tests and the module's C tests (label "unit") under AddressSanitizer + UBSan. Leak checking
# is on where LeakSanitizer can run (it cannot under some ptrace restrictions, e.g. in containers).
test-asan:
	cmake -S . -B build-asan $(CMAKE_GEN) -DCOFFER_SANITIZE=ON -DCOFFER_WERROR=ON -DCOFFER_INTEROP=OFF
	ninja -C build-asan -j$(JOBS)
	printf 'int main(void) { return 0; }\n' >build-asan/lsan-probe.c
	leaks=1; \
	if ! { cc -fsanitize=address build-asan/lsan-probe.c -o build-asan/lsan-probe && \
	       ASAN_OPTIONS=detect_leaks=1 build-asan/lsan-probe >/dev/null 2>&1; }; then \
	  leaks=0; echo "note: LeakSanitizer cannot run on this machine (ptrace restrictions); running with detect_leaks=0"; \
	fi; \
	ASAN_OPTIONS=detect_leaks=$$leaks \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir build-asan -L unit --output-on-failure -j$(JOBS)

bench: build
	scripts/deps bench
	bench/run build

# Fuzzing wants clang (libFuzzer). Each harness runs over a copy of its seed corpus, so the seeds in
# tests/fuzz/corpus/ stay as committed; new inputs and crash artifacts stay in build-fuzz/.
fuzz:
	scripts/deps build
	cmake -S . -B build-fuzz $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang -DCOFFER_FUZZ=ON -DCOFFER_INTEROP=OFF
	ninja -C build-fuzz -j$(JOBS) $(addprefix fuzz_,$(FUZZ_NAMES))
	for name in $(FUZZ_NAMES); do \
	  rm -rf build-fuzz/corpus/$$name && mkdir -p build-fuzz/corpus/$$name build-fuzz/artifacts; \
	  if [ -d tests/fuzz/corpus/$$name ]; then cp -r tests/fuzz/corpus/$$name/. build-fuzz/corpus/$$name/; fi; \
	  echo "== fuzz_$$name ($(FUZZ_SECONDS)s)"; \
	  build-fuzz/tests/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -timeout=20 -print_final_stats=1 \
	    -artifact_prefix=build-fuzz/artifacts/$$name- build-fuzz/corpus/$$name; \
	done

clean:
	rm -rf build build-asan build-fuzz

distclean: clean
	rm -rf var
