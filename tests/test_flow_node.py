"""FlowTemporalUpsample through real ComfyUI: shapes, bit-identical originals, latents, cuts, errors,
progress bar and interrupt."""
from __future__ import annotations

import pytest
import torch
from skimage import data


@pytest.fixture(scope="module")
def node(comfy, pack):
    from coherent_video.nodes.flow_upsample import FlowTemporalUpsample

    return FlowTemporalUpsample


@pytest.fixture(scope="module")
def astro():
    return torch.from_numpy(data.astronaut().copy()).float().div(255)  # (512, 512, 3)


def clip(astro, n=3, step=2, size=32):
    """IMAGE batch (n, size, size, 3): a window panning right by `step` px per frame."""
    return torch.stack([astro[150:150 + size, 150 + step * i:150 + step * i + size] for i in range(n)])


def run(node, **kw):
    kw.setdefault("quality", "fast")
    return node.execute(**kw)


def psnr(a, b):
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean()))


def test_schema_lists_the_node(comfy, node):
    assert comfy.NODE_CLASS_MAPPINGS["CoherentVideo_FlowTemporalUpsample"].__name__ == node.__name__
    schema = node.GET_SCHEMA()
    assert all(i.tooltip for i in schema.inputs)
    # issue 12: no combo with a single option (the old 'method' combo offered only 'weight-free flow'
    # when no RIFE file was installed); RIFE comes in through the optional rife_model input
    combos = [i for i in schema.inputs if getattr(i, "options", None) is not None]
    assert combos and all(len(i.options) >= 2 for i in combos), [(i.id, i.options) for i in combos]
    assert "method" not in [i.id for i in schema.inputs]
    rife = next(i for i in schema.inputs if i.id == "rife_model")
    assert rife.optional


def test_import_mutates_no_comfyui_global(comfy, pack):
    """Issue 9: importing the node module must not register or change any model folder of ComfyUI
    (core 0.35 owns models/frame_interpolation for its own RIFE/FILM nodes)."""
    import copy
    import importlib

    import folder_paths

    import coherent_video.model_patches.hooks.flow as hooks
    import coherent_video.nodes.flow_upsample as mod

    saved = folder_paths.folder_names_and_paths.pop("frame_interpolation", None)
    before = copy.deepcopy(folder_paths.folder_names_and_paths)
    try:
        importlib.reload(hooks)
        importlib.reload(mod)
        mod.FlowTemporalUpsample.GET_SCHEMA()
        mod.RIFELoader.GET_SCHEMA()
        assert folder_paths.folder_names_and_paths == before
        assert "frame_interpolation" not in folder_paths.folder_names_and_paths
    finally:
        if saved is not None:
            folder_paths.folder_names_and_paths["frame_interpolation"] = saved


def test_multiplier_keeps_originals_bit_identical(node, astro):
    imgs = clip(astro, 3, 2)
    out = run(node, images=imgs, multiplier=2, source_fps=10.0)
    res, lat, fps = out.result
    assert res.shape == (5, 32, 32, 3) and lat is None and fps == 20.0
    assert torch.equal(res[::2], imgs)
    mids = torch.stack([astro[150:182, 151 + 2 * i:183 + 2 * i] for i in range(2)])
    assert psnr(res[1::2][:, 4:-4, 4:-4], mids[:, 4:-4, 4:-4]) > 30
    out4 = run(node, images=imgs, multiplier=4, occlusion="softmax splatting").result[0]
    assert out4.shape[0] == 9 and torch.equal(out4[::4], imgs)


def test_target_fps(node, astro):
    imgs = clip(astro, 3, 2)
    res, _, fps = run(node, images=imgs, target_fps=60.0, source_fps=24.0).result
    assert res.shape[0] == 6 and fps == 60.0  # times 0, .4, .8, 1.2, 1.6, 2.0
    assert torch.equal(res[0], imgs[0]) and torch.equal(res[5], imgs[2])


