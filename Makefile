# The README's two commands:
#   make run   install what is missing, build Release, serve on 127.0.0.1:8080 (embedded defaults)
#   make test  install what is missing, build Release and ASan+UBSan, run every test in both,
#              then each fuzz target for a few seconds (clang build in build/fuzz)
# Other targets: build, bench, fuzz, format, tidy, clean.
#   make fuzz  build the libFuzzer targets (tests/fuzz) and run each for FUZZ_SECONDS (60) after
#              its regressions and seeds; what they find is kept in build/fuzz/fuzz-work

JOBS        ?= $(shell nproc)
RELEASE_DIR ?= build/release
ASAN_DIR    ?= build/asan
FUZZ_DIR    ?= build/fuzz
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure --timeout 600 -j $(JOBS)

.PHONY: run test build build-asan build-fuzz fuzz setup setup-build bench format format-check tidy clean

setup:
	@./scripts/setup.sh

setup-build:
	@./scripts/setup.sh --build-only

$(RELEASE_DIR)/build.ninja:
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DORCHESTRA_WERROR=ON $(CMAKE_FLAGS)

# -g1: line tables only. Sanitizer reports still name file and line; full debug information
# would make these builds about a quarter slower (measured on client.cpp), and CI builds them
# from scratch.
$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DORCHESTRA_SANITIZE=ON \
	  -DORCHESTRA_WERROR=ON -DORCHESTRA_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" $(CMAKE_FLAGS)

# The fuzz targets need clang (libFuzzer); -O1 keeps them fast and their stacks readable.
$(FUZZ_DIR)/build.ninja:
	CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DORCHESTRA_FUZZ=ON \
	  -DORCHESTRA_WERROR=ON -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" $(CMAKE_FLAGS)

build: setup $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS)

build-asan: setup $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)

build-fuzz: setup $(FUZZ_DIR)/build.ninja
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target fuzz_targets

fuzz: build-fuzz
	cd $(FUZZ_DIR) && ORCHESTRA_FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --output-on-failure -L fuzz -j $(JOBS)

run: setup-build $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target orchestra
	./$(RELEASE_DIR)/orchestra serve --listen 127.0.0.1:8080

test: build build-asan build-fuzz
	cd $(RELEASE_DIR) && ctest $(CTEST_FLAGS)
	cd $(ASAN_DIR) && ctest $(CTEST_FLAGS) -LE no-sanitize
	cd $(FUZZ_DIR) && ctest $(CTEST_FLAGS) -L fuzz

bench: build
	@./scripts/setup.sh --bench
	./bench/run_all.sh $(RELEASE_DIR)

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

format-check:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format --dry-run --Werror

tidy: $(RELEASE_DIR)/build.ninja
	git ls-files 'src/*.cpp' | xargs clang-tidy -p $(RELEASE_DIR) --quiet

clean:
	rm -rf build
