"""Prepare the models folder ``make demo-video`` runs with; prints its path (for ``python -m runner --models-dir``).

    python -m scripts.demo_models

It links the committed demonstration models (``models/coherent_tiny_wan21_{t2v,i2v,vae}.safetensors``) into
``diffusion_models/`` and ``vae/`` and writes, once, the text encoder they were trained with into ``text_encoders/``:
ComfyUI's CLIP-L with fixed seeded random weights (``random_clip_l.safetensors``, about 250 MB, built here from the
seed, nothing downloaded). The folder is ``$COHERENT_VIDEO_CACHE/models`` (default ``~/.cache/comfyui-coherentvideo``).
To use the demo in your own ComfyUI, copy these three files into its ``models/diffusion_models``, ``models/vae`` and
``models/text_encoders``.
"""
from tests.support.trained import demo_models_dir

if __name__ == "__main__":
    print(demo_models_dir())
