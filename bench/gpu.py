#!/usr/bin/env python3
"""Everything worth timing on a CUDA GPU, in one script (target: under 5 minutes on one GPU).

    .venv/bin/python -m bench.gpu                 # on a CUDA machine -> bench/results/gpu.json
    .venv/bin/python -m bench.gpu --dry-run       # the same code at tiny sizes on the CPU (CI runs it)
                                                  # -> output/gpu_dryrun.json, marked "dry_run": true

Measured (real run: device cuda, fp16):
- ``patch_overhead``: per-step time of each patch over unpatched sampling of the same latent with the
  same seed through ComfyUI's own ``nodes.KSampler`` (euler, CFG 2, so 2 x frames rows per model call):
  full-size SD1.5 U-Net (random weights, ``support.fixtures``), 512x512 (64x64 latent), 16 frames.
  Ratios are the median of ``--pairs`` (>= 5) interleaved pairs (unpatched, patch, unpatched, patch ...),
  with min and max; each sample is ``torch.cuda.synchronize``-bracketed wall time.
- ``peak_vram``: ``torch.cuda.max_memory_allocated`` of one sampling run per configuration, and the
  difference to the unpatched run.
- ``flow``: FlowTemporalUpsample's interpolation (weight-free flow, balanced preset, and RIFE 4.x) at
  512x512 and 1920x1080, x2, in output frames per second, with peak VRAM. RIFE's speed does not depend on
  its weights, so a RIFE 4.25-layout IFNet (5 blocks, 4-channel encoder) with seeded random weights is
  timed when no weights file is given (``--rife FILE`` to time a real one).
  Beside them core ComfyUI's own ``FrameInterpolate`` (0.33+) with the same RIFE weights loaded by core's loader code
  (``core_rife``; absent on 0.3.75), timed on the same two streams.
- ``peers_reference``: bench/peers.py's side by side, ReferenceImageCondition vs Advanced-ControlNet's
  reference-only (attn, attn+adain) at 64x64, 16 and 8 frames, ratios to unpatched and to each other
  (median/min/max of interleaved rounds) and the result check; skipped with the reason where ACN does not
  load (it needs ComfyUI 0.33: run this script with .venv-0.33 on the GPU).
- The mid-size Wan (DiT) configuration waits for the DiT issue; the JSON says so.

The dry run uses the tiny SD1.5-architecture U-Net at an 8x8 latent, 2 frames, 1 step, fp32, and flow at
64x64 / 72x128 on the CPU; its figures only prove the code runs. It never writes ``gpu.json``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench._common import ROOT, comfy_env, core_frame_interpolation, fixtures, load_pack_module

RIFE_425 = ([(15, 192, 8, 13), (28, 128, 8, 13), (28, 96, 8, 13), (28, 64, 8, 13), (28, 32, 8, 13)], (16, 4))


def schema_defaults(node) -> dict:
    """The node's own defaults for every input that has one (so the bench follows the nodes)."""
    return {i.id: i.default for i in node.GET_SCHEMA().inputs if getattr(i, "default", None) is not None}


def build_model(kind: str, dtype, device):
    """A real ModelPatcher (SD1.5 full size or the tiny test U-Net) with seeded weights in ``dtype``."""
    import comfy.model_base
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models
    import torch

    cfg = fixtures.sd15_unet_config() if kind == "sd15" else fixtures.tiny_unet_config(fixtures.TINY_CONTEXT_DIM, 32)
    model_config = comfy.supported_models.SD15(cfg)
    model_config.set_inference_dtype(dtype, None)
    model = comfy.model_base.BaseModel(model_config, device=torch.device("cpu"))
    fixtures.deterministic_init_(model.diffusion_model, seed=0)
    model.diffusion_model.to(dtype)
    return comfy.model_patcher.ModelPatcher(model, load_device=device, offload_device=mm.unet_offload_device())


def patched_models(model, video, ref) -> dict:
    """``{name: (model, latent)}`` for the unpatched model and every model patch at its node defaults."""
    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel
    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.motion import MotionSmoothingPatch
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    out = {"unpatched": (model, video)}
    m, lat = ReferenceImageCondition.execute(model, ref, video).args[:2]
    out["ReferenceImageCondition"] = (m, lat)
    kw = schema_defaults(CrossStreamAttention)
    out["CrossStreamAttention"] = (CrossStreamAttention.execute(model, **kw).args[0], video)
    kw = schema_defaults(MotionSmoothingPatch)
    out["MotionSmoothingPatch"] = (MotionSmoothingPatch.execute(model, **kw).args[0], video)
    kw = schema_defaults(BaseResidualNoiseModel)
    out["BaseResidualNoiseModel"] = (BaseResidualNoiseModel.execute(model, **kw).args[0], video)
    return out


