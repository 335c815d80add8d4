#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang, AddressSanitizer and
# UBSan against an install of the normal build, and runs each for a bounded
# time on a copy of its seed corpus (fuzz/corpus/<harness>/). Fails on any
# crash, hang (-timeout), sanitizer report or leak; the input that did it is
# left in $FUZZ_BUILD/artifacts/. Prints one line per harness: executions and
# corpus size.
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]   (default 30, all)
# Environment: BUILD (the normal build folder, default build; built first when
# it has no neurn yet), FUZZ_BUILD (default build-fuzz), JOBS.
# FUZZ_RUNS=N: at most N executions per harness from the fixed seed
# FUZZ_SEED (default 1) and an empty working corpus, SECONDS_PER_HARNESS
# still the upper bound. The mutations then follow one sequence, so CI mostly
# retries what ran green before landing; builds in other folders still reach
# slightly different coverage (one fresh clone ended with 13-264 corpus
# inputs per harness where the lead's build had 14-278), so this narrows the
# chance that CI meets a new crash, it does not remove it. Without FUZZ_RUNS
# each run is seeded afresh and explores further (make fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}
shift || true
BUILD=${BUILD:-build}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
JOBS=${JOBS:-$(nproc)}
HARNESSES=("$@")
if [ ${#HARNESSES[@]} -eq 0 ]; then
  HARNESSES=(mnist_idx usps svhn_mat mnistm tar safetensors config results checkpoint u8_cache)
fi
command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (apt-get install clang: scripts/setup-deps.sh)"; exit 1; }

if [ ! -x "$BUILD/bin/neurn" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j "$JOBS" --target neurn
fi
cmake --install "$BUILD" --prefix "$FUZZ_BUILD/prefix" >/dev/null
cmake -S fuzz -B "$FUZZ_BUILD/harness" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_PREFIX_PATH="$PWD/$FUZZ_BUILD/prefix" >/dev/null
cmake --build "$FUZZ_BUILD/harness" -j "$JOBS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
mkdir -p "$FUZZ_BUILD/artifacts" "$FUZZ_BUILD/logs"
failed=0
total_execs=0
printf "%-12s %12s %8s %8s  %s\n" harness executions seeds corpus result
for h in "${HARNESSES[@]}"; do
  work="$FUZZ_BUILD/corpus/$h"
  mkdir -p "$work"
  log="$FUZZ_BUILD/logs/$h.log"
  rc=0
  bound=()
  if [ -n "${FUZZ_RUNS:-}" ]; then
    rm -rf "$work" && mkdir -p "$work"  # the same start on every machine
    bound=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  fi
  "$FUZZ_BUILD/harness/fuzz_$h" "${bound[@]}" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$FUZZ_BUILD/artifacts/$h-" "$work" "fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  execs=${execs:-0}
  total_execs=$((total_execs + execs))
  seeds=$(find "fuzz/corpus/$h" -type f | wc -l)
  size=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed=1
    printf "%-12s %12s %8s %8s  %s\n" "$h" "$execs" "$seeds" "$size" "FAILED (rc $rc, $log)"
    grep -E "ERROR|SUMMARY|runtime error|terminate|deadly|Test unit written" "$log" | head -8 | sed 's/^/    /'
  else
    printf "%-12s %12s %8s %8s  %s\n" "$h" "$execs" "$seeds" "$size" ok
  fi
done
echo "fuzz: ${#HARNESSES[@]} harnesses, $total_execs executions in total, at most ${SECS} s each${FUZZ_RUNS:+ and $FUZZ_RUNS runs from seed ${FUZZ_SEED:-1}}"
exit $failed
