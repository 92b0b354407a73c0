#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine: installs the Debian packages bevt uses (only those
# missing), installs LibTorch as PyPI's `torch` wheel (pinned, with CUDA) into a virtual environment outside the
# clone, then configures and builds into build/. Both README commands run it; running it again only rebuilds
# what changed.
#
#   BEVT_VENV   the virtual environment (default ~/.cache/bevt/venv-torch-2.11.0); clones and CI share it.
#   --deps-only packages and torch, no build (scripts/make_gpu_bundle.sh builds its own folder)
set -euo pipefail
deps_only=0
[ "${1:-}" = "--deps-only" ] && deps_only=1
cd "$(dirname "$0")/.."
source scripts/torch_env.sh  # BEVT_TORCH_VERSION, BEVT_VENV

# Who uses each: the C++ toolchain and build (cmake, ninja, ccache, pkg-config for FFmpeg, clang for the libFuzzer
# targets, git for make_gpu_bundle's COMMIT), the libraries the build links or includes, the ffmpeg CLI (test_data
# makes odd containers with it), GoogleTest (the tests; nothing uses GoogleMock, whose sources libgtest-dev's
# googletest dependency brings), python3 + python3-venv (the venv below), python3-av (bench/pyav_decode.py, the
# PyAV anchor of bench_data; it brings python3-numpy).
packages=(
  build-essential cmake ninja-build ccache pkg-config git clang
  libgloo-dev libxxhash-dev
  libtomlplusplus-dev libboost-dev libcli11-dev nlohmann-json3-dev
  libopencv-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libgtest-dev
  python3 python3-venv python3-av
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The virtual environment's Python packages:
#   torch        LibTorch for the build (its C++ headers, libraries and CMake config), built with CUDA 13.0, cuDNN
#                and NCCL; its pip dependencies bring CUDA's runtime libraries (nvidia-*), which libtorch_cuda
#                loads. The checkpoint converters (build/bin/bevt-convert) read and write .pth files with it.
#   numpy        the numpy scalars and arrays that mmcv/mmengine checkpoints keep in their metadata, which the
#                converters allow-list for torch.load(weights_only=True); torch's numpy bridge
#   safetensors  the converters' safetensors reader and writer (the format's reference implementation)
# The marker names this list: a changed list installs what it adds; a half-finished install leaves no marker,
# so the next run repeats it (pip skips what is there).
py_packages=("torch==$BEVT_TORCH_VERSION" numpy "safetensors==0.8.0")
marker="$BEVT_VENV/.bevt-packages-$(printf '%s\n' "${py_packages[@]}" | sha1sum | cut -c1-12)"
if [ ! -f "$marker" ]; then
  [ -x "$BEVT_VENV/bin/python" ] || python3 -m venv "$BEVT_VENV"
  echo "setup: installing ${py_packages[*]} into $BEVT_VENV (torch: about 3 GB with its CUDA libraries)"
  "$BEVT_VENV/bin/python" -m pip install -q --disable-pip-version-check "${py_packages[@]}"
  "$BEVT_VENV/bin/python" - "$BEVT_TORCH_VERSION" <<'EOF'
import sys, torch
want = sys.argv[1]
have = torch.__version__.split("+")[0]
if have != want:
    sys.exit(f"setup: the venv holds torch {torch.__version__}, not {want}")
EOF
  touch "$marker"
fi
((deps_only)) && exit 0
torch_cmake=$("$BEVT_VENV/bin/python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null)

# BEVT_PYTHON: the interpreter build/bin/bevt-convert runs the converters with.
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_cmake" \
  -DBEVT_PYTHON="$BEVT_VENV/bin/python" >/dev/null
cmake --build build -j "$(nproc)"
