#!/usr/bin/env python3
"""Side by side with the peers: ReferenceImageCondition against Advanced-ControlNet's reference-only.

Advanced-ControlNet (ACN, ``../shared/interop/ComfyUI-Advanced-ControlNet``, unmodified, GPL-3.0, loaded with
ComfyUI's own custom-node loader; none of its code is in this project) is what SD users run for reference-only
attention today: ``ACN_ReferenceControlNet`` (reference_attn / reference_attn+adain) applied with
``ACN_AdvancedControlNetApply_v2`` to the conditioning, the reference latent passed as ACN's
``ReferencePreprocWrapper`` (what ``ACN_ReferencePreprocessor`` returns after its VAE encode).

Every configuration samples the same video latent with the same seed through ``nodes.KSampler`` (euler, CFG 2:
cond + uncond = 2 x frames rows per model call) on the full-size random SD1.5 U-Net:

- ``unpatched``          the model alone;
- ``ours_attn``          ReferenceImageCondition, strength 1, style_fidelity 0.5, attention_weight 1, adain 0;
- ``ours_attn_adain``    the same with adain_weight 1;
- ``theirs_attn``        ACN reference_attn, style_fidelity 0.5, ref_weight 1, apply strength 1;
- ``theirs_attn_adain``  ACN reference_attn+adain, same settings.

Our first-frame anchor is off (ACN has none), so both read the same reference with the same strength. The
configurations are timed in interleaved rounds (``bench/_common.time_rounds``; one untimed warm-up each); every
ratio is the median, min and max of the per-round ratios: ours / unpatched, theirs / unpatched, ours / theirs.

Result check (same kind of result): the final latents of the last round, per frame, as the change each method
makes to the unpatched result; reported are the cosine between our change and theirs, the ratio of their
norms, and each method's cosine to the reference latent gained (does the output move towards the reference).

    .venv/bin/python -m bench.peers                          # 64x64 latent, 16 and 8 frames (GPU-sized)
    .venv/bin/python -m bench.peers --size 16 --frames 8     # what a 2-core CPU can run in minutes
    .venv/bin/python -m bench.peers --quick                  # 4x4 latent, 2 frames, 2 rounds: a smoke check
                                                             # that fails (exit 1) on a broken comparison

Results merge into bench/results/peers.json under ``reference/<size>x<size>_f<frames>`` (``--quick`` writes
nothing), each entry with the command that made it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys

from bench._common import RESULTS, ROOT, comfy_env, fixtures, load_pack_module, machine, ratio_stats, time_rounds

# ``shared/`` beside the checkout (main) or two levels up (a worktree under wt/)
ACN_DIR = next((d for d in (ROOT.parent / "shared" / "interop" / "ComfyUI-Advanced-ControlNet",
                            ROOT.parent.parent / "shared" / "interop" / "ComfyUI-Advanced-ControlNet")
                if (d / "__init__.py").is_file()), ROOT.parent / "shared" / "interop" / "ComfyUI-Advanced-ControlNet")
CONFIGS = ("unpatched", "ours_attn", "ours_attn_adain", "theirs_attn", "theirs_attn_adain")


class PeerMissing(RuntimeError):
    """The peer pack is absent or does not load in this ComfyUI (the message says which)."""


def load_acn() -> dict:
    """ACN's nodes through ComfyUI's own custom-node loader. ACN v1.5.8's schemas reuse the ids positive/negative
    for inputs and outputs, which ComfyUI 0.3.75's io layer rejects: it loads on 0.33 only."""
    import nodes

    if not (ACN_DIR / "__init__.py").is_file():
        raise PeerMissing(f"Advanced-ControlNet not found at {ACN_DIR} (see shared/interop/README.md)")
    if "ACN_ReferenceControlNet" not in nodes.NODE_CLASS_MAPPINGS:
        asyncio.run(nodes.load_custom_node(str(ACN_DIR)))
    if "ACN_ReferenceControlNet" not in nodes.NODE_CLASS_MAPPINGS:
        raise PeerMissing("Advanced-ControlNet does not load in this ComfyUI (v1.5.8's node schemas reuse input ids "
                          "as output ids, which ComfyUI 0.3.75 rejects); run with .venv-0.33")
    return nodes.NODE_CLASS_MAPPINGS


def acn_conditioning(pos, neg, reference: "torch.Tensor", reference_type: str, style_fidelity: float, strength: float):
    """(positive, negative) with ACN's reference ControlNet attached, as ACN's own nodes build them."""
    import importlib

    N = load_acn()
    (cn,) = N["ACN_ReferenceControlNet"].execute(reference_type, style_fidelity, 1.0).args
    wrapper_cls = type(cn)  # ReferenceAdvanced; its module holds ReferencePreprocWrapper
    preproc = importlib.import_module(wrapper_cls.__module__).ReferencePreprocWrapper
    out = N["ACN_AdvancedControlNetApply_v2"].execute(pos, neg, cn, preproc(condhint=reference), strength, 0.0, 1.0)
    return tuple(out.args)


