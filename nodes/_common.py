"""Helpers shared by the node modules: input errors that name the node and the input."""
from __future__ import annotations

import math

import torch

CATEGORY = "CoherentVideo"


class NodeInputError(ValueError):
    """A bad input. The message always starts with ``[NodeName] input 'name':``."""

    def __init__(self, node: str, input_name: str, message: str):
        self.node, self.input_name = node, input_name
        super().__init__(f"[{node}] input '{input_name}': {message}")


def check(cond: bool, node: str, input_name: str, message: str) -> None:
    if not cond:
        raise NodeInputError(node, input_name, message)


def check_finite(t: torch.Tensor, node: str, input_name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise NodeInputError(node, input_name, "contains NaN or Inf values")


def check_range(value: float, lo: float, hi: float, node: str, input_name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and lo <= value <= hi):
        raise NodeInputError(node, input_name, f"must be in [{lo}, {hi}], got {value!r}")
