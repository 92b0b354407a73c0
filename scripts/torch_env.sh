# Sourced by the scripts: which torch bevt builds against, and where its virtual environment lives.
# The pin is the torch of the GPU machines bevt is checked on (2.11.0+cu130); PyPI's 2.11.0 wheel for
# Linux x86-64 is that same CUDA 13.0 build.
BEVT_TORCH_VERSION=2.11.0
BEVT_VENV=${BEVT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/bevt/venv-torch-$BEVT_TORCH_VERSION}
export BEVT_VENV
