#!/usr/bin/env bash
# The README's second command: installs what is missing, builds with AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs the whole test suite (unit, reader, mount, bad input,
# upstream images), then the fuzzer for a short while and the format check.
# FUZZ_SECONDS (default 60) sets the fuzzing time; 0 skips it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh" dev
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --preset dev -j2 --timeout 1200

if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
  echo "== fuzzing the reader for ${FUZZ_SECONDS:-60} s"
  "$top/tests/fuzz/run.sh" "${FUZZ_SECONDS:-60}"
fi

echo "== clang-format"
files=$(git ls-files '*.cc' '*.h')
clang-format --dry-run -Werror $files
echo "all checks passed"
