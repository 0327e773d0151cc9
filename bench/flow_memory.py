#!/usr/bin/env python3
"""Peak memory of FlowTemporalUpsample against video length (CPU): is it flat beyond the output itself?

    .venv/bin/python -m bench.flow_memory [--size 128] [--lengths 100 1000] [--chunk 4] [--quality balanced]
                                          [--rounds 5]
    -> bench/results/flow_memory.json

Each length runs in a fresh process: the clip is a
random-texture pan (``size`` x ``size``, float32 IMAGE), made before the measurement starts; the node
(real ComfyUI, ``FlowTemporalUpsample.execute``, x2, balanced preset, chunk_size ``--chunk``) then runs
once. Reported per length: the peak anonymous RSS while the node runs (``RssAnon``, sampled every 2 ms:
heap and tensors, not the file-backed library pages the kernel evicts and reloads under memory pressure,
which made total RSS jump by 20-30 MiB between rounds here), the anonymous RSS just before the node ran
(interpreter + ComfyUI + input clip, after garbage collection and malloc_trim), the IMAGE output's own bytes, and ``working_set`` = peak - before -
output, the memory the node needs beyond its output. Flat in video length means ``working_set`` at the longest length within
10 % of the shortest. The lengths run interleaved, ``--rounds`` times (one fresh process per length and
round); the ratio longest / shortest is reported per round with its median, min and max, and the script
exits non-zero when the median is not within 10 %. 1,000 frames at 512x512 would need 9 GB for input + output alone, more than this
shared 24 GB machine may give one process, so the default size is 128x128 (stated in the JSON).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from bench._common import ROOT, PeakAnonRss, anon_rss, comfy_env, load_pack_module, settle_memory, write_results


def child(frames: int, size: int, chunk: int, threads: int, quality: str) -> dict:

    comfy_env.bootstrap()
    load_pack_module()
    import torch

    torch.set_num_threads(threads)
    from coherent_video.nodes.flow_upsample import FlowTemporalUpsample

    g = torch.Generator().manual_seed(0)
    tex = torch.rand(1, 3, size // 8 + 2, (size + 2 * frames) // 8 + 2, generator=g)
    tex = torch.nn.functional.interpolate(tex, size=(size, size + 2 * frames), mode="bilinear")[0]
    images = torch.stack([tex[:, :, 2 * i:2 * i + size].permute(1, 2, 0) for i in range(frames)]).contiguous()
    small = images[:3].clone()
    FlowTemporalUpsample.execute(images=small, multiplier=2, chunk_size=chunk, quality=quality)  # warm-up: libraries, kernels
    settle_memory()
    before = anon_rss()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with PeakAnonRss() as p:
        t = time.perf_counter()
        out = FlowTemporalUpsample.execute(images=images, multiplier=2, chunk_size=chunk, quality=quality).result[0]
        secs = time.perf_counter() - t
    peak = p.peak
    out_bytes = out.numel() * out.element_size()
    return {"frames": frames, "output_frames": out.shape[0], "peak_rss": peak, "rss_before": before,
            "peak_rss_before_run": peak_before, "output_bytes": out_bytes, "input_bytes": images.numel() * 4,
            "working_set": peak - before - out_bytes, "seconds": secs,
            "process_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--lengths", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--chunk", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quality", default="balanced", help="the node's flow preset")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (fresh process per length and round)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.size, args.chunk, args.threads, args.quality)))
        return
    from bench._common import ratio_stats

    runs = {n: [] for n in args.lengths}
    for r in range(args.rounds):
        for n in args.lengths:
            cmd = [sys.executable, "-m", "bench.flow_memory", "--child", str(n), "--size", str(args.size), "--chunk", str(args.chunk),
                   "--threads", str(args.threads), "--quality", args.quality]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
            row = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
            runs[n].append(row)
            print(f"round {r}: {n:5d} frames: peak anon RSS {row['peak_rss'] / 2**20:8.1f} MiB, "
                  f"before {row['rss_before'] / 2**20:8.1f} MiB, output {row['output_bytes'] / 2**20:8.1f} MiB, "
                  f"working set {row['working_set'] / 2**20:7.1f} MiB, {row['seconds']:.1f} s", flush=True)
    short, long_ = args.lengths[0], args.lengths[-1]
    ratio = ratio_stats([row["working_set"] for row in runs[long_]], [row["working_set"] for row in runs[short]])
    res = {"size": [args.size, args.size], "multiplier": 2, "chunk_size": args.chunk, "preset": args.quality,
           "threads": args.threads, "rounds": args.rounds, "runs": {str(n): rows for n, rows in runs.items()},
           "working_set_ratio_longest_over_shortest": ratio,
           "flat_within_10pct": abs(ratio["median"] - 1) <= 0.10,
           "definition": "working_set = peak anonymous RSS (RssAnon, sampled every 2 ms) while the node runs - anonymous "
                         "RSS before it (incl. input clip) - IMAGE output bytes; "
                         "the ratio is per round (interleaved fresh processes), median [min, max]",
           }
    write_results("flow_memory", res)
    print(f"working set ratio {ratio['median']:.3f} [{ratio['min']:.3f}, {ratio['max']:.3f}]")
    if not res["flat_within_10pct"]:
        sys.exit(f"flow memory is not flat in video length: working set ratio {ratio['median']:.3f} > 1.10")


if __name__ == "__main__":
    main()
