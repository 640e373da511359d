# tokenwatch: `make demo` shows it working, `make test` proves it.
BUILD ?= build
JOBS  ?= $(shell nproc)

.PHONY: deps build demo test bench clean fuzz

deps:
	bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: build
	bash scripts/bench.sh $(BUILD)

# libFuzzer targets under ASan/UBSan in build-fuzz/, FUZZ_SECONDS each;
# crashing inputs land in tests/fuzz/corpus/ (tests/fuzz, README "Fuzzing").
FUZZ_SECONDS ?= 60
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD)
