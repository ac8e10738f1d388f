# The README's two commands:
#   make run   install what is missing, build Release, serve on 127.0.0.1:8080 (embedded defaults)
#   make test  install what is missing, build Release and ASan+UBSan, run every test in both
# Other targets: build, bench, format, tidy, clean.

JOBS        ?= $(shell nproc)
RELEASE_DIR ?= build/release
ASAN_DIR    ?= build/asan
CMAKE_FLAGS ?=
CTEST_FLAGS ?= --output-on-failure --timeout 600 -j $(JOBS)

.PHONY: run test build build-asan setup setup-build bench format format-check tidy clean

setup:
	@./scripts/setup.sh

setup-build:
	@./scripts/setup.sh --build-only

$(RELEASE_DIR)/build.ninja:
	cmake -S . -B $(RELEASE_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release -DORCHESTRA_WERROR=ON $(CMAKE_FLAGS)

$(ASAN_DIR)/build.ninja:
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DORCHESTRA_SANITIZE=ON \
	  -DORCHESTRA_WERROR=ON -DORCHESTRA_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" $(CMAKE_FLAGS)

build: setup $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS)

build-asan: setup $(ASAN_DIR)/build.ninja
	cmake --build $(ASAN_DIR) -j $(JOBS)

run: setup-build $(RELEASE_DIR)/build.ninja
	cmake --build $(RELEASE_DIR) -j $(JOBS) --target orchestra
	./$(RELEASE_DIR)/orchestra serve --listen 127.0.0.1:8080

test: build build-asan
	cd $(RELEASE_DIR) && ctest $(CTEST_FLAGS)
	cd $(ASAN_DIR) && ctest $(CTEST_FLAGS) -LE no-sanitize

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
