"""A wearable on a serial port (USB CDC, UART, or the emulator's pseudo-terminal).

A reader thread does the blocking ``read`` and only enqueues bytes with their receive time; the
consumer (``DeviceSource.chunks``) decodes through ``firmware_bridge.StreamDecoder``. The decoder
is kept across reconnects: a partial packet from before an outage fails its CRC, is counted, and
the decoder resynchronises at the next delimiter.

The port is opened exclusive (``exclusive=True``: a POSIX ``flock``), so a second reader of the
same device, which would steal half of its bytes, fails to open it instead. Closing never blocks
the event loop: the reader thread, which wakes within its read timeout, is joined in a worker
thread, so other devices keep streaming while one reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable

from firmware_bridge import Message, StreamDecoder
from gaitedge.sources.device import DISCONNECTED, DeviceSource, SourceError

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.05  # how long one blocking read waits; bounds how long closing takes
JOIN_TIMEOUT_S = 1.0


class SerialSource(DeviceSource):
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
        super().__init__(
            port,
            watchdog_s=watchdog_s,
            max_backoff_s=max_backoff_s,
            max_reconnects=max_reconnects,
            queue_size=queue_size,
        )
        self.port_name = port
        self.baudrate = baudrate
        self.decoder = StreamDecoder()
        self._serial_factory = serial_factory
        self._port = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()  # the current connection's; a new one per connection

    async def _connect(self) -> None:
        import serial

        factory = self._serial_factory or serial.serial_for_url
        try:
            self._port = factory(
                self.port_name, baudrate=self.baudrate, timeout=READ_TIMEOUT_S, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SourceError(f"cannot open serial port {self.port_name}: {exc}") from exc
        self._stop = threading.Event()
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._read_loop,
            args=(self._port, loop, self._stop),
            name="serial-reader",
            daemon=True,
        )
        self._thread.start()

    async def _disconnect(self) -> None:
        self._stop.set()
        port, thread = self._port, self._thread
        self._port, self._thread = None, None
        if thread is not None:  # off the event loop: the reader wakes within READ_TIMEOUT_S
            await asyncio.to_thread(thread.join, JOIN_TIMEOUT_S)
        if port is not None:
            with contextlib.suppress(OSError):
                port.close()

    def _read_loop(self, port, loop: asyncio.AbstractEventLoop, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                # Only what is waiting (or one byte, blocking up to the timeout): a larger read
                # would keep collecting, and pyserial drops what it collected when the port
                # vanishes mid-read, losing the device's last frames.
                data = port.read(max(1, port.in_waiting))
            except Exception as exc:  # pyserial raises SerialException or OSError on unplug
                if not stop.is_set():  # not a port we are closing ourselves
                    log.warning("serial port %s: %s", self.port_name, exc)
                    loop.call_soon_threadsafe(self._put, DISCONNECTED)
                return
            if data:
                loop.call_soon_threadsafe(self._put, (data, time.monotonic()))

    def _decode(self, payload: bytes) -> list[Message]:
        return self.decoder.feed(payload)

    def _decoder_stats(self):
        return self.decoder.stats
