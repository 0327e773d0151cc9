#!/usr/bin/env python3
"""Per-step cost of ReferenceImageCondition and CrossStreamAttention against the unpatched model.

Same model, latent, seed and sampler in one run; configurations are interleaved over repeats and the
median per-step time is used (the machine may be shared). Writes ``bench/results/attention.json``.

    .venv/bin/python bench/attention.py [--model tiny|sd15] [--frames 16] [--size 32] [--steps 2] [--repeats 3]

``--model sd15`` is the full-size SD1.5 U-Net architecture (random weights, tools.fixtures.sd15_model);
``tiny`` is the tests' small SD1.5-architecture U-Net (32 channels), whose attention is a larger share
of the step than in SD1.5, so its ratios are the pessimistic case.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import comfy_env, fixtures  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["tiny", "sd15"], default="tiny")
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--size", type=int, default=32, help="latent height = width")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cfg", type=float, default=2.0)
    ap.add_argument("--warmup", type=int, default=1, help="warm-up runs per configuration")
    ap.add_argument("--only-main", action="store_true", help="skip the sparse_causal / mutual configurations")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "attention.json"))
    args = ap.parse_args(argv)

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    import comfy.model_management as mm
    import nodes
    import torch

    comfy_env.load_pack_module()
    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    if args.model == "sd15":
        model, ctx_dim = fixtures.sd15_model(), 768
    else:
        model, ctx_dim = fixtures.tiny_model(), fixtures.TINY_CONTEXT_DIM
    pos = fixtures.tiny_cond(tokens=77, context_dim=ctx_dim, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=ctx_dim, seed=2)
    F, S = args.frames, args.size
    video = {"samples": torch.zeros(F, 4, S, S)}
    ref = {"samples": torch.randn(1, 4, S, S, generator=torch.Generator().manual_seed(0))}

    m_ref, lat_ref = ReferenceImageCondition.execute(model, ref, video).args
    configs = {
        "unpatched": (model, video),
        "reference": (m_ref, lat_ref),
        "cross_stream": (CrossStreamAttention.execute(model, "anchor").args[0], video),
    }
    if not args.only_main:
        configs["cross_stream_sparse_causal"] = (CrossStreamAttention.execute(model, "sparse_causal").args[0], video)
        configs["cross_stream_mutual"] = (CrossStreamAttention.execute(model, "mutual").args[0], video)

    def step_time(m, lat):
        mm.soft_empty_cache()
        t0 = time.perf_counter()
        nodes.KSampler().sample(m, 0, args.steps, args.cfg, "euler", "normal", pos, neg, lat)
        return (time.perf_counter() - t0) / args.steps

    with torch.inference_mode():
        for _ in range(args.warmup):
            for m, lat in configs.values():
                step_time(m, lat)
        times = {k: [] for k in configs}
        for _ in range(args.repeats):
            for k, (m, lat) in configs.items():
                times[k].append(step_time(m, lat))
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["unpatched"]
    ratios = {k: med[k] / base for k in configs}

    print(f"\nmodel={args.model} frames={F} latent={S}x{S} cfg={args.cfg} steps={args.steps} repeats={args.repeats} "
          f"device={mm.get_torch_device()}")
    print(f"{'configuration':<30}{'s/step (median)':>16}{'ratio':>8}")
    for k in configs:
        print(f"{k:<30}{med[k]:>16.3f}{ratios[k]:>8.3f}")
    target_ref = 1.10 + 1.0 / F
    print(f"targets: reference <= {target_ref:.3f}, cross-stream <= 1.15")

    result = {
        "reference_step_ratio": round(ratios["reference"], 4),
        "cross_stream_step_ratio": round(ratios["cross_stream"], 4),
        "frames": F,
        **{f"{k}_step_ratio": round(ratios[k], 4) for k in configs if k.startswith("cross_stream_")},
        "seconds_per_step": {k: round(v, 4) for k, v in med.items()},
        "targets": {"reference": round(target_ref, 4), "cross_stream": 1.15},
        "model": "full-size SD1.5 U-Net (random weights)" if args.model == "sd15" else
                 "tiny SD1.5-architecture U-Net (model_channels 32, tools.fixtures.tiny_model)",
        "latent": [S, S], "cfg": args.cfg, "cfg_branches": 2 if args.cfg != 1.0 else 1, "steps": args.steps,
        "repeats": args.repeats, "device": str(mm.get_torch_device()), "torch_threads": torch.get_num_threads(),
        "command": "python bench/attention.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
