#!/usr/bin/env python3
"""Per-step cost of every patch on every DiT video family (random weights of the real classes), against the
unpatched model.

Families: Wan 2.1 T2V, HunyuanVideo 1.5, LTX-Video, and on ComfyUI 0.33+ Wan 2.2 I2V A14B, LTX-2 (video + audio)
and MiniMax H3 (video + audio); each at a tiny and a mid size (``tests/support/families.py``), 5 latent frames of
64 video tokens each. A patch the pack refuses on a family, or whose windows core cannot run there, is recorded
with its error under ``not_run`` and its target fails; nothing is left out silently.

Every configuration samples the same 5-D latent with the same seed through ComfyUI's own ``KSampler``
(euler, CFG 2: cond + uncond in one model call); a ``--steps``-step run divided by the steps is the per-step
time. Each patch is timed in ``--pairs`` interleaved (baseline, patched) pairs, the order alternating pair by
pair, so both runs of a pair see the same load on a shared machine; its ratio is the median, min and max of the
per-pair ratios (>= 5 pairs). Torch runs on ``--threads`` threads (1 by default).

    .venv-0.33/bin/python -m bench.dit      # every family, tiny and mid -> bench/results/dit.json
    .venv/bin/python -m bench.dit --families wan21_t2v --merge   # one family again, the others kept
    .venv/bin/python -m bench.dit --quick   # Wan 2.1 tiny only, 1 step, 5 pairs, no quality runs; checks
                                            # the invariants, writes nothing unless --out is given

Patches and baselines:

- ``reference``: ReferenceImageCondition (DiT path: one batch-1, one-latent-frame write pass per step, the
  reference K/V in every block) vs unpatched, ``T_latent`` latent frames. Target <= 1.10 + 1/T_latent.
- ``cross_window_anchor``: CrossStreamAttention (anchor = first) under the family's core context windows
  (``WanContextWindowsManual``, ``LTXVContextWindows``, else ``ContextWindowsManual``; MiniMax H3, which core's
  nodes cannot window: the pack's ``StreamContextWindows``; 9 latent frames in windows of 5, overlap 2) vs the same
  context windows alone. Target <= 1.15.
- ``noise``: BaseResidualNoiseModel (initial shared base noise) vs unpatched. Target <= 1.02.
- ``smoothing``: MotionSmoothingPatch vs unpatched. Target <= 1.02.

Memory: the peak RSS growth during one sampling run of each configuration (RSS sampled every millisecond),
and each patch's growth minus its baseline's; ``cache_bytes``: what the patches hold between model calls.

Quality (``--quality``, on by default in the full run): seam and colour drift across window boundaries,
tiny Wan, 17 latent frames in windows of 5 with overlap 1, time-ordered noise (AR(1) along latent time,
rho 0.9, unit variance), 8 steps; windows alone vs with cross-window anchor attention (first / sparse_causal).
``seam_ratio`` = mean |x[b] - x[b-1]| over the window starts b divided by that over all other adjacent
pairs (1 = no seam); ``colour_drift`` = RMS over channels of the per-channel spatial mean of each frame
minus frame 0's, averaged over the last window's frames; ``overlap_disagreement`` = how much consecutive windows'
model outputs differ on their shared latent frame before the fuse (relative mean |difference|; what cross-window
attention directly acts on). Random weights: these figures say whether the
mechanism pulls windows together, not what a trained model's video looks like.

Invariants (exit status 1 when one breaks): every output finite; strength 0 bit-identical to unpatched; the
reference write pass runs once per step; cross-window anchor attention adds no model call (video + audio families
whose adapter keeps the audio untouched: exactly one unpatched pass per patched call, ``UntouchedParts``, so their
ratios include that second forward).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import sys
from pathlib import Path

from bench._common import comfy_env, families, load_pack_module, ratio_stats, write_results

SIZES = ("tiny", "mid")
FRAMES = 5                 # latent frames of the timed (unwindowed) runs
WINDOW_FRAMES = 9          # latent frames of the windowed runs: windows of 5 latent frames, overlap 2 -> 3 windows
# every DiT video family the fixtures build, in the order they are reported; the ones this ComfyUI lacks are skipped
# with the reason (LTX-2, MiniMax H3 and Wan 2.2 I2V A14B are in ComfyUI 0.33, not 0.3.75)
ALL_FAMILIES = ("wan21_t2v", "hunyuan15_t2v", "ltxv", "wan22_i2v_a14b", "ltx2", "minimax_h3")
# latent height = width per family: 64 video tokens per latent frame in each (Wan patches 2x2, the others 1x1)
HW = {"wan21_t2v": 16, "wan22_i2v_a14b": 16, "hunyuan15_t2v": 8, "ltxv": 8, "ltx2": 8, "minimax_h3": 8}


def _env():
    F = families
    F._env()
    import nodes  # noqa: F401

    comfy_env.init_all_nodes() if os.environ.get("DIT_BENCH_NODES", "1") == "1" else None
    pack = load_pack_module()
    return F, pack


def _comfy_version() -> str | None:
    try:
        import comfyui_version

        return comfyui_version.__version__
    except ImportError:
        return None


def _unwrap(out):
    return tuple(out.result) if hasattr(out, "result") else tuple(out)


def available(F, wanted) -> tuple[list[str], dict]:
    """(the families of ``wanted`` this ComfyUI can build, {family: why not} for the others)."""
    import comfy.supported_models

    ok, skipped = [], {}
    for fam in wanted:
        s = F.spec(fam)
        if getattr(comfy.supported_models, s.supported_model, None) is None:
            skipped[fam] = (f"{s.label}: this ComfyUI has no comfy.supported_models.{s.supported_model} "
                            f"(added in ComfyUI 0.33)")
        else:
            ok.append(fam)
    return ok, skipped


def _windows(F, family: str, model):
    """Core context windows as a user of ``family`` wires them: 5 latent frames a window, overlap 2, pyramid fuse
    (Wan: ``WanContextWindowsManual`` in pixel frames; LTX-Video / LTX-2: ``LTXVContextWindows`` where this ComfyUI
    has it; the others: ``ContextWindowsManual`` on latent time)."""
    import nodes

    common = dict(context_schedule="standard_static", fuse_method="pyramid", freenoise=False)
    if family.startswith("wan"):
        return F.core_windows("WanContextWindowsManual", model, context_length=17, context_overlap=5,
                              context_stride=1, closed_loop=False, **common)
    if family in ("ltxv", "ltx2") and "LTXVContextWindows" in nodes.NODE_CLASS_MAPPINGS:
        return F.core_windows("LTXVContextWindows", model, context_length=33, context_overlap=16, **common)
    if family == "minimax_h3":   # core's nodes cannot window H3's packed video + audio: the pack's node (core's handler)
        return F.run_node("StreamContextWindows", model, 5, 2, "standard_static", "pyramid", True)[0]
    return F.core_windows("ContextWindowsManual", model, context_length=5, context_overlap=2, context_stride=1,
                          closed_loop=False, dim=2, **common)


def build_configs(F, pack, family: str, size: str):
    """{name: (model, latent)} plus the (patched, baseline) pairs and the nodes' errors, for ``family``, ``size``.
    A patch the pack refuses on the family, or one whose run fails, is recorded with its error, not hidden."""
    import torch

    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel
    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.motion import MotionSmoothingPatch
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    hw = HW[family]
    fx = F.build(family, frames=FRAMES, height=hw, width=hw, size=size)
    fxw = F.build(family, frames=WINDOW_FRAMES, height=hw, width=hw, size=size)
    g = torch.Generator().manual_seed(0)
    ref = {"samples": torch.randn(1, fx.spec.latent_channels, 1, hw, hw, generator=g)}
    cfgs = {"unpatched": (fx.model, fx.latent)}
    pairs, errors = {}, {}

    def add(name, baseline, make):
        try:
            cfgs[name] = make()
            pairs[name] = baseline
        except Exception as e:  # recorded, not hidden
            errors[name] = f"{type(e).__name__}: {e}"

    add("reference", "unpatched", lambda: _unwrap(ReferenceImageCondition.execute(
        fx.model, ref, fx.latent, 1.0, 0.5, 1.0, 0.0, 0.0, 1.0, False)))
    try:
        cfgs["windows"] = (_windows(F, family, fxw.model), fxw.latent)
        add("cross_window_anchor", "windows",
            lambda: (_unwrap(CrossStreamAttention.execute(cfgs["windows"][0], "anchor", "first", 0, 1.0, True, True,
                                                          True, 0, 0.0, 1.0))[0], fxw.latent))
    except Exception as e:
        errors["cross_window_anchor"] = f"core windows: {type(e).__name__}: {e}"
    add("noise", "unpatched",
        lambda: (_unwrap(BaseResidualNoiseModel.execute(fx.model, "shared", 0.5, 1.0, -1, True, False))[0], fx.latent))
    add("smoothing", "unpatched",
        lambda: (_unwrap(MotionSmoothingPatch.execute(fx.model, 0.5, 1.0, 0.0, 1.0))[0], fx.latent))
    return fx, cfgs, pairs, errors


def _drop_failing(F, fx, cfgs, pairs, errors, steps: int) -> None:
    """One sampling run per configuration; a configuration whose run raises (e.g. core windows that cannot window
    this family) leaves the timing with its error recorded (and its patches with it)."""
    for name in list(cfgs):
        model, lat = cfgs[name]
        try:
            F.sample_ksampler(model, fx.positive, fx.negative, lat, steps=steps)
        except Exception as e:
            del cfgs[name]
            why = f"{type(e).__name__}: {e}"
            if name in pairs:
                del pairs[name]
                errors[name] = why
            for p, b in list(pairs.items()):
                if b == name:
                    del pairs[p]
                    del cfgs[p]
                    errors[p] = f"its baseline {name!r} fails: {why}"


def _untouched(model) -> bool:
    """Whether the family's adapter keeps the non-video parts of the latent untouched (one more forward)."""
    from coherent_video.model_patches.hooks.adapters import adapter_for

    return bool(getattr(adapter_for(model), "other_parts_untouched", False))