class Clock:
    """Wall time of ``fn()`` with the device synchronised before and after, and its peak device memory."""

    def __init__(self, device):
        import torch

        self.cuda = device.type == "cuda"
        self.torch = torch

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def __call__(self, fn) -> tuple[float, int | None]:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
        self.sync()
        t = time.perf_counter()
        fn()
        self.sync()
        dt = time.perf_counter() - t
        return dt, (self.torch.cuda.max_memory_allocated() if self.cuda else None)


def summary(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def patch_overhead(kind: str, frames: int, size: int, steps: int, pairs: int, dtype, device) -> dict:
    import nodes
    import torch

    ctx = 768 if kind == "sd15" else fixtures.TINY_CONTEXT_DIM
    pos = fixtures.tiny_cond(tokens=77, context_dim=ctx, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=ctx, seed=2)
    video = {"samples": torch.zeros(frames, 4, size, size)}
    ref = {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0))}
    model = build_model(kind, dtype, device)
    configs = patched_models(model, video, ref)
    clock = Clock(device)

    def run(name):
        m, lat = configs[name]
        return lambda: nodes.KSampler().sample(m, 0, steps, 2.0, "euler", "normal", pos, neg, lat)

    with torch.inference_mode():
        for name in configs:  # warm-up (also loads the model onto the device once)
            clock(run(name))
        peak = {name: clock(run(name))[1] for name in configs}
        ratios = {name: [] for name in configs if name != "unpatched"}
        secs = {name: [] for name in configs}
        for _ in range(pairs):  # interleaved pairs: unpatched, patch, for every patch
            for name in ratios:
                t0, _ = clock(run("unpatched"))
                t1, _ = clock(run(name))
                secs["unpatched"].append(t0 / steps)
                secs[name].append(t1 / steps)
                ratios[name].append(t1 / t0)
    base_peak = peak["unpatched"]
    return {
        "model": f"{kind} U-Net, random seeded weights (support.fixtures), {str(dtype).replace('torch.', '')}",
        "latent": [size, size], "pixels": [8 * size, 8 * size], "frames": frames, "cfg": 2.0,
        "rows_per_model_call": 2 * frames, "steps": steps, "pairs": pairs,
        "step_ratio": {k: summary(v) for k, v in ratios.items()},
        "seconds_per_step": {k: summary(v) for k, v in secs.items()},
        "peak_vram_bytes": peak,
        "peak_vram_added_bytes": {k: (None if v is None or base_peak is None else v - base_peak)
                                  for k, v in peak.items() if k != "unpatched"},
        "statistic": "per patch: median/min/max over interleaved (unpatched, patched) pairs of the ratio of "
                     "their per-step times; node defaults",
    }


def flow_speed(sizes: list[tuple[int, int]], frames: int, device, rife_file: str | None, reps: int) -> dict:
    import torch

    from coherent_video.model_patches.flow import upsample
    from coherent_video.model_patches import rife as rf

    if rife_file:
        net, rife_desc = rf.load_rife(rife_file), Path(rife_file).name
    else:
        torch.manual_seed(0)
        net, rife_desc = rf.IFNet(*RIFE_425).eval().requires_grad_(False), "RIFE 4.25 layout, random weights"
    net = net.to(device)
    try:
        core = core_frame_interpolation({k: v.detach().cpu() for k, v in net.state_dict().items()})
    except LookupError:
        core = None
    clock = Clock(device)
    out = {"rife": rife_desc, "frames_in": frames, "multiplier": 2, "reps": reps,
           "core_rife": "core FrameInterpolate, the same weights" if core else "absent in this ComfyUI or refused"}
    for h, w in sizes:
        g = torch.Generator().manual_seed(1)
        base = torch.rand(1, 3, h + 8 * frames, w + 8 * frames, generator=g)
        clip = torch.cat([base[..., 8 * i:8 * i + h, 4 * i:4 * i + w] for i in range(frames)]).to(device)
        k, t = upsample.output_times(frames, multiplier=2)
        new = int((t > 0).sum())
        fns = {
            "ours_balanced": upsample.flow_interpolator("balanced", "visibility_warp", 0.35, device, clamp=[True]),
            "rife": rf.rife_interpolator(net, 0.35),
        }
        row = {}
        gos = {}
        for name, fn in fns.items():
            def go(fn=fn):
                with torch.inference_mode():
                    upsample.upsample_video([clip, clip], k, t, fn, chunk_pairs=4)
            gos[name] = go
        if core is not None:  # core FrameInterpolate on the same frames (two streams, as ours above)
            images = clip.movedim(1, -1).contiguous()

            def go_core():
                with torch.inference_mode():
                    for _ in range(2):
                        core[0].execute(core[1], images, 2)
            gos["core_rife"] = go_core
        for name, go in gos.items():
            clock(go)  # warm-up
            runs = [clock(go) for _ in range(reps)]
            best = min(r[0] for r in runs)
            row[name] = {"new_frames_per_s": new / best, "seconds": [r[0] for r in runs],
                         "peak_vram_bytes": max((r[1] or 0) for r in runs) if clock.cuda else None}
        if "core_rife" in row:
            row["ours_rife_over_core_rife_time"] = row["core_rife"]["new_frames_per_s"] / row["rife"]["new_frames_per_s"]
        out[f"{w}x{h}"] = row
    return out


