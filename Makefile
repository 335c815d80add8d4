# The two set-up commands of the README. Both install what is missing first.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_ARGS ?=
NEURN ?= $(BUILD)/bin/neurn

.PHONY: all deps configure build test run bench clean

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

run: build
	$(NEURN) data prepare
	$(NEURN) run experiments/configs/quickstart.yaml --resume

clean:
	rm -rf $(BUILD)
