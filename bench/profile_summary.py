#!/usr/bin/env python3
"""Per-op self time of a chrome trace (bench_pretrain_step / bench_video_swin --profile FILE): the top ops by
self time, their calls and share. With --gpu, the CUDA kernels instead: time per kernel name, how much of the
traced span the GPU was busy (the rest is the host launching, or waiting), and the host's synchronising calls.
profile_summary.py TRACE [--top N] [--gpu]"""
import argparse
import collections
import json


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("trace")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--gpu", action="store_true", help="summarise the CUDA kernels, not the host ops")
    a = p.parse_args()
    with open(a.trace) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    if a.gpu:
        gpu_summary(events, a.top)
        return
    spans = collections.defaultdict(list)  # per thread: (start, end, name)
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            spans[e.get("tid")].append((float(e["ts"]), float(e["ts"]) + float(e["dur"]), e["name"]))
    self_us, calls = collections.Counter(), collections.Counter()
    for evs in spans.values():
        evs.sort(key=lambda x: (x[0], -x[1]))
        stack = []  # [end, name, child time]
        def pop():
            end, name, child, start = stack.pop()
            self_us[name] += (end - start) - child
            if stack:
                stack[-1][2] += end - start
        for start, end, name in evs:
            while stack and stack[-1][0] <= start:
                pop()
            stack.append([end, name, 0.0, start])
            calls[name] += 1
        while stack:
            pop()
    total = sum(self_us.values())
    print(f"{'op':<48} {'self_s':>8} {'share':>6} {'calls':>7}")
    for name, us in self_us.most_common(a.top):
        print(f"{name[:48]:<48} {us / 1e6:>8.3f} {us / total:>6.1%} {calls[name]:>7}")
    print(f"{'total':<48} {total / 1e6:>8.3f}")


def gpu_summary(events, top):
    kernels = [e for e in events if e.get("ph") == "X" and e.get("cat") == "kernel"]
    if not kernels:
        print("no CUDA kernels in this trace")
        return
    per, calls = collections.Counter(), collections.Counter()
    for e in kernels:
        per[e["name"]] += float(e["dur"])
        calls[e["name"]] += 1
    busy = sum(per.values())
    span = max(float(e["ts"]) + float(e["dur"]) for e in kernels) - min(float(e["ts"]) for e in kernels)
    runtime = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "cuda_runtime":
            runtime[e["name"]] += float(e.get("dur", 0))
    print(f"kernels {len(kernels)}, GPU busy {busy / 1e3:.2f} ms of a {span / 1e3:.2f} ms span ({busy / span:.1%})")
    print(f"{'kernel':<72} {'ms':>8} {'share':>6} {'calls':>6}")
    for name, us in per.most_common(top):
        print(f"{name[:72]:<72} {us / 1e3:>8.3f} {us / busy:>6.1%} {calls[name]:>6}")
    print("host CUDA runtime calls (ms): " + ", ".join(f"{n} {us / 1e3:.2f}" for n, us in runtime.most_common(6)))


if __name__ == "__main__":
    main()
