"""Collects the figures of scripts/gpu_check.sh into one JSON (gpu_check.json) and prints a short table.

usage: gpu_check_report.py OUT_DIR MODE TORCH_VERSION
"""
import glob
import json
import os
import statistics
import sys


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def training_figures(path, clips_per_step):
    """s/iteration (median over the logged steps after the first, which holds the warm-up), peak memory, clips/s."""
    recs = [r for r in read_jsonl(path) if "step_time" in r]
    timed = recs[1:] if len(recs) > 1 else recs
    s_per_it = statistics.median(r["step_time"] for r in timed)
    out = {
        "steps": recs[-1]["step"],
        "s_per_iteration": s_per_it,
        "peak_mem_mb": max(r.get("peak_mem_mb", 0.0) for r in recs),
        "clips_per_s": clips_per_step / s_per_it,
        "last_loss": recs[-1].get("loss"),
    }
    if "loss_scale" in recs[-1]:
        out["loss_scale"] = recs[-1]["loss_scale"]
    if "allreduce_time" in recs[-1]:
        out["allreduce_time"] = recs[-1]["allreduce_time"]
    return out


def main():
    out, mode, torch_version = sys.argv[1], sys.argv[2], sys.argv[3]
    report = {"mode": mode, "torch": torch_version, "parity": {}, "pretrain": {}}
    for path in sorted(glob.glob(os.path.join(out, "parity_*.json"))):
        j = json.load(open(path))
        prec = os.path.basename(path).split("_")[1]
        name = os.path.basename(path)[len("parity_" + prec + "_"):-len(".json")]
        report["parity"].setdefault(prec, {})[name] = j.get("keys", {})
    # Clips per iteration: the official per-GPU batch (4 clips x 2 accumulated iterations) on the GPU, 2 x 2 on CPU.
    clips = 8 if mode == "gpu" else 4
    for prec in ("bf16", "fp16"):
        p = os.path.join(out, "pretrain_%s.metrics.jsonl" % prec)
        if os.path.exists(p):
            report["pretrain"][prec] = training_figures(p, clips)
    enc = os.path.join(out, "encoder_bf16.json")
    if os.path.exists(enc):
        with open(enc) as f:
            report["encoder_bf16"] = json.loads(f.read().strip().splitlines()[-1])
    pk = os.path.join(out, "matmul_peak.json")
    if os.path.exists(pk):
        with open(pk) as f:
            report["matmul_peak"] = json.load(f)
        if "encoder_bf16" in report and report["matmul_peak"]["tflops"] > 0:
            report["encoder_bf16"]["fraction_of_measured_peak"] = (
                report["encoder_bf16"]["matmul_tflops"] / report["matmul_peak"]["tflops"])
    ft = os.path.join(out, "finetune.metrics.jsonl")
    if os.path.exists(ft):
        report["finetune"] = training_figures(ft, 8 if mode == "gpu" else 2)
    t = os.path.join(out, "test_results.json")
    if os.path.exists(t):
        report["test"] = json.load(open(t))
    d = os.path.join(out, "dist.metrics.jsonl")
    if os.path.exists(d):
        report["dist_world_1"] = training_figures(d, 8 if mode == "gpu" else 2)
    ag = os.path.join(out, "agree.json")
    if os.path.exists(ag) and os.path.getsize(ag):
        report["fp32_cpu_device_agreement"] = json.load(open(ag))
    with open(os.path.join(out, "gpu_check.json"), "w") as f:
        json.dump(report, f, indent=2)
    worst = {}
    for prec, fixtures in report["parity"].items():
        errs = [k.get("rel_err", 0.0) for keys in fixtures.values() for k in keys.values()]
        worst[prec] = max(errs) if errs else None
    print("gpu_check (%s, torch %s)" % (mode, torch_version))
    print("  parity: worst rel_err fp32 %s, bf16 %s" % (worst.get("fp32"), worst.get("bf16")))
    for prec, fig in report["pretrain"].items():
        print("  pretrain %s: %.3f s per optimizer step, peak %.0f MiB, %.2f clips/s" % (
            prec, fig["s_per_iteration"], fig["peak_mem_mb"], fig["clips_per_s"]))
    if "fp32_cpu_device_agreement" in report:
        print("  fp32 cpu/device losses over %d steps: max rel. difference %.2e" % (
            len(report["fp32_cpu_device_agreement"]["steps"]), report["fp32_cpu_device_agreement"]["max_rel"]))
    if "encoder_bf16" in report:
        e = report["encoder_bf16"]
        print("  encoder bf16: %.1f TFLOP/s = %.1f%% of 790" % (
            e["matmul_tflops"], 100 * e["fraction_of_h200_bf16_peak"]))
        if "fraction_of_measured_peak" in e:
            print("  matmul peak in this run: %.1f TFLOP/s (encoder at %.1f%% of it)" % (
                report["matmul_peak"]["tflops"], 100 * e["fraction_of_measured_peak"]))


if __name__ == "__main__":
    main()
