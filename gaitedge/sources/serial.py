"""A wearable on a serial port (USB CDC, UART, or the emulator's pseudo-terminal).

A reader thread does the blocking ``read`` and only enqueues bytes with their receive time; the
consumer decodes through ``firmware_bridge.StreamDecoder`` and yields chunks. An unplugged port
or a silent device (watchdog) closes the port and reconnects with exponential backoff; the gap
becomes a segment break in the chain, never interpolated over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable

from firmware_bridge import StreamDecoder
from gaitedge.sources.base import FrameAssembler, SampleChunk, SourceStats

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """A source that cannot deliver (port missing, device gone for good)."""


_DISCONNECTED = object()


class SerialSource:
    """Stream IMU frames from a serial port.

    Args:
        port: device path or pyserial URL (``/dev/ttyACM0``, ``/dev/pts/5``, ``COM3``).
        baudrate: ignored by USB CDC and ptys, used by real UARTs.
        watchdog_s: no bytes for this long means the device went silent: reconnect.
        max_reconnects: give up after this many failed attempts in a row (None: never).
        serial_factory: opens the port (pyserial's ``serial_for_url`` by default).
    """

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 921_600,
        watchdog_s: float = 2.0,
        max_backoff_s: float = 5.0,
        max_reconnects: int | None = None,
        queue_size: int = 4096,
        serial_factory: Callable | None = None,
    ) -> None:
        self.port_name = port
        self.device = port
        self.baudrate = baudrate
        self.watchdog_s = watchdog_s
        self.max_backoff_s = max_backoff_s
        self.max_reconnects = max_reconnects
        self.stats = SourceStats()
        self.decoder = StreamDecoder()
        self.assembler = FrameAssembler(self.device, self.stats)
        self.queue_overflows = 0
        self._queue_size = queue_size
        self._serial_factory = serial_factory
        self._port = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> None:
        import serial

        factory = self._serial_factory or serial.serial_for_url
        try:
            self._port = factory(self.port_name, baudrate=self.baudrate, timeout=0.05)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SourceError(f"cannot open serial port {self.port_name}: {exc}") from exc
        self._stop.clear()
        self._thread = threading.Thread(target=self._read_loop, name="serial-reader", daemon=True)
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._port is not None:
            with contextlib.suppress(OSError):
                self._port.close()
        self._port, self._thread = None, None

    def _read_loop(self) -> None:
        port, loop = self._port, self._loop
        while not self._stop.is_set():
            try:
                # Only what is waiting (or one byte, blocking up to the timeout): a larger read
                # would keep collecting, and pyserial drops what it collected when the port
                # vanishes mid-read, losing the device's last frames.
                data = port.read(max(1, port.in_waiting))
            except Exception as exc:  # pyserial raises SerialException or OSError on unplug
                log.warning("serial port %s: %s", self.port_name, exc)
                loop.call_soon_threadsafe(self._enqueue, _DISCONNECTED)
                return
            if data:
                loop.call_soon_threadsafe(self._enqueue, (data, time.monotonic()))

    def _enqueue(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queue_overflows += 1  # the consumer is too slow; counted, never silent

    async def __aenter__(self) -> SerialSource:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self._queue_size)
        self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close()

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self.watchdog_s)
            except TimeoutError:
                self.stats.watchdog_timeouts += 1
                log.warning(
                    "no data from %s for %.1f s: reconnecting", self.port_name, self.watchdog_s
                )
                item = _DISCONNECTED
            if item is _DISCONNECTED:
                await self._reconnect()
                continue
            data, host_rx_s = item
            for message in self.decoder.feed(data):
                for chunk in self.assembler.add(message, host_rx_s):
                    yield chunk
            self.stats.decoder_drops = {
                r.value: n for r, n in self.decoder.stats.dropped.items() if n
            }

    async def _reconnect(self) -> None:
        self._close()
        backoff, attempts = 0.1, 0
        while True:
            await asyncio.sleep(backoff)
            try:
                self._open()
            except SourceError as exc:
                attempts += 1
                if self.max_reconnects is not None and attempts >= self.max_reconnects:
                    raise SourceError(
                        f"{self.port_name}: gone, {attempts} reconnect attempts failed"
                    ) from exc
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.stats.reconnects += 1
            # The decoder is kept: a partial packet from before the outage fails its CRC, is
            # counted, and the decoder resynchronises at the next delimiter.
            self.assembler.reset()
            log.info("reconnected to %s", self.port_name)
            return