def check_invariants(F, pack, fx, cfgs, steps: int) -> list[str]:
    """The invariants; a list of what broke (empty = all hold)."""
    import torch

    from coherent_video.nodes.cross_stream import CrossStreamAttention
    from coherent_video.nodes.reference_image import ReferenceImageCondition

    broken = []
    finite = lambda out: all(torch.isfinite(t).all() for t in F.streams(out))   # noqa: E731
    base = F.sample_ksampler(fx.model, fx.positive, fx.negative, fx.latent, steps=steps)
    if "reference" in cfgs:
        ref = {"samples": torch.ones(1, fx.spec.latent_channels, 1, *F.video_part(fx.latent["samples"]).shape[3:])}
        m0, lat0 = _unwrap(ReferenceImageCondition.execute(fx.model, ref, fx.latent, 0.0))
        if not F.same(F.sample_ksampler(m0, fx.positive, fx.negative, lat0, steps=steps), base):
            broken.append("reference strength 0 is not bit-identical to unpatched")
        pm, plain_calls = F.count_model_calls(fx.model)
        F.sample_ksampler(pm, fx.positive, fx.negative, fx.latent, steps=steps)
        m, calls = F.count_model_calls(cfgs["reference"][0])
        out = F.sample_ksampler(m, fx.positive, fx.negative, cfgs["reference"][1], steps=steps)
        # + one write pass per step; video + audio families whose adapter keeps the audio untouched also run one
        # unpatched pass per reference-reading call (UntouchedParts)
        extra = len(calls) - len(plain_calls)
        want = steps + (len(plain_calls) if _untouched(fx.model) else 0)
        if extra != want:
            broken.append(f"reference made {extra} extra model calls in {steps} steps (expected {want})")
        if not finite(out):
            broken.append("reference output not finite")
    try:
        c0 = _unwrap(CrossStreamAttention.execute(fx.model, "anchor", "first", 0, 0.0))[0]
    except Exception:   # refused on this family: recorded under not_run by build_configs
        c0 = None
    if c0 is not None and not F.same(F.sample_ksampler(c0, fx.positive, fx.negative, fx.latent, steps=steps), base):
        broken.append("cross-stream strength 0 is not bit-identical to unpatched")
    if "cross_window_anchor" in cfgs:
        wm, wcalls = F.count_model_calls(cfgs["windows"][0])
        am, acalls = F.count_model_calls(cfgs["cross_window_anchor"][0])
        lat = cfgs["windows"][1]
        F.sample_ksampler(wm, fx.positive, fx.negative, lat, steps=steps)
        aout = F.sample_ksampler(am, fx.positive, fx.negative, lat, steps=steps)
        # video + audio families whose adapter keeps the audio untouched: one unpatched pass more per patched call
        # (hooks/dit.py UntouchedParts), by design; any other extra call is a regression
        per_call = 2 if _untouched(fx.model) else 1
        if len(acalls) != per_call * len(wcalls):
            broken.append(f"cross-window anchor made {len(acalls)} model calls, windows alone {len(wcalls)} "
                          f"(expected x{per_call})")
        if not finite(aout):
            broken.append("cross-window output not finite")
    for name in ("noise", "smoothing"):
        if name in cfgs:
            o = F.sample_ksampler(cfgs[name][0], fx.positive, fx.negative, cfgs[name][1], steps=steps)
            if not finite(o):
                broken.append(f"{name} output not finite")
    return broken


