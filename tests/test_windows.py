"""The windower: counts, hop, segment resets, equality under chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaitedge.windows import Windower


def push_all(w: Windower, y: np.ndarray, sizes: list[int], times: list | None = None):
    out, i, k = [np.zeros((0, w.window_samples, w.n_channels), np.float32)], 0, 0
    while i < len(y):
        n = sizes[k % len(sizes)]
        res = w.push(np.arange(i, min(i + n, len(y))) * 1.0, y[i : i + n])
        out.append(res.data)
        if times is not None:
            times += zip(res.t_start_s.tolist(), res.t_end_s.tolist(), strict=True)
        i, k = i + n, k + 1
    return np.concatenate(out)


@settings(max_examples=60, deadline=None)
@given(
    window=st.integers(2, 40),
    hop=st.integers(1, 50),
    n=st.integers(0, 300),
    sizes=st.lists(st.integers(1, 90), min_size=1, max_size=8),
)
def test_windows_are_the_expected_slices_for_any_chunking(window, hop, n, sizes):
    # Chunks smaller and larger than the room after the history (written in place, or joined).
    y = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    times: list = []
    got = push_all(Windower(window, hop, 2), y, sizes, times)
    starts = range(0, n - window + 1, hop)
    expected = np.array([y[s : s + window] for s in starts]).reshape(-1, window, 2)
    np.testing.assert_array_equal(got, expected)
    assert times == [(float(s), float(s + window - 1)) for s in starts]


def test_reset_restarts_the_count_and_numbers_segments():
    w = Windower(4, 2, 1)
    y = np.arange(10, dtype=np.float32)[:, None]
    first = w.push(np.arange(10.0), y)
    w.reset()
    second = w.push(np.arange(10.0, 13.0), y[:3])
    assert len(first) == 4 and len(second) == 0
    third = w.push(np.arange(13.0, 14.0), y[3:4])
    assert len(third) == 1 and third.segment[0] == first.segment[0] + 1
    np.testing.assert_array_equal(third.data[0, :, 0], [0, 1, 2, 3])


def test_times_are_first_and_last_sample():
    w = Windower(5, 5, 1)
    out = w.push(np.arange(12) * 0.02, np.zeros((12, 1), np.float32))
    np.testing.assert_allclose(out.t_start_s, [0.0, 0.1])
    np.testing.assert_allclose(out.t_end_s, [0.08, 0.18])


@pytest.mark.parametrize(("window", "hop"), [(0, 1), (3, 0)])
def test_invalid_sizes(window, hop):
    with pytest.raises(ValueError):
        Windower(window, hop, 1)
