"""Test images from scikit-image's bundled data (no download) and the PSNR the image tests compare with."""
from __future__ import annotations

import torch


def skimage_image(name: str = "astronaut") -> torch.Tensor:
    """scikit-image's ``data.<name>()`` as a float ``[3, H, W]`` tensor in [0, 1]."""
    from skimage import data

    return torch.from_numpy(getattr(data, name)()[..., :3].copy()).permute(2, 0, 1).float().div(255)


def crop(img: torch.Tensor, y: int, x: int, h: int = 64, w: int = 64) -> torch.Tensor:
    """``img[:, y:y+h, x:x+w]`` as a one-frame batch ``[1, 3, h, w]``."""
    return img[:, y:y + h, x:x + w].unsqueeze(0)


def shifted_pair(size: int = 128, shift=(3, 5), at: int = 150):
    """Two astronaut crops, the second moved by ``shift`` = (dy, dx): ``[1, 3, size, size]`` each."""
    img = skimage_image()
    return crop(img, at, at, size, size), crop(img, at + shift[0], at + shift[1], size, size)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    return float(10 * torch.log10(1.0 / ((a - b) ** 2).mean().clamp_min(1e-20)))
