#!/usr/bin/env python3
"""The official side of bevt's speed comparison (docs/benchmarks.md, bench/compare_official.sh).

Runs, with the official code imported from the user's checkouts, the cases that bevt's benches run:
  pretrain     one BEVT pre-training iteration as BEVTMultiSource.train_step + mmcv's OptimizerHook run it:
               Swin-T (embed 96, depths 2,2,6,2, heads 3,6,12,24, window 8,7,7, patch 2,4,4, patch norm,
               drop path 0.1), 1 clip [3,8,224,224] with a tube mask (98 of 14x14 cells in 3 of 4 temporal
               slots) and 2 images [3,224,224] with 98 of 196 cells masked, the DALL-E encoder (n_hid 256,
               vocab 8192, frozen) on the 8 + 2 views of 112x112, both decoders, the 8192-way lm_head,
               cross-entropy over the masked cells, backward, clip_grad_norm_ 3.0, AdamW (lr 5e-4, wd 0.05).
  swin_train / swin_eval / swin_train_ckpt
               Video Swin-T (SwinTransformer3D, window 8,7,7, drop path 0.1) on 1x3x8x112x112: a training step
               (loss = mean of the output, backward, AdamW), an eval forward under no_grad, and the training
               step with use_checkpoint=True, as bench_video_swin.
  dalle        the DALL-E encoder on 10x3x112x112 (one iteration's views), with its GFLOP/s.
  sgemm        a 2048^3 torch.mm, the BLAS rate the ratios are read against.
Each case runs in a fresh process (peak_rss_mb is its own). One JSON object per case, with name, median_s,
min_s, max_s, peak_rss_mb and case fields, as bevt's benches print.

Import shims (bench/official/shims.py): mmcv/mmaction registries and builders, load_checkpoint, the logger,
timm's DropPath/to_2tuple/trunc_normal_, einops.rearrange (axis permutations only), attrs' @attr.s/attr.ib, and
the head's load_model (a randomly initialised official Encoder instead of encoder.pkl).

  python bench/official/pretrain_step.py --bevt-repo BEVT --swin-repo Video-Swin-Transformer --dalle-repo DALL-E
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ["sgemm", "dalle", "swin_train", "swin_eval", "swin_train_ckpt", "pretrain"]
# Not in the CPU comparison: the GPU check's encoder case (bench_video_swin --case encoder), run by hand there.
EXTRA_CASES = ["swin_encoder"]
DALLE_GFLOP_PER_VIEW = 52.1  # the encoder's convolutions on one 112x112 view (multiply-add = 2 FLOP)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(reps):
        a = time.perf_counter()
        fn()
        t.append(time.perf_counter() - a)
    return {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t)}


def current_rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def masks(gen, clips=1, frames=8, images=2):
    """Tube masks for the clips (input [clips, frames/2, 14, 14], output per frame [clips, frames, 14, 14]: 98 of
    the 14x14 cells in every temporal slot but the first) and blockwise-sized masks for the images ([images, 14,
    14]): 98 of 196 cells, as BEVT's maskers on average."""
    slots = frames // 2
    tube = torch.zeros(clips, slots, 196, dtype=torch.bool)
    for c in range(clips):
        cells = torch.zeros(196, dtype=torch.bool)
        cells[torch.randperm(196, generator=gen)[:98]] = True
        tube[c, 1:] = cells
    vin = tube.view(clips, slots, 14, 14)
    vout = vin.repeat_interleave(2, dim=1)
    img = torch.zeros(images, 196, dtype=torch.bool)
    for i in range(images):
        img[i, torch.randperm(196, generator=gen)[:98]] = True
    return vin, vout, img.view(images, 14, 14)


