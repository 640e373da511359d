# tokenwatch: `make demo` shows it working, `make test` proves it.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: deps build demo test test-unit test-asan test-tsan bench clean fuzz

deps:
	bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

# Every test, then every test again under ASan+UBSan, then the threaded
# parts under TSan (CI runs all three through .ci/run).
test: test-unit test-asan test-tsan

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: deps
	bash scripts/sanitize.sh asan

test-tsan: deps
	bash scripts/sanitize.sh tsan

bench: build
	bash scripts/bench.sh $(BUILD)

# libFuzzer targets under ASan/UBSan in build-fuzz/, FUZZ_SECONDS each;
# crashing inputs land in tests/fuzz/corpus/ (tests/fuzz, README "Fuzzing").
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD)
