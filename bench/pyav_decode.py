#!/usr/bin/python3
"""PyAV anchor for bench_data: decodes the given frames the way mmaction2's PyAVDecode does (open the file,
decode sequentially from the first frame, convert each frame to RGB, stop after the last needed index).

usage: pyav_decode.py FILE INDICES(comma-separated) REPS  → one JSON line {median_s, min_s, max_s, frames_decoded}
Needs Debian's python3-av (run with /usr/bin/python3)."""
import json
import statistics
import sys
import time

import av


def decode(path, inds):
    container = av.open(path)
    stream = container.streams.video[0]
    stream.thread_type = "SLICE"  # mmaction2 multi_thread=False: no frame threads
    imgs = []
    max_ind = max(inds)
    decoded = 0
    for frame in container.decode(video=0):
        decoded += 1
        imgs.append(frame.to_rgb().to_ndarray())
        if len(imgs) > max_ind:
            break
    container.close()
    out = [imgs[i % len(imgs)] for i in inds]
    return out, decoded


def main():
    path, inds, reps = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], int(sys.argv[3])
    decode(path, inds)  # warm-up
    times = []
    decoded = 0
    for _ in range(reps):
        t = time.perf_counter()
        _, decoded = decode(path, inds)
        times.append(time.perf_counter() - t)
    print(json.dumps({"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                      "frames_decoded": decoded}))


if __name__ == "__main__":
    main()
