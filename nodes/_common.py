"""Helpers shared by the node modules: input errors that name the node and the input."""
from __future__ import annotations

import math

import torch

from ..model_patches.errors import NodeInputError  # noqa: F401  (re-exported for the node modules)

CATEGORY = "CoherentVideo"
# Every node id (what workflows save as a node's "type") carries this prefix so it cannot clash with another
# pack's; errors and display names keep the short, readable name.
ID_PREFIX = "CoherentVideo_"


def node_id(name: str) -> str:
    return ID_PREFIX + name


def check(cond: bool, node: str, input_name: str, message: str) -> None:
    if not cond:
        raise NodeInputError(node, input_name, message)


def check_finite(t: torch.Tensor, node: str, input_name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise NodeInputError(node, input_name, "contains NaN or Inf values")


def check_range(value: float, lo: float, hi: float, node: str, input_name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise NodeInputError(node, input_name, f"must be in [{lo}, {hi}], got {value!r}")
