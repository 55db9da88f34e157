# Makefile: coffer's entry points. The README's two commands, `make run` and `make test`, must work
# on a fresh Debian 12 machine (scripts/deps installs or names what is missing).
#
#   make build   configure + compile into build/ (RelWithDebInfo)
#   make run     build, then scripts/run-demo (a demo token under ./var and how to use it) and
#                scripts/run-daemon (cofferd in the foreground: the TPM `default` on the mssim ports
#                and the HSM on ./var/hsm.sock; it prints the module path and the client config)
#   make test    every test (unit, module C tests, interop) in build/ with -Werror, then the unit
#                and module tests again under ASan+UBSan in build-asan/ and under ThreadSanitizer
#                in build-tsan/
#   make bench   build, then bench/run (signing throughput beside OpenSSL and SoftHSM2; 10k objects;
#                the remote HSM beside in-process and p11-kit). BENCH_ONLY=remote: that part alone
#   make fuzz    the libFuzzer harnesses of tests/fuzz, FUZZ_SECONDS each, in build-fuzz/
#   make clean   remove the build trees (./var, the demo state, stays; `make distclean` removes it)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
JOBS ?= 2
FUZZ_SECONDS ?= 20
CMAKE_GEN := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
FUZZ_NAMES := $(basename $(notdir $(wildcard tests/fuzz/*.c)))
# Build trees (override to keep experiments apart, e.g. make test BUILD=build-mine ASAN_BUILD=build-mine-asan).
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz

.PHONY: all build run test test-asan test-tsan bench fuzz clean distclean

all: build

build:
	scripts/deps build
	cmake -S . -B $(BUILD) $(CMAKE_GEN)
	ninja -C $(BUILD) -j$(JOBS)

run: build
	scripts/run-demo $(BUILD)
	scripts/run-daemon $(BUILD)

test:
	scripts/deps
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCOFFER_WERROR=ON
	ninja -C $(BUILD) -j$(JOBS)
	ctest --test-dir $(BUILD) --output-on-failure -j$(JOBS)
	$(MAKE) --no-print-directory test-asan
	$(MAKE) --no-print-directory test-tsan

# Unit tests and the module's C tests (label "unit") under AddressSanitizer + UBSan. Leak checking
# is on where LeakSanitizer can run (it cannot under some ptrace restrictions, e.g. in containers).
test-asan:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCOFFER_SANITIZE=ON -DCOFFER_WERROR=ON -DCOFFER_INTEROP=OFF
	ninja -C $(ASAN_BUILD) -j$(JOBS)
	printf 'int main(void) { return 0; }\n' >$(ASAN_BUILD)/lsan-probe.c
	@leaks=1; \
	if ! { cc -fsanitize=address $(ASAN_BUILD)/lsan-probe.c -o $(ASAN_BUILD)/lsan-probe && \
	       ASAN_OPTIONS=detect_leaks=1 $(ASAN_BUILD)/lsan-probe >/dev/null 2>&1; }; then \
	  leaks=0; echo "note: LeakSanitizer cannot run on this machine (ptrace restrictions); running with detect_leaks=0"; \
	fi; \
	echo "ctest -L unit under ASan+UBSan, ASAN_OPTIONS=detect_leaks=$$leaks"; \
	ASAN_OPTIONS=detect_leaks=$$leaks \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --test-dir $(ASAN_BUILD) -L unit --output-on-failure -j$(JOBS)

# The same under ThreadSanitizer: the engine's locks, the daemon's workers, the module's pool and
# leases, with the cofferd that remote_pool_test starts built the same way (TSAN_OPTIONS reach it).
# tests/tsan.supp names the one report TSan cannot get right (epoll's ordering) and why.
test-tsan:
	cmake -S . -B $(TSAN_BUILD) $(CMAKE_GEN) -DCOFFER_TSAN=ON -DCOFFER_WERROR=ON -DCOFFER_INTEROP=OFF
	ninja -C $(TSAN_BUILD) -j$(JOBS)
	echo "ctest -L unit under ThreadSanitizer"
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --test-dir $(TSAN_BUILD) -L unit --output-on-failure -j$(JOBS)

bench: build
	scripts/deps bench
	bench/run $(BUILD)

# Fuzzing wants clang (libFuzzer). Each harness runs over a copy of its seed corpus, so the seeds in
# tests/fuzz/corpus/ stay as committed; new inputs and crash artifacts stay in $(FUZZ_BUILD)/.
fuzz:
	scripts/deps build
	cmake -S . -B $(FUZZ_BUILD) $(CMAKE_GEN) -DCMAKE_C_COMPILER=clang -DCOFFER_FUZZ=ON -DCOFFER_INTEROP=OFF
	ninja -C $(FUZZ_BUILD) -j$(JOBS) $(addprefix fuzz_,$(FUZZ_NAMES))
	for name in $(FUZZ_NAMES); do \
	  rm -rf $(FUZZ_BUILD)/corpus/$$name && mkdir -p $(FUZZ_BUILD)/corpus/$$name $(FUZZ_BUILD)/artifacts; \
	  if [ -d tests/fuzz/corpus/$$name ]; then cp -r tests/fuzz/corpus/$$name/. $(FUZZ_BUILD)/corpus/$$name/; fi; \
	  echo "== fuzz_$$name ($(FUZZ_SECONDS)s)"; \
	  $(FUZZ_BUILD)/tests/fuzz_$$name -max_total_time=$(FUZZ_SECONDS) -timeout=20 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$name- $(FUZZ_BUILD)/corpus/$$name; \
	done

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)

distclean: clean
	rm -rf var