def _flat_cos(a, b) -> float:
    import torch

    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12))


def result_check(outputs: dict, reference) -> dict:
    """Same kind of result: each method's change to the unpatched output, compared (see module doc)."""
    base = outputs["unpatched"]
    d = {k: outputs[k] - base for k in outputs if k != "unpatched"}
    towards = {k: round(_flat_cos(v, (reference - base)), 4) for k, v in d.items()}
    out = {"change_norm_rel_to_unpatched": {k: round(float(v.norm() / base.norm()), 4) for k, v in d.items()},
           "cos_change_to_reference_minus_unpatched": towards}
    for mode in ("attn", "attn_adain"):
        a, b = d[f"ours_{mode}"], d[f"theirs_{mode}"]
        per_frame = [round(_flat_cos(a[i], b[i]), 4) for i in range(a.shape[0])]
        out[mode] = {"cos_ours_vs_theirs_change": round(_flat_cos(a, b), 4),
                     "cos_per_frame": per_frame,
                     "norm_ratio_ours_over_theirs": round(float(a.norm() / b.norm().clamp_min(1e-12)), 4)}
    out["same_kind"] = all(out[m]["cos_ours_vs_theirs_change"] > 0.3 for m in ("attn", "attn_adain")) and \
        all(v > 0 for v in towards.values())
    out["why_they_differ"] = (
        "ACN writes the reference with a full 2F-row forward (the reference repeated for every frame, with each "
        "row's own cond/uncond text and random noise from torch.randn_like), then each frame attends to "
        "[own; reference] hidden states before to_k/to_v; ours writes once per step with one batch-1 forward "
        "(cond text, seeded noise) and appends that row's K/V to every frame. Style fidelity: ACN blends the "
        "uncond rows' plain attention at style_fidelity; ours gives the uncond branch style_fidelity of its plain "
        "attention too (reference-only's rule). Same reference, same strength 1 on both; different noise draw of "
        "the write pass and uncond-text K/V in ACN's uncond rows make the remaining difference.")
    return out


def reference_side_by_side(frames: int, size: int, steps: int, pairs: int, cfg: float, profile: bool,
                            model=None, context_dim: int = 768, model_desc: str | None = None) -> dict:
    """The side-by-side run; ``model`` defaults to the full-size random SD1.5 (bench/gpu.py passes its own)."""
    import nodes
    import torch

    from coherent_video.nodes.reference_image import ReferenceImageCondition

    load_acn()
    model = model if model is not None else fixtures.sd15_model()
    pos = fixtures.tiny_cond(tokens=77, context_dim=context_dim, seed=1)
    neg = fixtures.tiny_cond(tokens=77, context_dim=context_dim, seed=2)
    video = {"samples": torch.zeros(frames, 4, size, size)}
    ref_t = torch.randn(1, 4, size, size, generator=torch.Generator().manual_seed(0))
    ref = {"samples": ref_t}

    m_attn, _ = ReferenceImageCondition.execute(model, ref, video, anchor_first_frame=False).args
    m_both, _ = ReferenceImageCondition.execute(model, ref, video, adain_weight=1.0, anchor_first_frame=False).args
    t_attn = acn_conditioning(pos, neg, ref_t, "reference_attn", 0.5, 1.0)
    t_both = acn_conditioning(pos, neg, ref_t, "reference_attn+adain", 0.5, 1.0)
    setups = {"unpatched": (model, pos, neg), "ours_attn": (m_attn, pos, neg), "ours_attn_adain": (m_both, pos, neg),
              "theirs_attn": (model, *t_attn), "theirs_attn_adain": (model, *t_both)}
    last = {}

    def sampler(name):
        m, p, n = setups[name]

        def run():
            last[name] = nodes.KSampler().sample(m, 0, steps, cfg, "euler", "normal", p, n, video)[0]["samples"]
        return run

    with torch.inference_mode():
        rounds = time_rounds({k: sampler(k) for k in CONFIGS}, repeat=pairs, warmup=1)
        prof = profile_top(sampler("ours_attn"), sampler("theirs_attn")) if profile else None
    per_step = {k: round(statistics.median(v) / steps, 4) for k, v in rounds.items()}
    vs = lambda a, b: ratio_stats(rounds[a], rounds[b])  # noqa: E731
    target = 1.10 + 1.0 / frames
    out = {
        "ours_attn_vs_unpatched": vs("ours_attn", "unpatched"),
        "ours_attn_adain_vs_unpatched": vs("ours_attn_adain", "unpatched"),
        "theirs_attn_vs_unpatched": vs("theirs_attn", "unpatched"),
        "theirs_attn_adain_vs_unpatched": vs("theirs_attn_adain", "unpatched"),
        "ours_vs_theirs_attn": vs("ours_attn", "theirs_attn"),
        "ours_vs_theirs_attn_adain": vs("ours_attn_adain", "theirs_attn_adain"),
        "seconds_per_step_median": per_step,
        "target_vs_unpatched": round(target, 4),
    }
    out["meets_targets"] = {
        "attn_vs_unpatched": out["ours_attn_vs_unpatched"]["median"] <= target,
        "attn_adain_vs_unpatched": out["ours_attn_adain_vs_unpatched"]["median"] <= target,
        "attn_vs_theirs": out["ours_vs_theirs_attn"]["median"] <= 1.0,
        "attn_adain_vs_theirs": out["ours_vs_theirs_attn_adain"]["median"] <= 1.0,
    }
    out["result_check"] = result_check({k: v.float() for k, v in last.items()}, ref_t.float())
    if prof:
        out["profile"] = prof
    out.update({"frames": frames, "latent": [size, size], "cfg": cfg, "rows_per_model_call": 2 * frames,
                "steps": steps, "pairs": pairs, "threads": torch.get_num_threads(),
                "model": model_desc or "full-size SD1.5 U-Net (random weights, support.fixtures.sd15_model)",
                "statistic": "median/min/max of per-round ratios over interleaved rounds (bench/_common.time_rounds, "
                             "1 warm-up each); per-step = run time / steps",
                "settings": "ours: ReferenceImageCondition strength 1, style_fidelity 0.5, attention_weight 1, "
                            "adain_weight 0 (attn) or 1 (attn_adain), anchor_first_frame off; theirs: "
                            "ACN_ReferenceControlNet style_fidelity 0.5, ref_weight 1, applied with "
                            "ACN_AdvancedControlNetApply_v2 strength 1, 0..1"})
    print(f"\nframes={frames} latent={size}x{size} cfg={cfg} steps={steps} pairs={pairs}")
    for k in ("ours_attn_vs_unpatched", "ours_attn_adain_vs_unpatched", "theirs_attn_vs_unpatched",
              "theirs_attn_adain_vs_unpatched", "ours_vs_theirs_attn", "ours_vs_theirs_attn_adain"):
        s = out[k]
        print(f"  {k:<32}{s['median']:>8.3f} [{s['min']:.3f}, {s['max']:.3f}]")
    print(f"  target vs unpatched <= {target:.4f}; s/step {per_step}")
    print(f"  result check: {json.dumps({k: out['result_check'][k] for k in ('attn', 'attn_adain', 'same_kind')})}")
    return out


