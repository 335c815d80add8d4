#!/usr/bin/env bash
# The test suites built with AddressSanitizer and UndefinedBehaviorSanitizer
# (GCC) in their own build folder, then run by ctest. Any sanitizer report
# fails the run (halt_on_error; UBSan does not recover).
#   scripts/sanitize.sh [SUITE...]   (default: framework layers datasets experiments)
# The models and nas suites train the twelve backbones and the supernets;
# under ASan they take several times their normal time, so CI leaves them to
# the plain build (`make sanitize SUITES="framework layers models nas datasets
# experiments"` runs all). Environment: BUILD_ASAN (default build-asan), JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_ASAN=${BUILD_ASAN:-build-asan}
JOBS=${JOBS:-$(nproc)}
SUITES=("$@")
[ ${#SUITES[@]} -gt 0 ] || SUITES=(framework layers datasets experiments)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -g1 (line tables): the reports' stack traces name file and line, at a
# fraction of full debug information's object sizes and link time.
cmake -S . -B "$BUILD_ASAN" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEURN_CUDA=OFF \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 $SAN" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1 $SAN" \
  -DCMAKE_EXE_LINKER_FLAGS="$SAN" > /dev/null
# Only what the chosen suites need: the libraries, the neurn binary their CLI
# tests drive, and their test binaries (not those of the other suites).
targets=(neurn)
for s in "${SUITES[@]}"; do targets+=("test_$s"); done
t0=$(date +%s)
timing=()
if [ -x /usr/bin/time ]; then timing=(/usr/bin/time -f "sanitize: build CPU time %U s user + %S s system (wall %e s)"); fi
"${timing[@]}" cmake --build "$BUILD_ASAN" -j "$JOBS" --target "${targets[@]}"
echo "sanitize: built ${targets[*]} in $(( $(date +%s) - t0 )) s"
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# cairo's and fontconfig's process-lifetime font caches (scripts/lsan.supp says why).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}
regex=$(IFS='|'; echo "^(${SUITES[*]})$")
t0=$(date +%s)
(cd "$BUILD_ASAN" && ctest --output-on-failure -j 1 -R "$regex")
echo "sanitize: ${SUITES[*]} passed under ASan+UBSan in $(( $(date +%s) - t0 )) s"
