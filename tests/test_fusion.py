"""Fusing separate accelerometer and gyroscope streams (Android / MetaWear style)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaitedge.fusion import StreamFuser, fuse


def streams(seed: int = 0):
    rng = np.random.default_rng(seed)
    t_acc = np.cumsum(rng.uniform(0.009, 0.011, 500))  # ~100 Hz
    t_gyro = np.cumsum(rng.uniform(0.018, 0.022, 260)) - 0.005  # ~50 Hz, own clock phase
    f = lambda t: np.column_stack([np.sin(t), np.cos(2 * t), 0.5 * t])  # noqa: E731
    return t_acc, f(t_acc) + 9.0, t_gyro, f(t_gyro)


def test_offline_fusion_interpolates_gyro_onto_acc_times():
    t_acc, acc, t_gyro, gyro = streams()
    t, imu = fuse(t_acc, acc, t_gyro, gyro)
    inside = (t_acc >= t_gyro[0]) & (t_acc <= t_gyro[-1])
    np.testing.assert_array_equal(t, t_acc[inside])
    np.testing.assert_allclose(imu[:, :3], acc[inside])
    expected = np.column_stack([np.sin(t), np.cos(2 * t), 0.5 * t])
    np.testing.assert_allclose(imu[:, 3:], expected, atol=1e-3)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 20)), min_size=1, max_size=30))
def test_streaming_fusion_equals_offline_for_any_interleaving(chunks):
    t_acc, acc, t_gyro, gyro = streams(1)
    fuser = StreamFuser(max_wait_s=10.0)
    ia = ig = 0
    parts = []
    k = 0
    while ia < len(t_acc) or ig < len(t_gyro):
        na, ng = chunks[k % len(chunks)]
        fuser.push_acc(t_acc[ia : ia + na], acc[ia : ia + na])
        fuser.push_gyro(t_gyro[ig : ig + ng], gyro[ig : ig + ng])
        parts.append(fuser.pop())
        ia, ig, k = ia + na, ig + ng, k + 1
    t = np.concatenate([p[0] for p in parts])
    imu = np.concatenate([p[1] for p in parts])
    t_off, imu_off = fuse(t_acc, acc, t_gyro, gyro)
    np.testing.assert_array_equal(t, t_off)
    np.testing.assert_allclose(imu, imu_off, atol=1e-12)


def test_stalled_gyro_is_held_and_counted():
    t_acc, acc, t_gyro, gyro = streams()
    fuser = StreamFuser(max_wait_s=0.5)
    fuser.push_gyro(t_gyro[:20], gyro[:20])
    fuser.push_acc(t_acc, acc)
    t, imu = fuser.pop()
    assert fuser.stats.gyro_held > 0
    assert t[-1] < t_acc[-1] - 0.49  # the newest 0.5 s still waits for the gyroscope
    np.testing.assert_allclose(imu[-1, 3:], gyro[19])


def test_bad_streams_are_refused():
    fuser = StreamFuser()
    with pytest.raises(ValueError, match="increase"):
        fuser.push_acc(np.array([0.0, 0.0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        fuser.push_gyro(np.array([0.0]), np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        fuser.push_gyro(np.array([0.0]), np.zeros((1, 6)))
