"""The join of two sensors on separate clocks (``gaitedge.formats.join.to_recording``), pinned
against its definition computed here directly: the faster sensor's stamps inside the slower
one's span, less those strictly inside one of its holes, the slower one interpolated there."""

from __future__ import annotations

import numpy as np
import pytest

from gaitedge.cores import PARALLEL_FROM, PIECE_ROWS
from gaitedge.formats.base import Export, SensorKind
from gaitedge.formats.join import HOLE_INTERVALS, make_series, to_recording


def _signal(t: np.ndarray, phase: float) -> np.ndarray:
    return np.stack([np.sin(t + phase), np.cos(2 * t + phase), 9.8 + 0.1 * t], axis=1)


@pytest.mark.parametrize("seconds", [10.0, 400.0])  # 400 s: the long join (threads, blocks)
@pytest.mark.parametrize("with_hole", [True, False])
def test_join_is_its_definition(with_hole, seconds):
    t_acc = np.arange(0.0, seconds, 0.01) + 0.0037  # 100 Hz, starts after the gyroscope
    if with_hole:
        t_acc = t_acc[(t_acc < 4.0) | (t_acc > 4.5)]  # 0.5 s missing: 50 intervals, a hole
    t_gyro = np.arange(-0.1, seconds + 0.2, 0.0025)  # 400 Hz, past the accelerometer both ends
    assert (len(t_gyro) > max(PARALLEL_FROM, 2 * PIECE_ROWS)) == (seconds > 10)
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
    # Each sensor's rate as inspect reports it: its intervals less its holes, over their sum.
    for info, t in zip(rec.source.sensors, (t_acc, t_gyro), strict=True):
        d = np.diff(t)
        ok = d <= max(HOLE_INTERVALS * np.median(d), 0.05)
        assert info.rate_hz == pytest.approx(ok.sum() / d[ok].sum(), rel=1e-9)


# --- the same join, streamed (stream_recording) ------------------------------------------------


def _pieces(series, n: int):
    from gaitedge.formats.base import Series

    for i in range(0, len(series.t_s), n):
        yield Series(
            series.kind, series.t_s[i : i + n], series.xyz[i : i + n], series.where, series.unit
        )


def _streamed(series: list, n: int, **options):
    from gaitedge.formats.join import SeriesStream, stream_recording

    streams = [SeriesStream(s.kind, s.where, _pieces(s, n + 7 * k)) for k, s in enumerate(series)]
    recs = list(stream_recording(streams, "x", **options))
    return np.concatenate([r.timestamp_s for r in recs]), np.concatenate([r.imu for r in recs])


