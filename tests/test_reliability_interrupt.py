"""Interrupt and exception in the middle of a run, per node, in-process; determinism across processes.

For every patch (both noise nodes, ReferenceImageCondition, CrossStreamAttention, MotionSmoothingPatch,
IterativeReuseSampler in its second clip, FlowTemporalUpsample in its second chunk):
- an APPLY_MODEL wrapper on a clone (another pack's wrapper, official hook) sets ComfyUI's interrupt
  flag, or raises, at step 2 of a 3-step run; the flag is honoured through ComfyUI's progress-bar hook
  (the one main.py installs) or the node's own check. The flow node is stopped from that hook.
- afterwards: the input model and the patched model have their fingerprints unchanged (weights,
  patches, model_options incl. transformer_options, wrappers, callbacks), no run-state object
  (RunState, ReferenceBank, TrajectoryReplay) is alive, and the next run with the same seed equals a
  run in a fresh process bit for bit.
Determinism: two fresh processes give bit-identical outputs for every node.
"""
from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from support.reliability_cases import STOPPABLE, Cases

ROOT = Path(__file__).resolve().parent.parent
RUN_STATE_CLASSES = ("RunState", "ReferenceBank", "TrajectoryReplay")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """The same cases in two separate fresh processes (run side by side)."""
    d = tmp_path_factory.mktemp("fresh")
    outs = [d / "a.pt", d / "b.pt"]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.support.reliability_cases", str(o)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for o in outs]
    for p in procs:
        log = p.communicate(timeout=900)[0]
        assert p.returncode == 0, log[-3000:]
    return tuple(torch.load(o) for o in outs)


@pytest.fixture(scope="module")
def cases(comfy, pack):
    return Cases()


@pytest.fixture()
def progress_hook():
    """ComfyUI's progress-bar hook as main.py installs it (it raises on a pending interrupt), plus a
    slot for the test to act on the n-th progress update."""
    import comfy.model_management as mm
    import comfy.utils

    state = {"on_update": None, "updates": 0}

    def hook(value, total, preview_image, prompt_id=None, node_id=None):
        state["updates"] += 1
        if state["on_update"] is not None:
            state["on_update"](state["updates"])
        mm.throw_exception_if_processing_interrupted()

    comfy.utils.set_progress_bar_global_hook(hook)
    yield state
    comfy.utils.set_progress_bar_global_hook(None)
    mm.interrupt_current_processing(False)


def _live_run_state() -> list:
    gc.collect()
    return [o for o in gc.get_objects()
            if type(o).__name__ in RUN_STATE_CLASSES and type(o).__module__.startswith("coherent_video")]


def _pack_keys(model) -> set:
    to = model.model_options.get("transformer_options", {})
    return {k for k in list(model.model_options) + list(to) if "coherent" in str(k)}


class Stop(RuntimeError):
    pass


def _stopper(action: str, at_call: int):
    """An APPLY_MODEL wrapper as another pack would add one: at its ``at_call``-th call it interrupts
    (ComfyUI's flag, as the server's /interrupt sets it) or raises."""
    import comfy.model_management as mm

    calls = []

    def wrapper(executor, *args, **kwargs):
        calls.append(1)
        if len(calls) == at_call:
            if action == "raise":
                raise Stop("another pack's wrapper failed mid-sampling")
            mm.interrupt_current_processing(True)
        return executor(*args, **kwargs)

    return wrapper, calls


@pytest.mark.parametrize("action", ["interrupt", "raise"])
@pytest.mark.parametrize("name", STOPPABLE)
def test_stop_mid_run_leaves_nothing_behind(cases, fresh, progress_hook, name, action):
    import comfy.model_management as mm
    from comfy.patcher_extension import WrappersMP
    from support import fixtures

    model_fp = fixtures.model_fingerprint(cases.model)
    patched = cases.build(name)
    patched_fp = fixtures.model_fingerprint(patched)
    keys = _pack_keys(patched)
    expected = mm.InterruptProcessingException if action == "interrupt" else Stop

    if name == "FlowTemporalUpsample":  # stopped between its chunks (no model): from the progress hook
        def on_update(n):
            if n == 2:
                if action == "raise":
                    raise Stop("failed mid-video")
                mm.interrupt_current_processing(True)

        progress_hook["on_update"] = on_update
        with pytest.raises(expected):
            cases.run(name, patched)
        progress_hook["on_update"] = None
        assert progress_hook["updates"] == 2  # mid-video: 3 pairs, stopped after the second
    else:
        # call 2 of a 4-step run; IterativeReuseSampler: call 2 of its second clip (3 steps per clip, 1 call each)
        at = Cases.STEPS + 2 if name == "IterativeReuseSampler" else 2
        stopped = patched.clone()
        wrapper, calls = _stopper(action, at)
        stopped.add_wrapper_with_key(WrappersMP.APPLY_MODEL, "other_pack.test", wrapper)
        with pytest.raises(expected):
            cases.run(name, stopped)
        assert at <= len(calls) <= at + 1, calls  # it stopped in the middle, not at the end
        del stopped
    mm.interrupt_current_processing(False)

    fixtures.assert_same_fingerprint(model_fp, fixtures.model_fingerprint(cases.model))
    fixtures.assert_same_fingerprint(patched_fp, fixtures.model_fingerprint(patched))
    assert _pack_keys(patched) == keys and not _pack_keys(cases.model)
    assert _live_run_state() == []
    again = cases.run(name, patched)
    assert torch.equal(again, fresh[0][name]), f"{name}: the run after the {action} differs from a fresh process"


def test_two_fresh_processes_agree_bit_for_bit(fresh, pack):
    from coherent_video.nodes import all_nodes

    a, b = fresh
    from coherent_video.model_patches.hooks.stream_windows import unavailable

    names = {c.__name__ for c in all_nodes()}
    if unavailable() is not None:   # the node cannot run on this ComfyUI (0.3.75): it raises a named error instead
        print(f"StreamContextWindows has no determinism case here: {unavailable()}")
        names.discard("StreamContextWindows")
    assert names <= set(a), names - set(a)  # every node has a determinism case
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name
        assert bool(torch.isfinite(a[name]).all()), name
