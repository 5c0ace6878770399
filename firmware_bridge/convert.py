"""From wire values to SI units and back: counts, wrapping clocks and sequence gaps.

The scale comes from the DeviceInfo message: 32768 counts are the sensor's full-scale range,
so one accelerometer count is ``accel_range_g * 9.80665 / 32768`` m/s² and one gyroscope count
is ``gyro_range_dps * pi / 180 / 32768`` rad/s.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.protocol import (
    FULL_SCALE_COUNTS,
    SEQ_MODULUS,
    TIMESTAMP_MODULUS_US,
    DeviceInfo,
    SampleFrame,
)
from gaitedge.units import AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s


def scale_per_count(info: DeviceInfo) -> np.ndarray:
    """[6] SI units per count: m/s² for the three accel axes, rad/s for the three gyro axes
    (the conversion itself is ``gaitedge.units``')."""
    g_per_count = info.accel_range_g / FULL_SCALE_COUNTS
    dps_per_count = info.gyro_range_dps / FULL_SCALE_COUNTS
    accel = float(accel_to_m_s2(1.0, AccelUnit.COUNTS, g_per_count=g_per_count))
    gyro = float(gyro_to_rad_s(1.0, GyroUnit.COUNTS, dps_per_count=dps_per_count))
    return np.array([accel] * 3 + [gyro] * 3)


def counts_to_si(samples: np.ndarray, info: DeviceInfo) -> np.ndarray:
    """[N, 6] int16 counts -> [N, 6] float64 in m/s² and rad/s."""
    return np.asarray(samples, dtype=np.float64) * scale_per_count(info)


def si_to_counts(imu: np.ndarray, info: DeviceInfo) -> np.ndarray:
    """[N, 6] m/s² and rad/s -> [N, 6] int16 counts, rounded and saturated at the full scale.

    A value beyond the range clips to -32768 or 32767, as the sensor itself would; NaN maps
    to 0 so a bad input cannot produce an undefined integer cast.
    """
    counts = np.rint(np.nan_to_num(np.asarray(imu, dtype=np.float64)) / scale_per_count(info))
    return np.clip(counts, -FULL_SCALE_COUNTS, FULL_SCALE_COUNTS - 1).astype(np.int16)


def sample_times_s(
    frame: SampleFrame, info: DeviceInfo, first_timestamp_us: int | None = None
) -> np.ndarray:
    """[N] device time of each sample in seconds: the first sample's time + i / rate.

    ``first_timestamp_us`` replaces the frame's wrapping 32-bit timestamp, typically with the
    value from ``TimestampUnwrapper.unwrap``.
    """
    t0_us = frame.timestamp_us if first_timestamp_us is None else first_timestamp_us
    return t0_us * 1e-6 + np.arange(len(frame.samples)) / info.sample_rate_hz


def frame_to_si(
    frame: SampleFrame, info: DeviceInfo, first_timestamp_us: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A frame in SI units: ([N] sample times in s, [N, 6] m/s² and rad/s)."""
    return sample_times_s(frame, info, first_timestamp_us), counts_to_si(frame.samples, info)


def frames_lost(prev_seq: int, seq: int) -> int:
    """Frames missing between two consecutively received sequence numbers, across the wrap.

    0 when ``seq`` follows ``prev_seq``. The answer is modulo 65536: a gap of 65536 frames or
    more looks smaller, so a runtime that may lose that much (minutes at typical frame rates)
    checks the timestamp gap too. A repeated ``seq`` gives 65535 and usually means the device
    restarted.
    """
    return (seq - prev_seq - 1) % SEQ_MODULUS


class TimestampUnwrapper:
    """Turns the device's wrapping uint32 microsecond clock into a monotone count.

    Each step adds ``(raw - previous raw) mod 2**32``, which is right as long as consecutive
    frames are less than 2**32 us (71.6 min) apart on the device clock; a longer silence is a
    disconnect, after which the caller calls ``reset``. The first value passes through.
    """

    def __init__(self) -> None:
        self._last_raw: int | None = None
        self._total_us = 0

    def unwrap(self, timestamp_us: int) -> int:
        """The unwrapped microsecond time of a raw frame timestamp."""
        if self._last_raw is None:
            self._total_us = timestamp_us
        else:
            self._total_us += (timestamp_us - self._last_raw) % TIMESTAMP_MODULUS_US
        self._last_raw = timestamp_us
        return self._total_us

    def reset(self) -> None:
        """Forget the history, e.g. after a reconnect."""
        self._last_raw = None
        self._total_us = 0