def time_pairs(run: dict, pairs: dict, n_pairs: int, warmup: int) -> dict:
    """Per patch: ``n_pairs`` interleaved (baseline, patched) runs, the order alternating pair by pair, so that
    both runs of a pair see the same load; the ratio of each pair, then their median, min and max."""
    for fn in run.values():
        for _ in range(warmup):
            fn()
    rounds = {name: [] for name in run}
    out = {}
    for p, b in pairs.items():
        tb, tp = [], []
        for i in range(n_pairs):
            for name, acc in (((b, tb), (p, tp)) if i % 2 == 0 else ((p, tp), (b, tb))):
                t = time.perf_counter()
                run[name]()
                acc.append(time.perf_counter() - t)
        rounds[b] += tb
        rounds[p] += tp
        out[p] = ratio_stats(tp, tb) | {"baseline": b}
    return out, rounds


def time_size(F, pack, family: str, size: str, steps: int, n_pairs: int, warmup: int) -> dict:
    fx, cfgs, pairs, errors = build_configs(F, pack, family, size)
    _drop_failing(F, fx, cfgs, pairs, errors, steps=1)

    def runner(name):
        model, lat = cfgs[name]
        return lambda: F.sample_ksampler(model, fx.positive, fx.negative, lat, steps=steps)

    run = {name: runner(name) for name in cfgs}
    ratios, rounds = time_pairs(run, pairs, n_pairs, warmup)
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in F.unet_config(family, size).items()}
    out = {"per_step_s": {n: round(statistics.median(r) / steps, 5) for n, r in rounds.items() if r},
           "ratios": ratios, "not_run": errors, "latent": list(F.video_part(fx.latent["samples"]).shape),
           "config": config}
    if "windows" in cfgs:
        out["windowed_latent"] = list(F.video_part(cfgs["windows"][1]["samples"]).shape)
    out["memory"] = peak_memory(run, pairs)
    if family.startswith("wan"):
        out["cache_bytes"] = cache_bytes(config, out["latent"])
    out["broken"] = check_invariants(F, pack, fx, cfgs, steps=min(steps, 2))
    return out


