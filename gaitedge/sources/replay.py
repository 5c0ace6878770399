"""Replay a recording as a stream, paced at real time (or faster), without drift; the file is
read in chunks (``gaitedge.formats.open_chunks``), so memory does not grow with its length."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import numpy as np

from gaitedge.formats import ReadOptions, open_chunks
from gaitedge.recording import Recording
from gaitedge.sources.base import SampleChunk, SourceStats

# Samples per chunk when ``fast``: the chain, the engine (one call per chunk, in batches of at
# most ``OnnxEngine.MAX_BATCH``) and the alert logic cost less per sample in larger chunks;
# memory is bounded by a chunk (16 384 samples: 5.5 min at 50 Hz, about 10 MB of windows).
# ``summarize`` streams with it too, so its minutes are the timeline ``replay`` prints.
# bench/replay.py measures it against 4096, the size before.
FAST_CHUNK_SAMPLES = 1 << 14


class ReplaySource:
    """Yields a recording in chunks.

    Paced: the recording in fixed slices of its own time (``tick_s * speed``), each sent when
    the wall clock since the start reaches its end, so pacing never drifts however long the
    replay and the chunks are the same on every run. ``fast=True`` yields large chunks as fast
    as the consumer takes them.

    Args:
        path: a recording in any format ``gaitedge.formats`` reads (streamed in chunks); or
            pass ``recording`` (in memory) or ``chunks`` (a recording's chunks in order, e.g.
            a ``gaitedge.formats.RecordingStream``).
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
        chunks: Iterable[Recording] | None = None,
        speed: float = 1.0,
        fast: bool = False,
        tick_s: float = 0.1,
        fast_chunk_samples: int = FAST_CHUNK_SAMPLES,
        rate_hz: float | None = None,
        device: str | None = None,
        strict: bool = False,
    ) -> None:
        if sum(x is not None for x in (path, recording, chunks)) != 1:
            raise ValueError("give one of a recording path, a Recording or its chunks")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.path = Path(path) if path is not None else None
        self.recording = recording
        self._chunks = (
            chunks if chunks is not None else (None if recording is None else [recording])
        )
        self.speed, self.fast, self.tick_s = speed, fast, tick_s
        self.fast_chunk_samples = fast_chunk_samples
        self.rate_hz = rate_hz
        self.strict = strict
        self.device = device or (self.path.name if self.path else "replay")
        self.stats = SourceStats()

    async def __aenter__(self) -> ReplaySource:
        if self._chunks is None:
            options = ReadOptions(rate_hz=self.rate_hz, strict=self.strict)
            self._chunks = open_chunks(self.path, options=options)
        return self

    async def __aexit__(self, *exc: object) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        first, t0, start = True, None, time.monotonic()
        for rec in self._chunks:
            if not len(rec):
                continue
            if t0 is None:
                t0 = float(rec.timestamp_s[0])
                self.stats.rate_hz = rec.median_rate_hz
            t = rec.timestamp_s - t0
            bounds = self._fast_bounds(len(t)) if self.fast else self._paced_bounds(t, start)
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

    async def _paced_bounds(self, t: np.ndarray, start: float) -> AsyncIterator[tuple[int, int]]:
        """Fixed slices of the recording's time, ``tick_s * speed`` each, every one sent when
        the wall clock reaches its end (at once while behind): the chunks, and so what the
        pipeline makes of them, are the same on every run however the machine keeps up."""
        step, sent = self.tick_s * self.speed, 0
        t = np.maximum.accumulate(t)  # a stamp that steps back goes with the newest before it
        while sent < len(t):
            end = (np.floor(t[sent] / step) + 1.0) * step  # the slice of the next sample
            wait = start + end / self.speed - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            due = max(int(np.searchsorted(t, end, side="left")), sent + 1)
            yield sent, due
            sent = due
