"""Helpers shared by the node modules: input errors that name the node and the input.

The layers below raise domain errors (:class:`~..model_patches.errors.ParameterError`, naming a parameter);
here they become :class:`NodeInputError` naming the node and its input: :func:`node_errors` around the calls
an ``execute`` makes, :class:`NodeReporter` for problems the hooks find while sampling.
"""
from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from ..model_patches.errors import ParameterError, Reporter
from ..model_patches.hooks.state import require_memory
from ..model_patches.video import frame_axis

CATEGORY = "CoherentVideo"
# Every node id (what workflows save as a node's "type") carries this prefix so it cannot clash with another
# pack's; errors and display names keep the short, readable name.
ID_PREFIX = "CoherentVideo_"


def node_id(name: str) -> str:
    return ID_PREFIX + name


def search_aliases(*words: str) -> dict:
    """``io.Schema`` keyword arguments giving the node search these aliases (the words users type: "deflicker",
    "long video", ...), where this ComfyUI's ``io.Schema`` has the field: 0.33 has it and serves it in
    ``/object_info``, 0.3.75 has neither, and there the node is found by its name alone. Feature-detected."""
    import dataclasses

    from comfy_api.latest import io

    if "search_aliases" not in {f.name for f in dataclasses.fields(io.Schema)}:
        return {}
    return {"search_aliases": list(words)}


class NodeInputError(ValueError):
    """A bad node input. The message always starts with ``[NodeName] input 'name':``."""

    def __init__(self, node: str, input_name: str, message: str):
        self.node, self.input_name = node, input_name
        super().__init__(f"[{node}] input '{input_name}': {message}")


@dataclass(frozen=True)
class NodeReporter(Reporter):
    """The :class:`Reporter` a node puts into its settings: run-time domain errors name this node and the
    input (``inputs`` maps a parameter to the input it comes from when the names differ)."""

    node: str
    inputs: dict = field(default_factory=dict, hash=False, compare=False)

    def error(self, e: ParameterError) -> NodeInputError:
        return NodeInputError(self.node, self.inputs.get(e.param, e.param), e.message)

    def warning(self, message: str) -> None:
        logging.warning("[%s] %s", self.node, message)


@contextmanager
def node_errors(node: str, inputs: dict | None = None):
    """Domain errors raised inside the block name ``node`` and its input (see :class:`NodeReporter`)."""
    try:
        yield
    except ParameterError as e:
        raise NodeReporter(node, inputs or {}).error(e) from None


def check(cond: bool, node: str, input_name: str, message: str) -> None:
    if not cond:
        raise NodeInputError(node, input_name, message)


def check_finite(t: torch.Tensor, node: str, input_name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise NodeInputError(node, input_name, "contains NaN or Inf values")


def check_range(value: float, lo: float, hi: float, node: str, input_name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise NodeInputError(node, input_name, f"must be in [{lo}, {hi}], got {value!r}")


def check_model(model, node: str, input_name: str = "model") -> None:
    """A ComfyUI MODEL (a ModelPatcher), not something else arriving through a link."""
    ok = callable(getattr(model, "clone", None)) and callable(getattr(model, "get_model_object", None))
    check(ok, node, input_name, f"expected a MODEL, got {type(model).__name__}")


def check_frames(t, node: str, input_name: str, ndims: tuple = (4,), min_frames: int = 1,
                 layout: str = "") -> torch.Tensor:
    """A floating-point tensor of an allowed rank, with at least ``min_frames`` frames (dim 2 of a 5-D
    video latent, else dim 0) and finite values."""
    check(torch.is_tensor(t), node, input_name, f"expected a tensor, got {type(t).__name__}")
    check(t.ndim in ndims, node, input_name,
          f"must be {layout or ' or '.join(f'{n}-D' for n in ndims)}, got shape {tuple(t.shape)}")
    check(t.is_floating_point(), node, input_name, f"must hold floating point values, got {t.dtype}")
    n = t.shape[frame_axis(t)]
    check(t.numel() > 0 and n > 0, node, input_name, f"is empty (shape {tuple(t.shape)})")
    check(n >= min_frames, node, input_name, f"needs at least {min_frames} frames, got {n}")
    if t.device.type != "meta":
        check_finite(t, node, input_name)
    return t


def check_same_device(t, other, node: str, input_name: str, other_name: str) -> None:
    check(t.device == other.device, node, input_name,
          f"is on {t.device} but {other_name} is on {other.device}; keep both on one device")


def check_latent_channels(model, ref_channels: int, video_channels: int, node: str, expected: int | None = None) -> None:
    """The reference and the video latent have the model's latent channels (``expected``, default the latent
    format's) (``reference`` is named)."""
    lat_ch = int(expected if expected is not None else model.get_model_object("latent_format").latent_channels)
    if ref_channels != video_channels or video_channels != lat_ch:
        raise NodeInputError(node, "reference", f"has {ref_channels} channels but the video latent has {video_channels} "
                                                f"and the model expects {lat_ch}")


def check_memory(nbytes: int, node: str, input_name: str, what: str, device=None) -> None:
    """Refuse before allocating when ``nbytes`` cannot fit in the free memory of ``device``."""
    with node_errors(node):
        require_memory(nbytes, input_name, what, device)


def check_conditioning(cond, node: str, input_name: str) -> None:
    """A CONDITIONING: a non-empty list of [tensor, dict] pairs with finite tensors."""
    ok = isinstance(cond, (list, tuple)) and len(cond) > 0 and all(
        isinstance(c, (list, tuple)) and len(c) == 2 and torch.is_tensor(c[0]) and isinstance(c[1], dict)
        for c in cond)
    check(ok, node, input_name, "expected a CONDITIONING (a list of [tensor, options] pairs from a text encoder), "
                                f"got {_describe(cond)}")
    for c in cond:
        check_finite(c[0], node, input_name)


def _describe(value) -> str:
    if isinstance(value, dict):
        return f"a dict with keys {sorted(map(str, value))[:8]}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} entries"
    return type(value).__name__
