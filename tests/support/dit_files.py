"""Random-weight model FILES for running the bundled Wan templates headless: what UNETLoader, CLIPLoader and
VAELoader load in place of the real Wan 2.1 files (the templates name those; tests swap these in with ``--set``).

- ``diffusion_models/tiny_wan21_t2v.safetensors``: a Wan 2.1 T2V DiT that ComfyUI's own model detection reads as
  one (``comfy.model_detection``: heads = dim / 128, so dim 256 = 2 heads; 2 layers), text width 768;
- ``text_encoders/random_clip_l.safetensors``: the CLIP-L of the random SD1.5 checkpoint (width 768), loaded with
  CLIPLoader type ``stable_diffusion``: UMT5-XXL has one fixed 5.7 B-parameter config in ComfyUI, far too big to
  write at random here, so the test swaps the text encoder too (the graph is otherwise the template's);
- ``vae/tiny_wan21_vae.safetensors``: a Wan 2.1 VAE of base width 8 (ComfyUI reads the width from
  ``decoder.head.0.gamma``), 16 latent channels, 4x time / 8x space compression as the real one.

Written once into the models folder of the random SD1.5 checkpoint (``$COHERENT_VIDEO_CACHE/models``), seeded.
"""
from __future__ import annotations

from pathlib import Path

import torch

TINY_WAN = "tiny_wan21_t2v.safetensors"
RANDOM_CLIP_L = "random_clip_l.safetensors"
TINY_WAN_VAE = "tiny_wan21_vae.safetensors"
# Wan 2.2 A14B image-to-video: two experts of the Wan 2.1 architecture with in_dim 36 (16 noise + 16 image latent +
# 4 mask channels) and no CLIP-vision img_emb, as the real files; ComfyUI detects them as such from the weights.
TINY_WAN22_I2V_HIGH = "tiny_wan22_i2v_high_noise.safetensors"
TINY_WAN22_I2V_LOW = "tiny_wan22_i2v_low_noise.safetensors"


def _fixtures():
    from . import fixtures

    return fixtures


def _save(sd: dict, path: Path, dtype: torch.dtype = torch.float16) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().to(dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in sd.items()}, str(tmp))
    tmp.replace(path)


def write_tiny_wan(path: Path, seed: int = 0, in_dim: int = 16) -> Path:
    import comfy.ldm.wan.model
    import comfy.ops

    dm = comfy.ldm.wan.model.WanModel(model_type="t2v", patch_size=(1, 2, 2), text_len=512, in_dim=in_dim, dim=256,
                                      ffn_dim=512, freq_dim=256, text_dim=4096, out_dim=16, num_heads=2, num_layers=2,
                                      window_size=(-1, -1), qk_norm=True, cross_attn_norm=True, eps=1e-6,
                                      device=torch.device("cpu"), dtype=torch.float32,
                                      operations=comfy.ops.disable_weight_init)
    _fixtures().deterministic_init_(dm, seed=seed)
    _save(dm.state_dict(), path)
    return path


def write_tiny_wan_vae(path: Path, seed: int = 0) -> Path:
    import comfy.ldm.wan.vae

    vae = comfy.ldm.wan.vae.WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                   temperal_downsample=[False, True, True], dropout=0.0)
    _fixtures().deterministic_init_(vae, seed=seed, gain=0.5)
    _save(vae.state_dict(), path)
    return path


def write_clip_l(path: Path, sd15_checkpoint: Path | None = None) -> Path:
    """The random SD1.5 checkpoint's CLIP-L as a standalone text-encoder file (built from the same seed, so the
    checkpoint itself is not needed: ``sd15_checkpoint`` is accepted for the callers that have it)."""
    _save(_fixtures().random_clip_l_state_dict(), path)
    return path


def wan_model_files(sd15_checkpoint: str | Path) -> dict:
    """{loader input: file name} of the random Wan files, written (once) beside the random SD1.5 checkpoint's folder
    (``<models>/checkpoints/random_sd15.safetensors`` -> ``<models>/diffusion_models/...`` etc.)."""
    models = Path(sd15_checkpoint).parent.parent
    files = {models / "diffusion_models" / TINY_WAN: lambda p: write_tiny_wan(p),
             models / "text_encoders" / RANDOM_CLIP_L: lambda p: write_clip_l(p, Path(sd15_checkpoint)),
             models / "vae" / TINY_WAN_VAE: lambda p: write_tiny_wan_vae(p)}
    for path, writer in files.items():
        if not path.is_file():
            writer(path)
    return {"unet_name": TINY_WAN, "clip_name": RANDOM_CLIP_L, "vae_name": TINY_WAN_VAE, "models_dir": models}


