"""The stream map of multi-stream context windows (model_patches/windows.py): pure math, no ComfyUI."""
from __future__ import annotations

import pytest
import torch

from model_patches.windows import moved_shape, stream_window


def _reference(index_list, p, m):   # the definition, one frame at a time
    out, seen = [], set()
    for i in index_list:
        a = min(int(round(i * m / p)), m - 1)
        b = max(min(int(round((i + 1) * m / p)), m), a + 1)
        for f in range(a, b):
            if f not in seen:
                seen.add(f)
                out.append(f)
    return out


@pytest.mark.parametrize("p,m", [(10, 40), (10, 10), (40, 10), (7, 23), (37, 124), (5, 1)])
def test_stream_window_matches_the_definition_for_every_window(p, m):
    for start in range(p):
        for length in (1, 3, p):
            win = [(start + k) % p for k in range(length)]
            assert stream_window(win, p, m) == _reference(win, p, m), (win, p, m)


def test_windows_that_tile_the_video_tile_the_stream():
    p, m = 12, 50
    covered = sorted(f for w in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]) for f in stream_window(w, p, m))
    assert covered == list(range(m))   # each stream frame once: no gap, no overlap


def test_a_wrapped_window_keeps_its_order():
    assert stream_window([8, 9, 0, 1], 10, 20) == [16, 17, 18, 19, 0, 1, 2, 3]


def test_bad_windows_are_refused():
    with pytest.raises(ValueError, match="outside"):
        stream_window([9, 10], 10, 20)
    with pytest.raises(ValueError, match="positive"):
        stream_window([0], 10, 0)


def test_moved_shape_is_movedim():
    x = torch.zeros(1, 32, 2, 9)
    assert moved_shape(x.shape, 3, 2) == tuple(x.movedim(3, 2).shape) == (1, 32, 9, 2)
