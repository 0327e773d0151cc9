"""BaseResidualNoise (VideoFusion, arXiv 2303.08320): shared base noise + per-frame residual noise.

Two nodes share one schema:
- ``BaseResidualNoise`` returns a NOISE object for ``SamplerCustomAdvanced``.
- ``BaseResidualNoiseModel`` returns a MODEL whose sampling starts from the same noise, for
  ``KSampler`` / ``KSamplerAdvanced`` users (OUTER_SAMPLE wrapper on a clone).
"""
from __future__ import annotations

from comfy_api.latest import io

from ..model_patches.noise import MODES, parse_schedule
from ..model_patches.hooks.noise import BaseResidualNoiseGenerator, NoiseSettings, patch
from ._common import CATEGORY, NodeInputError, NodeReporter, check_model, check_range, node_id, search_aliases


def _noise_inputs() -> list:
    return [
        io.Combo.Input("mode", options=list(MODES), default="shared",
                       tooltip="shared: VideoFusion base+residual (key frame = base). progressive: PYoCo AR(1) chain, "
                               "each frame correlated with the previous one. mixed: PYoCo mixed prior, every pair "
                               "correlated by alpha^2/(1+alpha^2)."),
        io.Float.Input("base_ratio", default=0.5, min=0.0, max=1.0, step=0.01,
                       tooltip="shared mode: lambda, the share of variance from the shared base noise for every "
                               "non-key frame (frame correlation = sqrt(lambda) with the key frame, lambda between "
                               "others). 0 = ComfyUI's independent noise exactly; 1 = the same noise on every frame."),
        io.Float.Input("alpha", default=1.0, min=0.0, max=100.0, step=0.05,
                       tooltip="progressive/mixed modes: PYoCo's alpha. Adjacent-frame correlation is "
                               "alpha/sqrt(1+alpha^2) (progressive) or alpha^2/(1+alpha^2) (mixed). 0 = independent."),
        io.Int.Input("key_frame", default=-1, min=-1, max=4096,
                     tooltip="shared mode: the frame whose noise is the base noise itself (lambda = 1). "
                             "-1 = the center frame (F-1)//2, as in VideoFusion."),
    ]


def _schedule_input():
    return io.String.Input("lambda_schedule", default="", multiline=False, optional=True,
                        tooltip="shared mode, optional: one lambda per frame, comma separated (e.g. '1, 0.8, 0.6'). "
                                "Overrides base_ratio and key_frame; must have exactly one value per latent frame.")


def _settings(node: str, mode: str, base_ratio: float, alpha: float, key_frame: int, lambda_schedule: str | None,
              initial_noise: bool = True, per_step_noise: bool = False) -> NoiseSettings:
    if mode not in MODES:
        raise NodeInputError(node, "mode", f"must be one of {MODES}, got {mode!r}")
    check_range(base_ratio, 0.0, 1.0, node, "base_ratio")
    check_range(alpha, 0.0, 1e4, node, "alpha")
    if key_frame < -1:
        raise NodeInputError(node, "key_frame", f"must be -1 (center) or a frame index, got {key_frame}")
    try:
        schedule = parse_schedule(lambda_schedule or "")
    except ValueError as e:
        raise NodeInputError(node, "lambda_schedule", f"not a list of numbers ({e})") from None
    for v in schedule:
        check_range(v, 0.0, 1.0, node, "lambda_schedule")
    return NoiseSettings(mode=mode, base_ratio=float(base_ratio), alpha=float(alpha), key_frame=int(key_frame),
                         lambda_schedule=tuple(schedule), initial_noise=bool(initial_noise),
                         per_step_noise=bool(per_step_noise), reporter=NodeReporter(node, {"latent": "latent_image"}))


class BaseResidualNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("BaseResidualNoise"),
            display_name="Base + Residual Noise (VideoFusion)",
            category=f"{CATEGORY}/noise",
            **search_aliases("videofusion", "correlated noise", "shared noise", "video noise", "noise prior",
                             "pyoco", "freenoise", "consistent", "temporal consistency", "deflicker"),
            description="VideoFusion's decomposed noise for video latents (frames on the batch axis): "
                        "eps_i = sqrt(lambda_i)*base + sqrt(1-lambda_i)*residual_i, every frame exactly N(0, I). "
                        "Training-free: the paper also trains a base generator on this noise; here only the noise "
                        "prior is used with an ordinary image or video model.",
            inputs=[
                io.Int.Input("noise_seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Seed. The residual is ComfyUI's own noise for this seed (honours batch_index); "
                                     "the base comes from a seed derived from it."),
                *_noise_inputs(),
                _schedule_input(),
            ],
            outputs=[io.Noise.Output(tooltip="NOISE for SamplerCustomAdvanced.")],
        )

    @classmethod
    def execute(cls, noise_seed, mode, base_ratio, alpha, key_frame, lambda_schedule="") -> io.NodeOutput:
        settings = _settings("BaseResidualNoise", mode, base_ratio, alpha, key_frame, lambda_schedule)
        return io.NodeOutput(BaseResidualNoiseGenerator(noise_seed, settings))


class BaseResidualNoiseModel(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id=node_id("BaseResidualNoiseModel"),
            display_name="Base + Residual Noise Model Patch (VideoFusion)",
            category=f"{CATEGORY}/noise",
            **search_aliases("videofusion", "correlated noise", "shared noise", "video noise", "noise prior",
                             "pyoco", "freenoise", "ksampler noise", "consistent", "temporal consistency",
                             "deflicker"),
            description="Gives KSampler/KSamplerAdvanced the BaseResidualNoise initial noise (from the sampler's "
                        "seed) through an OUTER_SAMPLE wrapper on a model clone; optionally also correlates the "
                        "per-step noise of ancestral and SDE samplers. Do not combine initial_noise with the "
                        "BaseResidualNoise NOISE node on the same sampler (the noise would be correlated twice).",
            inputs=[
                io.Model.Input("model", tooltip="The model to patch. It is cloned; the input model is not changed."),
                *_noise_inputs(),
                io.Boolean.Input("initial_noise", default=True,
                                 tooltip="Correlate the sampler's initial noise across frames."),
                io.Boolean.Input("per_step_noise", default=False,
                                 tooltip="Beyond the paper: also correlate the fresh noise that ancestral and SDE "
                                         "samplers add at every step (replaces their default noise sampler, "
                                         "including the Brownian tree of SDE samplers, with seeded Gaussian "
                                         "noise of the same base+residual structure)."),
                _schedule_input(),
            ],
            outputs=[io.Model.Output(tooltip="A patched clone of the model.")],
        )

    @classmethod
    def execute(cls, model, mode, base_ratio, alpha, key_frame, initial_noise, per_step_noise,
                lambda_schedule="") -> io.NodeOutput:
        check_model(model, "BaseResidualNoiseModel")
        if not (initial_noise or per_step_noise):
            raise NodeInputError("BaseResidualNoiseModel", "initial_noise",
                                 "and per_step_noise are both off, so the patch would do nothing; enable one")
        settings = _settings("BaseResidualNoiseModel", mode, base_ratio, alpha, key_frame, lambda_schedule,
                             initial_noise, per_step_noise)
        return io.NodeOutput(patch(model, settings))


NODES = [BaseResidualNoise, BaseResidualNoiseModel]