def wan22_i2v_model_files(sd15_checkpoint: str | Path) -> dict:
    """:func:`wan_model_files` plus the two tiny Wan 2.2 A14B I2V experts (``high``, ``low``; different seeds)."""
    files = wan_model_files(sd15_checkpoint)
    models = files["models_dir"]
    for name, seed in ((TINY_WAN22_I2V_HIGH, 20), (TINY_WAN22_I2V_LOW, 21)):
        path = models / "diffusion_models" / name
        if not path.is_file():
            write_tiny_wan(path, seed=seed, in_dim=36)
    return {**files, "high": TINY_WAN22_I2V_HIGH, "low": TINY_WAN22_I2V_LOW}


def swap_in_tiny_files(prompt: dict, files: dict, sizes: dict, unets: dict | None = None) -> dict:
    """A Wan template's API prompt with the random files swapped in (``files``: :func:`wan_model_files` or
    :func:`wan22_i2v_model_files`; ``unets``: {template unet name: random file} where a template loads several
    experts, else every UNETLoader takes ``files["unet_name"]``), the prompt encoded by the random CLIP-L and widened
    to 4096 by the pack's ``CoherentVideo_PadConditioningWidth`` node, and ``sizes`` ({node type or node id:
    {input: value}}). Every other node, link and input stays the template's."""
    widen, next_id = {}, 9000
    for nid, node in list(prompt.items()):
        t, ins = node["class_type"], node["inputs"]
        if t == "UNETLoader":
            ins["unet_name"] = unets[ins["unet_name"]] if unets else files["unet_name"]
        elif t == "CLIPLoader":
            ins["clip_name"], ins["type"] = files["clip_name"], "stable_diffusion"
        elif t == "VAELoader":
            ins["vae_name"] = files["vae_name"]
        elif t == "CLIPTextEncode":
            widen[nid] = str(next_id)
            prompt[str(next_id)] = {"class_type": "CoherentVideo_PadConditioningWidth",
                                    "inputs": {"conditioning": [nid, 0], "width": 4096}}
            next_id += 1
        ins.update(sizes.get(t, {}))
        ins.update(sizes.get(nid, {}))
    for node in prompt.values():
        if node["class_type"] == "CoherentVideo_PadConditioningWidth":
            continue
        for k, v in node["inputs"].items():
            if isinstance(v, list) and len(v) == 2 and str(v[0]) in widen:
                node["inputs"][k] = [widen[str(v[0])], v[1]]
    return prompt


# LTX-2 (ComfyUI 0.33+): one checkpoint, as the real ltx-2-19b-dev-fp8.safetensors, that CheckpointLoaderSimple,
# LTXVAudioVAELoader and LTXAVTextEncoderLoader all read. ComfyUI reads every part's config from the file's
# ``config`` metadata (comfy.model_detection: "transformer"; comfy.sd.VAE: "vae" for the video VAE, "audio_vae" and
# "vocoder" for the audio VAE), so a tiny file is detected as LTX-2 by ComfyUI's own loaders:
# - ``model.diffusion_model.*``: an LTXAVModel (detected by ``audio_adaln_single.linear.weight``) with 2 layers, a
#   video stream of 2 x 48 and an audio stream of 2 x 16; caption width 384, so the 768-wide random CLIP-L output is
#   what LTX-2 takes as fully processed text (2 x caption width: video half, audio half);
# - ``vae.*``: an LTX video VAE of base width 8 (patch 4, three 2x time+space compressions: 8x time, 32x space and
#   128 latent channels, as the real one);
# - ``audio_vae.*`` / ``vocoder.*``: the audio VAE at base width 8 (64 mel bins -> 16 latent bins x 8 channels = the
#   128 audio channels LTX-2 takes) and a HiFi-GAN vocoder of width 16.
# The Gemma 3 12B text encoder has one fixed 12 B-parameter config in ComfyUI (comfy.text_encoders.llama
# .Gemma3_12B_Config) and its tokenizer ships only inside the real file (``spiece_model``), so tests swap the
# text encoder loader for CLIPLoader with the random CLIP-L (as the Wan tests swap UMT5-XXL).
TINY_LTX2 = "tiny_ltx2_av.safetensors"
LTX2_CAPTION = 384
_LTX2_TRANSFORMER = {"in_channels": 128, "audio_in_channels": 128, "num_layers": 2, "attention_head_dim": 48,
                     "num_attention_heads": 2, "cross_attention_dim": 96, "audio_attention_head_dim": 16,
                     "audio_num_attention_heads": 2, "audio_cross_attention_dim": 32,
                     "caption_channels": LTX2_CAPTION, "connector_attention_head_dim": LTX2_CAPTION // 2,
                     "connector_num_attention_heads": 2, "connector_num_layers": 1}