def test_latent_with_and_without_images(node, astro):
    imgs = clip(astro, 3, 8, 64)
    g = torch.Generator().manual_seed(0)
    lat = torch.randn(3, 4, 8, 8, generator=g)
    res, out_lat, _ = run(node, images=imgs, latent={"samples": lat, "batch_index": [0, 1, 2]}, multiplier=3).result
    assert res.shape[0] == 7 and out_lat["samples"].shape == (7, 4, 8, 8)
    assert torch.equal(out_lat["samples"][::3], lat) and "batch_index" not in out_lat
    # latent alone, 5-D video latent (B, C, T, h, w) with two videos
    vid = torch.randn(2, 4, 3, 8, 8, generator=g)
    res, out_lat, _ = run(node, latent={"samples": vid}, multiplier=2).result
    assert res is None and out_lat["samples"].shape == (2, 4, 5, 8, 8)
    assert torch.equal(out_lat["samples"][:, :, ::2], vid)
    assert torch.isfinite(out_lat["samples"]).all()


def test_scene_cut_repeats_frames(node, astro):
    coffee = torch.from_numpy(data.coffee().copy()).float().div(255)
    imgs = torch.stack([astro[100:132, 100:132], astro[100:132, 102:134], coffee[100:132, 100:132]])
    res = run(node, images=imgs, multiplier=4).result[0]
    assert torch.equal(res[5], imgs[1]) and torch.equal(res[7], imgs[2])  # t=.25 -> frame 1, t=.75 -> frame 2
    assert not torch.equal(res[1], imgs[0])  # no cut between frames 0 and 1
    res = run(node, images=imgs, multiplier=4, scene_cut_detection=False).result[0]
    assert not torch.equal(res[5], imgs[1])


@pytest.mark.parametrize("kwargs,inp,msg", [
    (lambda a: dict(images=clip(a, 1)), "images", "at least 2 frames"),
    (lambda a: dict(images=torch.zeros(0, 8, 8, 3)), "images", "empty batch"),
    (lambda a: dict(images=clip(a, 3), multiplier=1), "multiplier", "[2, 8]"),
    (lambda a: dict(images=clip(a, 3).index_put_((torch.tensor([1]),), torch.tensor(float("nan")))),
     "images", "NaN"),
    (lambda a: dict(), "images", "connect"),
    (lambda a: dict(latent={"samples": torch.zeros(0, 4, 8, 8)}), "latent", "empty batch"),
    (lambda a: dict(latent={"samples": torch.zeros(1, 4, 8, 8)}), "latent", "at least 2 frames"),
    (lambda a: dict(images=clip(a, 3), latent={"samples": torch.zeros(4, 4, 4, 4)}), "latent", "has 4 frames"),
    (lambda a: dict(images=clip(a, 3), latent={"samples": torch.zeros(3, 4, 4, 8)}), "latent", "aspect"),
    (lambda a: dict(latent={"samples": torch.full((2, 4, 4, 4), float("inf"))}), "latent", "NaN or Inf"),
    (lambda a: dict(images=clip(a, 3), target_fps=12.0, source_fps=24.0), "target_fps", "exceed"),
])
def test_bad_input_names_node_and_input(node, astro, kwargs, inp, msg):
    from coherent_video.nodes._common import NodeInputError

    with pytest.raises(NodeInputError) as e:
        run(node, **kwargs(astro))
    assert str(e.value).startswith(f"[FlowTemporalUpsample] input '{inp}':") and msg in str(e.value)


def test_progress_bar_and_interrupt(node, astro):
    import comfy.model_management as mm
    import comfy.utils

    seen = []
    old = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda v, total, preview, node_id=None: seen.append((v, total)))
    try:
        run(node, images=clip(astro, 4), multiplier=2, chunk_size=1)
    finally:
        comfy.utils.set_progress_bar_global_hook(old)
    # ComfyUI 0.35 throttles ProgressBar updates, so only the order and the last tick are fixed
    assert seen and all(total == 3 for _, total in seen)
    values = [v for v, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values) and values[-1] == 3
    mm.interrupt_current_processing(True)
    try:
        with pytest.raises(mm.InterruptProcessingException):
            run(node, images=clip(astro, 4), multiplier=2)
    finally:
        mm.interrupt_current_processing(False)
