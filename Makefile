# rivulet: the human entry point. Every target that builds first makes sure the Debian
# packages are there (scripts/deps.sh is quick when nothing is missing).
#
#   make demo        build and run the main job on the embedded log
#   make test        TSan run of threaded tests, then ASan+UBSan build of the whole ctest suite
#   make test-slow   the long soaks and chaos runs (label slow)
#   make bench       optimised build, every benchmark, one table
#   make fuzz        libFuzzer targets, each for FUZZ_SECONDS (default 60)
#   make format      clang-format over src, include, tests, tools, bench, examples

JOBS        ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
BUILD       ?= build
CMAKE       ?= cmake

.PHONY: all deps build demo test test-slow tsan bench fuzz format docs clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	$(CMAKE) -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	$(CMAKE) --build $(BUILD)/release -j $(JOBS)

demo: build
	./$(BUILD)/release/rivulet demo

# Threaded tests (label `threads`) first run under ThreadSanitizer; then the whole suite under
# AddressSanitizer + UndefinedBehaviorSanitizer.
test: deps
	$(CMAKE) -S . -B $(BUILD)/tsan -DCMAKE_BUILD_TYPE=Debug -DRV_TSAN=ON -DRV_BENCH=OFF >/dev/null
	$(CMAKE) --build $(BUILD)/tsan -j $(JOBS)
	cd $(BUILD)/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
	    ctest --output-on-failure -j $(JOBS) -L threads -LE slow
	$(CMAKE) -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DRV_SANITIZE=ON -DRV_BENCH=OFF >/dev/null
	$(CMAKE) --build $(BUILD)/asan -j $(JOBS)
	cd $(BUILD)/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    ctest --output-on-failure -j $(JOBS) -LE slow

test-slow: deps
	$(CMAKE) -S . -B $(BUILD)/asan -DCMAKE_BUILD_TYPE=Debug -DRV_SANITIZE=ON -DRV_BENCH=OFF >/dev/null
	$(CMAKE) --build $(BUILD)/asan -j $(JOBS)
	cd $(BUILD)/asan && ctest --output-on-failure -L slow

bench: deps
	$(CMAKE) -S . -B $(BUILD)/release -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
	$(CMAKE) --build $(BUILD)/release -j $(JOBS)
	./$(BUILD)/release/rivulet_bench

fuzz: deps
	CC=clang $(CMAKE) -S . -B $(BUILD)/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRV_FUZZ=ON \
	    -DRV_BENCH=OFF -DBUILD_TESTING=OFF >/dev/null
	$(CMAKE) --build $(BUILD)/fuzz -j $(JOBS)
	@set -e; for f in $(BUILD)/fuzz/fuzz_*; do \
	    name=$$(basename $$f); corpus=$(BUILD)/fuzz/corpus/$$name; mkdir -p $$corpus; \
	    seeds=tests/fuzz/seeds/$$name; [ -d $$seeds ] || seeds=; \
	    echo "== $$name for $(FUZZ_SECONDS) s"; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$corpus $$seeds; \
	done

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

docs: build
	./$(BUILD)/release/rivulet config list --markdown > docs/configuration.md

clean:
	rm -rf $(BUILD)
