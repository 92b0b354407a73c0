#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine: installs every Debian package bevt uses (only those
# missing), checks that OpenBLAS is the BLAS torch will use, then configures and builds into build/.
# Both README commands run it; running it again only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build ccache pkg-config git clang
  libtorch-dev libopenblas0-openmp libgloo-dev
  libtomlplusplus-dev libfmt-dev libboost-dev libcli11-dev nlohmann-json3-dev
  libopencv-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy python3-av
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

# Debian's libtorch runs matrix products through the libblas.so.3 alternative; the reference BLAS is ~12x
# slower than OpenBLAS, so say so loudly if the alternative points elsewhere.
blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) echo "setup: warning: libblas.so.3 is $blas, not OpenBLAS; run: update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
