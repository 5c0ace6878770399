"""Decoded device samples -> :class:`~gaitedge.sources.base.SampleChunk` with stream time.

The vendor profiles' counterpart of ``gaitedge.sources.frames.FrameAssembler``: stream time
runs on the device clock; the host-vs-device clock is fitted by the one
:class:`~gaitedge.sources.frames.ClockModel`.

Two time semantics:

* the device sends its time (Polar, Movesense): each sample's ``t_device_s`` places it;
* it sends none (MetaWear, Thingy:52, most GATT layouts): the device clock is the sample count
  over the nominal rate. Lost notifications are then inferred from the host clock: once the
  fit has :data:`MIN_FIT_S` of data, an arrival later than the fit allows by more than
  :data:`LOSS_TOLERANCE_S` means samples were lost, and the count jumps by what is missing,
  so stream time does not fall behind the world.

Across a reconnect: a device that sends its time and whose clock ran through the outage
(``gaitedge.sources.frames.continues``: the device time that passed fits the host time that
passed) continues its timeline, and every sample missing between the last sample before the
outage and the first after it is counted lost, from the device's own times. A clock that went
back or jumped is a restart: said so, counted in ``SourceStats.device_restarts``, a new
timeline (after the last sample by the host time passed) and a new segment. A device that
sends no time cannot be told apart from a restarted one: its outage is counted from the host
clock (``SourceStats.lost_samples_inferred``) and its timeline goes on by that count.
"""

from __future__ import annotations

import logging

import numpy as np

from gaitedge.devices.base import Samples
from gaitedge.sources.base import SampleChunk, SourceStats
from gaitedge.sources.frames import MAX_CLOCK_RATIO, ClockModel, continues

log = logging.getLogger(__name__)

# A host-clocked device's samples are inferred lost only after this much fitted data, and only
# when they arrive this much later than the clock fit allows: BLE connection events and a busy
# host delay notifications by tens of milliseconds, never by a quarter of a second in a row.
MIN_FIT_S = 2.0
LOSS_TOLERANCE_S = 0.25
# Longer than this is an outage, not lost notifications: the chain breaks the segment anyway.
MAX_INFERRED_LOSS_S = 10.0


class DeviceAssembler:
    """Samples of one device across its connections -> SampleChunks."""

    def __init__(self, device: str, stats: SourceStats, rate_hz: float) -> None:
        self.device = device
        self.stats = stats
        self.rate_hz = rate_hz
        self.acc_range_g: float | None = None
        self.clock = ClockModel()
        self._last_t_s: float | None = None  # stream time of the last sample, across connections
        self._last_host_s: float | None = None
        self._last_device_s: float | None = None  # its device time (devices that send one)
        self._new_connection = True
        self._reconnected = False
        self._new_timeline()

    def _new_timeline(self) -> None:
        """The device clock (or sample count) starts over: a first connection, a restart."""
        self._t0_device_s: float | None = None
        self._count = 0  # samples placed on this timeline (host-clocked devices)
        self._fit_start_host_s: float | None = None
        self._offset_s = 0.0

    def reset(self) -> None:
        """A new connection: whether the device ran through the outage is judged at its first
        samples."""
        self._new_connection = True
        self._reconnected = self._t0_device_s is not None

    def add(self, samples: Samples, host_rx_s: float) -> list[SampleChunk]:
        n = len(samples.imu)
        if n == 0:
            return []
        lost, inferred, continued = samples.lost_samples, 0, False
        if self._reconnected:
            self._reconnected = False
            lost, inferred, continued = self._outage(samples, n, host_rx_s)
        if self._t0_device_s is None:
            if self._last_t_s is not None:
                self._offset_s = self._last_t_s + (host_rx_s - self._last_host_s)
            self._fit_start_host_s = host_rx_s
            first = samples.t_device_s[0] if samples.t_device_s is not None else 0.0
            self._t0_device_s = float(first)
        if samples.t_device_s is not None:
            t_dev = np.asarray(samples.t_device_s, dtype=np.float64) - self._t0_device_s
            self._last_device_s = float(samples.t_device_s[-1])
        else:
            if not continued:
                inferred += self._inferred_loss(n, host_rx_s)
                lost += inferred
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
        self.stats.lost_samples += lost
        self.stats.lost_samples_inferred += inferred
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
            lost_samples=lost,
            continued=continued,
        )
        self._new_connection = False
        return [chunk]

    def _outage(self, samples: Samples, n: int, host_rx_s: float) -> tuple[int, int, bool]:
        """(samples lost, of them inferred, continued) for the first samples of a reconnect."""
        host_gap_s = host_rx_s - self._last_host_s
        ratio = self.clock.ratio()
        if samples.t_device_s is None:  # no device time: the host clock says what passed
            lost = max(0, round(host_gap_s * (ratio or 1.0) * self.rate_hz) - n)
            log.info("%s: %d samples missing over the outage, by the host clock", self.device, lost)
            return lost, lost, True
        device_gap_s = float(samples.t_device_s[0]) - self._last_device_s
        if continues(device_gap_s, host_gap_s, ratio):
            return max(0, round(device_gap_s * self.rate_hz) - 1), 0, True
        self.stats.device_restarts += 1
        log.warning(
            "%s restarted (its clock went from %.3f s to %.3f s over %.1f s): what it produced "
            "before the restart is not counted",
            self.device,
            self._last_device_s,
            float(samples.t_device_s[0]),
            host_gap_s,
        )
        self._new_timeline()
        self.clock.reset()
        return 0, 0, False

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
