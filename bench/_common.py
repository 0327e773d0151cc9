"""Shared by the benchmark scripts: the fixtures, timing, and the results JSON.

Benchmarks run from the repository root as modules (``.venv/bin/python -m bench.noise``), so the repository
root is on ``sys.path``. This module is their one way in to the test fixtures: ``tests/support`` is imported
here, before any script boots ComfyUI (whose own ``tests`` package would hide ours once ComfyUI's folder is
first on ``sys.path``); scripts take ``fixtures``/``motion_module``/``comfy_env`` from here.
"""
from __future__ import annotations

import json
import sys
import platform
import time
from pathlib import Path

from runner import ROOT, comfy_env  # noqa: F401  (re-exported for the scripts)
from tests.support import families, fixtures, motion_module  # noqa: F401  (before ComfyUI's folder goes on sys.path)
from tests.support.fixtures import load_pack_module  # noqa: F401

RESULTS = ROOT / "bench" / "results"


def timeit(fn, repeat: int = 7, warmup: int = 2, min_sample_s: float = 0.05) -> float:
    """Seconds per call of ``fn()``: the minimum over ``repeat`` samples, each the mean of enough calls to
    last ``min_sample_s``. The minimum is the figure least disturbed by other load on the machine."""
    for _ in range(warmup):
        fn()
    t = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t, 1e-6)
    inner = max(1, int(min_sample_s / one))
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return min(samples)


def timeit_many(fns: dict, repeat: int = 9, warmup: int = 2, min_sample_s: float = 0.05) -> dict:
    """Like :func:`timeit` for several functions, with their samples interleaved so that every one of them
    sees the same load on the machine; returns {name: seconds per call}."""
    inner = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t = time.perf_counter()
        fn()
        inner[name] = max(1, int(min_sample_s / max(time.perf_counter() - t, 1e-6)))
    best = {name: float("inf") for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            for _ in range(inner[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t) / inner[name])
    return best


def time_rounds(fns: dict, repeat: int = 5, warmup: int = 1) -> dict:
    """Seconds of one call of every function per round, the functions called in turn within each round
    (interleaved, so a baseline and its technique see the same load): {name: [seconds, one per round]}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    rounds = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            rounds[name].append(time.perf_counter() - t)
    return rounds


def ratio_stats(num: list, den: list) -> dict:
    """Median, min and max of the per-round ratios num[i] / den[i], with the ratios themselves."""
    import statistics

    r = [a / b for a, b in zip(num, den)]
    return {"median": round(statistics.median(r), 4), "min": round(min(r), 4), "max": round(max(r), 4),
            "pairs": [round(x, 4) for x in r]}


def anon_rss() -> int:
    """Anonymous resident memory of this process in bytes (``RssAnon``): the heap and tensors, without the
    file-backed pages (libraries, mapped weights) that the kernel evicts and reloads under memory pressure,
    which make total RSS jump by tens of MiB on a loaded machine."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("RssAnon not in /proc/self/status")


def settle_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc ``malloc_trim``), so that a
    following :func:`anon_rss` reading does not depend on what earlier work left in the allocator."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakAnonRss:
    """Context manager: a thread samples :func:`anon_rss` every ``every`` seconds; ``.peak`` is the highest
    value seen between enter and exit (torch kernels release the GIL, so sampling continues during them)."""

    def __init__(self, every: float = 0.002):
        import threading

        self.every, self.peak, self._stop = every, 0, threading.Event()

    def __enter__(self):
        import threading

        self.peak = anon_rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, anon_rss())
            time.sleep(self.every)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, anon_rss())


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_results(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {**data, "machine": machine(), "command": " ".join([f"python -m bench.{name}", *sys.argv[1:]])}
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def core_frame_interpolation(state_dict: dict):
    """Core ComfyUI's frame interpolation for the benchmarks' side by side: ``(FrameInterpolate node class, an
    INTERP_MODEL patcher)`` with ``state_dict`` (RIFE 4.x) loaded by core's own FrameInterpolationModelLoader code,
    fp32, as that node's loader builds it. Raises LookupError, with the reason, where this ComfyUI has no such node
    (0.3.75) or its loader refuses the weights."""
    import torch

    try:
        import comfy_extras.nodes_frame_interpolation as fi
    except ImportError as e:
        raise LookupError(f"this ComfyUI has no FrameInterpolate node ({e})") from e
    import comfy.model_management as mm
    import comfy.model_patcher

    try:
        model = fi.FrameInterpolationModelLoader._detect_and_load(state_dict)
    except Exception as e:  # noqa: BLE001 - the loader's own refusal, reported as such
        raise LookupError(f"core's FrameInterpolationModelLoader refuses these weights: {e}") from e
    model.eval().to(torch.float32)
    return fi.FrameInterpolate, comfy.model_patcher.CoreModelPatcher(
        model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())
