"""Benchmark IterativeReuseSampler (VidRD) on the tiny SD1.5-architecture U-Net; every figure can fail.

    .venv/bin/python -m bench.iterative [--pairs 5]     # writes bench/results/iterative.json

One torch thread throughout (``torch.set_num_threads(1)``, stated in the JSON): on a shared machine
multi-threaded kernels time contention. Every ratio is reported as {median, min, max, pairs} over
>= 5 interleaved pairs (or >= 5 seeds for the seam figures).

- wall_ratio      : one 8-clip node run / 8 plain ``SamplerCustomAdvanced`` runs of one clip (the same
                    clip size, steps, sampler; ComfyUI's own noise), interleaved pairs. The node does the
                    same sampling plus FNR/PNS/DSG bookkeeping, so the ratio should be >= 1 and small
                    (target <= 1.05).
- peak_mem_ratio  : peak memory growth of an 8-clip run / a one-clip run, interleaved pairs in one subprocess
                    (CPU: peak RSS through /proc/self/clear_refs + VmHWM, every allocation >= 64 KiB mmapped
                    so RSS follows the live tensors; CUDA: max_memory_allocated), target <= 1.1. The tiny
                    U-Net at an 8x8 latent with 30 steps and M=6, g=1: there one clip's own tensors (its
                    noise, samples and DSG record) are ``leak_fraction`` of the one-clip growth, so keeping
                    one clip's tensors alive one clip too long would add that much (>= 5 %, reported).
- seam_ratio      : on time-ordered content (BaseResidualNoise ``progressive``, alpha 1: frames are an
                    AR(1) chain, so frame distance grows with time distance; the tiny image model keeps
                    that order): mean |z_{t+1} - z_t| across the clip seams / the same within clips, per
                    overlap mode at the defaults (M=4, sigma=4, g=0.4) and for independent clips.
                    ``seam_backtrack``: for the M frames after each seam, how many frames back from the
                    seam the nearest frame of the previous clip is (0 = the video continues from its last
                    frame; concat's back-and-forth gives (M-1)/2; the old drop's jump back of M frames, which then
                    runs backwards, gives M + (M-1)/2).
- long_i2v        (``--only long_i2v`` -> bench/results/long_i2v.json): long image-to-video on the tiny random Wan
                    I2V (``WAN21_I2V``, the class of Wan 2.2 A14B I2V) with a tiny random Wan VAE, 8 clips, >= 5
                    seeds: IterativeReuseSampler with ``condition_on_previous`` (+- ``colour_hold``, +-
                    ReferenceImageCondition on the start image) vs last-frame chaining (decode, re-encode the last
                    frame with WanImageToVideo, next clip) vs independent clips. Per clip, after decoding:
                    colour drift to the first clip and subject displacement from the start image
                    (``model_patches/drift.py``), median [min, max] over seeds. Random weights: these figures
                    prove the wiring only; the figures that count come from trained models (the evidence issue).
                    Invariants (exit 1): 8 clips with the same pixel-frame counts in every way, finite frames,
                    clip 0's drift 0, the drift of identical clips 0 and of a colour-cast copy > 0.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench._common import ROOT, comfy_env, fixtures, load_pack_module
from tests.support import long_i2v as L  # before ComfyUI's own tests package can hide ours (bench/_common.py)

RESULTS = ROOT / "bench" / "results" / "iterative.json"
THREADS = 1
SETTINGS = dict(noise_recycle=4.0, guidance_ratio=0.4, fnr=True, overlap_mode="forward", seed=0, cfg=2.0,
                sampler_name="euler", scheduler="normal", denoise=1.0)
MODES = ("forward", "concat", "reversed_drop")


def setup():
    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    load_pack_module()
    import torch

    torch.set_num_threads(THREADS)
    from coherent_video.nodes.iterative_reuse import IterativeReuseSampler

    return IterativeReuseSampler


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "pairs": list(values)}


def run(node, model, cond, frames, size, total, overlap, steps, **kw):
    import torch

    args = dict(SETTINGS, total_frames=total, overlap=overlap, steps=steps)
    args.update(kw)
    lat = {"samples": torch.zeros(frames, 4, size, size)}
    return node.execute(model, cond[0], cond[1], lat, **args).result[0]["samples"]


def bench_wall(node, model, cond, pairs: int, n=8, m=4, size=16, steps=4, clips=8) -> dict:
    """Interleaved pairs: (one ``clips``-clip node run, ``clips`` plain SamplerCustomAdvanced runs)."""
    from comfy_extras.nodes_custom_sampler import (BasicScheduler, CFGGuider, KSamplerSelect, RandomNoise,
                                                   SamplerCustomAdvanced)
    import torch

    total = n + (clips - 1) * (n - m)
    guider = CFGGuider.execute(model, cond[0], cond[1], SETTINGS["cfg"]).result[0]
    sampler = KSamplerSelect.execute("euler").result[0]
    sigmas = BasicScheduler.execute(model, "normal", steps, 1.0).result[0]
    lat = {"samples": torch.zeros(n, 4, size, size)}

    def plain():
        for c in range(clips):
            SamplerCustomAdvanced.execute(RandomNoise.execute(c).result[0], guider, sampler, sigmas, lat)

    def node_run():
        run(node, model, cond, n, size, total, m, steps)

    node_run(), plain()  # warm-up
    node_s, plain_s, ratios = [], [], []
    for i in range(pairs):
        order = (node_run, plain) if i % 2 == 0 else (plain, node_run)  # alternate who goes first
        t = {}
        for fn in order:
            t0 = time.perf_counter()
            fn()
            t[fn] = time.perf_counter() - t0
        node_s.append(t[node_run])
        plain_s.append(t[plain])
        ratios.append(t[node_run] / t[plain])
    return dict(clip_frames=n, overlap=m, latent=f"{size}x{size}", steps=steps, clips=clips, total_frames=total,
                node_s=node_s, plain_s=plain_s, wall_ratio=spread(ratios),
                baseline="plain SamplerCustomAdvanced x clips (same clip size, steps, sampler, cfg)")


def _proc_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


MEM = dict(n=8, m=6, size=8, steps=30, guidance_ratio=1.0, clips=8, channels=32)


def mem_child(pairs: int) -> dict:
    """One process, ``pairs`` interleaved (one clip, 8 clips) runs; each run's peak growth is measured
    from the RSS just before it (peak reset through /proc/self/clear_refs)."""
    import gc

    import torch

    node = setup()
    n, m, size, steps, g = MEM["n"], MEM["m"], MEM["size"], MEM["steps"], MEM["guidance_ratio"]
    model = fixtures.tiny_model(0, model_channels=MEM["channels"])
    cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    cuda = torch.cuda.is_available()
    run(node, model, cond, n, size, n + (n - m), m, steps, guidance_ratio=g)  # warm-up: two clips, lazy imports

    def growth(total):
        gc.collect()
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        else:
            before = _proc_kb("VmRSS") * 1024
            Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
        out = run(node, model, cond, n, size, total, m, steps, guidance_ratio=g)
        if cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            peak = _proc_kb("VmHWM") * 1024
        return peak - before, int(out.shape[0])

    ones, longs = [], []
    for _ in range(pairs):
        ones.append(growth(n)[0])
        g_long, frames = growth(n + (MEM["clips"] - 1) * (n - m))
        longs.append(g_long)
    return dict(device="cuda" if cuda else "cpu", one=ones, long=longs, long_frames=frames)


def bench_mem(pairs: int, child_result: str | None = None) -> dict:
    n, m, size, steps, g = MEM["n"], MEM["m"], MEM["size"], MEM["steps"], MEM["guidance_ratio"]
    frame = 4 * size * size * 4  # one latent frame, float32
    record_until = max(sum(1 for s in range(steps) if s < (m - k) * (steps / m) * g) for k in range(m))
    record = record_until * 2 * m * frame  # DSG record: model input + output of the M source frames per step
    one_clip_tensors = 3 * n * frame + record  # fresh noise, mixed noise, samples + the DSG record
    cmd = [sys.executable, "-m", "bench.iterative", "--mem-child", str(pairs)]
    # allocations from 64 KiB up mmapped and returned at free: RSS follows the live tensors
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0"}
    if child_result:  # the output of an earlier `--mem-child N` run (same environment variables)
        r = json.loads(Path(child_result).read_text().strip().splitlines()[-1])
    else:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
    ratios = [b / a for a, b in zip(r["one"], r["long"])]
    return dict(MEM, measure=r["device"], one_growth_bytes=r["one"], long_growth_bytes=r["long"],
                long_frames=r["long_frames"], one_clip_tensor_bytes=one_clip_tensors, dsg_record_bytes=record,
                leak_fraction=one_clip_tensors / statistics.median(r["one"]), peak_mem_ratio=spread(ratios),
                note="DSG needs two records at once (the previous clip's, replayed, and the current clip's, "
                     "recorded), so a run of two or more clips holds one record more than a one-clip run")


def seam_stats(frames, plan, overlap: int) -> tuple[float, float]:
    import torch

    z = frames.reshape(frames.shape[0], -1).double()
    step = (z[1:] - z[:-1]).pow(2).mean(dim=1).sqrt()
    seams = [p.dst_start - 1 for p in plan[1:]]
    mask = torch.zeros(step.shape[0], dtype=torch.bool)
    mask[seams] = True
    ratio = float(step[mask].mean() / step[~mask].mean())
    backs = []
    for p in plan[1:]:
        last = p.dst_start - 1  # last frame of the previous clip's output
        past = z[max(0, last - 2 * overlap - 2): last + 1]
        for j in range(1, min(overlap, p.length) + 1):
            d = (past - z[last + j]).pow(2).mean(dim=1)
            backs.append(past.shape[0] - 1 - int(d.argmin()))
    return ratio, float(statistics.mean(backs))


def bench_seams(node, model, cond, seeds: int, n=8, m=4, size=16, steps=4, total=36) -> dict:
    from coherent_video.model_patches.reuse import plan_clips
    from coherent_video.nodes.base_residual_noise import BaseResidualNoise

    runs = {mode: {} for mode in MODES}
    runs["independent"] = dict(fnr=False, noise_recycle=0.0, guidance_ratio=0.0)
    out = {}
    for label, extra in runs.items():
        mode = extra.get("overlap_mode", label if label in MODES else "forward")
        plan = plan_clips(total, n, m, mode)
        ratios, backs = [], []
        for seed in range(seeds):
            noise = BaseResidualNoise.execute(seed, "progressive", 0.5, 1.0, -1).result[0]
            z = run(node, model, cond, n, size, total, m, steps, noise=noise, overlap_mode=mode, **extra)
            r, b = seam_stats(z, plan, m)
            ratios.append(r)
            backs.append(b)
        out[label] = dict(overlap_mode=mode, seam_ratio=spread(ratios), seam_backtrack=spread(backs))
    return dict(clip_frames=n, overlap=m, latent=f"{size}x{size}", steps=steps, total_frames=total,
                noise="BaseResidualNoise progressive, alpha 1 (adjacent-frame correlation 0.707)", modes=out)


LONG = dict(n=3, m=1, clips=8, size=32, steps=4)
LONG_RESULTS = ROOT / "bench" / "results" / "long_i2v.json"


def bench_long_i2v(seeds: int) -> int:
    """The long image-to-video comparison (module docstring); writes long_i2v.json, returns the exit status."""
    setup()
    import torch

    from coherent_video.model_patches.drift import measure_long_video

    n, m, clips, size, steps = (LONG[k] for k in ("n", "m", "clips", "size", "steps"))
    model, pos, neg = L.build()
    vae = L.tiny_wan_vae()
    image = L.start_image(size)
    want = L.clip_lengths(n, m, clips)
    ways = {
        "reuse": lambda s: L.run_reuse(model, pos, neg, vae, image, n, m, clips, size, steps, s),
        "reuse_colour_hold": lambda s: L.run_reuse(model, pos, neg, vae, image, n, m, clips, size, steps, s,
                                                   colour_hold=1.0),
        "reuse_reference": lambda s: L.run_reuse(model, pos, neg, vae, image, n, m, clips, size, steps, s,
                                                 reference=True),
        "reuse_colour_hold_reference": lambda s: L.run_reuse(model, pos, neg, vae, image, n, m, clips, size, steps, s,
                                                             colour_hold=1.0, reference=True),
        "last_frame_chain": lambda s: L.run_chain(model, pos, neg, vae, image, n, clips, size, steps, s),
        "independent": lambda s: L.run_independent(model, pos, neg, vae, image, n, m, clips, size, steps, s),
    }
    broken = []
    # the measurement itself: identical clips -> 0, a colour-cast copy -> > 0
    probe = L.decode(vae, L.i2v_conditioning(pos, neg, vae, image, size, L.pixel_frames(n))[2]["samples"])
    same = measure_long_video(clips=[probe, probe.clone()], start_image=image[0])
    cast = measure_long_video(clips=[probe, (probe * torch.tensor([1.1, 1.0, 0.9])).clamp(0, 1)])
    if same["colour_drift"][1] != 0:
        broken.append(f"drift of identical clips is {same['colour_drift'][1]}")
    if not cast["colour_drift"][1] > 0.5:
        broken.append(f"drift of a colour-cast copy is {cast['colour_drift'][1]}")
    per = {w: {"colour_drift": [], "displacement": [], "contrast_ratio": [], "saturation_ratio": []} for w in ways}
    t0 = time.perf_counter()
    for seed in range(seeds):
        for way, fn in ways.items():
            out = fn(seed)
            lengths = [int(c.shape[0]) for c in out]
            if lengths != want:
                broken.append(f"{way} seed {seed}: clip frames {lengths}, want {want}")
            if not all(bool(torch.isfinite(c).all()) for c in out):
                broken.append(f"{way} seed {seed}: frames not finite")
            r = measure_long_video(clips=out, start_image=image[0])
            if r["colour_drift"][0] != 0:
                broken.append(f"{way} seed {seed}: clip 0's drift to itself is {r['colour_drift'][0]}")
            for k in per[way]:
                per[way][k].append(r[k])
    wall = time.perf_counter() - t0

    def per_clip(rows):  # rows[seed][clip] -> per clip {median, min, max}
        cols = list(zip(*rows))
        return [{"median": round(statistics.median(c), 4), "min": round(min(c), 4), "max": round(max(c), 4)}
                for c in cols]

    def mean_later(rows):  # per seed: the mean over clips 1.. ; then median [min, max] over seeds
        v = [statistics.mean(r[1:]) for r in rows]
        return {"median": round(statistics.median(v), 4), "min": round(min(v), 4), "max": round(max(v), 4)}

    result = {
        "what": "long image-to-video, 8 clips: IterativeReuseSampler + condition_on_previous (+- colour_hold 1, +- "
                "ReferenceImageCondition strength 1 on the VAE-encoded start image) vs last-frame chaining "
                "(VAEDecode, last frame -> WanImageToVideo start image, KSampler) vs independent clips",
        "weights": "RANDOM (tiny WAN21_I2V DiT, tiny random Wan VAE): these figures prove wiring only, not drift on "
                   "real video; the figures that count come from trained models (issue 21)",
        "model": "support.families wan21_i2v (WAN21_I2V, in_dim 36; Wan 2.2 A14B I2V is the same class), width 64, "
                 "2 layers; VAE: support.long_i2v.tiny_wan_vae (Wan 2.1 VAE class, base width 8)",
        "settings": {**LONG, "seeds": seeds, "overlap_mode": "forward", "noise_recycle": 4.0, "guidance_ratio": 0.4,
                     "cfg": 2.0, "sampler": "euler", "scheduler": "simple",
                     "pixel_frames_per_clip": want, "pixel_size": f"{size}x{size}"},
        "metrics": {"colour_drift": "mean CIE76 Delta E between matched Lab quantiles of clip k and clip 0 "
                                    "(model_patches/drift.py)",
                    "displacement": "mean TV-L1 flow magnitude from the start image to each frame of clip k, "
                                    "over the image diagonal",
                    "contrast_ratio": "std L* of clip k / clip 0", "saturation_ratio": "mean chroma of clip k / clip 0"},
        "per_clip": {w: {k: per_clip(v) for k, v in d.items()} for w, d in per.items()},
        "mean_over_later_clips": {w: {k: mean_later(v) for k, v in d.items()} for w, d in per.items()},
        "drift_ratio_vs_last_frame_chain": {
            w: round(statistics.median(statistics.mean(r[1:]) for r in per[w]["colour_drift"])
                     / max(1e-9, statistics.median(statistics.mean(r[1:]) for r in per["last_frame_chain"]["colour_drift"])), 4)
            for w in ways},
        "invariants_broken": broken,
        "wall_s": round(wall, 1),
        "torch_threads": torch.get_num_threads(),
        "command": ".venv/bin/python -m bench.iterative --only long_i2v",
    }
    LONG_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    LONG_RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"long_i2v (RANDOM weights: wiring figures), {seeds} seeds, {clips} clips, {wall:.0f} s")
    for w in ways:
        d, x = result["mean_over_later_clips"][w]["colour_drift"], result["mean_over_later_clips"][w]["displacement"]
        print(f"  {w:<30} colour drift {d['median']:.3f} [{d['min']:.3f}, {d['max']:.3f}]   "
              f"displacement {x['median']:.4f} [{x['min']:.4f}, {x['max']:.4f}]")
    print(f"wrote {LONG_RESULTS}")
    for b in broken:
        print("BROKEN:", b)
    return 1 if broken else 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mem-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--mem-result", help=argparse.SUPPRESS)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--only", choices=["seams", "wall", "mem", "long_i2v"], action="append",
                    help="run only these parts and update them in the existing JSON")
    a = ap.parse_args()
    if a.mem_child:
        print(json.dumps(mem_child(a.mem_child)))
        return
    parts = set(a.only or ["seams", "wall", "mem", "long_i2v"])
    status = 0
    if "long_i2v" in parts:  # its own JSON (long_i2v.json)
        status = bench_long_i2v(max(a.pairs, 5))
        parts.discard("long_i2v")
        if not parts:
            sys.exit(status)

    load_start = os.getloadavg()
    node = setup()
    import torch

    model = fixtures.tiny_model()
    cond = fixtures.tiny_cond(seed=1), fixtures.tiny_cond(seed=2)
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() and a.only else {}
    details = result.setdefault("details", {})
    if "seams" in parts:
        seams = bench_seams(node, model, cond, a.pairs)
        details["seams"] = seams
        result["seam_ratio"] = {k: v["seam_ratio"] for k, v in seams["modes"].items()}
        result["seam_backtrack"] = {k: v["seam_backtrack"] for k, v in seams["modes"].items()}
        result["seam_ratio_target"] = "forward (default) <= 1.15"
    if "wall" in parts:
        wall = bench_wall(node, model, cond, a.pairs)
        details["wall"] = wall
        result["wall_ratio"] = wall["wall_ratio"]
    if "mem" in parts:
        mem = bench_mem(a.pairs, a.mem_result)
        details["memory"] = mem
        result["peak_mem_ratio"] = mem["peak_mem_ratio"]
    for k in ("seam_ratio", "seam_backtrack", "wall_ratio", "peak_mem_ratio", "seam_ratio_plain_noise"):
        if k in result and not (isinstance(result[k], dict) and ("median" in result[k] or "forward" in result[k])):
            result.pop(k)  # a figure from the old format, without its pairs
    result.update({
        "model": "tiny SD1.5-architecture U-Net (support.fixtures.tiny_model), random weights",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "command": ".venv/bin/python -m bench.iterative",
    })
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")

    def fmt(s):
        return f"{s['median']:.3f} [{s['min']:.3f}, {s['max']:.3f}]"

    print(f"torch threads: {torch.get_num_threads()}; ratios: median [min, max] over {a.pairs} pairs/seeds")
    for label in result.get("seam_ratio", {}):
        print(f"{'seam_ratio ' + label:<34}{fmt(result['seam_ratio'][label]):>28}   "
              f"backtrack {fmt(result['seam_backtrack'][label])}")
    if "wall_ratio" in result:
        print(f"{'wall_ratio (node / plain x8)':<34}{fmt(result['wall_ratio']):>28}   target <= 1.05")
    if "peak_mem_ratio" in result:
        mem = details["memory"]
        print(f"{'peak_mem_ratio (8 clips / one)':<34}{fmt(result['peak_mem_ratio']):>28}   target <= 1.1; "
              f"one clip's tensors = {100 * mem['leak_fraction']:.1f} % of the one-clip growth")
    print(f"wrote {RESULTS}")
    sys.exit(status)


if __name__ == "__main__":
    main()
