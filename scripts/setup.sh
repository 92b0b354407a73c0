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

packages=(
  build-essential cmake ninja-build ccache pkg-config git clang
  libgloo-dev libxxhash-dev
  libtomlplusplus-dev libboost-dev libcli11-dev nlohmann-json3-dev
  libopencv-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libgtest-dev
  python3 python3-venv python3-numpy python3-av
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

# LibTorch: the torch wheel (its C++ headers, libraries and CMake config), built with CUDA 13.0, cuDNN and
# NCCL; its pip dependencies bring CUDA's runtime libraries (nvidia-*), which libtorch_cuda loads.
# A half-finished install leaves no marker, so the next run repeats it.
marker="$BEVT_VENV/.bevt-torch-$BEVT_TORCH_VERSION"
if [ ! -f "$marker" ]; then
  [ -x "$BEVT_VENV/bin/python" ] || python3 -m venv "$BEVT_VENV"
  echo "setup: installing torch==$BEVT_TORCH_VERSION into $BEVT_VENV (about 3 GB with its CUDA libraries)"
  "$BEVT_VENV/bin/python" -m pip install -q --disable-pip-version-check "torch==$BEVT_TORCH_VERSION" numpy
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

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_cmake" >/dev/null
cmake --build build -j "$(nproc)"
