#!/usr/bin/env python3
"""The ratio table of bench/compare_official.sh: bevt's JSON lines beside the official ones, each goal of
issue 17 with its figure and whether it holds.  ratios.py BEVT.jsonl OFFICIAL.jsonl"""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.startswith("{")]


def find_all(rows, prefix, exclude="\0"):
    """Every row of a case (name starting with prefix, not containing exclude), in the order of its rounds."""
    found = [r for r in rows if r["name"].startswith(prefix) and exclude not in r["name"]]
    if not found:
        raise SystemExit(f"ratios.py: no case '{prefix}' in the output (did a bench fail?)")
    return found


def find(rows, prefix):
    return find_all(rows, prefix)[0]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def spread(xs, fmt):
    """The median of per-round figures, with their range when there is more than one round."""
    m = format(median(xs), fmt)
    return m if len(xs) == 1 else f"{m} ({format(min(xs), fmt)}-{format(max(xs), fmt)})"


def main():
    ours, off = load(sys.argv[1]), load(sys.argv[2])
    pre, opre = find(ours, "bevt_pretrain_step"), find(off, "official bevt_pretrain_step")
    # The Swin-T cases ran in alternating rounds (bevt, official, ...): round i of one side pairs with round i of
    # the other, so a drift of the machine's speed between rounds does not enter a ratio.
    trs, otrs = find_all(ours, "video_swin_t train step (fwd"), find_all(off, "official video_swin_t train step", exclude="use_checkpoint")
    evs, oevs = find_all(ours, "video_swin_t eval"), find_all(off, "official video_swin_t eval")
    cks = find_all(ours, "video_swin_t train step + grad checkpointing", exclude="(stages")
    cks_part = find_all(ours, "video_swin_t train step + grad checkpointing (stages")
    if not len(trs) == len(otrs) == len(evs) == len(oevs) == len(cks) == len(cks_part):
        raise SystemExit("ratios.py: the Video Swin cases have different numbers of rounds (did a bench fail?)")
    dal, odal = find(ours, "dalle tokenize"), find(off, "official dalle")
    osg = find(off, "official torch.mm")

    rows = []

    def row(what, ours_s, official_s, figure, goal, ok):
        rows.append((what, ours_s, official_s, figure, goal, "yes" if ok else "NO"))

    speed = opre["median_s"] / pre["median_s"]
    floor = opre["iteration_gflop"] / pre["sgemm_gflops"]
    mem_ok = pre["peak_rss_mb"] <= opre["peak_rss_mb"]
    row("BEVT iteration (bevt_pretrain_step)", f"{pre['median_s']:.2f} s", f"{opre['median_s']:.2f} s",
        f"{speed:.2f}x; {pre['median_s'] / floor:.2f}x the floor ({floor:.2f} s = "
        f"{opre['iteration_gflop']:.0f} GFLOP / {pre['sgemm_gflops']:.0f} GFLOP/s)",
        ">= 3x, or <= 1.3x the floor", speed >= 3 or pre["median_s"] <= 1.3 * floor)
    row("  peak RSS", f"{pre['peak_rss_mb']:.0f} MiB", f"{opre['peak_rss_mb']:.0f} MiB",
        f"{pre['peak_rss_mb'] / opre['peak_rss_mb']:.2f}x", "<= official", mem_ok)
    for k in ("tokenizer_s", "encoder_forward_s", "decoders_loss_s", "backward_s", "optimizer_s"):
        rows.append((f"  {k[:-2]}", f"{pre[k]:.2f} s", f"{opre[k]:.2f} s", f"{opre[k] / max(pre[k], 1e-9):.2f}x",
                     "", ""))
    # A speed-up over the official code can be no larger than the official time over a floor: (1) the case's
    # matmul FLOPs at the sgemm rate of bevt's process, (2) the time bevt's matmuls alone take in the BLAS on the
    # model's own shapes (one profiled run; the official code calls the same BLAS on the same shapes). Both bounds
    # are printed beside each Swin-T ratio.
    def swin_row(what, ours_rows, off_rows):
        ratios = [o["median_s"] / b["median_s"] for b, o in zip(ours_rows, off_rows)]
        bounds = [o["median_s"] / b["floor_s"] for b, o in zip(ours_rows, off_rows)]
        mm_bounds = [o["median_s"] / b["matmul_s"] for b, o in zip(ours_rows, off_rows)]
        fracs = [b["fraction_of_sgemm"] * 100 for b in ours_rows]
        b0 = ours_rows[0]
        row(what, spread([b["median_s"] for b in ours_rows], ".3f") + " s",
            spread([o["median_s"] for o in off_rows], ".3f") + " s",
            f"{spread(ratios, '.2f')}x; bevt at {spread(fracs, '.0f')}% of sgemm; floor {b0['floor_s']:.3f} s "
            f"({b0['matmul_gflop']:.1f} GFLOP / {b0['sgemm_gflops']:.0f} GFLOP/s): at most {spread(bounds, '.2f')}x; "
            f"its matmuls alone {spread([b['matmul_s'] for b in ours_rows], '.3f')} s "
            f"({spread([b['matmul_shapes_gflops'] for b in ours_rows], '.0f')} GFLOP/s on these shapes): "
            f"at most {spread(mm_bounds, '.2f')}x",
            ">= 2.5x", median(ratios) >= 2.5)

    swin_row("Swin-T train step 1x3x8x112^2", trs, otrs)
    swin_row("Swin-T eval forward", evs, oevs)
    frac = dal["gflops"] / dal["sgemm_gflops"]
    row("DALL-E encoder 10x3x112^2", f"{dal['gflops']:.0f} GFLOP/s", f"{odal['gflops']:.0f} GFLOP/s",
        f"{frac:.0%} of sgemm ({dal['sgemm_gflops']:.0f} GFLOP/s; official sgemm {osg['gflops']:.0f})",
        ">= 75% of sgemm", frac >= 0.75)
    # The goal's memory is the tensor-level peak of a step (tensors alive above parameters, gradients and AdamW
    # state: the activations), which bench_video_swin counts through torch's allocator; the RSS delta beside it
    # also holds the malloc arena and oneDNN's buffers, which checkpointing does not touch.
    def checkpoint_row(what, ck_rows):
        mems = [c["tensor_peak_mb"] / t["tensor_peak_mb"] for c, t in zip(ck_rows, trs)]
        rsss = [c["activation_mb"] / t["activation_mb"] for c, t in zip(ck_rows, trs)]
        times = [c["median_s"] / t["median_s"] for c, t in zip(ck_rows, trs)]
        row(what,
            f"{ck_rows[0]['tensor_peak_mb']:.0f} MiB (RSS +{ck_rows[0]['activation_mb']:.0f}), "
            f"{spread([c['median_s'] for c in ck_rows], '.3f')} s",
            f"{trs[0]['tensor_peak_mb']:.0f} MiB (RSS +{trs[0]['activation_mb']:.0f}) without",
            f"{spread(mems, '.2f')}x tensor memory (RSS {spread(rsss, '.2f')}x) at {spread(times, '.2f')}x time",
            "<= 0.5x at <= 1.35x", median(mems) <= 0.5 and median(times) <= 1.35)

    checkpoint_row("Grad checkpointing (Swin-T step)", cks)
    stages = cks_part[0]["name"].split("(stages ")[1].rstrip(")")
    checkpoint_row(f"  stages {stages} only", cks_part)

    head = ("case", "bevt", "official", "figure", "goal", "met")
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(6)]
    for x in [head] + rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(x, widths)))


if __name__ == "__main__":
    main()
