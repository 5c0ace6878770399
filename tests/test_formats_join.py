"""The join of two sensors on separate clocks (``gaitedge.formats.join.to_recording``), pinned
against its definition computed here directly: the faster sensor's stamps inside the slower
one's span, less those strictly inside one of its holes, the slower one interpolated there."""

from __future__ import annotations

import numpy as np
import pytest

from gaitedge.formats.base import Export, SensorKind
from gaitedge.formats.join import HOLE_INTERVALS, make_series, to_recording


def _signal(t: np.ndarray, phase: float) -> np.ndarray:
    return np.stack([np.sin(t + phase), np.cos(2 * t + phase), 9.8 + 0.1 * t], axis=1)


@pytest.mark.parametrize("with_hole", [True, False])
def test_join_is_its_definition(with_hole):
    t_acc = np.arange(0.0, 10.0, 0.01) + 0.0037  # 100 Hz, starts after the gyroscope
    if with_hole:
        t_acc = t_acc[(t_acc < 4.0) | (t_acc > 4.5)]  # 0.5 s missing: 50 intervals, a hole
    t_gyro = np.arange(-0.1, 10.2, 0.0025)  # 400 Hz, runs past the accelerometer at both ends
    acc, gyro = _signal(t_acc, 0.3), _signal(t_gyro, 1.1) * 0.01
    export = Export(
        format="test",
        series=[
            make_series(SensorKind.ACC, t_acc, acc, unit="m/s^2", where="acc.csv"),
            make_series(SensorKind.GYRO, t_gyro, gyro, unit="rad/s", where="gyro.csv"),
        ],
    )
    rec = to_recording(export, "x")

    inside = (t_gyro >= t_acc[0]) & (t_gyro <= t_acc[-1])
    d = np.diff(t_acc)
    hole = max(HOLE_INTERVALS * np.median(d), 0.05)
    in_hole = np.zeros_like(inside)
    for g in np.flatnonzero(d > hole):
        in_hole |= (t_gyro > t_acc[g]) & (t_gyro < t_acc[g + 1])
    keep = inside & ~in_hole
    expected_acc = np.stack([np.interp(t_gyro, t_acc, acc[:, c]) for c in range(3)], axis=1)
    np.testing.assert_array_equal(rec.timestamp_s, t_gyro[keep])
    np.testing.assert_array_equal(rec.imu[:, :3], expected_acc[keep])
    np.testing.assert_array_equal(rec.imu[:, 3:], gyro[keep])
    flags = rec.imu.flags
    assert (flags.f_contiguous or flags.c_contiguous) and rec.imu.shape == (keep.sum(), 6)
    rules = " | ".join(rec.source.rules)
    assert f"{int((~inside).sum())} samples outside the span" in rules
    assert ("accelerometer has a hole" in rules) == with_hole
    if with_hole:
        assert f"{int(in_hole.sum())} samples left out where the accelerometer" in rules