_LTX2_VAE = {"_class_name": "CausalVideoAutoencoder", "dims": 3, "in_channels": 3, "out_channels": 3,
             "latent_channels": 128, "blocks": [["res_x", 1], ["compress_all", 1], ["compress_all", 1],
                                                ["compress_all", 1], ["res_x", 1]],
             "scaling_factor": 1.0, "norm_layer": "pixel_norm", "patch_size": 4, "latent_log_var": "uniform",
             "use_quant_conv": False, "causal_decoder": False, "encoder_base_channels": 8,
             "decoder_base_channels": 8}
_LTX2_AUDIO_VAE = {"model": {"params": {"ddconfig": {
    "double_z": True, "mel_bins": 64, "z_channels": 8, "resolution": 256, "downsample_time": False, "in_channels": 2,
    "out_ch": 2, "ch": 8, "ch_mult": [1, 2, 4], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0,
    "mid_block_add_attention": False, "norm_type": "pixel", "causality_axis": "height"}, "sampling_rate": 16000}},
    "preprocessing": {"stft": {"filter_length": 1024, "hop_length": 160}}}
_LTX2_VOCODER = {"resblock_kernel_sizes": [3], "upsample_rates": [5, 4, 2, 2, 2], "upsample_kernel_sizes": [10, 8, 4, 4, 4],
                 "resblock_dilation_sizes": [[1, 3, 5]], "upsample_initial_channel": 32, "stereo": True, "resblock": "1",
                 "activation": "snake", "use_bias_at_final": True, "use_tanh_at_final": True}


