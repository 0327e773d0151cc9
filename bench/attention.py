#!/usr/bin/env python3
"""Per-step cost of ReferenceImageCondition and CrossStreamAttention against the unpatched model.

Every configuration samples the same latent with the same seed through ComfyUI's own
``nodes.KSampler`` (euler, CFG, so cond + uncond = 2 x frames rows per model call); the time of a
``--steps``-step run divided by the steps is the per-step time. Configurations are timed with
``bench/_common.time_rounds``: warm-up runs, then rounds interleaved unpatched / reference /
cross-stream / ... so that each sees the same load on the (shared) machine; every ratio is the median, min
and max of the per-round ratios to unpatched. Torch runs on ``--threads`` threads (1 by default: on a small shared CPU,
multi-threaded kernels mostly time the contention).

    .venv/bin/python -m bench.attention            # full-size SD1.5 U-Net, 16 frames, 16x16 latent
                                                   # -> bench/results/attention.json, then the tiny
                                                   # U-Net with every mode -> attention_tiny.json

    .venv/bin/python -m bench.attention --ade      # ReferenceImageCondition beside AnimateDiff-Evolved
                                                   # (random v2 and v1 motion modules, 16 frames, 8x8
                                                   # latent) -> "under_animatediff" in attention.json

``--ade`` times interleaved pairs (ADE alone, ADE + reference) and records the median, min and max of
the per-pair ratios; it needs ../shared/interop/ComfyUI-AnimateDiff-Evolved next to the repository.

``write_pass_floor`` is the unpatched model on one frame without CFG (one batch-1 forward per step),
i.e. the cost of the reference write pass on its own: on a CPU a batch-1 forward is bound by streaming
the weights, so it costs several times its 1/(2F) share of a 2F-row forward.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys

from bench._common import ROOT, comfy_env, fixtures, load_pack_module, ratio_stats, time_rounds, write_results


def measure(model_kind: str, frames: int, size: int, steps: int, repeat: int, warmup: int, cfg: float,
            all_modes: bool) -> dict:
    import nodes
    import torch

    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    if model_kind == "sd15":
        model, ctx_dim = fixtures.sd15_model(), 768
        desc = "full-size SD1.5 U-Net (random weights, support.fixtures.sd15_model)"
    else:
        model, ctx_dim = fixtures.tiny_model(), fixtures.TINY_CONTEXT_DIM
        desc = "tiny SD1.5-architecture U-Net (model_channels 32, support.fixtures.tiny_model)"
    pos = fixtures.tiny_cond(tokens=77, context_dim=ctx_dim, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=ctx_dim, seed=2)
    video = {"samples": torch.zeros(frames, 4, size, size)}
    one = {"samples": torch.zeros(1, 4, size, size)}
    ref = {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0))}

    m_ref, lat_ref = ReferenceImageCondition.execute(model, ref, video).args  # node defaults
    configs = {
        "unpatched": (model, video, cfg),
        "reference": (m_ref, lat_ref, cfg),
        "cross_stream": (CrossStreamAttention.execute(model, "anchor").args[0], video, cfg),
        "write_pass_floor": (model, one, 1.0),
    }
    if all_modes:
        configs["cross_stream_sparse_causal"] = (CrossStreamAttention.execute(model, "sparse_causal").args[0], video, cfg)
        configs["cross_stream_mutual"] = (CrossStreamAttention.execute(model, "mutual").args[0], video, cfg)
        m_both, lat_both = ReferenceImageCondition.execute(configs["cross_stream"][0], ref, video).args
        configs["reference+cross_stream"] = (m_both, lat_both, cfg)

    def sampler(m, lat, c):
        return lambda: nodes.KSampler().sample(m, 0, steps, c, "euler", "normal", pos, neg, lat)

    with torch.inference_mode():
        rounds = time_rounds({k: sampler(*c) for k, c in configs.items()}, repeat=max(5, repeat), warmup=warmup)
    per_step = {k: statistics.median(v) / steps for k, v in rounds.items()}
    stats = {k: ratio_stats(v, rounds["unpatched"]) for k, v in rounds.items()}
    ratios = {k: v["median"] for k, v in stats.items()}

    print(f"\nmodel={model_kind} frames={frames} latent={size}x{size} cfg={cfg} steps={steps} warmup={warmup} "
          f"repeat={repeat} threads={torch.get_num_threads()}")
    print(f"{'configuration':<30}{'s/step (median)':>16}{'ratio median [min, max]':>26}")
    for k in configs:
        print(f"{k:<30}{per_step[k]:>16.4f}{ratios[k]:>10.3f} [{stats[k]['min']:.3f}, {stats[k]['max']:.3f}]")
    target_ref = 1.10 + 1.0 / frames
    print(f"targets: reference <= {target_ref:.4f}, cross-stream <= 1.15")
    out = {
        "reference_step_ratio": stats["reference"],
        "cross_stream_step_ratio": stats["cross_stream"],
        "frames": frames,
        **{f"{k}_step_ratio": stats[k] for k in configs if k not in ("unpatched", "reference", "cross_stream")},
        "seconds_per_step": {k: round(v, 4) for k, v in per_step.items()},
        "targets": {"reference": round(target_ref, 4), "cross_stream": 1.15},
        "meets_targets": {"reference": ratios["reference"] <= target_ref, "cross_stream": ratios["cross_stream"] <= 1.15},
        "model": desc,
        "latent": [size, size],
        "cfg": cfg, "cfg_branches": 2 if cfg != 1.0 else 1, "rows_per_model_call": (2 if cfg != 1.0 else 1) * frames,
        "sampler": "nodes.KSampler euler/normal; per-step time = run time / steps",
        "steps": steps, "warmup": warmup, "repeat": repeat,
        "statistic": "per-step ratio to unpatched: median, min and max over interleaved rounds (bench/_common.time_rounds)",
        "threads": torch.get_num_threads(),
        "node_settings": "node defaults (reference: strength 1, style_fidelity 0.5, attention_weight 1, adain_weight 0, "
                         "anchor_first_frame on; cross-stream: anchor = first frame, all blocks)",
    }
    if model_kind == "tiny":
        out["note"] = ("tiny U-Net (32 channels): self-attention is most of its step, so extending K/V costs it far "
                       "more than SD1.5; the pessimistic case, not the figure the targets are about")
    return out


def measure_ade(frames: int, size: int, steps: int, pairs: int, cfg: float, versions=("v2", "v1")) -> dict:
    """Per-step ratio (ADE + ReferenceImageCondition) / (ADE alone) from ``pairs`` interleaved pairs."""
    import asyncio
    import statistics
    import time

    import comfy.sd
    import folder_paths
    import nodes
    import torch

    from coherent_video.nodes.reference_image import ReferenceImageCondition
    from bench._common import motion_module

    ade_dir = ROOT.parent / "shared" / "interop" / "ComfyUI-AnimateDiff-Evolved"
    if not (ade_dir / "__init__.py").is_file():
        raise SystemExit(f"AnimateDiff-Evolved not found at {ade_dir}")
    if "ADE_UseEvolvedSampling" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.load_custom_node(str(ade_dir)))
    N = nodes.NODE_CLASS_MAPPINGS
    base = comfy.sd.load_checkpoint_guess_config(str(fixtures.random_sd15_checkpoint()), output_vae=False,
                                                 output_clip=False)[0]
    pos = fixtures.tiny_cond(tokens=77, context_dim=768, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=768, seed=2)
    video = {"samples": torch.zeros(frames, 4, size, size)}
    ref = {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0))}
    out = {}
    for version in versions:
        path = motion_module.random_motion_module(version)
        folder_paths.add_model_folder_path("animatediff_models", str(path.parent))
        (mm,) = N["ADE_LoadAnimateDiffModel"]().load_motion_model(path.name)
        (m_models,) = N["ADE_ApplyAnimateDiffModelSimple"]().apply_motion_model(mm)
        (plain,) = N["ADE_UseEvolvedSampling"]().use_evolved_sampling(base, "autoselect", m_models=m_models)
        m_ref, lat_ref = ReferenceImageCondition.execute(plain, ref, video).args  # node defaults

        def run(m, lat):
            t = time.perf_counter()
            nodes.KSampler().sample(m, 0, steps, cfg, "euler", "normal", pos, neg, lat)
            return (time.perf_counter() - t) / steps

        with torch.inference_mode():
            run(plain, video), run(m_ref, lat_ref)  # warm-up
            samples = [(run(plain, video), run(m_ref, lat_ref)) for _ in range(pairs)]
        ratios = [r / a for a, r in samples]
        out[version] = {
            "reference_step_ratio_median": round(statistics.median(ratios), 4),
            "reference_step_ratio_min": round(min(ratios), 4), "reference_step_ratio_max": round(max(ratios), 4),
            "seconds_per_step_median": {"ade_alone": round(statistics.median(a for a, _ in samples), 3),
                                        "ade_reference": round(statistics.median(r for _, r in samples), 3)},
            "write_pass": "batch 1, motion modules skipped" if version == "v2" else
                          f"{frames} rows (ADE's v1 GroupNorm normalises whole clips), motion modules skipped",
        }
        print(f"ADE {version}: reference/ADE-alone per-step ratio median {out[version]['reference_step_ratio_median']}"
              f" (min {out[version]['reference_step_ratio_min']}, max {out[version]['reference_step_ratio_max']})")
        del plain, m_ref, m_models, mm
    target = 1.10 + 1.0 / frames
    out.update({"target": round(target, 4),
                "meets_target": {v: out[v]["reference_step_ratio_median"] <= target for v in versions},
                "frames": frames, "latent": [size, size], "cfg": cfg, "steps": steps, "pairs": pairs,
                "threads": torch.get_num_threads(),
                "model": "full-size SD1.5 U-Net (random weights, cached checkpoint) + random AnimateDiff motion "
                         "module (tests/support/motion_module.py) through ADE's Gen2 nodes, no context options",
                "statistic": "median/min/max of per-pair ratios over interleaved pairs (ADE alone, ADE + reference)",
                "node_settings": "ReferenceImageCondition defaults"})
    return out


def reference_point(size: int, frames: int, pairs: int, steps: int = 1, cfg: float = 2.0) -> dict:
    """Issue 15 item 4 (helper i15): ``reference_step_ratio`` at a larger latent as a second data point.

    ReferenceImageCondition (node defaults) vs unpatched, full-size SD1.5 U-Net, ``pairs`` interleaved
    (unpatched, reference) runs of ``nodes.KSampler``; ratio per pair, median/min/max, CPU time too."""
    import time

    import nodes
    import torch

    from coherent_video.nodes.reference_image import ReferenceImageCondition

    model = fixtures.sd15_model()
    pos = fixtures.tiny_cond(tokens=77, context_dim=768, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=768, seed=2)
    video = {"samples": torch.zeros(frames, 4, size, size)}
    ref = {"samples": torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0))}
    m_ref, lat_ref = ReferenceImageCondition.execute(model, ref, video).args

    def run(m, lat):
        w, c = time.perf_counter(), time.process_time()
        nodes.KSampler().sample(m, 0, steps, cfg, "euler", "normal", pos, neg, lat)
        return time.perf_counter() - w, time.process_time() - c

    with torch.inference_mode():
        run(model, video), run(m_ref, lat_ref)  # warm-up
        rows = [(run(model, video), run(m_ref, lat_ref)) for _ in range(pairs)]
    wall = [r[1][0] / r[0][0] for r in rows]
    cpu = [r[1][1] / r[0][1] for r in rows]
    med = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731 - pairs is odd by default
    return {"reference_step_ratio": {"median": med(wall), "min": min(wall), "max": max(wall)},
            "reference_step_ratio_cpu_time": {"median": med(cpu), "min": min(cpu), "max": max(cpu)},
            "seconds_per_step_unpatched": [r[0][0] / steps for r in rows],
            "seconds_per_step_reference": [r[1][0] / steps for r in rows],
            "latent": [size, size], "frames": frames, "cfg": cfg, "steps": steps, "pairs": pairs,
            "target": round(1.10 + 1.0 / frames, 4), "threads": torch.get_num_threads(),
            "command": f"python -m bench.attention --reference-point {size} --frames {frames}"}


def _write(name: str, data: dict, command: str) -> None:
    from bench._common import RESULTS

    old = RESULTS / f"{name}.json"  # keep the separately measured points (--ade, --reference-point)
    kept = {k: v for k, v in (json.loads(old.read_text()) if old.is_file() else {}).items()
            if k == "under_animatediff" or k.startswith("reference_") and k[10:11].isdigit()}
    path = write_results(name, {**data, **kept})
    saved = json.loads(path.read_text())
    saved["command"] = command
    path.write_text(json.dumps(saved, indent=2) + "\n")


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["sd15", "tiny"], default="sd15")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=None, help="latent height = width (default 16 = 128x128 px; 8 with --ade)")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5, help="interleaved timed samples per configuration")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per configuration")
    ap.add_argument("--cfg", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-tiny", action="store_true", help="skip the tiny-U-Net run (attention_tiny.json)")
    ap.add_argument("--ade-versions", default="v2,v1", help="motion-module layouts to time with --ade")
    ap.add_argument("--ade", action="store_true", help="only the AnimateDiff-Evolved measurement (--size 8 by "
                                                       "default); merged into attention.json as under_animatediff")
    ap.add_argument("--reference-point", type=int, default=None, metavar="SIZE",
                    help="only ReferenceImageCondition vs unpatched at a SIZE x SIZE latent (5 interleaved pairs); "
                         "added to attention.json as reference_<SIZE>x<SIZE>, other figures untouched")
    args = ap.parse_args(argv)
    command = "python -m bench.attention " + " ".join(argv if argv is not None else sys.argv[1:])

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    import torch

    torch.set_num_threads(args.threads)
    load_pack_module()
    if args.ade:
        versions = tuple(v.strip() for v in args.ade_versions.split(",") if v.strip())
        result = measure_ade(args.frames, args.size or 8, args.steps, args.repeat, args.cfg, versions)
        path = ROOT / "bench" / "results" / "attention.json"
        saved = json.loads(path.read_text()) if path.is_file() else {}
        prev = saved.get("under_animatediff") or {}
        merged = {**prev, **result, "meets_target": {**(prev.get("meets_target") or {}), **result["meets_target"]}}
        merged["command"] = {**(prev.get("command") if isinstance(prev.get("command"), dict) else {}),
                             **{v: command.strip() for v in versions}}
        saved["under_animatediff"] = merged
        path.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"wrote {path.relative_to(ROOT)} (under_animatediff)")
        return result
    args.size = args.size or 16

    if args.reference_point:
        from bench._common import RESULTS

        point = reference_point(args.reference_point, args.frames, max(5, args.repeat), args.steps, args.cfg)
        path = RESULTS / "attention.json"
        saved = json.loads(path.read_text()) if path.exists() else {}
        saved[f"reference_{args.reference_point}x{args.reference_point}"] = point
        path.write_text(json.dumps(saved, indent=2) + "\n")
        print(json.dumps(point, indent=1))
        return point

    result = measure(args.model, args.frames, args.size, args.steps, args.repeat, args.warmup, args.cfg,
                     all_modes=args.model == "tiny")
    _write("attention" if args.model == "sd15" else "attention_tiny", result, command.strip())
    if args.model == "sd15" and not args.skip_tiny:
        tiny = measure("tiny", args.frames, args.size, args.steps, args.repeat, args.warmup, args.cfg, all_modes=True)
        _write("attention_tiny", tiny, command.strip() + " (second part; alone: python -m bench.attention --model tiny)")
    return result


if __name__ == "__main__":
    main()
