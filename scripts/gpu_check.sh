#!/usr/bin/env bash
# The GPU check: one prepared command for the GPU machine (one H200, python3 with torch 2.11.0+cu130, no
# network), 2-3 minutes there (136-195 s on an H200, 2026-12-04). It unpacks the bundle that
# scripts/make_gpu_bundle.sh built here (.gpu/bevt-bundle.tar.gz, carried with the working tree), checks that
# every library the binaries load comes from the bundle, torch's own folder or the C/C++ runtime, measures the
# device's bf16 matmul rate through torch, and then runs, recording every figure in one JSON (each step runs even
# when an earlier one failed; the check fails at the end if any did):
#   1. the parity fixtures (tests/fixtures) on the device in fp32 (rel. error <= 1e-4) and bf16 autocast
#      (rel. error <= 5e-2, token ids: at most 10% may flip; the measured figures are in the JSON);
#   2. 50 steps of BEVT pre-training (experiments/gpu_check/pretrain.toml: Swin-B, DALL-E, official per-GPU
#      batch) in bf16 and in fp16 with the dynamic loss scaler: s/iteration, peak GPU memory, clips/s;
#   3. the encoder's training step alone (bench_video_swin --case encoder): the TFLOP/s its matmuls reach and the
#      fraction of the H200's bf16 rate (790 TFLOP/s);
#   4. a fine-tune (5 steps) and a test of its weights (experiments/gpu_check/finetune.toml);
#   5. the fine-tune again in a process group of world size 1 on NCCL (dist.init_single);
#   6. a tiny pre-training in float32 on the CPU and on the device: the per-step losses agree (fused AdamW there).
#
#   bash scripts/gpu_check.sh          on the GPU machine; figures in $OUT/gpu_check.json (or ./gpu_check_out)
#   bash scripts/gpu_check.sh --only=pretrain,nccl    only the steps whose names hold one of these words
#   bash scripts/gpu_check.sh --cpu    the same sequence from the same bundle shrunk to CPU sizes (tiny models,
#                                      3 steps, bf16 on the CPU, fp16 expected to be refused, Gloo instead of
#                                      NCCL), with the binaries' environment limited to the bundle and torch's
#                                      folder: what the bundle lacks fails here, not there. CI runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mode=gpu
only=""
for a in "$@"; do
  case "$a" in
    --cpu) mode=cpu ;;
    --only=*) only=${a#--only=} ;;
    *) echo "gpu_check: unknown argument '$a' (use --cpu, --only=WORD[,WORD...] or nothing)" >&2; exit 2 ;;
  esac
done
out=${OUT:-$root/gpu_check_out}
mkdir -p "$out"
log() { echo "gpu_check: $*" | tee -a "$out/gpu_check.log"; }

if [ "$mode" = cpu ]; then
  source scripts/torch_env.sh
  py="$BEVT_VENV/bin/python"
  [ -x "$py" ] || bash scripts/setup.sh --deps-only
  bash scripts/make_gpu_bundle.sh
else
  py=python3
