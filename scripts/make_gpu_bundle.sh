#!/usr/bin/env bash
# Builds what scripts/gpu_check.sh runs on the GPU machine, which has python3 with the same torch (2.11.0+cu130),
# nvcc and cmake, but no network and none of the Debian -dev packages bevt builds with. So the bundle is built
# here against the same torch wheel and carries the stripped executables and plugins with the few non-torch
# shared libraries they need; torch, CUDA, cuDNN and NCCL come from that machine's own torch.
#
# The bundle's build has no media decoding (BEVT_WITH_MEDIA=OFF: no FFmpeg, no image codecs, 200 MB of
# libraries fewer): the check's data is generated in memory (synthetic storage = "memory").
#
#   bash scripts/make_gpu_bundle.sh        → .gpu/bevt-bundle.tar.gz (ignored by git; `carry` it: [".gpu"])
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source scripts/torch_env.sh
bash scripts/setup.sh --deps-only
py="$BEVT_VENV/bin/python"
torch_cmake=$("$py" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))' 2>/dev/null)

cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_cmake" \
  -DBEVT_WITH_MEDIA=OFF -DBEVT_BUILD_TESTS=OFF -DBEVT_BUILD_FUZZERS=OFF -DBEVT_BUILD_BENCH=ON \
  -DBEVT_REQUIRE_CUDA=ON >/dev/null
cmake --build build-gpu -j "$(nproc)" --target bevt-run bevt-forward bench_video_swin bevt_plugins

# Staged in the build folder: .gpu/ holds only the archive, the one thing that travels (`carry: [".gpu"]`).
stage=build-gpu/bundle
out=$stage/bevt
rm -rf "$stage" .gpu/bundle && mkdir -p "$out/bin" "$out/lib/bevt/plugins" .gpu
cp build-gpu/bin/bevt-run build-gpu/bin/bevt-forward build-gpu/bin/bench_video_swin "$out/bin/"
cp -P build-gpu/lib/libbevt_sdk.so* build-gpu/lib/libbevt_data.so* "$out/lib/"
cp build-gpu/lib/bevt/plugins/*.so "$out/lib/bevt/plugins/"

# The libraries the GPU machine provides itself: torch's folder (and the nvidia-* wheels it loads from), and the
# C and C++ runtimes every Linux machine has. Everything else that the binaries load is copied in.
base='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s)\.so'
elves=("$out"/bin/* "$out"/lib/libbevt_sdk.so.* "$out"/lib/libbevt_data.so.* "$out"/lib/bevt/plugins/*.so)
for f in "${elves[@]}"; do
  [ -L "$f" ] && continue
  LD_LIBRARY_PATH="$root/$out/lib:$torch_lib" ldd "$f" | awk '$2 == "=>" {print $1, $3}'
done | sort -u | while read -r name path; do
  [[ "$name" =~ $base ]] && continue
  case "$path" in
    "$torch_lib"/*|*/site-packages/nvidia/*|"$root/$out"/*) continue ;;
    "not") echo "make_gpu_bundle: $name not found" >&2; exit 1 ;;
  esac
  cp -L "$path" "$out/lib/$name"
done
strip --strip-unneeded "$out"/bin/* "$out"/lib/*.so* "$out"/lib/bevt/plugins/*.so 2>/dev/null || true
# The binaries find their own lib/ and plugins/ through $ORIGIN; torch's folder comes from LD_LIBRARY_PATH there.
"$root/build-gpu/bin/bevt-run" --version >/dev/null 2>&1 || true
echo "$BEVT_TORCH_VERSION" > "$out/TORCH_VERSION"
git rev-parse HEAD > "$out/COMMIT" 2>/dev/null || echo unknown > "$out/COMMIT"
tar -C "$stage" -czf .gpu/bevt-bundle.tar.gz bevt
echo "make_gpu_bundle: .gpu/bevt-bundle.tar.gz $(du -h .gpu/bevt-bundle.tar.gz | cut -f1) ($(du -sh "$out" | cut -f1) unpacked, $(ls "$out/lib" | grep -c '\.so') libraries besides torch)"
