"""What the serial and BLE sources share: a receive queue, the watchdog, reconnect with backoff.

Receivers (a reader thread, a notification callback) only enqueue ``(payload, host time)``;
:meth:`DeviceSource.chunks` is the one consumer. A disconnect or a silent device closes the
link and reconnects with exponential backoff (bleak-retry-connector style); the assembler then
starts a new connection, so the outage is a gap in stream time and a segment break.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from firmware_bridge import Message
from gaitedge.sources.base import SampleChunk, SourceStats
from gaitedge.sources.frames import FrameAssembler

log = logging.getLogger(__name__)

DISCONNECTED = object()


class SourceError(RuntimeError):
    """A source that cannot deliver (port missing, device gone for good)."""


class DeviceSource:
    """Base of the live sources; subclasses open and close the link and decode payloads."""

    first_backoff_s = 0.1

    def __init__(
        self,
        device: str,
        *,
        watchdog_s: float,
        max_backoff_s: float,
        max_reconnects: int | None,
        queue_size: int,
    ) -> None:
        self.device = device
        self.watchdog_s = watchdog_s
        self.max_backoff_s = max_backoff_s
        self.max_reconnects = max_reconnects
        self.stats = SourceStats()
        self.assembler = FrameAssembler(device, self.stats)
        self.queue_overflows = 0
        self._queue_size = queue_size
        self._queue: asyncio.Queue | None = None

    async def _connect(self) -> None:
        """Open the link; raise SourceError if it cannot be opened."""
        raise NotImplementedError

    async def _disconnect(self) -> None:
        raise NotImplementedError

    def _decode(self, payload: bytes) -> list[Message]:
        raise NotImplementedError

    def _decoder_stats(self):
        raise NotImplementedError

    def _put(self, item: object) -> None:
        """Enqueue from a receiver; a full queue (consumer too slow) is counted, never silent."""
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queue_overflows += 1

    async def __aenter__(self) -> DeviceSource:
        self._queue = asyncio.Queue(self._queue_size)
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._disconnect()

    async def _next(self) -> object:
        """The next queued item, or DISCONNECTED after ``watchdog_s`` of silence.

        Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that arrives as
        the item does, and a caller stopping the stream (``--duration``) would then wait forever.
        """
        getter = asyncio.ensure_future(self._queue.get())
        try:
            done, _ = await asyncio.wait({getter}, timeout=self.watchdog_s)
        finally:
            if not getter.done():
                getter.cancel()
        if done:
            return getter.result()
        self.stats.watchdog_timeouts += 1
        log.warning("nothing from %s for %.1f s: reconnecting", self.device, self.watchdog_s)
        return DISCONNECTED

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        while True:
            item = await self._next()
            if item is DISCONNECTED:
                await self._reconnect()
                continue
            payload, host_rx_s = item
            for message in self._decode(payload):
                for chunk in self.assembler.add(message, host_rx_s):
                    yield chunk
            dropped = self._decoder_stats().dropped
            self.stats.decoder_drops = {r.value: n for r, n in dropped.items() if n}

    async def _reconnect(self) -> None:
        await self._disconnect()
        backoff, attempts = self.first_backoff_s, 0
        while True:
            await asyncio.sleep(backoff)
            try:
                await self._connect()
            except SourceError as exc:
                attempts += 1
                log.warning("reconnect %d to %s failed: %s", attempts, self.device, exc)
                if self.max_reconnects is not None and attempts >= self.max_reconnects:
                    raise SourceError(
                        f"{self.device}: gone, {attempts} reconnect attempts failed"
                    ) from exc
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.stats.reconnects += 1
            self.assembler.reset()
            log.info("reconnected to %s", self.device)
            return
