#!/usr/bin/env python3
"""Our share of memory: how much peak RSS each patch adds to sampling a bundled SD1.5 workflow (CPU).

    .venv/bin/python -m bench.patch_memory [--size 256] [--frames 16] [--steps 1]
    -> bench/results/patch_memory.json

The graph is the sampling part of the bundled SD1.5 workflows (workflows/*.json): the full-size SD1.5
U-Net (random seeded weights, ``support.fixtures.sd15_model``: the architecture of the workflows'
``random_sd15.safetensors``, built directly so that no process holds a checkpoint file and a model at
once: a CheckpointLoaderSimple process peaks at 6.7 GB here), 77-token conditioning, an empty ``frames`` x
``size``^2 latent, the patch node at its defaults, and ``nodes.KSampler`` (euler, CFG 7, ``--steps``
steps); IterativeReuseSampler replaces KSampler with two clips of ``frames`` frames (total
2 x frames - overlap). CLIP and VAE are common to all graphs and left out.

Each configuration runs in a fresh process, one after another, once untimed (one-time allocations)
and then measured. A thread samples the process RSS
(/proc/self/statm) every 2 ms while the sampler runs; ``sampling_peak`` = that peak minus the RSS just
before sampling (model, CLIP and latents already in memory). ``added`` = a patch's sampling_peak minus the
unpatched one. RSS is what the OS sees: allocator caching makes single runs differ by a few MiB, so
figures under ~20 MiB are at the noise level.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time

from bench._common import ROOT, comfy_env, fixtures, load_pack_module

CONFIGS = ["unpatched", "BaseResidualNoiseModel", "ReferenceImageCondition", "CrossStreamAttention",
           "MotionSmoothingPatch", "IterativeReuseSampler (2 clips)", "KSampler (2 clips' frames, for the sampler)"]


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class PeakSampler:
    def __init__(self, every: float = 0.002):
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self):
        self.peak = rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss())
            time.sleep(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss())


def child(config: str, size: int, frames: int, steps: int, threads: int) -> dict:

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    load_pack_module()
    import nodes
    import torch

    torch.set_num_threads(threads)
    model = fixtures.sd15_model()
    pos = fixtures.tiny_cond(tokens=77, context_dim=768, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=768, seed=2)
    lat = size // 8
    video = {"samples": torch.zeros(frames, 4, lat, lat)}
    ref = {"samples": torch.randn(1, 4, lat, lat, generator=torch.Generator().manual_seed(0))}

    def defaults(node):
        return {i.id: i.default for i in node.GET_SCHEMA().inputs if getattr(i, "default", None) is not None}

    def ksampler(m, latent):
        return lambda: nodes.KSampler().sample(m, 0, steps, 7.0, "euler", "normal", pos, neg, latent)

    if config == "unpatched":
        run = ksampler(model, video)
    elif config == "BaseResidualNoiseModel":
        from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel as N
        run = ksampler(N.execute(model, **defaults(N)).args[0], video)
    elif config == "ReferenceImageCondition":
        from coherent_video.nodes.reference_image import ReferenceImageCondition as N
        m, latent = N.execute(model, ref, video).args[:2]
        run = ksampler(m, latent)
    elif config == "CrossStreamAttention":
        from coherent_video.nodes.cross_stream import CrossStreamAttention as N
        run = ksampler(N.execute(model, **defaults(N)).args[0], video)
    elif config == "MotionSmoothingPatch":
        from coherent_video.nodes.motion import MotionSmoothingPatch as N
        run = ksampler(N.execute(model, **defaults(N)).args[0], video)
    elif config.startswith("IterativeReuseSampler"):
        from coherent_video.nodes.iterative_reuse import IterativeReuseSampler as N
        kw = defaults(N)
        overlap = min(kw.get("overlap", 4), frames - 1)
        kw.update(total_frames=2 * frames - overlap, overlap=overlap, steps=steps, cfg=7.0, seed=0,
                  sampler_name="euler", scheduler="normal", denoise=1.0)
        run = lambda: N.execute(model, pos, neg, video, **kw)  # noqa: E731
    else:  # the same frame count in one KSampler run, for scale
        run = ksampler(model, {"samples": torch.zeros(2 * frames, 4, lat, lat)})
    with torch.inference_mode():
        run()  # one-time allocations (model load to the device, kernels) out of the measurement
        before = rss()
        with PeakSampler() as p:
            t = time.perf_counter()
            run()
            secs = time.perf_counter() - t
    return {"config": config, "rss_before": before, "peak": p.peak, "sampling_peak": p.peak - before,
            "seconds": secs, "process_peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="frame size in pixels (latent = size / 8)")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--configs", nargs="+", default=CONFIGS)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.size, args.frames, args.steps, args.threads)))
        return
    rows = {}
    for cfg in args.configs:
        cmd = [sys.executable, "-m", "bench.patch_memory", "--child", cfg, "--size", str(args.size), "--frames", str(args.frames),
               "--steps", str(args.steps), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            rows[cfg] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no result"}
            print(f"{cfg}: FAILED {rows[cfg]['error']}", flush=True)
            continue
        rows[cfg] = json.loads(line[7:])
        print(f"{cfg:45s} sampling peak {rows[cfg]['sampling_peak'] / 2**20:8.1f} MiB "
              f"(process peak {rows[cfg]['process_peak_rss'] / 2**20:8.1f} MiB, {rows[cfg]['seconds']:.0f} s)",
              flush=True)
    base = rows.get("unpatched", {}).get("sampling_peak")
    added = {k: (v["sampling_peak"] - base if base is not None and "sampling_peak" in v else None)
             for k, v in rows.items() if k != "unpatched"}
    res = {"size": [args.size, args.size], "frames": args.frames, "steps": args.steps, "cfg": 7.0,
           "threads": args.threads, "model": "full-size SD1.5 U-Net, random seeded weights (support.fixtures.sd15_model), fp32 on CPU",
           "runs": rows, "added_bytes": added,
           "added_mib": {k: (None if v is None else round(v / 2**20, 1)) for k, v in added.items()},
           "definition": "sampling_peak = peak RSS while the sampler runs - RSS just before it; added = patch's "
                         "sampling_peak - unpatched sampling_peak (fresh process per configuration)",
           "command": "python -m bench.patch_memory " + " ".join(sys.argv[1:])}
    out = ROOT / "bench" / "results" / "patch_memory.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res["added_mib"], indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