def targets(results: dict) -> dict:
    """{"<family>.<size>.<patch>": target, median, pass (and why, where the patch did not run)} for results
    {family: {size: time_size(...)}}."""
    t = {}
    for family, sizes in results.items():
        for size, r in sizes.items():
            t_lat = r["latent"][2]
            limits = {"reference": 1.10 + 1.0 / t_lat, "cross_window_anchor": 1.15, "noise": 1.02, "smoothing": 1.02}
            for name, limit in limits.items():
                key = f"{family}.{size}.{name}"
                if name in r["ratios"]:
                    med = r["ratios"][name]["median"]
                    t[key] = {"target": round(limit, 4), "median": med, "pass": med <= limit}
                else:
                    t[key] = {"target": round(limit, 4), "median": None, "pass": False,
                              "why": r["not_run"].get(name, "not run")}
    return t


# ------------------------------------------------------------------------------------------------
# memory
# ------------------------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory(run: dict, pairs: dict) -> dict:
    """Peak RSS growth during one sampling run of each configuration (RSS sampled every millisecond by a thread,
    minus the RSS just before the run, after gc), and each patch's growth minus its baseline's. On a CPU the
    allocator keeps freed pages, so these are upper bounds of what a run needs beyond what is already held."""
    import gc
    import threading

    out = {}
    for name, fn in run.items():
        gc.collect()
        base = _rss()
        peak = [base]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak[0] = max(peak[0], _rss())
                time.sleep(0.001)

        th = threading.Thread(target=watch)
        th.start()
        try:
            fn()
        finally:
            stop.set()
            th.join()
        out[name] = round((max(peak[0], _rss()) - base) / 2**20, 2)
    return {"run_growth_mib": out,
            "extra_vs_baseline_mib": {p: round(out[p] - out[b], 2) for p, b in pairs.items()}}


