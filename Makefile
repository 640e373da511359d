# tokenwatch: `make demo` shows it working, `make test` proves it.
BUILD ?= build
DEMO_BUILD ?= build-demo
JOBS  ?= $(shell nproc)

.PHONY: deps build demo demo-tls test test-unit test-asan test-tsan bench clean fuzz

# Every package of the test profile (scripts/install-deps.sh: run, build,
# demo, test, fuzz).
deps:
	bash scripts/install-deps.sh test

# Configured only once the packages are there (recipe lines run in order).
build: deps
	[ -f $(BUILD)/CMakeCache.txt ] || cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

# The two binaries alone, in their own build directory with no tests, and
# only the packages they and the demo need: a first `make demo` takes
# minutes, not the whole test build.
demo:
	bash scripts/install-deps.sh demo
	[ -f $(DEMO_BUILD)/CMakeCache.txt ] || \
	  cmake -S . -B $(DEMO_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOKENWATCH_BUILD_TESTS=OFF
	cmake --build $(DEMO_BUILD) -j $(JOBS) --target tokenwatch-agent tokenwatch-collector
	bash scripts/demo.sh $(DEMO_BUILD)

# The HTTPS demo (root): the same binaries, nginx over TLS, the agent on
# --tls-probe alone (docs/tls-probe.md).
demo-tls:
	bash scripts/install-deps.sh demo
	[ -f $(DEMO_BUILD)/CMakeCache.txt ] || \
	  cmake -S . -B $(DEMO_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOKENWATCH_BUILD_TESTS=OFF
	cmake --build $(DEMO_BUILD) -j $(JOBS) --target tokenwatch-agent tokenwatch-collector
	bash scripts/demo-tls.sh $(DEMO_BUILD)

# Every test, then every test again under ASan+UBSan, then the threaded
# parts under TSan (CI runs all three through .ci/run). Passes select
# tests by CTest label (docs/testing.md).
test: test-unit test-asan test-tsan

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	bash scripts/sanitize.sh asan

test-tsan: deps
	bash scripts/sanitize.sh tsan

# HTTP/1.1 against httpry and tshark, then HTTP/2 (h2load capture, root
# to record it once) against HTTP/1.1 and tshark's HTTP/2 dissector; the
# HTTP/2 part runs even when the first fails, and says so when skipped.
bench: build
	rc=0; bash scripts/bench.sh $(BUILD) || rc=$$?; \
	bash scripts/bench-http2.sh $(BUILD) || rc=$$?; \
	bash scripts/bench-tls.sh $(BUILD) || rc=$$?; exit $$rc

# libFuzzer targets under ASan/UBSan in build-fuzz/, FUZZ_SECONDS each;
# crashing inputs land in tests/fuzz/corpus/ (docs/testing.md, "Fuzzing").
FUZZ_SECONDS ?= 60
fuzz:
	bash scripts/install-deps.sh fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD) $(DEMO_BUILD)
