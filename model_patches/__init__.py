"""Pure tensor math (modules without a ``comfy`` import) and the ComfyUI hooks built on it.

Pure: noise.py, ... (each equation lives in one function with the paper in its docstring).
Hooks: the hooks/ subpackage imports comfy and attaches the math through official extension points.
"""
