#!/usr/bin/env bash
# The whole test suite: set-up (packages + build), then every ctest (unit, parity against tests/fixtures,
# integration through the real binaries, bounded fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cd build
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} ctest --output-on-failure -j 2 --timeout 900 "$@"
