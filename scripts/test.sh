#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs the dependencies,
# builds (Release, warnings as errors), runs the unit and integration tests with ctest,
# then builds the fuzz targets with clang (ASan+UBSan) and runs each for a bounded time.
#   FUZZ_SECONDS=60 (default) per fuzz target; FUZZ_SECONDS=0 skips fuzzing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DRESPITE_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 300

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
if [[ "$FUZZ_SECONDS" != "0" ]]; then
  scripts/fuzz.sh "$FUZZ_SECONDS"
fi
echo "test.sh: all tests passed"