def case_pretrain(ns, a):
    """--device cpu (the comparison): Swin-T, 1 clip of 8 frames + 2 images, float32. --device cuda (the GPU check's
    counterpart, experiments/gpu_check/pretrain.toml): Swin-B at the official per-GPU batch (--clips 4 of 16
    frames + --images 32, gradients accumulated over --accum 2 iterations per optimizer step) under autocast in
    --precision; the timed unit is then one optimizer step."""
    torch.manual_seed(0)
    dev = torch.device(a.device)
    gpu = dev.type == "cuda"
    if gpu:
        arch = dict(embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32], drop_path_rate=0.3)
        clips, frames, images, accum = a.clips, 16, a.images, a.accum
    else:
        arch = dict(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24], drop_path_rate=0.1)
        clips, frames, images, accum = 1, 8, 2, 1
    model = ns.BEVTMultiSource(
        backbone=dict(type="SwinTransformerBEVT", patch_size=(2, 4, 4), window_size=(8, 7, 7), mlp_ratio=4.0,
                      qkv_bias=True, patch_norm=True, use_checkpoint=a.checkpoint, **arch),
        cls_head=dict(type="BEVTMultiSourceHead", num_classes=8192, in_channels=8 * arch["embed_dim"],
                      vae_weight_path="unused")).to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-4, weight_decay=0.05)
    gen = torch.Generator().manual_seed(0)
    vin, vout, img_mask = masks(gen, clips, frames, images)
    # Generated inputs in the pipeline's shapes: normalised pixels for the encoder, map_pixels'ed [0.1, 0.9]
    # views for the tokenizer.
    batch = [
        dict(imgs=torch.randn(clips, 1, 3, frames, 224, 224, generator=gen),
             imgs_second=torch.rand(clips, frames, 3, 112, 112, generator=gen) * 0.8 + 0.1,
             input_position_masks=vin, output_position_masks=vout),
        dict(imgs=torch.randn(images, 1, 3, 224, 224, generator=gen),
             imgs_second=torch.rand(images, 1, 3, 112, 112, generator=gen) * 0.8 + 0.1,
             input_position_masks=img_mask, output_position_masks=img_mask),
    ]
    batch = [{k: v.to(dev) for k, v in b.items()} for b in batch]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision) if gpu else None
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    # The split: wall time inside the tokenizer, inside the encoder (patch embeddings and the 4 stages), the
    # rest of the forward (decoders, lm_head, loss), the backward, the optimiser (clipping + AdamW).
    split = {"tokenizer_s": 0.0, "encoder_forward_s": 0.0}

    def timing(module, key):
        f = module.forward

        def wrapped(*args, **kw):
            sync()  # on the GPU: the module's own kernels, not the queue before it
            t0 = time.perf_counter()
            out = f(*args, **kw)
            sync()
            split[key] += time.perf_counter() - t0
            return out

        module.forward = wrapped

    timing(model.cls_head.vae_encoder, "tokenizer_s")
    bb = model.backbone
    for m in [bb.patch_embed, bb.patch_embed_2d, *bb.layers]:
        timing(m, "encoder_forward_s")
    runs = []

    def step():
        for k in split:
            split[k] = 0.0
        t_fwd = t_bwd = 0.0
        opt.zero_grad()
        for _ in range(accum):
            t0 = time.perf_counter()
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                out = model.train_step(batch, None, data_type=["video", "image"])
            sync()
            t1 = time.perf_counter()
            scaler.scale(out["loss"] / accum).backward()
            sync()
            t_fwd += t1 - t0
            t_bwd += time.perf_counter() - t1
        t2 = time.perf_counter()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_norm=3.0)  # OptimizerHook
        scaler.step(opt)
        scaler.update()
        sync()
        t3 = time.perf_counter()
        runs.append(dict(split, decoders_loss_s=t_fwd - split["tokenizer_s"] - split["encoder_forward_s"],
                         backward_s=t_bwd, optimizer_s=t3 - t2))

    r = timed(step, a.warmup, a.reps)
    timed_runs = runs[a.warmup:]
    for k in timed_runs[0]:
        r[k] = statistics.median(x[k] for x in timed_runs)
    r["name"] = "official bevt_pretrain_step" + (" + use_checkpoint" if a.checkpoint else "")
    if gpu:
        r["name"] += f" swin_b {clips} clips x {frames} + {images} images x {accum} accumulated, cuda {a.precision}"
        r["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return r  # the FLOP counter below is for the CPU floor
    # The iteration's FLOPs (forward + backward, every op torch's counter knows: matmuls, convolutions,
    # attention), from one more untimed iteration: the floor is this over the sgemm rate of the same run.
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    r["iteration_gflop"] = counter.get_total_flops() / 1e9
    return r


def case_swin(a, mode):
    torch.manual_seed(0)
    from shims import install  # noqa: E402

    ns = install(a.bevt_repo, a.swin_repo, a.dalle_repo)
    model = ns.SwinTransformer3D(patch_size=(2, 4, 4), embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                                 window_size=(8, 7, 7), drop_path_rate=0.1, patch_norm=True,
                                 use_checkpoint=mode == "swin_train_ckpt")
    model.init_weights()
    clip = torch.randn(1, 3, 8, 112, 112)
    if mode == "swin_eval":
        model.eval()

        def fwd():
            with torch.no_grad():
                model(clip).sum().item()

        r = timed(fwd, a.swin_warmup, a.swin_reps)
        r["name"] = "official video_swin_t eval forward 1x3x8x112x112"
        return r
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    for p in model.parameters():  # the AdamW state exists before the RSS baseline, as in bench_video_swin
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=False)  # gradients stay allocated: activation_mb is the activations alone
    before = current_rss_mb()

    def step():
        opt.zero_grad(set_to_none=False)
        model(clip).mean().backward()
        opt.step()

    r = timed(step, a.swin_warmup, a.swin_reps)
    r["name"] = "official video_swin_t train step" + (" + use_checkpoint" if mode == "swin_train_ckpt" else "")
    r["activation_mb"] = peak_rss_mb() - before
    return r


