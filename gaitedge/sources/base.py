"""The source interface: what every source yields, and its link counters.

A source is an async context manager whose ``chunks()`` yields :class:`SampleChunk` objects:
samples in SI units with their stream times, sequence numbers, device timestamps and host
receive times (pylsl's ``pull_chunk`` returns samples and timestamps together, for the same
reason). How device sources turn decoded frames into chunks is ``gaitedge.sources.frames``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class SampleChunk:
    """Consecutive samples from one device.

    Attributes:
        device: the device's name (BLE name, port, or recording file).
        t_s: [N] stream time: seconds since the connection's (or recording's) first sample,
            on the device clock.
        imu: [N, 6] acc in m/s², gyro in rad/s.
        host_rx_s: host ``time.monotonic()`` when the chunk arrived.
        seq: the frame's sequence number (None for recordings).
        lost_frames: frames lost just before this chunk (from sequence numbers).
        new_connection: first chunk after a (re)connect; the chain starts a new segment.
        declared_mounting: the axis map the device declares in its DeviceInfo (``-y,x,z``), or
            None (the host estimates the mounting).
        acc_range_g: the accelerometer's full scale from DeviceInfo, or None (recordings).
    """

    device: str
    t_s: np.ndarray
    imu: np.ndarray
    host_rx_s: float
    seq: int | None = None
    lost_frames: int = 0
    new_connection: bool = False
    declared_mounting: str | None = None
    acc_range_g: float | None = None


@dataclass
class SourceStats:
    """Link health for the live display; nothing lost goes uncounted."""

    chunks: int = 0
    samples: int = 0
    lost_frames: int = 0
    frames_before_info: int = 0
    reconnects: int = 0
    watchdog_timeouts: int = 0
    decoder_drops: dict[str, int] = field(default_factory=dict)
    rate_hz: float = 0.0


class Source(Protocol):
    """One interface, several backends (serial, BLE, replay)."""

    device: str
    stats: SourceStats

    async def __aenter__(self) -> Source: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def chunks(self) -> AsyncIterator[SampleChunk]: ...
