"""A wearable over Bluetooth Low Energy (bleak), speaking the gaitedge GATT service.

The notification callback only enqueues the payload with its receive time; the consumer decodes
(``firmware_bridge.NotificationDecoder``) and yields chunks (bleak's
``async_callback_with_queue`` pattern). Connection loss and a silent device (watchdog) lead to a
reconnect with exponential backoff, as bleak-retry-connector does; each reconnect is a new
segment for the chain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from firmware_bridge import (
    DEVICE_INFO_CHAR_UUID,
    DEVICE_NAME_PREFIX,
    SAMPLES_CHAR_UUID,
    SERVICE_UUID,
    NotificationDecoder,
)
from gaitedge.sources.base import FrameAssembler, SampleChunk, SourceStats
from gaitedge.sources.serial import SourceError

log = logging.getLogger(__name__)

_DISCONNECTED = object()


def _bleak():
    try:
        import bleak
    except ImportError as exc:  # pragma: no cover - bleak is a required dependency
        raise SourceError("BLE needs the 'bleak' package: pip install bleak") from exc
    return bleak


@dataclass(frozen=True)
class FoundDevice:
    address: str
    name: str
    rssi: int | None


async def scan(timeout_s: float = 5.0, scanner: Callable | None = None) -> list[FoundDevice]:
    """BLE devices advertising the gaitedge service (or a ``gaitedge-`` name)."""
    discover = scanner or _bleak().BleakScanner.discover
    try:
        found = await discover(timeout=timeout_s, return_adv=True)
    except Exception as exc:  # bleak raises backend-specific errors (no adapter, no BlueZ)
        raise SourceError(f"BLE scan failed (is there a Bluetooth adapter?): {exc}") from exc
    devices = []
    for device, adv in found.values():
        uuids = {u.lower() for u in (adv.service_uuids or [])}
        name = adv.local_name or device.name or ""
        if str(SERVICE_UUID) in uuids or name.startswith(DEVICE_NAME_PREFIX):
            devices.append(FoundDevice(device.address, name, adv.rssi))
    return sorted(devices, key=lambda d: -(d.rssi or -999))


class BleSource:
    """Stream IMU frames from a BLE device.

    Args:
        address: the device's address (or platform UUID on macOS).
        watchdog_s: no notification for this long means the device went silent: reconnect.
        max_reconnects: give up after this many failed attempts in a row (None: never).
        client_factory: builds the client (``bleak.BleakClient`` by default); the hardware edge.
    """

    def __init__(
        self,
        address: str,
        *,
        watchdog_s: float = 3.0,
        max_backoff_s: float = 10.0,
        max_reconnects: int | None = None,
        connect_timeout_s: float = 20.0,
        queue_size: int = 4096,
        client_factory: Callable | None = None,
    ) -> None:
        self.address = address
        self.device = address
        self.watchdog_s = watchdog_s
        self.max_backoff_s = max_backoff_s
        self.max_reconnects = max_reconnects
        self.connect_timeout_s = connect_timeout_s
        self.stats = SourceStats()
        self.decoder = NotificationDecoder()
        self.assembler = FrameAssembler(self.device, self.stats)
        self.queue_overflows = 0
        self._queue_size = queue_size
        self._client_factory = client_factory
        self._client = None
        self._queue: asyncio.Queue | None = None

    def _on_notify(self, _characteristic: object, data: bytearray) -> None:
        self._put((bytes(data), time.monotonic()))

    def _on_disconnect(self, _client: object) -> None:
        self._put(_DISCONNECTED)

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queue_overflows += 1

    async def _connect(self) -> None:
        factory = self._client_factory or _bleak().BleakClient
        client = factory(
            self.address, disconnected_callback=self._on_disconnect, timeout=self.connect_timeout_s
        )
        try:
            await client.connect()
            info = self.decoder.decode(bytes(await client.read_gatt_char(DEVICE_INFO_CHAR_UUID)))
            if info is not None:
                self.assembler.add(info, time.monotonic())
            await client.start_notify(SAMPLES_CHAR_UUID, self._on_notify)
        except Exception as exc:  # bleak's errors are backend-specific
            await self._disconnect(client)
            raise SourceError(f"cannot connect to BLE device {self.address}: {exc}") from exc
        self._client = client
        self.assembler.reset()

    @staticmethod
    async def _disconnect(client: object) -> None:
        try:
            await client.disconnect()
        except Exception as exc:  # already gone
            log.debug("disconnect: %s", exc)

    async def __aenter__(self) -> BleSource:
        self._queue = asyncio.Queue(self._queue_size)
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._disconnect(self._client)
            self._client = None

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        while True:
            try:
                item = await asyncio.wait_for(self._queue.get(), self.watchdog_s)
            except TimeoutError:
                self.stats.watchdog_timeouts += 1
                log.warning("no notifications from %s for %.1f s", self.address, self.watchdog_s)
                item = _DISCONNECTED
            if item is _DISCONNECTED:
                await self._reconnect()
                continue
            payload, host_rx_s = item
            message = self.decoder.decode(payload)
            if message is not None:
                for chunk in self.assembler.add(message, host_rx_s):
                    yield chunk
            self.stats.decoder_drops = {
                r.value: n for r, n in self.decoder.stats.dropped.items() if n
            }

    async def _reconnect(self) -> None:
        if self._client is not None:
            await self._disconnect(self._client)
            self._client = None
        backoff, attempts = 0.2, 0
        while True:
            await asyncio.sleep(backoff)
            try:
                await self._connect()
            except SourceError as exc:
                attempts += 1
                log.warning("reconnect %d to %s failed: %s", attempts, self.address, exc)
                if self.max_reconnects is not None and attempts >= self.max_reconnects:
                    raise SourceError(f"{self.address}: gone after {attempts} attempts") from exc
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            self.stats.reconnects += 1
            return
