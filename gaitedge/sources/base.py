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

from firmware_bridge.protocol import ResultFrame


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
        lost_frames: frames lost just before this chunk (from sequence numbers), an outage's
            included when the device's counter ran through it.
        new_connection: first chunk after a (re)connect; the chain starts a new segment unless
            ``continued``.
        declared_mounting: the axis map the device declares in its DeviceInfo (``-y,x,z``), or
            None (the host estimates the mounting).
        acc_range_g: the accelerometer's full scale from DeviceInfo, or None (recordings).
        lost_samples: samples lost just before this chunk (an outage's included).
        continued: a reconnect whose first chunk continues the device's own timeline (its
            sequence number and clock ran through the outage): stream time goes on on the
            device clock, the outage is a gap the chain bridges or not by its ``max_gap_s``
            rule, and the chain keeps its segment. False on a first connection and after a
            device restart (the chain starts a new segment).
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
    lost_samples: int = 0
    continued: bool = False
    # The device decides on its own (protocol 1.2 result frames): the host runs its model on
    # these samples only to shadow it (``listen --shadow``).
    device_decides: bool = False


@dataclass(frozen=True)
class DeviceResult:
    """A device's own decision for one window (a protocol 1.2 result frame).

    Attributes:
        device: the device's name.
        t_s: stream time of the window's last sample, on the same timeline as the device's
            sample chunks (the device clock when it sends no samples).
        frame: the decoded ``firmware_bridge.ResultFrame`` (wire units).
        host_rx_s: host ``time.monotonic()`` when it arrived.
        lost_results: result frames lost just before this one (from their sequence numbers).
    """

    device: str
    t_s: float
    frame: ResultFrame
    host_rx_s: float
    lost_results: int = 0


@dataclass
class SourceStats:
    """Link health for the live display; nothing lost goes uncounted.

    ``lost_samples`` counts every sample the device produced that never arrived, on a live link
    or during an outage it kept counting through; ``lost_samples_inferred`` is the part of it
    that came from the host clock (devices that send neither a counter nor a time).
    ``device_restarts``: reconnects at which the device's counter or clock had started over
    (what it produced before the restart cannot be counted).
    """

    chunks: int = 0
    samples: int = 0
    lost_frames: int = 0
    results: int = 0  # result frames received (devices that decide on their own)
    lost_results: int = 0
    lost_samples: int = 0
    lost_samples_inferred: int = 0
    device_restarts: int = 0
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
