#!/usr/bin/env python3
"""Per-op self time of a chrome trace (bench_pretrain_step --profile FILE): the top ops by self time, their
calls and share.  profile_summary.py TRACE [--top N]"""
import argparse
import collections
import json


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("trace")
    p.add_argument("--top", type=int, default=25)
    a = p.parse_args()
    with open(a.trace) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
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


if __name__ == "__main__":
    main()
