"""The one error type for bad node input, shared by the hooks and the nodes (no comfy import)."""


class NodeInputError(ValueError):
    """A bad input. The message always starts with ``[NodeName] input 'name':``."""

    def __init__(self, node: str, input_name: str, message: str):
        self.node, self.input_name = node, input_name
        super().__init__(f"[{node}] input '{input_name}': {message}")
