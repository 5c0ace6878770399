"""Replay a recording CSV as a stream, paced at real time (or faster), without drift."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from gaitedge.formats import ReadOptions, read
from gaitedge.recording import Recording
from gaitedge.sources.base import SampleChunk, SourceStats


class ReplaySource:
    """Yields a recording in chunks.

    Paced: the number of samples due is recomputed from the wall clock each tick
    (``due = samples with t <= speed * elapsed - sent``), so pacing never drifts however long
    the replay. ``fast=True`` yields large chunks as fast as the consumer takes them.

    Args:
        path: a recording in any format ``gaitedge.formats`` reads; or pass ``recording``.
        speed: playback speed factor when paced.
        fast: no pacing at all.
        tick_s: wall time between paced chunks.
        fast_chunk_samples: chunk size when ``fast``.
        rate_hz: sample rate for CSV files without timestamps.
    """

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        *,
        recording: Recording | None = None,
        speed: float = 1.0,
        fast: bool = False,
        tick_s: float = 0.1,
        fast_chunk_samples: int = 4096,
        rate_hz: float | None = None,
        device: str | None = None,
        strict: bool = False,
    ) -> None:
        if (path is None) == (recording is None):
            raise ValueError("give a recording path or a Recording, not both")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.path = Path(path) if path is not None else None
        self.recording = recording
        self.speed, self.fast, self.tick_s = speed, fast, tick_s
        self.fast_chunk_samples = fast_chunk_samples
        self.rate_hz = rate_hz
        self.strict = strict
        self.device = device or (self.path.name if self.path else "replay")
        self.stats = SourceStats()

    async def __aenter__(self) -> ReplaySource:
        if self.recording is None:
            options = ReadOptions(rate_hz=self.rate_hz, strict=self.strict)
            self.recording = read(self.path, options=options)
        self.stats.rate_hz = self.recording.median_rate_hz
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        rec = self.recording
        t = rec.timestamp_s - rec.timestamp_s[0]
        bounds = self._fast_bounds(len(t)) if self.fast else self._paced_bounds(t)
        first = True
        async for a, b in bounds:
            self.stats.chunks += 1
            self.stats.samples += b - a
            yield SampleChunk(
                device=self.device,
                t_s=t[a:b],
                imu=rec.imu[a:b],
                host_rx_s=time.monotonic(),
                new_connection=first,
            )
            first = False

    async def _fast_bounds(self, n: int) -> AsyncIterator[tuple[int, int]]:
        for a in range(0, n, self.fast_chunk_samples):
            yield a, min(a + self.fast_chunk_samples, n)
            await asyncio.sleep(0)

    async def _paced_bounds(self, t: np.ndarray) -> AsyncIterator[tuple[int, int]]:
        start, sent = time.monotonic(), 0
        while sent < len(t):
            elapsed = (time.monotonic() - start) * self.speed
            due = int(np.searchsorted(t, elapsed, side="right"))
            if due > sent:
                yield sent, due
                sent = due
            await asyncio.sleep(self.tick_s)
