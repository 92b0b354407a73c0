#!/usr/bin/env bash
# Builds the fuzz targets with clang and runs each for a bounded time (seconds, default 20).
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
out=${1:?build folder}
secs=${2:-20}
fmt_dir=${3:?folder holding fmt/format.h}
cmake -S "$src" -B "$out" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBEVT_FMT_INCLUDE_DIR="$fmt_dir" >/dev/null
cmake --build "$out" >/dev/null
for t in safetensors config; do
  work="$out/corpus_$t"
  mkdir -p "$work"
  cp -n "$src/corpus_$t"/* "$work/" 2>/dev/null || true
  "$out/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "$work" 2>&1 | tail -n 3
done
