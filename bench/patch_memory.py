#!/usr/bin/env python3
"""Our share of memory: how much peak RSS each patch adds to sampling a bundled SD1.5 workflow (CPU).

    .venv/bin/python -m bench.patch_memory [--size 256] [--frames 16] [--steps 1] [--rounds 5]
    -> bench/results/patch_memory.json

The graph is the sampling part of the bundled SD1.5 workflows (workflows/*.json): the full-size SD1.5
U-Net (random seeded weights, ``support.fixtures.sd15_model``: the architecture of the workflows'
``random_sd15.safetensors``, built directly so that no process holds a checkpoint file and a model at
once: a CheckpointLoaderSimple process peaks at 6.7 GB here), 77-token conditioning, an empty ``frames`` x
``size``^2 latent, the patch node at its defaults, and ``nodes.KSampler`` (euler, CFG 7, ``--steps``
steps); IterativeReuseSampler replaces KSampler with two clips of ``frames`` frames (total
2 x frames - overlap). CLIP and VAE are common to all graphs and left out.

Each configuration runs in a fresh process, once untimed (one-time allocations) and then measured;
``--rounds`` rounds run every configuration in turn (interleaved, so each patch and the unpatched
baseline see the same load), and ``added`` is reported per patch as median [min, max] over the rounds of
(patch - unpatched of the same round). A thread samples the process's anonymous RSS
(``RssAnon`` in /proc/self/status: heap and tensors, not the file-backed pages the kernel evicts under
memory pressure) every 2 ms while the sampler runs; ``sampling_peak`` = that peak minus the RSS just
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
import time

from bench._common import ROOT, PeakAnonRss, anon_rss, comfy_env, fixtures, load_pack_module, settle_memory, write_results

CONFIGS = ["unpatched", "BaseResidualNoiseModel", "ReferenceImageCondition", "CrossStreamAttention",
           "MotionSmoothingPatch", "IterativeReuseSampler (2 clips)", "KSampler (2 clips' frames, for the sampler)"]


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
        settle_memory()
        before = anon_rss()
        with PeakAnonRss() as p:
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
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of all configurations")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        print("RESULT " + json.dumps(child(args.child, args.size, args.frames, args.steps, args.threads)))
        return
    import statistics

    rounds = []
    for r in range(args.rounds):
        rows = {}
        for cfg in args.configs:
            cmd = [sys.executable, "-m", "bench.patch_memory", "--child", cfg, "--size", str(args.size), "--frames", str(args.frames),
                   "--steps", str(args.steps), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no result"
                sys.exit(f"round {r}, {cfg}: FAILED {err}")
            rows[cfg] = json.loads(line[7:])
            print(f"round {r}: {cfg:45s} sampling peak {rows[cfg]['sampling_peak'] / 2**20:8.1f} MiB "
                  f"(process peak {rows[cfg]['process_peak_rss'] / 2**20:8.1f} MiB, {rows[cfg]['seconds']:.0f} s)",
                  flush=True)
        rounds.append(rows)
    if "unpatched" not in args.configs:
        sys.exit("the unpatched configuration is the baseline: keep it in --configs")
    added = {}
    for cfg in args.configs:
        if cfg == "unpatched":
            continue
        d = [(rows[cfg]["sampling_peak"] - rows["unpatched"]["sampling_peak"]) / 2**20 for rows in rounds]
        added[cfg] = {"median": round(statistics.median(d), 1), "min": round(min(d), 1), "max": round(max(d), 1),
                      "rounds": [round(x, 1) for x in d]}
    res = {"size": [args.size, args.size], "frames": args.frames, "steps": args.steps, "cfg": 7.0,
           "threads": args.threads, "rounds": args.rounds,
           "model": "full-size SD1.5 U-Net, random seeded weights (sd15_model fixture), fp32 on CPU",
           "runs": rounds, "added_mib": added,
           "unpatched_sampling_peak_mib": [round(rows["unpatched"]["sampling_peak"] / 2**20, 1) for rows in rounds],
           "definition": "sampling_peak = peak RSS while the sampler runs - RSS just before it; added = patch's "
                         "sampling_peak - unpatched sampling_peak of the same round (fresh process per configuration "
                         "and round), median [min, max] over the rounds",
           }
    print(json.dumps(res["added_mib"], indent=1))
    write_results("patch_memory", res)


if __name__ == "__main__":
    main()