def cache_bytes(config: dict, latent_shape) -> dict:
    """What the patches hold between model calls (float32): the reference bank (K and V of one latent frame per
    block) and the cross-window anchor cache (K and V of one latent frame per block and CFG branch set)."""
    pt, ph, pw = config["patch_size"]
    tokens = (latent_shape[3] // ph) * (latent_shape[4] // pw)
    per_block = 2 * tokens * config["dim"] * 4
    return {"reference_bank": per_block * config["num_layers"],
            "cross_window_anchor": per_block * config["num_layers"] * 2}


# ------------------------------------------------------------------------------------------------
# seam and colour drift across window boundaries
# ------------------------------------------------------------------------------------------------
class TimeOrderedNoise:
    """A NOISE object: AR(1) along latent time (rho), unit variance per element, seeded."""

    def __init__(self, seed: int, rho: float = 0.9):
        self.seed, self.rho = seed, rho

    def generate_noise(self, input_latent):
        import torch

        x = input_latent["samples"]
        g = torch.Generator().manual_seed(self.seed)
        e = torch.randn(x.shape, generator=g, dtype=torch.float32)
        n = torch.empty_like(e)
        n[:, :, 0] = e[:, :, 0]
        a, b = self.rho, (1 - self.rho ** 2) ** 0.5
        for t in range(1, x.shape[2]):
            n[:, :, t] = a * n[:, :, t - 1] + b * e[:, :, t]
        return n.to(x.dtype)


def seam_metrics(x, starts: list[int]) -> dict:
    d = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(0, 1, 3, 4))       # [T-1]: pair (t-1, t) at index t-1
    seam = [float(d[b - 1]) for b in starts]
    rest = [float(d[i]) for i in range(d.shape[0]) if (i + 1) not in starts]
    means = x.mean(dim=(3, 4))                                           # [B, C, T]
    drift = ((means - means[:, :, :1]) ** 2).mean(dim=(0, 1)).sqrt()     # [T]
    return {"seam_ratio": round(statistics.mean(seam) / statistics.mean(rest), 4),
            "colour_drift_last_window": round(float(drift[-5:].mean()), 4),
            "colour_drift_per_frame": [round(float(v), 4) for v in drift]}


def _window_outputs(model):
    """A clone whose APPLY_MODEL outputs are recorded per call with the call's context window (an official
    wrapper, on the clone): [(sigma, window frames, output)]."""
    from comfy.patcher_extension import WrappersMP

    from coherent_video.model_patches.hooks.comfy_compat import window_frames

    outs = []

    def rec(executor, x, t, *args, **kwargs):
        o = executor(x, t, *args, **kwargs)
        to = args[3] if len(args) > 3 else kwargs.get("transformer_options", {})
        win = (to or {}).get("context_window")
        frames = window_frames(win) if win is not None else None   # ComfyUI 0.33+: the causal frame in front
        if frames is not None and x.shape[2] == len(frames):
            outs.append((float(t.max()), tuple(frames), o.detach().clone()))
        return o

    m = model.clone()
    m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "bench.window_outputs", rec)
    return m, outs


def overlap_disagreement(outs) -> float:
    """How much consecutive windows disagree on the latent frames they share, before the fuse: mean over steps
    and window pairs of |out_a[f] - out_b[f]| over the shared frames f, relative to the mean |out|."""
    vals = []
    by_sigma = {}
    for sigma, idx, o in outs:
        by_sigma.setdefault(sigma, []).append((idx, o))
    for wins in by_sigma.values():
        for (ia, oa), (ib, ob) in zip(wins, wins[1:]):
            shared = sorted(set(ia) & set(ib))
            if not shared:
                continue
            a = oa[:, :, [ia.index(f) for f in shared]]
            b = ob[:, :, [ib.index(f) for f in shared]]
            vals.append(float((a - b).abs().mean() / (0.5 * (a.abs().mean() + b.abs().mean()))))
    return round(statistics.mean(vals), 5) if vals else float("nan")


