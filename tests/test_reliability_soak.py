"""Soak: the real ``main.py --cpu`` with the pack runs 30 prompts (every bundled workflow, shrunk to
tiny sizes, in rotation, new seeds). After each prompt the server's RSS is read (psutil on its pid)
and a probe (a test-only custom node folder given to the server through ``custom_nodes`` in
extra_model_paths.yaml, registering one GET route) counts, inside the server process:
- tensors reachable from the pack's module-level objects (its caches: RIFE weights, lru caches'
  holders, registries), and
- live run-state objects (RunState, ReferenceBank, TrajectoryReplay).
Both must be 0 between prompts; RSS may grow by at most 3 % from prompt 10 to prompt 30.

Then, per patch, ``/interrupt`` mid-sampling through the server: the prompt is stopped during the
patched node's progress, and re-posting it gives the same frames as a fresh process.

Figures go to $COHERENT_VIDEO_SOAK_JSON when set (the README's Reliability section).
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = 30
PROBE = '''
import gc, sys, types, functools
import torch
from aiohttp import web
from server import PromptServer

PACK_DIR = {pack_dir!r}
RUN_STATE = ("RunState", "ReferenceBank", "TrajectoryReplay")


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
            if isinstance(m, types.ModuleType) and str(getattr(m, "__file__", "") or "").startswith(PACK_DIR)]
    seen, tensors, lru = set(), 0, {{}}
    for m in mods:
        for name, v in list(vars(m).items()):
            if isinstance(v, functools._lru_cache_wrapper):
                lru[m.__name__.rsplit(".", 1)[-1] + "." + name] = v.cache_info().currsize
            tensors += _count(v, seen)
    run_state = sum(1 for o in gc.get_objects() if type(o).__name__ in RUN_STATE
                    and str(getattr(sys.modules.get(type(o).__module__), "__file__", "")).startswith(PACK_DIR))
    return web.json_response({{"pack_modules": len(mods), "cache_tensors": tensors, "run_state": run_state,
                              "lru_entries": lru}})

NODE_CLASS_MAPPINGS = {{}}
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


@pytest.fixture(scope="module")
def server(comfy, pack, sd15_ckpt, tmp_path_factory):
    from tools.comfy_env import comfyui_path

    tmp = tmp_path_factory.mktemp("soak")
    probe = tmp / "custom_nodes" / "coherent_video_probe"
    probe.mkdir(parents=True)
    (probe / "__init__.py").write_text(PROBE.format(pack_dir=str(ROOT.resolve())))
    yaml = tmp / "extra_model_paths.yaml"
    yaml.write_text(f"soak:\n  base_path: {Path(sd15_ckpt).parent.parent}\n  checkpoints: checkpoints\n"
                    f"  custom_nodes: {tmp / 'custom_nodes'}\n")
    for d in ("out", "temp"):
        (tmp / d).mkdir()
    port = _free_port()
    log = open(tmp / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
                             "--extra-model-paths-config", str(yaml), "--output-directory", str(tmp / "out"),
                             "--input-directory", str(ROOT / "workflows" / "inputs"),
                             "--temp-directory", str(tmp / "temp")],
                            cwd=comfyui_path(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while True:
        if proc.poll() is not None:
            raise AssertionError("server exited:\n" + (tmp / "server.log").read_text()[-4000:])
        try:
            _get(base + "/system_stats", timeout=2)
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                raise AssertionError("server did not come up:\n" + (tmp / "server.log").read_text()[-4000:])
            time.sleep(1)
    yield base, proc, tmp
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def tiny_prompt(workflow: str, k: int) -> dict:
    """The bundled workflow as an API prompt, shrunk: 64 px frames, 3 frames, 1 step, seed/frames from k."""
    from tools import run_workflow

    prompt, _ = run_workflow.load_workflow(str(ROOT / "workflows" / workflow))
    extra = {}
    for nid, node in list(prompt.items()):
        ct, inp = node["class_type"], node["inputs"]
        if ct == "EmptyLatentImage":
            inp.update(width=64, height=64, batch_size=min(inp["batch_size"], 3))
        elif ct in ("KSampler", "BasicScheduler"):
            inp["steps"] = 1
        elif ct == "ImageFromBatch":
            inp.update(batch_index=k % 5, length=3)
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
    workflows = sorted(p.name for p in (ROOT / "workflows").glob("*.json"))
    assert len(workflows) >= 5
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
    growth = rows[-1]["rss_mib"] / rows[9]["rss_mib"] - 1
    summary = {"prompts": PROMPTS, "seconds": round(time.time() - t0, 1), "rss_mib_at_10": round(rows[9]["rss_mib"], 1),
               "rss_mib_at_30": round(rows[-1]["rss_mib"], 1), "growth_10_to_30_pct": round(100 * growth, 2),
               "max_cache_tensors": max(r["cache_tensors"] for r in rows), "max_run_state": max(r["run_state"] for r in rows),
               "rows": rows}
    (tmp / "soak.json").write_text(json.dumps(summary, indent=1))
    if os.environ.get("COHERENT_VIDEO_SOAK_JSON"):
        Path(os.environ["COHERENT_VIDEO_SOAK_JSON"]).write_text(json.dumps(summary, indent=1))
    print(f"soak: RSS {summary['rss_mib_at_10']} MiB at prompt 10, {summary['rss_mib_at_30']} MiB at 30 "
          f"({summary['growth_10_to_30_pct']:+.2f} %), {summary['seconds']} s")
    assert growth <= 0.03, summary