fi
[ -f .gpu/bevt-bundle.tar.gz ] || { echo "gpu_check: no .gpu/bevt-bundle.tar.gz (run scripts/make_gpu_bundle.sh here and carry .gpu)" >&2; exit 2; }
torch_dir=$("$py" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
nv_libs=$(ls -d "$torch_dir"/../nvidia/*/lib "$torch_dir"/../nvidia/cu*/lib 2>/dev/null | sort -u | tr '\n' ':')
work=$(mktemp -d /tmp/bevt-gpu-check.XXXXXX)
tar -C "$work" -xzf .gpu/bevt-bundle.tar.gz
B="$work/bevt"
libpath="$B/lib:$torch_dir/lib:$nv_libs"
threads=$(nproc)
# The binaries see the bundle, torch's folder and the system's C/C++ runtime, nothing of this checkout's build.
run() { env -i PATH=/usr/bin:/bin HOME="$work" LD_LIBRARY_PATH="$libpath" OMP_NUM_THREADS="$threads" "$@"; }
log "mode $mode, torch $torch_version in $torch_dir, bundle $(cat "$B/COMMIT")"

# 0. Libraries: none missing, and none from outside the bundle, torch's folder and the C/C++ runtime.
base='^(linux-vdso|ld-linux|libc|libm|libdl|libpthread|librt|libutil|libstdc\+\+|libgcc_s)\.so'
bad=0
for f in "$B"/bin/* "$B"/lib/*.so* "$B"/lib/bevt/plugins/*.so; do
  [ -L "$f" ] && continue
  while read -r name arrow path _; do
    [ "$arrow" = "=>" ] || continue
    if [ "$path" = "not" ]; then log "MISSING $name (needed by ${f#$B/})"; bad=1; continue; fi
    [[ "$name" =~ $base ]] && continue
    case "$(readlink -f "$path")" in
      "$B"/*|"$(readlink -f "$torch_dir")"/*|*/site-packages/nvidia/*) ;;
      *) log "OUTSIDE $name => $path (needed by ${f#$B/}): add it to the bundle"
         [ "$mode" = cpu ] && bad=1 ;;  # here it would be missing there; there, the machine's own copy serves
    esac
  done < <(run /usr/bin/ldd "$f")
done
((bad == 0)) || { log "the bundle does not stand alone"; exit 1; }
log "libraries: every binary and plugin resolves within the bundle and torch's folder"

# CPU sizes: a tiny Swin and a tiny DALL-E, 64-pixel frames (the --cpu rehearsal, and the CPU/device agreement).
tiny_swin=(--set model.backbone.plugin=video_swin --set model.backbone.embed_dim=16
  --set 'model.backbone.depths=[1,1,1,1]' --set 'model.backbone.num_heads=[1,1,2,2]'
  --set 'model.backbone.window_size=[2,4,4]' --set model.backbone.image_attention=swin)
tiny_pre=("${tiny_swin[@]}" --set tokenizer.n_hid=16 --set tokenizer.n_blk_per_group=1 --set tokenizer.vocab_size=64
  --set tokenizer.input_size=32 --set loader.batch_size=2 --set loader.image_batch_size=2 --set loader.workers=2
  --set data.image.size=72 --set data.image.crop_size=64 --set data.image.tokenizer_size=32
  --set data.image.num_videos=8 --set data.video.size=72 --set data.video.crop_size=64
  --set data.video.tokenizer_size=32 --set data.video.clip_len=4 --set data.video.frames=8
  --set masker.image.num_masking_patches=8 --set masker.image.min_num_patches=4
  --set masker.video.num_masking_patches=8 --set masker.video.min_num_patches=4)
if [ "$mode" = gpu ]; then
  dev=cuda
  pre_set=()
  ft_set=()
  steps=50
  enc=(--plugin video_swin_b --batch 4 --frames 16 --size 224 --warmup 3 --reps 10)
  nccl=nccl
else
  dev=cpu
  pre_set=("${tiny_pre[@]}")
  ft_set=("${tiny_swin[@]}" --set loader.batch_size=2 --set loader.eval_batch_size=2 --set loader.workers=2
    --set data.train.size=72 --set data.train.crop_size=64 --set data.train.clip_len=4
    --set data.val.size=64 --set data.val.crop_size=64 --set data.val.clip_len=4
    --set data.test.size=64 --set data.test.crop_size=64 --set data.test.clip_len=4)
  steps=3
  enc=(--plugin video_swin_t --batch 1 --frames 8 --size 64 --warmup 1 --reps 2)
  nccl=gloo
fi

# Each step runs even when one before it failed (a GPU lease is short: one run must show everything), and the
# check fails at the end when any did. Inside a step's function errexit is off, so each command is checked.
failed=()
ran=0
# --only=pretrain,nccl: just the steps whose names contain one of the words (a rerun after a fix, in a short
# lease); the library check always runs.
step() {
  local name=$1; shift
  if [ -n "$only" ]; then
    local w hit=0
    for w in ${only//,/ }; do [[ "$name" == *"$w"* ]] && hit=1; done
    ((hit)) || { log "$name: skipped (--only=$only)"; return 0; }
  fi
  ran=$((ran + 1))
  local t0=$SECONDS
  if "$@"; then log "$name: ok ($((SECONDS - t0)) s)"; else log "$name: FAIL ($((SECONDS - t0)) s)"; failed+=("$name"); fi
}
show_tail() { log "--- last lines of ${1#$out/}:"; tail -n "${2:-15}" "$1" | tee -a "$out/gpu_check.log"; }

# 0b. The matmul rate this device reaches through torch in the same run (bf16 8192^3 on the GPU, fp32 1024^3 on the
# CPU): the encoder's fraction is reported against it beside the datasheet's 790 TFLOP/s.
peak() {
  "$py" - "$dev" > "$out/matmul_peak.json" <<'PY' || { show_tail "$out/matmul_peak.json"; return 1; }
import json, sys, time, torch
dev = sys.argv[1]
n, dt = (8192, torch.bfloat16) if dev == "cuda" else (1024, torch.float32)
a = torch.randn(n, n, device=dev, dtype=dt); b = torch.randn(n, n, device=dev, dtype=dt)
sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
for _ in range(3): a @ b
sync(); t = time.perf_counter()
for _ in range(10): a @ b
sync(); s = (time.perf_counter() - t) / 10
print(json.dumps({"n": n, "dtype": str(dt), "tflops": 2 * n ** 3 / s / 1e12,
                  "device_name": torch.cuda.get_device_name() if dev == "cuda" else "cpu"}))
PY
  log "matmul peak: $(cat "$out/matmul_peak.json")"
}
step "matmul peak" peak

# 1. Parity fixtures in fp32 and bf16.
parity() {
  local f=$1 prec=$2
  local extra=()
  [ "$prec" = bf16 ] && extra=(--precision bf16 --rtol 5e-2 --id-tolerance 0.1)
  run "$B/bin/bevt-forward" --fixture "$root/tests/fixtures/$f" --output "$work/$f.$prec.safetensors" --check \
    --device "$dev" "${extra[@]}" --json "$out/parity_${prec}_$f.json" > "$out/parity_${prec}_$f.txt" 2>&1 ||
    { show_tail "$out/parity_${prec}_$f.txt"; return 1; }
}
for f in bevt_swin_video bevt_swin_image bevt_swin_video_masked bevt_swin_video_tshift dalle_encoder timesformer; do
  step "parity fp32 $f" parity "$f" fp32
  step "parity bf16 $f" parity "$f" bf16
done

# 2. Pre-training in bf16 and fp16.
pretrain() {
  local prec=$1 wd="$work/pretrain_$1" status=0
  run "$B/bin/bevt-run" "$root/experiments/gpu_check/pretrain.toml" --set run.work_dir="$wd" \
    --set run.device="$dev" --set run.precision="$prec" --set run.max_steps=$steps --set run.log_every=1 \
    "${pre_set[@]}" > "$out/pretrain_$prec.log" 2>&1 || status=$?
  if [ "$mode" = cpu ] && [ "$prec" = fp16 ]; then
    # fp16 autocast is CUDA's: on the CPU the experiment must be refused as a configuration error (exit 2).
    [ $status = 2 ] && grep -q "fp16" "$out/pretrain_$prec.log" && { log "fp16 refused on the CPU, as it must be"; return 0; }
    log "fp16 on the CPU was not refused (exit $status)"; show_tail "$out/pretrain_$prec.log"; return 1
  fi
  [ $status = 0 ] || { log "exit $status"; show_tail "$out/pretrain_$prec.log"; return 1; }
  cp "$wd/latest/metrics.jsonl" "$out/pretrain_$prec.metrics.jsonl"
}
step "pretrain bf16" pretrain bf16
step "pretrain fp16" pretrain fp16

# 3. The encoder's matmuls.
encoder() {
  run "$B/bin/bench_video_swin" --case encoder --device "$dev" --precision bf16 "${enc[@]}" --threads "$threads" \
    --json > "$out/encoder_bf16.json" 2> "$out/encoder_bf16.err" || { show_tail "$out/encoder_bf16.err"; return 1; }
  log "encoder bf16: $(tail -n 1 "$out/encoder_bf16.json")"
}
step "encoder bf16" encoder

# 4. Fine-tune, then test on its weights.
finetune() {
  local ft="$work/finetune"
  run "$B/bin/bevt-run" "$root/experiments/gpu_check/finetune.toml" --set run.work_dir="$ft" --set run.device="$dev" \
    --set run.max_steps=$steps "${ft_set[@]}" > "$out/finetune.log" 2>&1 || { show_tail "$out/finetune.log"; return 1; }
  cp "$ft/latest/metrics.jsonl" "$out/finetune.metrics.jsonl"
  run "$B/bin/bevt-run" "$root/experiments/gpu_check/finetune.toml" --set run.mode=test --set run.work_dir="$work/test" \
    --set init.checkpoint="$ft" --set run.device="$dev" "${ft_set[@]}" > "$out/test.log" 2>&1 ||
    { show_tail "$out/test.log"; return 1; }
  cp "$work/test/results.json" "$out/test_results.json"
}
step "finetune + test" finetune

# 5. A process group of one on NCCL (Gloo on the CPU).
dist_one() {
  run env RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29533 \
    "$B/bin/bevt-run" "$root/experiments/gpu_check/finetune.toml" --set run.work_dir="$work/dist" \
    --set run.device="$dev" --set run.max_steps=$steps --set dist.init_single=true --set dist.backend=$nccl \
    "${ft_set[@]}" > "$out/dist.log" 2>&1 || { show_tail "$out/dist.log"; return 1; }
  cp "$work/dist/latest/metrics.jsonl" "$out/dist.metrics.jsonl"
  grep -q allreduce_time "$out/dist.metrics.jsonl" || { log "no all-reduce in the $nccl run"; return 1; }
}
step "$nccl at world size 1" dist_one

# 6. The same tiny pre-training in float32 on the CPU and on the device, 6 steps from the same weights, masks and
# data (drop path off: its draws come from each device's own generator): the per-step losses must agree to 1e-3
# relative — the trainer, the fused AdamW and the gradient clipping on the device do what they do on the CPU. On
# the --cpu rehearsal both runs are on the CPU and must agree exactly (same seed, same threads).
agree() {
  local d
  for d in cpu "$dev"; do
    run "$B/bin/bevt-run" "$root/experiments/gpu_check/pretrain.toml" --set run.work_dir="$work/agree_$d" \
      --set run.device="$d" --set run.precision=fp32 --set run.max_steps=6 --set run.log_every=1 \
      --set model.backbone.drop_path_rate=0.0 "${tiny_pre[@]}" > "$out/agree_$d.log" 2>&1 ||
      { show_tail "$out/agree_$d.log"; return 1; }
  done
  "$py" - "$work/agree_cpu/latest/metrics.jsonl" "$work/agree_$dev/latest/metrics.jsonl" "$mode" \
    > "$out/agree.json" <<'PY' || { show_tail "$out/agree.json"; return 1; }
import json, sys
def losses(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    return {r["step"]: r["loss"] for r in rows if "loss" in r and "step" in r}
a, b = losses(sys.argv[1]), losses(sys.argv[2])
steps = sorted(set(a) & set(b))
rel = [abs(a[s] - b[s]) / max(abs(a[s]), 1e-12) for s in steps]
limit = 1e-3 if sys.argv[3] == "gpu" else 0.0
ok = len(steps) >= 6 and max(rel) <= limit
print(json.dumps({"steps": steps, "cpu": [a[s] for s in steps], "device": [b[s] for s in steps],
                  "max_rel": max(rel) if rel else None, "limit": limit, "ok": ok}))
sys.exit(0 if ok else 1)
PY
  log "cpu/$dev agreement: $(cat "$out/agree.json")"
}
step "fp32 cpu/device agreement" agree

"$py" "$root/scripts/gpu_check_report.py" "$out" "$mode" "$torch_version"
rm -rf "$work"
if ((ran == 0)); then
  log "--only=$only matched no step (words: matmul, parity, fp32, bf16, pretrain, fp16, encoder, finetune, nccl, gloo, agreement)"
  exit 2
fi
if ((${#failed[@]})); then
  log "FAILED: ${failed[*]} (figures of the steps that ran: $out/gpu_check.json)"
  exit 1
fi
log "done: $out/gpu_check.json"
