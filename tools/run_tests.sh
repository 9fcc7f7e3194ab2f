#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing,
# builds the release configuration (optimised, assertions on) and runs every
# test, then builds the AddressSanitizer + UndefinedBehaviorSanitizer
# configuration and runs the unit tests again under it.
#   THINP_SKIP_ASAN=1  skip the sanitizer pass (quicker local runs)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release
if [ "${THINP_SKIP_ASAN:-0}" != "1" ]; then
  cmake --preset debug >/dev/null
  cmake --build --preset debug
  ctest --preset debug --label-regex unit
fi
