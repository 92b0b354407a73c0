#!/usr/bin/env bash
# The main job on built-in generated data: set-up (packages + build), then BEVT end to end —
# tokenizer, joint image+video pre-training, fine-tuning, and the temporal probes — printing the probe table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build/bin/bevt-run experiments/quickstart.toml "$@"
