#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs the dependencies,
# builds (Release, warnings as errors), runs the unit and integration tests with ctest,
# runs the same suite again against an ASan+UBSan build of respite, then builds the fuzz
# targets with clang (ASan+UBSan) and runs each for a bounded time.
#   SANITIZE=1 (default) runs the sanitizer pass; SANITIZE=0 skips it.
#   FUZZ_SECONDS=60 (default) per fuzz target; FUZZ_SECONDS=0 skips fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRESPITE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 300

if [[ "${SANITIZE:-1}" != "0" ]]; then
  echo "test.sh: the suite again under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRESPITE_SANITIZE=ON -DRESPITE_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 300
fi

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
if [[ "$FUZZ_SECONDS" != "0" ]]; then
  scripts/fuzz.sh "$FUZZ_SECONDS"
fi
echo "test.sh: all tests passed"