def _clock(rng, n: int, dt: float, start: float) -> np.ndarray:
    """Stamps as phones send them: jitter, ties (10 ms resolution), one clock reset."""
    t = start + np.arange(n) * dt + rng.normal(0, dt / 10, n)
    t = np.round(t, 2)  # ties
    t[n // 2 :] -= 3.0  # a clock reset half-way
    return t


@pytest.mark.parametrize("faster", ["gyroscope", "accelerometer"])
def test_streamed_join_is_the_whole_join_in_any_pieces(faster):
    rng = np.random.default_rng(3)
    dt_acc, dt_gyro = (0.01, 0.0025) if faster == "gyroscope" else (0.005, 0.02)
    t_acc = _clock(rng, int(120 / dt_acc), dt_acc, 0.0037)
    t_acc = np.delete(t_acc, np.s_[len(t_acc) // 4 : len(t_acc) // 4 + 50])  # a hole
    t_gyro = _clock(rng, int(121 / dt_gyro), dt_gyro, -0.1)
    series = [
        make_series(SensorKind.ACC, t_acc, _signal(t_acc, 0.3), unit="g", where="acc.csv"),
        make_series(SensorKind.GYRO, t_gyro, _signal(t_gyro, 1.1), unit="deg/s", where="g.csv"),
    ]
    whole = to_recording(Export("test", series), "x")
    assert any("has a hole" in r for r in whole.source.rules)
    for n in (333, 4096, 10**6):
        t, imu = _streamed(series, n)
        np.testing.assert_array_equal(t, whole.timestamp_s)
        np.testing.assert_array_equal(imu, whole.imu)


def test_streamed_join_adds_gravity_back_and_keeps_acceleration_alone():
    rng = np.random.default_rng(4)
    t_lin, t_grav = _clock(rng, 6000, 0.01, 0.0), _clock(rng, 6000, 0.01, 0.004)
    t_gyro = _clock(rng, 6000, 0.01, 0.002)
    series = [
        make_series(
            SensorKind.LINEAR_ACC, t_lin, _signal(t_lin, 0.0) - 9.8, unit="m/s^2", where="lin"
        ),
        make_series(SensorKind.GRAVITY, t_grav, _signal(t_grav, 2.0), unit="m/s^2", where="grav"),
        make_series(SensorKind.GYRO, t_gyro, _signal(t_gyro, 1.0), unit="rad/s", where="gyro"),
    ]
    whole = to_recording(Export("test", series), "x")
    t, imu = _streamed(series, 1000)
    np.testing.assert_array_equal(t, whole.timestamp_s)
    np.testing.assert_array_equal(imu, whole.imu)
    alone = to_recording(Export("test", series[:2]), "x", accelerometer_only=True)
    t, imu = _streamed(series[:2], 777, accelerometer_only=True)
    np.testing.assert_array_equal(t, alone.timestamp_s)
    np.testing.assert_array_equal(imu, alone.imu)


def test_streamed_join_refuses_as_the_whole_join():
    from gaitedge.formats.base import FormatError

    t = np.arange(5000) * 0.01
    bad_t = t.copy()
    bad_t[3000] = bad_t[2999]  # a tie: refused when strict
    nan = _signal(t, 0.0)
    nan[4321, 1] = np.nan
    for acc_t, acc_x, strict in ((bad_t, _signal(t, 0.0), True), (t, nan, False)):
        series = [
            make_series(SensorKind.ACC, acc_t, acc_x, unit="m/s^2", where="acc.csv"),
            make_series(SensorKind.GYRO, t, _signal(t, 1.0), unit="rad/s", where="gyro.csv"),
        ]
        with pytest.raises(FormatError) as whole:
            to_recording(Export("test", series), "x", strict=strict)
        with pytest.raises(FormatError) as streamed:
            _streamed(series, 1000, strict=strict)
        assert str(streamed.value) == str(whole.value)


def test_files_of_different_recordings_are_named():
    """Gravity of one session beside acceleration of another (a real export folder held both):
    the files and their spans said, not '0 samples'."""
    from gaitedge.formats.base import FormatError

    t = np.arange(1000) * 0.01
    lin = make_series(SensorKind.LINEAR_ACC, t, _signal(t, 0.0), unit="m/s^2", where="Acc.csv")
    grav = make_series(
        SensorKind.GRAVITY, t + 3.4e5, _signal(t, 1.0), unit="m/s^2", where="Gravity.csv"
    )
    gyro = make_series(SensorKind.GYRO, t, _signal(t, 2.0), unit="rad/s", where="Gyro.csv")
    with pytest.raises(
        FormatError,
        match=r"Acc\.csv \(0\.000-9\.990 s\) and Gravity\.csv .* do "
        r"not overlap in time: files of different recordings\?",
    ):
        to_recording(Export("test", [lin, grav, gyro]), "x")


def test_a_sensor_below_20_hz_is_said():
    t_acc, t_gyro = np.arange(100) * 1.0, np.arange(100) * 1.0 + 0.3  # 1 Hz, as exported
    export = Export(
        "test",
        [
            make_series(SensorKind.ACC, t_acc, _signal(t_acc, 0.0), unit="m/s^2", where="a"),
            make_series(SensorKind.GYRO, t_gyro, _signal(t_gyro, 1.0), unit="rad/s", where="g"),
        ],
    )
    rules = to_recording(export, "x").source.rules
    assert "acceleration at 1 Hz, below 20 Hz: interpolated onto the other sensor's stamps" in (
        " | ".join(rules)
    )
