"""Frame assembly shared by the device sources (serial, BLE): decoded ``firmware_bridge``
messages of one connection -> :class:`~gaitedge.sources.base.SampleChunk`, with stream time on
the device clock and the host-vs-device clock fit."""

from __future__ import annotations

import numpy as np

from firmware_bridge import (
    DeviceInfo,
    SampleFrame,
    TimestampUnwrapper,
    counts_to_si,
    frames_lost,
)
from gaitedge.sources.base import SampleChunk, SourceStats

SEQ_REPEATED = 65535  # what frames_lost() says for a repeated sequence number


class ClockModel:
    """Host-vs-device clock: offset and drift fitted by least squares on recent frames.

    ``host ≈ offset + (1 + drift) * device``. Used to report drift and end-to-end latency; stream
    time stays on the device clock, whose sample spacing is what the signal chain needs.
    """

    def __init__(self, max_points: int = 512) -> None:
        self._device = np.zeros(max_points)
        self._host = np.zeros(max_points)
        self._n = 0

    def add(self, device_s: float, host_s: float) -> None:
        i = self._n % len(self._device)
        self._device[i], self._host[i] = device_s, host_s
        self._n += 1

    def fit(self) -> tuple[float, float]:
        """(offset_s, drift) where drift is fractional (1e-6 = 1 ppm); (0, 0) until fitted."""
        n = min(self._n, len(self._device))
        if n < 8:
            return 0.0, 0.0
        d, h = self._device[:n], self._host[:n]
        dc = d - d.mean()
        var = float(dc @ dc)
        if var < 1.0:  # under a second of data: the slope is noise
            return float((h - d).min()), 0.0
        slope = float(dc @ (h - h.mean())) / var
        # The minimum residual (not the mean) tracks the fastest delivery path: queueing
        # delays only ever add latency.
        offset = float((h - slope * d).min())
        return offset, slope - 1.0


class FrameAssembler:
    """Decoded messages from one device connection -> SampleChunks.

    Sample frames need the device's DeviceInfo (rate and scale); frames that arrive before it
    are kept (up to ``max_pending``) and released once it comes, counted if dropped.
    """

    def __init__(self, device: str, stats: SourceStats, max_pending: int = 256) -> None:
        self.device = device
        self.stats = stats
        self.max_pending = max_pending
        self.info: DeviceInfo | None = None
        self.clock = ClockModel()
        self._pending: list[tuple[SampleFrame, float]] = []
        self._origin_host_s: float | None = None
        self.reset()

    def reset(self) -> None:
        """A new connection: the device clock and sequence numbers start over.

        Stream time goes on: a reconnected device's first sample is placed at the host time
        elapsed since the very first sample, so the outage shows as a gap (a segment break).
        """
        self._unwrap = TimestampUnwrapper()
        self._t0_us: int | None = None
        self._offset_s = 0.0
        self._prev_seq: int | None = None
        self._new_connection = True

    def add(self, message: SampleFrame | DeviceInfo, host_rx_s: float) -> list[SampleChunk]:
        if isinstance(message, DeviceInfo):
            self.info = message
            self.stats.rate_hz = message.sample_rate_hz
            pending, self._pending = self._pending, []
            return [c for f, h in pending for c in self._convert(f, h)]
        if self.info is None:
            if len(self._pending) < self.max_pending:
                self._pending.append((message, host_rx_s))
            else:
                self.stats.frames_before_info += 1
            return []
        return self._convert(message, host_rx_s)

    def _convert(self, frame: SampleFrame, host_rx_s: float) -> list[SampleChunk]:
        lost = 0
        if self._prev_seq is not None:
            lost = frames_lost(self._prev_seq, frame.seq)
            if lost == SEQ_REPEATED:  # a duplicated frame, not 65535 lost ones
                return []
        self._prev_seq = frame.seq
        t_us = self._unwrap.unwrap(frame.timestamp_us)
        if self._t0_us is None:
            self._t0_us = t_us
            if self._origin_host_s is None:
                self._origin_host_s = host_rx_s
            self._offset_s = host_rx_s - self._origin_host_s
        n = len(frame.samples)
        t_s = self._offset_s + (t_us - self._t0_us) * 1e-6 + np.arange(n) / self.info.sample_rate_hz
        self.clock.add(float(t_s[-1]), host_rx_s)
        self.stats.lost_frames += lost
        self.stats.chunks += 1
        self.stats.samples += n
        chunk = SampleChunk(
            device=self.device,
            t_s=t_s,
            imu=counts_to_si(frame.samples, self.info),
            host_rx_s=host_rx_s,
            seq=frame.seq,
            lost_frames=lost,
            new_connection=self._new_connection,
            # A protocol minor that declares the mounting (older devices: None, estimated).
            declared_mounting=getattr(self.info, "mounting_axis_map", None),
            acc_range_g=float(self.info.accel_range_g),
        )
        self._new_connection = False
        return [chunk]

    def drift_ppm(self) -> float:
        return self.clock.fit()[1] * 1e6