def case_swin_encoder(a):
    """The counterpart of bench_video_swin --case encoder: official SwinTransformer3D at Swin-B (embed 128, depths
    2,2,18,2, heads 4,8,16,32, window 8,7,7, drop path 0.1), forward + backward of the output's mean on
    --batch x 3 x 16 x 224 x 224 under autocast (--precision), no optimiser. (bevt's side also mixes in the mask
    token, a few element-wise kernels more.)"""
    from shims import install  # noqa: E402

    torch.manual_seed(0)
    dev = torch.device(a.device)
    ns = install(a.bevt_repo, a.swin_repo, a.dalle_repo)
    model = ns.SwinTransformer3D(patch_size=(2, 4, 4), embed_dim=128, depths=[2, 2, 18, 2], num_heads=[4, 8, 16, 32],
                                 window_size=(8, 7, 7), drop_path_rate=0.1, patch_norm=True).to(dev)
    model.train()  # the official train() override returns None
    clip = torch.randn(a.batch, 3, 16, 224, 224, device=dev)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(a.precision)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    def step():
        for p in model.parameters():
            p.grad = None
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = model(clip).float().mean()
        loss.backward()
        sync()

    r = timed(step, a.swin_warmup, a.swin_reps)
    r["name"] = f"official video_swin_b encoder train step {a.batch}x3x16x224x224 {dev.type} {a.precision}"
    if dev.type == "cuda":
        r["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return r


def run_case(a):
    torch.set_num_threads(a.threads)
    sys.path.insert(0, HERE)
    if a.case == "sgemm":
        x, y = torch.randn(2048, 2048), torch.randn(2048, 2048)
        r = timed(lambda: torch.mm(x, y), 2, max(a.reps, 5))
        r["name"] = "official torch.mm 2048^3 (sgemm)"
        r["gflops"] = 2 * 2048**3 / r["median_s"] / 1e9
    elif a.case == "dalle":
        from shims import install

        ns = install(a.bevt_repo, a.swin_repo, a.dalle_repo)
        torch.manual_seed(0)
        enc = ns.Encoder().eval()
        x = torch.rand(10, 3, 112, 112)

        def fwd():
            with torch.no_grad():
                enc(x).argmax(1)

        r = timed(fwd, a.warmup, a.reps)
        r["name"] = "official dalle encoder 10x3x112x112"
        r["gflops"] = 10 * DALLE_GFLOP_PER_VIEW / r["median_s"]
    elif a.case == "swin_encoder":
        r = case_swin_encoder(a)
    elif a.case.startswith("swin"):
        r = case_swin(a, a.case)
    else:
        from shims import install

        r = case_pretrain(install(a.bevt_repo, a.swin_repo, a.dalle_repo), a)
    r["peak_rss_mb"] = peak_rss_mb()
    r["threads"] = a.threads
    r["torch"] = torch.__version__
    print(json.dumps(r), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bevt-repo", required=True, help="checkout of github.com/xyzforever/BEVT")
    p.add_argument("--swin-repo", required=True, help="checkout of github.com/SwinTransformer/Video-Swin-Transformer")
    p.add_argument("--dalle-repo", required=True, help="checkout of github.com/openai/DALL-E")
    p.add_argument("--case", choices=CASES + EXTRA_CASES, help="one case in this process (default: every case, each in its own)")
    p.add_argument("--cases", default=",".join(CASES), help="comma-separated cases to run (default: all)")
    p.add_argument("--checkpoint", action="store_true", help="pretrain case: use_checkpoint=True")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="swin_encoder and pretrain cases: cpu | cuda (pretrain: Swin-B, "
                   "the official per-GPU batch)")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"],
                   help="swin_encoder case, and the pretrain case on cuda (autocast; fp16 with a GradScaler)")
    p.add_argument("--clips", type=int, default=4, help="pretrain case on cuda: clips of 16 frames per iteration")
    p.add_argument("--images", type=int, default=32, help="pretrain case on cuda: images per iteration")
    p.add_argument("--accum", type=int, default=2, help="pretrain case on cuda: iterations per optimizer step")
    p.add_argument("--batch", type=int, default=4, help="swin_encoder case: clips per step")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--reps", type=int, default=3, help="timed runs of the pretrain and dalle cases")
    p.add_argument("--swin-warmup", type=int, default=2)
    p.add_argument("--swin-reps", type=int, default=5, help="timed runs of the Video Swin cases")
    a = p.parse_args()
    for repo, what in ((a.bevt_repo, "mmaction/models/recognizers/bevt_multisource.py"),
                       (a.swin_repo, "mmaction/models/backbones/swin_transformer.py"),
                       (a.dalle_repo, "dall_e/encoder.py")):
        if not os.path.isfile(os.path.join(repo, what)):
            print(f"pretrain_step.py: {repo} has no {what}; pass the official checkout's root", file=sys.stderr)
            return 2
    if a.case:
        run_case(a)
        return 0
    for c in a.cases.split(","):
        cmd = [sys.executable, os.path.abspath(__file__), "--case", c, "--bevt-repo", a.bevt_repo, "--swin-repo",
               a.swin_repo, "--dalle-repo", a.dalle_repo, "--threads", str(a.threads), "--warmup", str(a.warmup),
               "--reps", str(a.reps), "--swin-warmup", str(a.swin_warmup),
               "--swin-reps", str(a.swin_reps)] + (["--checkpoint"] if a.checkpoint else [])
        subprocess.run(cmd, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