def quality(F, pack, steps: int = 8, seeds=(0, 1, 2)) -> dict:
    from coherent_video.nodes.cross_stream import CrossStreamAttention

    fx = F.build("wan21_t2v", frames=17, height=8, width=8)
    wm = F.core_windows("WanContextWindowsManual", fx.model, context_length=17, context_overlap=1,
                        context_schedule="standard_static", context_stride=1, closed_loop=False, fuse_method="pyramid",
                        freenoise=False)
    starts = [4, 8, 12]   # windows (0-4) (4-8) (8-12) (12-16): each later window starts on the shared frame
    variants = {"windows": wm}
    for mode in ("anchor", "sparse_causal"):
        variants[mode] = _unwrap(CrossStreamAttention.execute(wm, mode, "first", 0, 1.0, True, True, True, 0, 0.0, 1.0))[0]
    out = {}
    for name, model in variants.items():
        per = []
        for s in seeds:
            m, outs = _window_outputs(model)
            x = F.sample_custom_advanced(m, fx.positive, fx.negative, fx.latent, noise=TimeOrderedNoise(s), steps=steps)
            per.append(seam_metrics(x, starts) | {"overlap_disagreement": overlap_disagreement(outs)})
        keys = ("seam_ratio", "colour_drift_last_window", "overlap_disagreement")
        out[name] = {k: round(statistics.mean(p[k] for p in per), 4) for k in keys} | {
            f"{k}_over_seeds": {"median": round(statistics.median(p[k] for p in per), 4),
                                "min": round(min(p[k] for p in per), 4), "max": round(max(p[k] for p in per), 4)}
            for k in keys} | {"per_seed": per}
    out["setup"] = {"latent": list(fx.latent["samples"].shape), "windows": "WanContextWindowsManual 17 px (5 latent), "
                    "overlap 1 px (1 latent), standard_static, pyramid", "window_starts": starts, "steps": steps,
                    "seeds": list(seeds), "noise": "AR(1) along latent time, rho 0.9"}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=7, help="interleaved (baseline, patched) pairs per patch (>= 5)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sizes", default="tiny,mid")
    ap.add_argument("--families", default="", help="comma-separated (default: every DiT family this ComfyUI "
                                                     "builds; --quick: wan21_t2v); known: " + ",".join(ALL_FAMILIES))
    ap.add_argument("--merge", action="store_true", help="keep the other families' entries of the results file")
    ap.add_argument("--quick", action="store_true", help="tiny only, 1 step, 5 pairs, no quality runs; no file "
                                                          "written unless --out")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--quality-only", action="store_true", help="only the seam/colour-drift runs; replaces the "
                                                                "'quality' entry of the existing results file")
    ap.add_argument("--out", default=None, help="results file (default bench/results/dit.json; none in --quick)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    F, pack = _env()
    if args.quality_only:
        from bench._common import RESULTS

        path = RESULTS / "dit.json"  # the timings keep their own command and machine
        data = json.loads(path.read_text()) if path.exists() else {}
        data |= {"quality": quality(F, pack), "quality_command": "python -m bench.dit --quality-only"}
        path.write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {path}")
        return 0
    wanted = args.families.split(",") if args.families else (["wan21_t2v"] if args.quick else list(ALL_FAMILIES))
    fams, skipped = available(F, wanted)
    for fam, why in skipped.items():
        print(f"skipped {fam}: {why}")
    sizes = ["tiny"] if args.quick else args.sizes.split(",")
    steps = 1 if args.quick else args.steps
    n_pairs = 5 if args.quick else max(args.pairs, 5)
    results = {}
    for fam in fams:
        results[fam] = {}
        for size in sizes:
            print(f"timing {fam} {size} ...", flush=True)
            results[fam][size] = time_size(F, pack, fam, size, steps, n_pairs, 0 if args.quick else args.warmup)
    path = Path(args.out) if args.out else None
    from bench._common import RESULTS

    old = {}
    if args.merge and not args.quick:
        prev = path or RESULTS / "dit.json"
        old = json.loads(prev.read_text()) if prev.exists() else {}
    merged = {**old.get("families", {}), **results}
    import comfy

    data = {"comfyui": getattr(getattr(comfy, "comfyui_version", None), "__version__", None) or _comfy_version(),
            "families": merged, "targets": targets(merged), "steps": steps, "threads": args.threads,
            "pairs": n_pairs, "skipped": {**old.get("skipped", {}), **skipped}}
    for fam in results:
        data["skipped"].pop(fam, None)
    # each family's figures with the command that measured them (a --merge run keeps the others' commands)
    data["commands"] = {**old.get("commands", {}),
                        **{fam: " ".join(["python -m bench.dit", *sys.argv[1:]]) for fam in results}}
    if "quality" in old:
        data["quality"] = old["quality"]
    if not args.quick and not args.no_quality:
        data["quality"] = quality(F, pack)
    broken = [f"{f}.{s}: {b}" for f, sz in results.items() for s, r in sz.items() for b in r["broken"]]
    data["invariants_hold"] = not broken
    print(json.dumps({"targets": {k: v for k, v in data["targets"].items() if k.split(".")[0] in results},
                      "broken": broken}, indent=1))
    if args.out or not args.quick:
        if path is None:
            write_results("dit", data)
        else:
            path.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if broken else 0

if __name__ == "__main__":
    sys.exit(main())
