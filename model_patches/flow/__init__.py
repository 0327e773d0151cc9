"""Weight-free optical flow and flow-based frame interpolation (pure torch + kornia, no comfy).

- :mod:`.tvl1`: coarse-to-fine TV-L1 flow with block-match fusion (:func:`~.tvl1.estimate_flow`);
- :mod:`.warp`: warping, occlusion (forward-backward consistency), softmax splatting, interpolation at t;
- :mod:`.scene_cuts`: colour-histogram cut detection (never interpolate across a cut);
- :mod:`.upsample`: whole videos, chunk by chunk (output times, the flow interpolator).

Conventions: images ``(B, C, H, W)`` float in [0, 1]; flow ``(B, 2, H, W)`` in pixels,
channel 0 = x (width), channel 1 = y (height); ``flow01`` maps a pixel of frame 0 to its
position in frame 1: ``img0(p) ~ img1(p + flow01(p))``.
"""
