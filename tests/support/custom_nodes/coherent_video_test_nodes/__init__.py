"""Test-only node pack (loaded with ``--custom-nodes-dir`` by tests/test_dit_attention_workflows.py, never shipped).

``CoherentVideoTest_WidenConditioning`` zero-pads a CONDITIONING's width: ComfyUI detects every Wan 2.1 DiT with a
4096-wide text input (UMT5-XXL's), and UMT5-XXL has one fixed 5.7 B-parameter config, too big to write at random
for a test; the headless Wan template tests encode with a random CLIP-L (768) and widen its output to 4096.
"""


class WidenConditioning:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"conditioning": ("CONDITIONING",), "width": ("INT", {"default": 4096, "min": 1, "max": 65536})}}

    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "widen"
    CATEGORY = "testing"

    def widen(self, conditioning, width):
        import torch

        out = []
        for t, opts in conditioning:
            pad = width - t.shape[-1]
            out.append([torch.nn.functional.pad(t, (0, pad)) if pad > 0 else t[..., :width], dict(opts)])
        return (out,)


NODE_CLASS_MAPPINGS = {"CoherentVideoTest_WidenConditioning": WidenConditioning}
