"""What the serial and BLE sources share: a receive queue, the watchdog, reconnect with backoff.

Receivers (a reader thread, a notification callback) only enqueue ``(payload, host time)``;
:meth:`DeviceSource.chunks` is the one consumer. A disconnect or a silent device closes the
link and reconnects with exponential backoff and jitter; the assembler then starts a new
connection and judges at its first frame whether the device ran through the outage (its
counter and clock went on: every sample it produced meanwhile is counted lost, and the outage
is a gap in stream time) or restarted (a new timeline and a segment break).

Every connection has an id (``_link``). A receiver that reports a lost link names its
connection (:class:`LinkLost`), and only the current one counts: a closed link's late
disconnect event (bleak calls ``disconnected_callback`` on an intentional ``disconnect()`` too)
never forces a second reconnect.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from firmware_bridge import Message
from gaitedge.sources.base import SampleChunk, SourceStats
from gaitedge.sources.frames import FrameAssembler

log = logging.getLogger(__name__)

DISCONNECTED = object()  # the current link is gone (from a receiver that has only one link)


@dataclass(frozen=True)
class LinkLost:
    """Connection ``link`` dropped; stale once the source has closed or replaced it."""

    link: int


class SourceError(RuntimeError):
    """A source that cannot deliver (port missing, device gone for good)."""


class IncompatibleDeviceError(SourceError):
    """The device answered but is not a gaitedge device: reconnecting cannot help."""


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
        self._link = 0  # id of the current connection
        # Bytes since the last valid message, and since when (None: a message came last):
        # a link that sends only what the decoder refuses is said so, once per connection.
        self._unframed: tuple[float, int] | None = None
        self._unframed_told = False

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

    def _link_lost(self, link: int) -> None:
        """From a receiver: connection ``link`` dropped. A closed link's news is no news."""
        if link == self._link:
            self._put(LinkLost(link))

    async def _open(self) -> None:
        self._link += 1
        self._unframed, self._unframed_told = None, False
        await self._connect()

    async def _close(self) -> None:
        self._link += 1  # first, so the link's own disconnect event is already stale
        await self._disconnect()

    async def __aenter__(self) -> DeviceSource:
        self._queue = asyncio.Queue(self._queue_size)
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._close()

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
            if isinstance(item, LinkLost) and item.link != self._link:
                continue  # a connection already closed or replaced
            if item is DISCONNECTED or isinstance(item, LinkLost):
                await self._reconnect()
                continue
            payload, host_rx_s = item
            messages = self._decode(payload)
            self._no_frame_check(len(payload), host_rx_s, bool(messages))
            for message in messages:
                for chunk in self.assembler.add(message, host_rx_s):
                    yield chunk
            dropped = self._decoder_stats().dropped
            self.stats.decoder_drops = {r.value: n for r, n in dropped.items() if n}

    def _no_frame_check(self, n_bytes: int, host_rx_s: float, decoded: bool) -> None:
        """One warning when the link has sent bytes for ``watchdog_s`` and not one valid
        message (a wrong port, baud rate or firmware: it printed nothing at all, not even a
        status line, as a silent device is told)."""
        if decoded:
            self._unframed = None
            return
        since, n = self._unframed or (host_rx_s, 0)
        self._unframed = since, n + n_bytes
        if not self._unframed_told and host_rx_s - since >= self.watchdog_s:
            self._unframed_told = True
            log.warning(
                "%s: %d bytes in %.1f s and no valid frame: not a gaitedge device, or another "
                "baud rate or firmware? (what the decoder refused is counted as corrupt)",
                self.device, n + n_bytes, host_rx_s - since,
            )  # fmt: skip

    async def _reconnect(self) -> None:
        await self._close()
        backoff, attempts = self.first_backoff_s, 0
        while True:
            # Equal jitter: half the backoff fixed, half random, so devices that dropped
            # together (one adapter, one interference burst) do not retry in lockstep.
            await asyncio.sleep(backoff / 2 + random.uniform(0.0, backoff / 2))
            try:
                await self._open()
            except IncompatibleDeviceError:
                raise
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
