#!/usr/bin/env bash
# Device run 5 (2026-12-04 second session): the whole GPU check at HEAD (fused AdamW, the new CPU/device
# agreement step), then the official BEVT iteration on the GPU at the same batch (bf16 and fp16 autocast).
set -uo pipefail
mkdir -p /tmp/gc
OUT=/tmp/gc timeout 330 bash scripts/gpu_check.sh > /tmp/gc/stdout.txt 2>&1; rc=$?
tail -c 3000 /tmp/gc/stdout.txt
echo "gpu_check rc=$rc"
O=.gpu/official
for p in bf16 fp16; do
  timeout 120 python3 bench/official/pretrain_step.py --case pretrain --device cuda --precision $p --threads 16 \
    --bevt-repo $O/xyzforever+BEVT --swin-repo $O/SwinTransformer+Video-Swin-Transformer --dalle-repo $O/openai+DALL-E \
    --warmup 3 --reps 10 2>/tmp/gc/official_$p.err | tail -1 | tee -a /tmp/gc/official_pretrain.jsonl
  tail -3 /tmp/gc/official_$p.err
done
cp /tmp/gc/gpu_check.json /tmp/gc/official_pretrain.jsonl $OUT/ 2>/dev/null
tar -C /tmp -czf $OUT/gc.tgz gc
exit $rc