def peers_reference(kind: str, frames_list, size: int, steps: int, pairs: int, dtype, device) -> dict:
    """bench/peers.py's side by side (ours vs Advanced-ControlNet reference-only) on this device: one entry per
    frame count; a skip with the reason where ACN is absent or does not load (it needs ComfyUI 0.33)."""
    import torch

    from bench import peers

    try:
        peers.load_acn()
    except peers.PeerMissing as e:
        return {"skipped": str(e)}
    model = build_model(kind, dtype, device)
    ctx = 768 if kind == "sd15" else fixtures.TINY_CONTEXT_DIM
    desc = f"{kind} U-Net, random seeded weights (support.fixtures), {str(dtype).replace('torch.', '')}"
    out = {}
    for frames in frames_list:
        r = peers.reference_side_by_side(frames, size, steps, pairs, 2.0, False, model=model, context_dim=ctx,
                                         model_desc=desc)
        out[f"{size}x{size}_f{frames}"] = r
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU; proves the code runs (CI)")
    ap.add_argument("--pairs", type=int, default=5, help="interleaved (unpatched, patched) pairs per patch (>= 5)")
    ap.add_argument("--rife", default=None, help="time this RIFE 4.x file instead of a random 4.25-layout IFNet")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    load_pack_module()
    import torch

    if args.dry_run:
        device, dtype = torch.device("cpu"), torch.float32
        torch.set_num_threads(1)
        unet = dict(kind="tiny", frames=2, size=8, steps=1, pairs=max(1, min(args.pairs, 2)))
        peer = dict(kind="sd15", frames_list=(2,), size=4, steps=1, pairs=1)  # ACN needs SD1.5 widths
        sizes, flow_frames, reps = [(64, 64), (72, 128)], 3, 1
        out = Path(args.out) if args.out else ROOT / "output" / "gpu_dryrun.json"
    else:
        if not torch.cuda.is_available():
            raise SystemExit("bench/gpu.py: no CUDA device; use --dry-run to check the code on the CPU")
        device, dtype = torch.device("cuda"), torch.float16
        unet = dict(kind="sd15", frames=16, size=64, steps=2, pairs=max(5, args.pairs))
        peer = dict(kind="sd15", frames_list=(16, 8), size=64, steps=2, pairs=max(5, args.pairs))
        sizes, flow_frames, reps = [(512, 512), (1080, 1920)], 9, 3
        out = Path(args.out) if args.out else ROOT / "bench" / "results" / "gpu.json"

    t0 = time.time()
    res = {"dry_run": bool(args.dry_run),
           "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (dry run: figures prove "
                                                                                 "only that the code runs)",
           "torch": torch.__version__, "command": "python -m bench.gpu" + (" --dry-run" if args.dry_run else "")}
    for key, fn in (("patch_overhead", lambda: patch_overhead(**unet, dtype=dtype, device=device)),
                    ("flow", lambda: flow_speed(sizes, flow_frames, device, args.rife, reps)),
                    ("peers_reference", lambda: peers_reference(**peer, dtype=dtype, device=device))):
        try:
            res[key] = fn()
        except Exception as e:  # noqa: BLE001 - one failing part must not lose the others on a lent GPU
            if args.dry_run:
                raise
            res[key] = {"error": f"{type(e).__name__}: {e}"}
        print(f"{key}: done at {time.time() - t0:.0f}s", flush=True)
    res["wan_dit"] = "not measured: waits for the DiT (Wan) issue to land"
    res["seconds"] = time.time() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
