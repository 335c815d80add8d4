# The two set-up commands of the README. Both install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
NEURN ?= $(BUILD)/bin/neurn

.PHONY: all deps configure build test run bench clean sanitize fuzz slurm-test install docs

all: build

deps:
	@bash scripts/setup-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# ctest, then the skipped test cases counted by reason (docs/testing.md);
# fails when ctest fails.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j 1; rc=$$?; \
	  bash $(CURDIR)/scripts/test_skip_summary.sh . || true; exit $$rc

# Headers, libraries, the CLI and the CMake/pkg-config package (docs/library.md).
PREFIX ?= /usr/local
install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

# The API reference from the public headers: $(BUILD)/docs/html/index.html.
docs:
	@NEURN_WITH_DOCS=1 bash scripts/setup-deps.sh
	@mkdir -p $(BUILD)/docs
	@sed -e 's|build/docs|$(BUILD)/docs|' docs/Doxyfile | doxygen -
	@echo "API reference: $(BUILD)/docs/html/index.html"

run: build
	$(NEURN) data prepare
	$(NEURN) run experiments/configs/quickstart.yaml --resume

# Hardening (docs/testing.md): the suites under ASan+UBSan (build-asan), the
# libFuzzer harnesses (FUZZ_SECONDS each, on a copy of fuzz/corpus), and the
# sharded sweep on a single-node Slurm started here.
FUZZ_SECONDS ?= 300
FUZZ_RUNS ?=
SUITES ?=
sanitize:
	@bash scripts/sanitize.sh $(SUITES)

fuzz: build
	@BUILD=$(BUILD) FUZZ_RUNS=$(FUZZ_RUNS) bash scripts/fuzz.sh $(FUZZ_SECONDS)

slurm-test: build
	@bash scripts/slurm/test_slurm.sh $(NEURN)

clean:
	rm -rf $(BUILD)
