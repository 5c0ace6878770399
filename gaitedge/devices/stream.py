"""Decoded device samples -> :class:`~gaitedge.sources.base.SampleChunk` with stream time.

The vendor profiles' counterpart of ``gaitedge.sources.frames.FrameAssembler``: stream time
runs on the device clock from the connection's first sample; a reconnected device's first
sample comes after the last one by the outage as the host clock measured it (a forward gap
and a segment break, whatever the device clock did meanwhile); the host-vs-device clock is
fitted by the one :class:`~gaitedge.sources.frames.ClockModel`.

Two time semantics:

* the device sends its time (Polar, Movesense): each sample's ``t_device_s`` places it;
* it sends none (MetaWear, Thingy:52, most GATT layouts): the device clock is the sample count
  over the nominal rate. Lost notifications are then inferred from the host clock: once the
  fit has :data:`MIN_FIT_S` of data, an arrival later than the fit allows by more than
  :data:`LOSS_TOLERANCE_S` means samples were lost, and the count jumps by what is missing,
  so stream time does not fall behind the world.
"""

from __future__ import annotations

import logging

import numpy as np

from gaitedge.devices.base import Samples
from gaitedge.sources.base import SampleChunk, SourceStats
from gaitedge.sources.frames import ClockModel

log = logging.getLogger(__name__)

# A host-clocked device's samples are inferred lost only after this much fitted data, and only
# when they arrive this much later than the clock fit allows: BLE connection events and a busy
# host delay notifications by tens of milliseconds, never by a quarter of a second in a row.
MIN_FIT_S = 2.0
LOSS_TOLERANCE_S = 0.25
# A fitted clock outside this ratio to the host's is no device clock but a fit gone wrong (or
# a recording played faster than real time): no loss is inferred from it.
MAX_CLOCK_RATIO = 1.5
# Longer than this is an outage, not lost notifications: the chain breaks the segment anyway.
MAX_INFERRED_LOSS_S = 10.0


class DeviceAssembler:
    """Samples of one device across its connections -> SampleChunks."""

    def __init__(self, device: str, stats: SourceStats, rate_hz: float) -> None:
        self.device = device
        self.stats = stats
        self.rate_hz = rate_hz
        self.acc_range_g: float | None = None
        self._last_t_s: float | None = None  # stream time of the last sample, across connections
        self._last_host_s: float | None = None
        self.reset()

    def reset(self) -> None:
        """A new connection: the device clock (or sample count) starts over, and so does the
        fit (a device that was off has no clock relation to carry over)."""
        self.clock = ClockModel()
        self._t0_device_s: float | None = None
        self._count = 0  # samples placed on this connection (host-clocked devices)
        self._fit_start_host_s: float | None = None
        self._offset_s = 0.0
        self._new_connection = True

    def add(self, samples: Samples, host_rx_s: float) -> list[SampleChunk]:
        n = len(samples.imu)
        if n == 0:
            return []
        if self._t0_device_s is None:
            if self._last_t_s is not None:
                self._offset_s = self._last_t_s + (host_rx_s - self._last_host_s)
            self._fit_start_host_s = host_rx_s
            first = samples.t_device_s[0] if samples.t_device_s is not None else 0.0
            self._t0_device_s = float(first)
        lost = samples.lost_samples
        if samples.t_device_s is not None:
            t_dev = np.asarray(samples.t_device_s, dtype=np.float64) - self._t0_device_s
        else:
            lost += self._inferred_loss(n, host_rx_s)
            self._count += lost
            t_dev = (self._count + np.arange(n)) / self.rate_hz
            self._count += n
        t_s = self._offset_s + t_dev
        if self._last_t_s is not None and t_s[0] <= self._last_t_s:
            keep = t_s > self._last_t_s  # a repeated or overlapping frame: only what is new
            t_s, imu = t_s[keep], samples.imu[keep]
            if not len(t_s):
                return []
        else:
            imu = samples.imu
        self._last_t_s, self._last_host_s = float(t_s[-1]), host_rx_s
        self.clock.add(float(t_s[-1]), host_rx_s)
        self.stats.lost_frames += lost
        self.stats.chunks += 1
        self.stats.samples += len(t_s)
        self.stats.rate_hz = self.rate_hz
        chunk = SampleChunk(
            device=self.device,
            t_s=t_s,
            imu=np.asarray(imu, dtype=np.float64),
            host_rx_s=host_rx_s,
            lost_frames=lost,
            new_connection=self._new_connection,
            acc_range_g=self.acc_range_g,
        )
        self._new_connection = False
        return [chunk]

    def _inferred_loss(self, n: int, host_rx_s: float) -> int:
        """Samples missing before these ``n``, by the host clock (host-clocked devices)."""
        if host_rx_s - self._fit_start_host_s < MIN_FIT_S:
            return 0
        offset, drift = self.clock.fit()
        if (offset == 0.0 and drift == 0.0) or not (
            1 / MAX_CLOCK_RATIO < 1.0 + drift < MAX_CLOCK_RATIO
        ):
            return 0
        expected_s = (host_rx_s - offset) / (1.0 + drift)  # stream time of this arrival
        placed_s = self._offset_s + (self._count + n - 1) / self.rate_hz
        missing_s = expected_s - placed_s
        if not LOSS_TOLERANCE_S < missing_s <= MAX_INFERRED_LOSS_S:
            return 0
        lost = round(missing_s * self.rate_hz)
        log.info("%s: %d samples missing by the host clock", self.device, lost)
        return lost

    def drift_ppm(self) -> float:
        return self.clock.fit()[1] * 1e6