def profile_top(*fns, top: int = 12) -> list:
    """torch.profiler's top CPU-time operators over one run of each function (ours, theirs)."""
    from torch.profiler import ProfilerActivity, profile

    res = []
    for fn in fns:
        with profile(activities=[ProfilerActivity.CPU]) as p:
            fn()
        rows = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
        res.append([{"op": e.key, "self_cpu_s": round(e.self_cpu_time_total / 1e6, 3), "calls": e.count}
                    for e in rows])
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", default="16,8", help="comma-separated frame counts (default 16,8)")
    ap.add_argument("--size", type=int, default=64, help="latent height = width (default 64 = 512x512 px)")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=5, help="interleaved timed rounds (>= 5 for the record)")
    ap.add_argument("--cfg", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="add torch.profiler's top operators (ours, theirs)")
    ap.add_argument("--quick", action="store_true", help="4x4 latent, 2 frames, 2 rounds; writes nothing; "
                                                         "exit 1 unless every figure is finite and the results agree")
    args = ap.parse_args(argv)
    command = "python -m bench.peers " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.quick:
        args.frames, args.size, args.pairs = "2", 4, 2

    comfy_env.bootstrap()
    comfy_env.init_all_nodes()
    import torch

    torch.set_num_threads(args.threads)
    load_pack_module()
    try:
        load_acn()
    except PeerMissing as e:
        print(f"bench.peers: {e}")
        return 1
    results = {}
    for f in (int(x) for x in args.frames.split(",") if x.strip()):
        key = f"{args.size}x{args.size}_f{f}"
        results[key] = {**reference_side_by_side(f, args.size, args.steps, args.pairs, args.cfg, args.profile),
                        "command": command.strip()}
        if not args.quick:  # saved after each frame count: a long run that is stopped keeps what it measured
            save_results({key: results[key]})
    if args.quick:
        ok = all(r["result_check"]["same_kind"] and all(v["median"] > 0 for k, v in r.items()
                                                        if k.endswith("_vs_unpatched") and isinstance(v, dict))
                 for r in results.values())
        print("quick check:", "ok" if ok else "FAILED")
        return 0 if ok else 1
    return 0


def save_results(entries: dict, section: str = "reference") -> None:
    """Merge ``entries`` into bench/results/peers.json under ``section``."""
    path = RESULTS / "peers.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    saved.setdefault(section, {}).update(entries)
    saved["reference_peer"] = "Kosinkadink/ComfyUI-Advanced-ControlNet v1.5.8 (9e60d8a), ../shared/interop"
    saved["machine"] = machine()
    path.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)} ({section}: {', '.join(entries)})")


if __name__ == "__main__":
    raise SystemExit(main())
