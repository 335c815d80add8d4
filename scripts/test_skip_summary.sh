#!/usr/bin/env bash
# The end of `make test`: the test cases this machine skipped, counted by
# reason, read from the output of the last ctest run (each test binary prints
# "[skipped] <reason> | <case> (<file>:<line>)" for every case that
# tests/skip.h switched off; docs/testing.md).
#   scripts/test_skip_summary.sh BUILD_DIR
set -euo pipefail
build=${1:-build}
log="$build/Testing/Temporary/LastTest.log"
if [[ ! -f $log ]]; then
  echo "test_skip_summary: $log not found (run ctest in $build first)" >&2
  exit 1
fi
lines=$(grep -E '^\[skipped\] .* \| ' "$log" || true)
if [[ -z $lines ]]; then
  echo "Skipped test cases: none"
  exit 0
fi
echo "Skipped test cases: $(printf '%s\n' "$lines" | wc -l) (by reason; the cases are listed in $log)"
printf '%s\n' "$lines" | sed -E 's/^\[skipped\] (.*) \| .*$/\1/' | sort | uniq -c | sort -rn |
  sed -E 's/^ *([0-9]+) /  \1 x /'
