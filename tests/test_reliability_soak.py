"""Soak: the real ``main.py --cpu`` with the pack runs 30 prompts (every bundled workflow, shrunk to
tiny sizes, in rotation, new seeds). After each prompt the server's RSS is read (psutil on its pid)
and a probe (a test-only custom node folder given to the server through ``custom_nodes`` in
extra_model_paths.yaml, registering one GET route) counts, inside the server process:
- tensors reachable from the pack's module-level objects (its caches: RIFE weights, lru caches'
  holders, registries), and
- live run-state objects (RunState, ReferenceBank, TrajectoryReplay).
Both must be 0 between prompts; RSS may grow by at most 3 % from prompt 10 to prompt 30 (the maximum over the
workflow rotation ending at each; single prompts differ by workflow).

Then, per patch, ``/interrupt``
mid-sampling through the server: the prompt is stopped during the patched node's progress, and
re-posting it gives the same frames as a fresh process.

Figures go to $COHERENT_VIDEO_SOAK_JSON when set (the README's Reliability section).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from support.server import comfy_server, get_json as _get, post_json as _post

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = 30
PROBE = '''
import gc, os, sys, types, functools
import torch
from aiohttp import web
from server import PromptServer

PACK_FILES = tuple({pack_dir!r} + p for p in ("/__init__.py", "/nodes/", "/model_patches/"))
RUN_STATE = ("RunState", "ReferenceBank", "TrajectoryReplay")


def _ours(path):
    return bool(path) and os.path.realpath(path).startswith(PACK_FILES)


def _count(obj, seen, depth=0):
    if id(obj) in seen or depth > 8:
        return 0
    seen.add(id(obj))
    if torch.is_tensor(obj):
        return 1
    if isinstance(obj, torch.nn.Module):
        return sum(1 for _ in obj.parameters()) + sum(1 for _ in obj.buffers())
    if isinstance(obj, (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, str, bytes, int,
                        float, bool, type(None))):
        return 0
    if isinstance(obj, dict):
        return sum(_count(v, seen, depth + 1) for v in list(obj.values()))
    if isinstance(obj, (list, tuple, set, frozenset)):
        return sum(_count(v, seen, depth + 1) for v in list(obj))
    d = getattr(obj, "__dict__", None)
    return _count(d, seen, depth + 1) if isinstance(d, dict) else 0


@PromptServer.instance.routes.get("/coherent_video_probe/live")
async def live(request):
    gc.collect()
    mods = [m for m in list(sys.modules.values())
            if isinstance(m, types.ModuleType) and _ours(getattr(m, "__file__", None))]
    seen, tensors, lru = set(), 0, {{}}
    for m in mods:
        for name, v in list(vars(m).items()):
            if isinstance(v, functools._lru_cache_wrapper):
                lru[m.__name__.rsplit(".", 1)[-1] + "." + name] = v.cache_info().currsize
            tensors += _count(v, seen)
    run_state = sum(1 for o in gc.get_objects() if type(o).__name__ in RUN_STATE
                    and _ours(getattr(sys.modules.get(type(o).__module__), "__file__", None)))
    return web.json_response({{"pack_modules": len(mods), "cache_tensors": tensors, "run_state": run_state,
                              "lru_entries": lru}})

NODE_CLASS_MAPPINGS = {{}}
'''


@pytest.fixture(scope="module")
def server(comfy, pack, sd15_ckpt, tmp_path_factory, fresh_interrupt_outputs):
    # fresh_interrupt_outputs first: its fresh process loads the checkpoint before the server holds another copy
    tmp = tmp_path_factory.mktemp("soak")
    probe = tmp / "custom_nodes" / "coherent_video_probe"
    probe.mkdir(parents=True)
    (probe / "__init__.py").write_text(PROBE.format(pack_dir=str(ROOT.resolve())))
    with comfy_server(tmp, models_base=Path(sd15_ckpt).parent.parent, custom_nodes=tmp / "custom_nodes",
                      input_dir=tmp / "input") as srv:   # empty; 0.33 creates input/3d in it
        yield srv.base, srv.proc, srv.tmp


NOT_IN_SOAK = ("ADE_", "UNETLoader", "CLIPLoader", "LTXAV", "LTXVAudio")  # node types this server (core + this pack
# only, no model files but the random SD1.5) cannot run; the LTX-2 template runs headless in tests/test_ltx2_template.py


def soak_workflows() -> list[str]:
    """The bundled templates this server runs: the SD1.5 ones (with the random checkpoint) and the model-free ones.
    The AnimateDiff template needs AnimateDiff-Evolved and the Wan templates need the random Wan files and a test-only
    text-encoder node, the LTX-2 template its tiny LTX-2 file; this server loads none of them (their headless runs:
    tests/test_interop_ade.py, tests/test_dit_attention_workflows.py, tests/test_ltx2_template.py)."""
    keep = []
    for p in sorted((ROOT / "workflows").glob("*.json")):
        types = {n["type"] for n in json.loads(p.read_text())["nodes"]}
        if not any(t.startswith(NOT_IN_SOAK) for t in types):
            keep.append(p.name)
    return keep


def tiny_prompt(workflow: str, k: int) -> dict:
    """The bundled workflow as an API prompt, shrunk: 64 px frames, 3 frames, 1 step, seed/frames from k."""
    from runner import headless as run_workflow

    prompt, _ = run_workflow.load_workflow(str(ROOT / "workflows" / workflow))
    extra = {}
    for nid, node in list(prompt.items()):
        ct, inp = node["class_type"], node["inputs"]
        if ct == "CheckpointLoaderSimple":  # the templates name the real SD1.5 file: swap in the random one
            inp["ckpt_name"] = "random_sd15.safetensors"
        elif ct == "EmptyLatentImage":
            inp.update(width=64, height=64, batch_size=min(inp["batch_size"], 3))
        elif ct in ("KSampler", "BasicScheduler"):
            inp["steps"] = 1
        elif ct == "ImageFromBatch":  # the workflow's own: the 3 frames the clip below now has
            inp.update(batch_index=0, length=3)
        elif ct == "ImageScale":
            inp.update(width=64, height=64)
        elif ct == "GetVideoComponents":  # the clip: 3 frames of 64x36 from frame k % 5
            extra[f"90{nid}"] = {"class_type": "ImageFromBatch", "inputs": {"image": [nid, 0], "batch_index": k % 5,
                                                                            "length": 3}}
            extra[f"91{nid}"] = {"class_type": "ImageScale", "inputs": {"image": [f"90{nid}", 0], "width": 64,
                                                                        "height": 36, "upscale_method": "bilinear",
                                                                        "crop": "center"}}
        if "total_frames" in inp:  # IterativeReuseSampler
            inp.update(total_frames=5, overlap=1, steps=1)
        for name in ("seed", "noise_seed"):
            if name in inp and not isinstance(inp[name], list):
                inp[name] = 1000 + k
    for node in prompt.values():
        for name, v in node["inputs"].items():
            if isinstance(v, list) and len(v) == 2 and f"91{v[0]}" in extra and v[1] == 0:
                node["inputs"][name] = [f"91{v[0]}", 0]
    prompt.update(extra)
    return prompt


def _wait(base, pid, timeout=600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        hist = _get(f"{base}/history/{pid}")
        if pid in hist and hist[pid].get("status", {}).get("completed") is not None:
            return hist[pid]
        time.sleep(0.2)
    raise AssertionError(f"prompt {pid} did not finish")


def test_soak_30_prompts_rss_and_caches(server):
    import psutil

    base, proc, tmp = server
    workflows = soak_workflows()
    assert len(workflows) >= 7, workflows
    ps = psutil.Process(proc.pid)
    rows = []
    t0 = time.time()
    for k in range(PROMPTS):
        wf = workflows[k % len(workflows)]
        resp = _post(base + "/prompt", {"prompt": tiny_prompt(wf, k), "client_id": "soak"})
        assert not resp.get("node_errors"), (wf, resp)
        h = _wait(base, resp["prompt_id"])
        assert h["status"].get("status_str") == "success", (wf, h["status"])
        live = _get(base + "/coherent_video_probe/live")
        rows.append({"prompt": k + 1, "workflow": wf, "rss_mib": ps.memory_info().rss / 2**20, **live})
        assert live["pack_modules"] > 5, live
        assert live["cache_tensors"] == 0 and live["run_state"] == 0, (wf, live)
    # RSS after a prompt depends on which workflow ran (a model-free one lets ComfyUI drop the checkpoint, and how
    # much of it the kernel has paged back in by the next reading depends on the machine's load: a dip can last one
    # prompt or three), so single prompts are not compared. What a leak raises is the high-water mark of a rotation:
    # the MAX RSS over the full rotation ending at prompt 10 is compared with the max over the one ending at 30
    # (the median over the rotation, used before, gave +10.8 % in one loaded CI run and -0.16 % when that test was
    # re-run alone: a median of 7 readings of which 2-3 are dips is itself a dip when one more dips). The medians
    # are kept in the summary.
    n = len(workflows)
    at10 = max(r["rss_mib"] for r in rows[10 - n:10])
    at30 = max(r["rss_mib"] for r in rows[PROMPTS - n:PROMPTS])
    growth = at30 / at10 - 1
    med10 = statistics.median(r["rss_mib"] for r in rows[10 - n:10])
    med30 = statistics.median(r["rss_mib"] for r in rows[PROMPTS - n:PROMPTS])
    summary = {"prompts": PROMPTS, "seconds": round(time.time() - t0, 1), "rss_mib_at_10": round(at10, 1),
               "rss_mib_at_30": round(at30, 1), "growth_10_to_30_pct": round(100 * growth, 2),
               "statistic": f"max RSS over the {n}-workflow rotation ending at prompt 10 and at prompt 30",
               "median_rss_mib_at_10": round(med10, 1), "median_rss_mib_at_30": round(med30, 1),
               "max_cache_tensors": max(r["cache_tensors"] for r in rows), "max_run_state": max(r["run_state"] for r in rows),
               "rows": rows}
    (tmp / "soak.json").write_text(json.dumps(summary, indent=1))
    if os.environ.get("COHERENT_VIDEO_SOAK_JSON"):
        Path(os.environ["COHERENT_VIDEO_SOAK_JSON"]).write_text(json.dumps(summary, indent=1))
    print(f"soak: RSS {summary['rss_mib_at_10']} MiB at prompt 10, {summary['rss_mib_at_30']} MiB at 30 "
          f"({summary['growth_10_to_30_pct']:+.2f} %), {summary['seconds']} s")
    assert growth <= 0.03, summary


# ------------------------------------------------------------------------------------------------
# /interrupt through the server, per patch
# ------------------------------------------------------------------------------------------------
def _brn_model_prompt() -> dict:
    """BaseResidualNoiseModel is in no bundled workflow: a small prompt of its own."""
    from coherent_video.nodes.base_residual_noise import BaseResidualNoiseModel

    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "random_sd15.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a boat"}},
        "3": {"class_type": BaseResidualNoiseModel.GET_SCHEMA().node_id,
              "inputs": {"model": ["1", 0], "mode": "shared", "base_ratio": 0.6, "alpha": 1.0, "key_frame": -1,
                         "initial_noise": True, "per_step_noise": True, "lambda_schedule": ""}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 3}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "positive": ["2", 0], "negative": ["2", 0],
                                                   "latent_image": ["4", 0], "seed": 3, "steps": 1, "cfg": 4.0,
                                                   "sampler_name": "euler_ancestral", "scheduler": "normal",
                                                   "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveAnimatedWEBP", "inputs": {"images": ["6", 0], "filename_prefix": "brn_model",
                                                           "fps": 8.0, "lossless": True, "quality": 100,
                                                           "method": "default"}},
    }


def _pack_node_id(cls_name: str) -> str:
    from coherent_video.nodes import all_nodes

    return next(c for c in all_nodes() if c.__name__ == cls_name).GET_SCHEMA().node_id


# patch -> (workflow or None for the BaseResidualNoiseModel prompt, the sampling node class to stop)
INTERRUPTS = {
    "BaseResidualNoise": ("VideoFusion shared noise video - SD1.5.json", "SamplerCustomAdvanced"),
    "BaseResidualNoiseModel": (None, "KSampler"),
    "ReferenceImageCondition": ("VideoGen reference image video - SD1.5.json", "SamplerCustomAdvanced"),
    "CrossStreamAttention": ("Cross-frame attention video - SD1.5.json", "KSampler"),
    "MotionSmoothingPatch": ("DSDN dual-stream video - SD1.5.json", "KSampler"),
    "IterativeReuseSampler": ("VidRD long video clip by clip - SD1.5.json", "IterativeReuseSampler"),
    "FlowTemporalUpsample": ("Frame interpolation x4 - no weights.json", "FlowTemporalUpsample"),
}


def interrupt_prompt(patch: str) -> tuple[dict, str]:
    """A prompt that runs long enough to be stopped (3 steps; the flow node: 5 frames), saving lossless
    WebP frames; and the id of the node to stop in."""
    wf, stop_class = INTERRUPTS[patch]
    prompt = _brn_model_prompt() if wf is None else tiny_prompt(wf, 7)
    stop_class = _pack_node_id(stop_class) if stop_class in ("IterativeReuseSampler", "FlowTemporalUpsample") \
        else stop_class
    for nid, node in list(prompt.items()):
        ct, inp = node["class_type"], node["inputs"]
        if ct in ("KSampler", "BasicScheduler"):
            inp["steps"] = 3
        if "total_frames" in inp:
            inp.update(total_frames=5, overlap=1, steps=2)
        if ct == "ImageFromBatch" and nid.startswith("90"):
            inp["length"] = 5
        if "chunk_size" in inp:  # the flow node: one pair per chunk (a progress event each), slowest preset
            inp.update(chunk_size=1, quality="quality")
        if ct == "SaveAnimatedWEBP":
            inp.update(lossless=True, quality=100, filename_prefix=f"interrupt_{patch}")
        if ct == "CreateVideo":  # the demo's MP4: saved as lossless WebP frames instead
            images = inp["images"]
            del prompt[nid]
            for other_id, other in list(prompt.items()):
                if other["class_type"] == "SaveVideo":
                    prompt[other_id] = {"class_type": "SaveAnimatedWEBP", "inputs": {
                        "images": images, "filename_prefix": f"interrupt_{patch}", "fps": 8.0, "lossless": True,
                        "quality": 100, "method": "default"}}
    stop = [nid for nid, n in prompt.items() if n["class_type"] == stop_class]
    if len(stop) > 1:  # dual_stream: the sampler that takes the patched model
        patch_id = _pack_node_id(patch)
        stop = [nid for nid in stop if prompt[str(prompt[nid]["inputs"]["model"][0])]["class_type"] == patch_id]
    assert len(stop) == 1, (patch, stop_class)
    return prompt, stop[0]


async def _run_and_interrupt(base: str, prompt: dict, stop_node: str, after: int) -> list:
    """Post ``prompt``; at the ``after``-th progress event of ``stop_node`` POST /interrupt. -> the events."""
    import aiohttp

    client = uuid.uuid4().hex
    events = []
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(base.replace("http", "ws") + f"/ws?clientId={client}") as ws:
            async with s.post(base + "/prompt", json={"prompt": prompt, "client_id": client}) as r:
                resp = await r.json()
            assert not resp.get("node_errors"), resp
            seen = 0
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                m = json.loads(msg.data)
                events.append(m["type"])
                data = m.get("data") or {}
                if m["type"] == "progress" and str(data.get("node")) == stop_node:
                    seen += 1
                    if seen == after:
                        async with s.post(base + "/interrupt", json={}) as r:
                            assert r.status == 200
                if m["type"] in ("execution_interrupted", "execution_error", "execution_success"):
                    return events + [data.get("node_id") if m["type"] != "execution_success" else None]
    raise AssertionError(events)


def _frames(path: Path):
    import numpy as np
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


def _saved(out_root: Path, outputs: dict) -> list[Path]:
    return sorted(out_root / i["subfolder"] / i["filename"] for o in outputs.values() for i in o.get("images", []))


@pytest.fixture(scope="module")
def fresh_interrupt_outputs(comfy, sd15_ckpt, tmp_path_factory):
    """Every interrupt prompt run to the end in one fresh process, through the headless runner (before the
    server starts, and with this process's freed memory handed back, so two SD1.5 copies never coexist)."""
    import ctypes
    import gc

    import comfy.model_management

    comfy.model_management.unload_all_models()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    d = tmp_path_factory.mktemp("fresh_interrupt")
    paths = {}
    for patch in INTERRUPTS:
        p = d / f"{patch}.json"
        p.write_text(json.dumps(interrupt_prompt(patch)[0]))
        paths[patch] = str(p)
    code = ("import json; from runner import headless as run_workflow\n"
            f"paths = {paths!r}\nres = {{}}\n"
            "for k, p in paths.items():\n"
            f"    res[k] = run_workflow.run(p, output_dir={str(d / 'out')!r}, models_dirs=[{str(Path(sd15_ckpt).parent.parent)!r}],"
            f" input_dir=None, quiet=True)['files']\n"
            f"open({str(d / 'files.json')!r}, 'w').write(json.dumps(res))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {k: [Path(f) for f in v] for k, v in json.loads((d / "files.json").read_text()).items()}


@pytest.mark.parametrize("patch", list(INTERRUPTS))
def test_server_interrupt_mid_run_then_same_as_fresh_process(fresh_interrupt_outputs, server, patch):
    import numpy as np

    base, proc, tmp = server
    prompt, stop_node = interrupt_prompt(patch)
    # stop after the first progress event of the patched sampling node (step 1 of 3; flow: pair 1 of 4;
    # IterativeReuseSampler: step 1 of its second clip)
    after = 3 if patch == "IterativeReuseSampler" else 1
    events = asyncio.run(_run_and_interrupt(base, prompt, stop_node, after))
    assert events[-2] == "execution_interrupted" and str(events[-1]) == stop_node, events[-12:]
    live = _get(base + "/coherent_video_probe/live")
    assert live["cache_tensors"] == 0 and live["run_state"] == 0, live
    # the same prompt again (same seeds): runs to the end and equals the fresh process frame for frame
    resp = _post(base + "/prompt", {"prompt": prompt, "client_id": "again"})
    h = _wait(base, resp["prompt_id"])
    assert h["status"].get("status_str") == "success", h["status"]
    ours = _saved(tmp / "out", h["outputs"])
    theirs = fresh_interrupt_outputs[patch]
    assert len(ours) == len(theirs) >= 1
    for a, b in zip(ours, theirs):
        fa, fb = _frames(a), _frames(b)
        assert fa.shape == fb.shape and np.array_equal(fa, fb), (patch, a, b)
