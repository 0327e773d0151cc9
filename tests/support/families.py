"""One fixture builder for every model family the pack serves: SD1.5 and the DiT video models.

``build(family, ...)`` returns a :class:`Fixture`: a real ``ModelPatcher`` around a tiny random
model of the REAL ComfyUI class, built through ``comfy.supported_models``, with seeded weights
(same seed, bit-identical weights), CONDITIONING of the model's text width and an empty latent
in the family's own latent format.

=================  ===========================================  ========  ===========  ========  ==========
family             ``comfy.supported_models`` class             channels  compression  text dim  latent
                                                                          (T, H/W)
=================  ===========================================  ========  ===========  ========  ==========
``sd15``           ``SD15`` (U-Net, ``model_base.BaseModel``)   4         (1, 8)       32        [F,4,H,W]
``wan21_t2v``      ``WAN21_T2V`` (``model_base.WAN21``)         16        (4, 8)       32        [B,16,T,H,W]
``wan22_t2v``      ``WAN21_T2V`` (Wan 2.2 A14B T2V is the 2.1   16        (4, 8)       32        [B,16,T,H,W]
                   architecture and ``Wan21`` latent)
``wan22_ti2v_5b``  ``WAN22_T2V`` (``model_base.WAN22``, 5B)     48        (4, 16)      32        [B,48,T,H,W]
``hunyuan15_t2v``  ``HunyuanVideo15``                            32        (4, 16)      32        [B,32,T,H,W]
``ltxv``           ``LTXV`` (``model_base.LTXV``)               128       (8, 32)      32        [B,128,T,H,W]
=================  ===========================================  ========  ===========  ========  ==========

Image-to-video and audio-video families, built on request (``EXTRA_FAMILIES``, ``AV_FAMILIES``):

==================  ==========================================  ========  ===========  ========  =====================
family              ``comfy.supported_models`` class            channels  compression  text dim  latent
==================  ==========================================  ========  ===========  ========  =====================
``wan21_i2v``       ``WAN21_I2V`` (in_dim 36)                   16        (4, 8)       32        [B,16,T,H,W]
``wan22_i2v_a14b``  ``WAN21_I2V``, two experts (high-noise =    16        (4, 8)       32        [B,16,T,H,W]
                    ``Fixture.model``, low-noise in ``experts``)
``ltx2``            ``LTXAV`` (LTX-2, ComfyUI 0.33+; alias      128 + 8x16 (8, 32)     64        NestedTensor(video
                    ``ltxav``)                                  audio                           [B,128,T,H,W], audio
                                                                                                [B,8,T_a,16])
``minimax_h3``      ``MiniMaxH3`` (ComfyUI 0.33+)               24 + 32x2 (4, 16)      32        NestedTensor(video
                                                                audio                           [B,24,T,H,W], audio
                                                                                                [B,32,2,T_a])
==================  ==========================================  ========  ===========  ========  =====================

The audio-video latents are what ComfyUI's own nodes make: LTX-2 = ``LTXVConcatAVLatent`` of an
``EmptyLTXVLatentVideo``-shaped video latent and an ``LTXVEmptyLatentAudio``-shaped audio latent (LTX-2's audio VAE:
8 channels, 16 frequency bins, 25 latents per second, so ``T_a = round(pixel_frames / fps * 25)``); MiniMax H3 =
the latent format's own ``fix_empty_latent`` of a 24-channel video latent (what ``EmptyMiniMaxH3LatentAV`` and
every sampler on an empty latent give). A ``comfy.nested_tensor.NestedTensor``; the sampler packs it flat
(``comfy.utils.pack_latents``: ``[B, 1, N]``) and the model unpacks it. On ComfyUI without these classes
(0.3.75), building them skips the test with the reason (``pytest.skip``).

The first latent frame of every video family is causal: it holds one image frame, each later
latent frame holds ``temporal_compression`` frames (pixel frames = 1 + c * (T_latent - 1)).

Sizes: ``size="tiny"`` (the test size: width 64, 2 layers, 2 heads; a [1,16,5,8,8] Wan latent
samples in about a second on a CPU) and ``size="mid"`` (a mid-size Wan config for benchmarks).

Import it as ``support.families`` with ``tests/`` on ``sys.path`` (pytest puts it there: ``tests/`` has
no ``__init__.py``). ``tests.support`` does not work: ComfyUI's own ``tests`` package comes first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

TEXT_DIM = 32
TOKENS = 8


def _env():
    from runner import comfy_env
    comfy_env.bootstrap()
    return comfy_env


def _sd15_fixtures():
    from . import fixtures

    return fixtures


def deterministic_init_(module, seed=0, gain=1.0):
    return _sd15_fixtures().deterministic_init_(module, seed=seed, gain=gain)


def model_fingerprint(patcher) -> dict:
    """Weights, patches and options of an input MODEL (the SD1.5 fixtures' fingerprint)."""
    return _sd15_fixtures().model_fingerprint(patcher)


def assert_same_fingerprint(a: dict, b: dict) -> None:
    _sd15_fixtures().assert_same_fingerprint(a, b)


@dataclass(frozen=True)
class FamilySpec:
    name: str
    supported_model: str          # class name in comfy.supported_models
    latent_channels: int
    temporal_compression: int     # pixel frames per latent frame after the causal first one (1: image model)
    spatial_compression: int
    text_dim: int = TEXT_DIM
    video: bool = True
    label: str = ""
    audio: bool = False           # an audio-video model: the LATENT is a NestedTensor (video, audio)


FAMILIES: dict[str, FamilySpec] = {
    "sd15": FamilySpec("sd15", "SD15", 4, 1, 8, video=False, label="SD1.5 U-Net"),
    "wan21_t2v": FamilySpec("wan21_t2v", "WAN21_T2V", 16, 4, 8, label="Wan 2.1 T2V"),
    "wan22_t2v": FamilySpec("wan22_t2v", "WAN21_T2V", 16, 4, 8, label="Wan 2.2 T2V (A14B architecture)"),
    "wan22_ti2v_5b": FamilySpec("wan22_ti2v_5b", "WAN22_T2V", 48, 4, 16, label="Wan 2.2 TI2V 5B"),
    "hunyuan15_t2v": FamilySpec("hunyuan15_t2v", "HunyuanVideo15", 32, 4, 16, label="HunyuanVideo 1.5 T2V"),
    "ltxv": FamilySpec("ltxv", "LTXV", 128, 8, 32, label="LTX-Video"),
}
# Image-to-video variants (concat image + mask channels), built on request; not in FAMILIES so the per-family
# test parametrisations stay the T2V list. HunyuanVideo 1.5 T2V already has the concat channels (65 = 32 + 32 + 1).
EXTRA_FAMILIES: dict[str, FamilySpec] = {
    "wan21_i2v": FamilySpec("wan21_i2v", "WAN21_I2V", 16, 4, 8, label="Wan 2.1 I2V (Wan 2.2 A14B I2V: same class)"),
    "wan22_i2v_a14b": FamilySpec("wan22_i2v_a14b", "WAN21_I2V", 16, 4, 8,
                                 label="Wan 2.2 I2V A14B (high-noise and low-noise experts)"),
}
# Audio-video families (ComfyUI 0.33+). text_dim: LTX-2 takes the processed text of both streams (2 x caption width).
AV_FAMILIES: dict[str, FamilySpec] = {
    "ltx2": FamilySpec("ltx2", "LTXAV", 128, 8, 32, text_dim=2 * TEXT_DIM, audio=True, label="LTX-2 (video + audio)"),
    "minimax_h3": FamilySpec("minimax_h3", "MiniMaxH3", 24, 4, 16, audio=True, label="MiniMax H3 (video + audio)"),
}
ALIASES = {"ltxav": "ltx2"}
VIDEO_FAMILIES = tuple(k for k, v in FAMILIES.items() if v.video)
# The four the issue names (Wan 2.1, Wan 2.2, HunyuanVideo 1.5, LTXV); wan22_ti2v_5b is the extra latent variant.
MAIN_VIDEO_FAMILIES = ("wan21_t2v", "wan22_t2v", "hunyuan15_t2v", "ltxv")


def _wan_config(spec: FamilySpec, size: str) -> dict:
    dim, layers, heads, ffn = {"tiny": (64, 2, 2, 128), "mid": (512, 8, 4, 2048)}[size]
    cfg = {
        "image_model": "wan2.1", "model_type": "t2v", "patch_size": (1, 2, 2), "text_len": TOKENS,
        "in_dim": spec.latent_channels, "out_dim": spec.latent_channels, "dim": dim, "ffn_dim": ffn, "freq_dim": 256,
        "text_dim": spec.text_dim, "num_heads": heads, "num_layers": layers, "window_size": (-1, -1),
        "qk_norm": True, "cross_attn_norm": True, "eps": 1e-6,
    }
    return cfg


def _hunyuan15_config(spec: FamilySpec, size: str) -> dict:
    hidden, heads, depth, single = {"tiny": (64, 2, 1, 1), "mid": (512, 4, 4, 4)}[size]
    head_dim = hidden // heads
    t_axis = head_dim // 4
    axes = [t_axis, (head_dim - t_axis) // 2, (head_dim - t_axis) // 2]
    return {
        "image_model": "hunyuan_video", "in_channels": 2 * spec.latent_channels + 1,
        "out_channels": spec.latent_channels, "patch_size": [1, 1, 1], "vec_in_dim": None,
        "context_in_dim": spec.text_dim, "hidden_size": hidden, "mlp_ratio": 4.0, "num_heads": heads,
        "depth": depth, "depth_single_blocks": single, "axes_dim": axes, "theta": 256, "qkv_bias": True,
        "guidance_embed": False, "byt5": False, "meanflow": False, "use_cond_type_embedding": True,
        "vision_in_dim": 1152, **_new_hunyuan_flags(),
    }


def _new_hunyuan_flags() -> dict:
    """Boolean fields that newer ComfyUI added to ``HunyuanVideoParams`` (0.33: ``meanflow_sum``, read from the
    checkpoint by model_detection), off as model_detection sets them for a checkpoint without the feature."""
    import dataclasses

    from comfy.ldm.hunyuan_video.model import HunyuanVideoParams

    known = {"guidance_embed", "byt5", "meanflow", "use_cond_type_embedding", "qkv_bias"}
    return {f.name: False for f in dataclasses.fields(HunyuanVideoParams)
            if f.name not in known and f.type in (bool, "bool")}


def _ltxv_config(spec: FamilySpec, size: str) -> dict:
    heads, head_dim, layers = {"tiny": (2, 48, 2), "mid": (4, 96, 8)}[size]
    return {
        "image_model": "ltxv", "in_channels": spec.latent_channels, "num_layers": layers,
        "attention_head_dim": head_dim, "num_attention_heads": heads, "cross_attention_dim": heads * head_dim,
        "caption_channels": spec.text_dim,
    }


def _wan_i2v_config(spec: FamilySpec, size: str) -> dict:
    cfg = _wan_config(spec, size)
    cfg.update(model_type="i2v", in_dim=2 * spec.latent_channels + 4)  # noise + image latent + 4-channel mask
    return cfg


def _ltx2_config(spec: FamilySpec, size: str) -> dict:
    """LTX-2 (``LTXAVModel``): a video and an audio stream per block; text = processed video + audio text."""
    heads, head_dim, layers, a_heads, a_head_dim = {"tiny": (2, 48, 2, 2, 16), "mid": (4, 96, 8, 4, 32)}[size]
    return {
        "image_model": "ltxav", "in_channels": spec.latent_channels, "audio_in_channels": 8 * 16,
        "num_layers": layers, "attention_head_dim": head_dim, "num_attention_heads": heads,
        "cross_attention_dim": heads * head_dim, "audio_attention_head_dim": a_head_dim,
        "audio_num_attention_heads": a_heads, "audio_cross_attention_dim": a_heads * a_head_dim,
        "caption_channels": spec.text_dim // 2, "connector_attention_head_dim": spec.text_dim // 4,
        "connector_num_attention_heads": 2, "connector_num_layers": 1,
    }


def _minimax_h3_config(spec: FamilySpec, size: str) -> dict:
    """MiniMax H3 (``MiniMaxH3Model``): one packed stream [text | audio | video] per block, 3-axis RoPE."""
    hidden, layers, heads, ffn = {"tiny": (64, 2, 2, 128), "mid": (512, 8, 4, 1024)}[size]
    return {
        "image_model": "minimax_h3", "hidden_size": hidden, "num_layers": layers, "token_refiner_num_layers": 1,
        "num_attention_heads": heads, "attention_head_dim": hidden // heads, "ffn_hidden_size": ffn,
        "latents_dim": spec.latent_channels, "audio_latents_dim": 32, "text_dim": spec.text_dim,
        "timestep_input_dim": 32, "time_embed_hidden_size": hidden, "time_embed_dim": hidden // 2,
        "rope_inv_freq_len": hidden // heads // 8,   # 3 axes x 2 x len = 3/4 of the head rotated, as the real 16/128
    }


_CONFIGS = {"wan21_t2v": _wan_config, "wan22_t2v": _wan_config, "wan22_ti2v_5b": _wan_config,
            "hunyuan15_t2v": _hunyuan15_config, "ltxv": _ltxv_config, "wan21_i2v": _wan_i2v_config,
            "wan22_i2v_a14b": _wan_i2v_config, "ltx2": _ltx2_config, "minimax_h3": _minimax_h3_config}
_ALL = {**FAMILIES, **EXTRA_FAMILIES, **AV_FAMILIES}   # order fixes each family's weight seed: append only


def spec(family: str) -> FamilySpec:
    family = ALIASES.get(family, family)
    if family not in _ALL:
        raise ValueError(f"unknown family {family!r}; known: {sorted(_ALL) + sorted(ALIASES)}")
    return _ALL[family]


def require_class(family: str):
    """The family's ``comfy.supported_models`` class; skips the test (pytest.skip, with the reason) on a ComfyUI
    that has none (LTX-2 ``LTXAV`` and ``MiniMaxH3`` are in ComfyUI 0.33, not 0.3.75)."""
    import comfy.supported_models

    s = spec(family)
    cls = getattr(comfy.supported_models, s.supported_model, None)
    if cls is None:
        import pytest

        pytest.skip(f"{s.label}: this ComfyUI has no comfy.supported_models.{s.supported_model} (added in ComfyUI "
                    f"0.33; 0.3.75 cannot load the model at all)")
    return cls


def unet_config(family: str, size: str = "tiny") -> dict:
    s = spec(family)
    if not s.video:
        return _sd15_fixtures().tiny_unet_config(TEXT_DIM)
    return _CONFIGS[family](s, size)


def _init_buffers_(family: str, dm) -> None:
    """Buffers the checkpoint fills that ``deterministic_init_`` (parameters only) leaves as ``torch.empty``."""
    if family == "minimax_h3":
        inv = dm.rope.inv_freq
        inv.copy_(1.0 / (256.0 ** (torch.arange(inv.numel(), dtype=torch.float32) / inv.numel())))


def build_model(family: str, seed: int = 0, size: str = "tiny", dtype: torch.dtype = torch.float32):
    """A real ``ModelPatcher`` around a random ``family`` model of the real ComfyUI class, seeded weights."""
    family = ALIASES.get(family, family)
    s = spec(family)
    _env()
    if not s.video:
        if size != "tiny":
            return _sd15_fixtures().sd15_model(seed=seed)
        return _sd15_fixtures().tiny_model(seed=seed)
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.supported_models

    model_config = require_class(family)(unet_config(family, size))
    model_config.set_inference_dtype(dtype, None)
    model = model_config.get_model({}, device=torch.device("cpu"))
    # Distinct seeds per family so two families never share weights by accident.
    deterministic_init_(model.diffusion_model, seed=seed + 1000 * list(_ALL).index(family))
    _init_buffers_(family, model.diffusion_model)
    model.diffusion_model.to(dtype)
    return comfy.model_patcher.ModelPatcher(model, load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())


def conditioning(family: str, seed: int = 1, tokens: int = TOKENS, batch: int = 1):
    """CONDITIONING ([[tensor, options]]) of the family's text width, with the options the family's text
    encoder adds through ``CLIPTextEncode`` (``pooled_output``; LTXV's T5 ``attention_mask``)."""
    family = ALIASES.get(family, family)
    s = spec(family)
    g = torch.Generator().manual_seed(seed)
    options = {}
    if s.video:
        options["pooled_output"] = None
    if family == "ltxv":
        options["attention_mask"] = torch.ones(batch, tokens, dtype=torch.long)
    return [[torch.randn(batch, tokens, s.text_dim, generator=g), options]]


def latent(family: str, frames: int = 5, height: int | None = None, width: int | None = None, batch: int = 1) -> dict:
    """An empty LATENT in the family's format: 5-D ``[B, C, T, H, W]`` for video, ``[F, 4, H, W]`` for SD1.5.

    ``frames`` counts LATENT frames; height/width are latent sizes (default 8x8, 4x4 for LTXV / LTX-2).
    Audio-video families: a ``NestedTensor`` (video, audio) as ComfyUI's own nodes make it (module docstring)."""
    family = ALIASES.get(family, family)
    s = spec(family)
    h = height if height is not None else (4 if family in ("ltxv", "ltx2") else 8)
    w = width if width is not None else h
    if not s.video:
        return {"samples": torch.zeros(frames, s.latent_channels, h, w)}
    video = torch.zeros(batch, s.latent_channels, frames, h, w)
    if family == "ltx2":
        return _ltx2_av_latent(video, pixel_frames(family, frames))
    if family == "minimax_h3":
        return _minimax_h3_av_latent(family, video)
    return {"samples": video}


LTX2_AUDIO = {"channels": 8, "frequency_bins": 16, "latents_per_second": 25.0}   # LTX-2's audio VAE (16 kHz, hop 160, /4)


def _ltx2_av_latent(video: torch.Tensor, pixel_frames_: int, frame_rate: float = 25.0) -> dict:
    """``LTXVConcatAVLatent`` (ComfyUI's node) of the video latent and an ``LTXVEmptyLatentAudio``-shaped audio one."""
    require_class("ltx2")
    from comfy_extras.nodes_lt import LTXVConcatAVLatent

    t_a = round(pixel_frames_ / frame_rate * LTX2_AUDIO["latents_per_second"])
    audio = {"samples": torch.zeros(video.shape[0], LTX2_AUDIO["channels"], t_a, LTX2_AUDIO["frequency_bins"]),
             "type": "audio"}
    return dict(_unwrap(LTXVConcatAVLatent.execute({"samples": video}, audio))[0])


def _minimax_h3_av_latent(family: str, video: torch.Tensor) -> dict:
    """The H3 latent format's own ``fix_empty_latent`` (24-channel video -> NestedTensor (video, audio))."""
    cls = require_class(family)
    return {"samples": cls.latent_format().fix_empty_latent(video)}


def is_av(samples) -> bool:
    """Whether a LATENT's samples are an audio-video NestedTensor."""
    return bool(getattr(samples, "is_nested", False))


def video_part(samples) -> torch.Tensor:
    """The video stream of a LATENT's samples (the tensor itself for a video-only latent)."""
    return samples.unbind()[0] if is_av(samples) else samples


def streams(samples) -> list:
    """The tensors of a LATENT's samples: [video, audio] for an audio-video latent, else [samples]."""
    return list(samples.unbind()) if is_av(samples) else [samples]


def same(a, b) -> bool:
    """Bit-identical samples (every stream of an audio-video latent)."""
    sa, sb = streams(a), streams(b)
    return len(sa) == len(sb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(sa, sb))


def audio_part(samples) -> torch.Tensor | None:
    """The audio stream of an audio-video LATENT's samples, else None."""
    return samples.unbind()[1] if is_av(samples) else None


def pixel_frames(family: str, latent_frames: int) -> int:
    """Pixel frames decoded from ``latent_frames``: the causal first latent frame holds one image frame. MiniMax H3's
    VAE restarts the causal chunk every 5 latent frames (17 + 5 frame grid: latent frame k holds (1, 4, 4, 4, 4)[k % 5]
    frames, ``comfy.ldm.minimax.model.FRAME_PER_TOKEN``)."""
    if ALIASES.get(family, family) == "minimax_h3":
        return sum((1, 4, 4, 4, 4)[k % 5] for k in range(latent_frames))
    c = spec(family).temporal_compression
    return latent_frames if c == 1 else 1 + c * (latent_frames - 1)


@dataclass
class Fixture:
    family: str
    model: object
    positive: list
    negative: list
    latent: dict
    spec: FamilySpec = field(repr=False, default=None)
    experts: dict = field(repr=False, default_factory=dict)   # Wan 2.2 A14B: {"high_noise": ..., "low_noise": ...}

    def __iter__(self):
        return iter((self.model, self.positive, self.negative, self.latent))


def build(family: str, frames: int = 5, height: int | None = None, width: int | None = None, seed: int = 0,
          size: str = "tiny", batch: int = 1) -> Fixture:
    """``(model, positive, negative, latent)`` for ``family`` (unpackable). Two-expert families (Wan 2.2 A14B I2V)
    also fill ``experts``: the high-noise expert is ``model``, the low-noise one has other weights (seed + 1)."""
    family = ALIASES.get(family, family)
    model = build_model(family, seed=seed, size=size)
    experts = {}
    if family == "wan22_i2v_a14b":
        experts = {"high_noise": model, "low_noise": build_model(family, seed=seed + 1, size=size)}
    return Fixture(family, model, conditioning(family, seed=seed + 1), conditioning(family, seed=seed + 2),
                   latent(family, frames, height, width, batch), spec(family), experts)


# --- sampling through ComfyUI's own nodes ---------------------------------------------------------------------------

def _nodes():
    _env()
    import nodes

    return nodes


def sample_ksampler(model, positive, negative, latent_image: dict, seed: int = 0, steps: int = 2, cfg: float = 2.0,
                    sampler_name: str = "euler", scheduler: str = "simple", denoise: float = 1.0) -> torch.Tensor:
    """Sample through ComfyUI's ``KSampler`` node; returns the output latent samples."""
    out = _nodes().KSampler().sample(model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
                                     latent_image, denoise=denoise)
    return out[0]["samples"]


def _custom_sampler_nodes():
    _env()
    import comfy_extras.nodes_custom_sampler as ncs

    return ncs


def _unwrap(out):
    """Node output as a tuple: V3 ``io.NodeOutput`` (``.result``) or a V1 tuple."""
    return tuple(out.result) if hasattr(out, "result") else tuple(out)


def sample_custom_advanced(model, positive, negative, latent_image: dict, noise=None, seed: int = 0, steps: int = 2,
                           cfg: float = 2.0, sampler_name: str = "euler", scheduler: str = "simple",
                           denoise: float = 1.0, guider=None) -> torch.Tensor:
    """Sample through ``SamplerCustomAdvanced`` with ``noise`` (a NOISE object; default ``RandomNoise(seed)``)
    and a ``CFGGuider`` (or ``guider``); returns the (denoised-to-zero) output latent samples."""
    ncs = _custom_sampler_nodes()
    if noise is None:
        noise = _unwrap(ncs.RandomNoise.execute(seed))[0]
    if guider is None:
        guider = _unwrap(ncs.CFGGuider.execute(model, positive, negative, cfg))[0]
    sampler = _unwrap(ncs.KSamplerSelect.execute(sampler_name))[0]
    sigmas = _unwrap(ncs.BasicScheduler.execute(model, scheduler, steps, denoise))[0]
    out = _unwrap(ncs.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, latent_image))
    return out[0]["samples"]


def count_model_calls(model, key: str = "support.count"):
    """(a clone of ``model`` whose APPLY_MODEL calls are recorded, the list of their input shapes): an official
    wrapper, added on the clone only."""
    from comfy.patcher_extension import WrappersMP

    calls = []

    def counter(executor, x, *args, **kwargs):
        calls.append(tuple(x.shape))
        return executor(x, *args, **kwargs)

    m = model.clone()
    m.add_wrapper_with_key(WrappersMP.APPLY_MODEL, key, counter)
    return m, calls


# --- this pack's nodes, by their short name (independent of which module defines them) ------------------------------

def pack_node(name: str):
    """The node class registered as ``CoherentVideo_<name>`` (e.g. ``pack_node("BaseResidualNoise")``)."""
    _env()  # ComfyUI booted first
    pack = _sd15_fixtures().load_pack_module()
    from importlib import import_module

    nodes_pkg = import_module(pack.__name__ + ".nodes")
    found = {cls.define_schema().node_id: cls for cls in nodes_pkg.all_nodes()}
    key = "CoherentVideo_" + name
    if key not in found:
        raise KeyError(f"no node {key}; have {sorted(found)}")
    return found[key]


def run_node(name: str, *args, **kwargs) -> tuple:
    """``pack_node(name).execute(...)`` as a tuple of outputs."""
    return _unwrap(pack_node(name).execute(*args, **kwargs))


# --- core context windows, on every ComfyUI ---------------------------------------------------------------------------

def core_windows(node_id: str, model, **inputs):
    """``model`` with core context windows from the core node ``node_id`` (``ContextWindowsManual``,
    ``WanContextWindowsManual``, ``LTXVContextWindows``), its inputs by name as a user sets them.

    The nodes gained inputs (ComfyUI 0.33: ``freenoise``, ``cond_retain_index_list``, ``latent_retain_index_list``,
    ``causal_window_fix``, ``retain_first_frame``, ...; ``freenoise`` required in the Wan node), so positional
    calls break. Inputs not given take the node's schema default; an input this ComfyUI's node does not have
    is an error unless its value is the one older ComfyUI behaves as (``freenoise=False``, ``causal_window_fix=False``,
    empty retain lists): then it is dropped, and the test runs what that ComfyUI can run."""
    import inspect

    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(node_id)
    if cls is None:
        raise LookupError(f"core node {node_id} is not in this ComfyUI")
    params = inspect.signature(cls.execute).parameters
    types = cls.INPUT_TYPES()
    spec_of = {**(types.get("optional") or {}), **(types.get("required") or {})}
    old_behaviour = {"freenoise": False, "causal_window_fix": False, "cond_retain_index_list": "",
                     "latent_retain_index_list": "", "retain_first_frame": False, "split_conds_to_windows": False}
    kwargs = {}
    for name, value in inputs.items():
        if name in params:
            kwargs[name] = value
        elif old_behaviour.get(name, object()) != value:
            raise TypeError(f"{node_id} in this ComfyUI has no input {name!r} (asked for {value!r})")
    for name, p in params.items():
        if name in ("cls", "model") or name in kwargs or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if name in spec_of and isinstance(spec_of[name], (list, tuple)) and len(spec_of[name]) > 1:
            default = spec_of[name][1].get("default") if isinstance(spec_of[name][1], dict) else None
            if default is not None:
                kwargs[name] = default
    return _unwrap(cls.execute(model=model, **kwargs))[0]


def has_input(node_id: str, name: str) -> bool:
    """Whether this ComfyUI's core node ``node_id`` has the input ``name`` (feature detection for tests)."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS.get(node_id)
    if cls is None:
        return False
    types = cls.INPUT_TYPES()
    return name in (types.get("required") or {}) or name in (types.get("optional") or {})
