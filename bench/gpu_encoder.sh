#!/usr/bin/env bash
# The encoder study on the GPU machine (issue 17, item 4), after scripts/gpu_check.sh, from the same bundle:
# bench_video_swin --case encoder (Swin-B, 4x3x16x224x224, bf16) at batch 4, 8 and 16, in tf32, with each of
# at::scaled_dot_product_attention's backends alone, beside the official SwinTransformer3D (alternating, twice),
# and one profiled step (CUDA kernels summed by bench/profile_summary.py --gpu). About 1 minute on an H200.
#
#   bash bench/gpu_encoder.sh OFFICIAL     OFFICIAL holds the three checkouts bench/official/pretrain_step.py
#                                          takes (xyzforever+BEVT, SwinTransformer+Video-Swin-Transformer,
#                                          openai+DALL-E; their model files suffice). Output: $OUT or ./gpu_encoder_out
set -uo pipefail
cd "$(dirname "$0")/.."
[ $# = 1 ] && [ -d "$1" ] || { echo "gpu_encoder: usage: bash bench/gpu_encoder.sh OFFICIAL_CHECKOUTS_DIR" >&2; exit 2; }
O=$1
out=${OUT:-$PWD/gpu_encoder_out}
mkdir -p "$out"
[ -f .gpu/bevt-bundle.tar.gz ] || { echo "gpu_encoder: no .gpu/bevt-bundle.tar.gz (scripts/make_gpu_bundle.sh)" >&2; exit 2; }
work=$(mktemp -d /tmp/bevt-gpu-encoder.XXXXXX)
tar -C "$work" -xzf .gpu/bevt-bundle.tar.gz
td=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
nv=$(ls -d "$td"/../nvidia/*/lib "$td"/../nvidia/cu*/lib 2>/dev/null | sort -u | tr '\n' ':')
enc() {
  LD_LIBRARY_PATH="$work/bevt/lib:$td/lib:$nv" timeout 120 "$work/bevt/bin/bench_video_swin" --case encoder \
    --device cuda --plugin video_swin_b --frames 16 --size 224 --threads "$(nproc)" --warmup 3 --json "$@" 2>&1 | tail -1
}
official() {
  timeout 120 python3 bench/official/pretrain_step.py --bevt-repo "$O/xyzforever+BEVT" \
    --swin-repo "$O/SwinTransformer+Video-Swin-Transformer" --dalle-repo "$O/openai+DALL-E" --case swin_encoder \
    --device cuda --batch 4 --precision bf16 --threads "$(nproc)" --swin-warmup 3 --swin-reps 10 2>/dev/null | tail -1
}
for i in 1 2; do enc --batch 4 --precision bf16 --reps 10; official; done | tee "$out/encoder_vs_official.jsonl"
for b in 8 16; do enc --batch $b --precision bf16 --reps 10; done | tee "$out/encoder_scaling.jsonl"
enc --batch 4 --precision tf32 --reps 5 | tee -a "$out/encoder_scaling.jsonl"
for s in math efficient cudnn; do enc --batch 4 --precision bf16 --reps 10 --sdpa $s; done | tee "$out/encoder_sdpa.jsonl"
enc --batch 4 --precision bf16 --reps 3 --profile "$work/trace.json" > /dev/null
python3 bench/profile_summary.py "$work/trace.json" --gpu --top 30 | tee "$out/encoder_profile.txt"
rm -rf "$work"