def write_tiny_ltx2(path: Path, seed: int = 0) -> Path:
    """The tiny LTX-2 checkpoint described above (ComfyUI 0.33+: needs comfy.ldm.lightricks.av_model)."""
    import json

    import comfy.ldm.lightricks.av_model
    import comfy.ldm.lightricks.vae.audio_vae
    import comfy.ldm.lightricks.vae.causal_video_autoencoder
    import comfy.ops
    from safetensors.torch import save_file

    fx = _fixtures()
    dm = comfy.ldm.lightricks.av_model.LTXAVModel(**_LTX2_TRANSFORMER, dtype=torch.float32, device="cpu",
                                                  operations=comfy.ops.disable_weight_init)
    fx.deterministic_init_(dm, seed=seed)
    vae = comfy.ldm.lightricks.vae.causal_video_autoencoder.VideoVAE(config=_LTX2_VAE)
    fx.deterministic_init_(vae, seed=seed + 1, gain=0.5)
    config = {"transformer": _LTX2_TRANSFORMER, "vae": _LTX2_VAE, "audio_vae": _LTX2_AUDIO_VAE,
              "vocoder": _LTX2_VOCODER}
    audio = comfy.ldm.lightricks.vae.audio_vae.AudioVAE(metadata={"config": json.dumps(config)})
    fx.deterministic_init_(audio, seed=seed + 2, gain=0.5)
    for module in (vae, audio):   # per-channel latent statistics: torch.empty in ComfyUI, identity here
        for name, buf in module.named_buffers():
            if name.endswith("std-of-means"):
                buf.fill_(1.0)
            elif name.endswith("mean-of-means"):
                buf.zero_()
    sd = {f"model.diffusion_model.{k}": v for k, v in dm.state_dict().items()}
    sd.update({f"vae.{k}": v for k, v in vae.state_dict().items()})
    sd.update({f"audio_vae.{k[len('autoencoder.'):]}": v for k, v in audio.state_dict().items()
               if k.startswith("autoencoder.")})
    sd.update({k: v for k, v in audio.state_dict().items() if k.startswith("vocoder.")})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file({k: v.detach().to(torch.float32 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in sd.items()}, str(tmp), metadata={"config": json.dumps(config)})
    tmp.replace(path)
    return path


def ltx2_model_files(sd15_checkpoint: str | Path) -> dict:
    """{"ckpt_name": the tiny LTX-2 checkpoint, "clip_name": the random CLIP-L, "models_dir"}, written (once) beside
    the random SD1.5 checkpoint's folder."""
    files = wan_model_files(sd15_checkpoint)
    path = files["models_dir"] / "checkpoints" / TINY_LTX2
    if not path.is_file():
        write_tiny_ltx2(path)
    return {"ckpt_name": TINY_LTX2, "clip_name": files["clip_name"], "models_dir": files["models_dir"]}


# MiniMax H3 (ComfyUI 0.33+): a diffusion-model file for UNETLoader and a TAE for VAELoader.
# - ``diffusion_models/tiny_minimax_h3.safetensors``: a MiniMaxH3Model (the tiny config of support.families:
#   hidden 64, 2 layers, 2 heads of 32, 1 token-refiner layer) with text width 768, the random CLIP-L's, so
#   CLIPLoader(type "stable_diffusion") + CLIPTextEncode feed it. ComfyUI detects it as comfy.supported_models
#   .MiniMaxH3 from the weights alone (comfy.model_detection: ``video_patch_proj`` + ``audio_patch_proj``; every
#   width, depth and head count is read from a tensor shape; only the 1x2x2 patch, the norm epsilons and the
#   12 / 3 video / audio sigma shifts are fixed). The real text encoder is Qwen3-VL-32B (CLIPLoader type
#   "minimax"): far too big to write at random.
# - ``vae_approx/taeh3.safetensors``: a TAEHV with 24 latent channels, patch 2 and a 12-channel last decoder conv,
#   which comfy.sd.VAE reads as MiniMax H3's TAE (17k+5 frames <-> 5k+2 latent frames, 16x space). VAELoader
#   loads a video TAE from vae_approx/ only under its bare name ("taeh3.safetensors": ``os.path.splitext(name)[0]
#   in video_taes``; any other "taeh3*" name is listed but then looked up in vae/). Its widths are fixed in ComfyUI
#   (11.3 M parameters); the real H3 video VAE is one fixed 2.6 B-parameter config.
# No audio VAE: ComfyUI builds the H3 audio VAE (DAC encoder + BigVGAN decoder) with one fixed 151 M-parameter
# config (comfy.ldm.minimax.audio_vae.MiniMaxH3AudioVAE()), so tests decode the video stream only.
TINY_MINIMAX_H3 = "tiny_minimax_h3.safetensors"
TAEH3 = "taeh3.safetensors"
H3_TEXT_DIM = 768
_H3_TRANSFORMER = {"hidden_size": 64, "num_layers": 2, "token_refiner_num_layers": 1, "num_attention_heads": 2,
                   "attention_head_dim": 32, "ffn_hidden_size": 128, "latents_dim": 24, "audio_latents_dim": 32,
                   "text_dim": H3_TEXT_DIM, "timestep_input_dim": 32, "time_embed_hidden_size": 64,
                   "time_embed_dim": 32, "rope_inv_freq_len": 4}


def write_tiny_minimax_h3(path: Path, seed: int = 30) -> Path:
    """The tiny MiniMax H3 DiT described above (ComfyUI 0.33+: needs comfy.ldm.minimax.model), float32."""
    import comfy.ldm.minimax.model
    import comfy.ops

    dm = comfy.ldm.minimax.model.MiniMaxH3Model(**_H3_TRANSFORMER, dtype=torch.float32, device=torch.device("cpu"),
                                                operations=comfy.ops.disable_weight_init)
    _fixtures().deterministic_init_(dm, seed=seed)
    inv = dm.rope.inv_freq   # a buffer the checkpoint fills (torch.empty in ComfyUI); as support.families
    inv.copy_(1.0 / (256.0 ** (torch.arange(inv.numel(), dtype=torch.float32) / inv.numel())))
    _save(dm.state_dict(), path, dtype=torch.float32)
    return path


def write_taeh3(path: Path, seed: int = 31) -> Path:
    """A random TAEHV for MiniMax H3's 24-channel latent (ComfyUI 0.33+). Unit gain: the H3 TAE clamps its frames to
    [0, 1], and at gain 0.5 its ReLU stack shrinks them to ~3e-4 (black in 8 bits); at 1.0 a unit-normal latent
    decodes to frames of mean ~0.17, std ~0.2, all finite."""
    import comfy.taesd.taehv

    tae = comfy.taesd.taehv.TAEHV(latent_channels=24)
    _fixtures().deterministic_init_(tae, seed=seed, gain=1.0)
    _save(tae.state_dict(), path)
    return path


def h3_model_files(sd15_checkpoint: str | Path) -> dict:
    """{"unet_name", "vae_name", "clip_name", "models_dir"} of the random MiniMax H3 files (UNETLoader, VAELoader,
    CLIPLoader type "stable_diffusion"), written (once) into :func:`wan_model_files`' models folder."""
    files = wan_model_files(sd15_checkpoint)
    models = files["models_dir"]
    for path, writer in ((models / "diffusion_models" / TINY_MINIMAX_H3, write_tiny_minimax_h3),
                         (models / "vae_approx" / TAEH3, write_taeh3)):
        if not path.is_file():
            writer(path)
    return {"unet_name": TINY_MINIMAX_H3, "vae_name": TAEH3, "clip_name": files["clip_name"], "models_dir": models}
