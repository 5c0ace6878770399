"""A wearable over Bluetooth Low Energy (bleak), speaking the gaitedge GATT service.

The notification callback only enqueues the payload with its receive time; the consumer
(``DeviceSource.chunks``) decodes with ``firmware_bridge.NotificationDecoder`` (bleak's
``async_callback_with_queue`` pattern). On every (re)connect the DeviceInfo characteristic is
read first, so frames can be scaled before the first notification arrives.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware_bridge import (
    DEVICE_INFO_CHAR_UUID,
    DEVICE_NAME_PREFIX,
    SAMPLES_CHAR_UUID,
    SERVICE_UUID,
    Message,
    NotificationDecoder,
)
from gaitedge.sources.device import DISCONNECTED, DeviceSource, SourceError

log = logging.getLogger(__name__)


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
    """BLE devices advertising the gaitedge service (or a ``gaitedge-`` name), strongest first."""
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


class BleSource(DeviceSource):
    """Stream IMU frames from a BLE device.

    Args:
        address: the device's address (or platform UUID on macOS).
        watchdog_s: no notification for this long means the device went silent: reconnect.
        max_reconnects: give up after this many failed attempts in a row (None: never).
        client_factory: builds the client (``bleak.BleakClient`` by default); the hardware edge.
    """

    first_backoff_s = 0.2

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
        super().__init__(
            address,
            watchdog_s=watchdog_s,
            max_backoff_s=max_backoff_s,
            max_reconnects=max_reconnects,
            queue_size=queue_size,
        )
        self.address = address
        self.connect_timeout_s = connect_timeout_s
        self.decoder = NotificationDecoder()
        self._client_factory = client_factory
        self._client = None

    def _on_notify(self, _characteristic: object, data: bytearray) -> None:
        self._put((bytes(data), time.monotonic()))

    def _on_disconnect(self, _client: object) -> None:
        self._put(DISCONNECTED)

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
            await self._close_client(client)
            raise SourceError(f"cannot connect to BLE device {self.address}: {exc}") from exc
        self._client = client

    async def _disconnect(self) -> None:
        if self._client is not None:
            await self._close_client(self._client)
            self._client = None

    @staticmethod
    async def _close_client(client: object) -> None:
        try:
            await client.disconnect()
        except Exception as exc:  # already gone
            log.debug("disconnect: %s", exc)

    def _decode(self, payload: bytes) -> list[Message]:
        message = self.decoder.decode(payload)
        return [] if message is None else [message]

    def _decoder_stats(self):
        return self.decoder.stats
