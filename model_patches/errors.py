"""Domain errors of the math and the hooks (no comfy import, no node names).

The layers below ``nodes/`` raise :class:`ParameterError`, which names the parameter (a field of the
technique's settings) and says what is wrong with its value. The node layer turns it into an error that
names the node and the input (``nodes/_common.py``): directly around the calls its ``execute`` makes,
and, for problems that only show while sampling (a NOISE object, a patch inside the model), through the
:class:`Reporter` it puts into the settings object.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass


class ParameterError(ValueError):
    """A bad value of the parameter ``param``."""

    def __init__(self, param: str, message: str):
        self.param, self.message = param, message
        super().__init__(f"parameter '{param}': {message}")


@dataclass(frozen=True)
class Reporter:
    """Where run-time problems go: the error to raise for a :class:`ParameterError`, and warnings.

    This default raises the domain error unchanged and logs warnings under the pack's name; the node
    layer passes one that names the node and the input.
    """

    def error(self, e: ParameterError) -> Exception:
        return e

    def warning(self, message: str) -> None:
        logging.warning("[CoherentVideo] %s", message)
