"""A wearable over Bluetooth Low Energy (bleak): the gaitedge GATT service, or a sensor of
another make through its profile in ``gaitedge.devices`` (picked from its GATT services).

Connections go through bleak-retry-connector's ``establish_connection``, which knows BlueZ's
transient failures (``le-connection-abort-by-local``, a device briefly missing after a drop, a
full adapter, a stale GATT cache) and retries them with their own backoffs; what it gives up on
is a failed attempt for :class:`DeviceSource`'s reconnect loop (exponential backoff, jitter).

On every (re)connect the gaitedge service is checked, the ATT MTU read, the DeviceInfo
characteristic read (so frames can be scaled before the first notification arrives) and
notifications subscribed anew: a new connection has no subscription. The notification callback
only enqueues the payload with its receive time; the consumer (``DeviceSource.chunks``) decodes
with ``firmware_bridge.NotificationDecoder`` (bleak's ``async_callback_with_queue`` pattern).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import partial

from firmware_bridge import (
    DEVICE_INFO_CHAR_UUID,
    SAMPLES_CHAR_UUID,
    SERVICE_UUID,
    DeviceInfo,
    NotificationDecoder,
    samples_per_notification,
)
from firmware_bridge.protocol import ATT_HEADER_LEN
from gaitedge.sources.device import DeviceSource, IncompatibleDeviceError, SourceError

log = logging.getLogger(__name__)

# The watchdog allows this many notification periods of silence before calling a link dead,
# so a slow device filling large notifications is not reconnected for being slow.
WATCHDOG_NOTIFICATION_PERIODS = 3


def _bleak():
    try:
        import bleak
    except ImportError as exc:  # pragma: no cover - bleak is a required dependency
        raise SourceError("BLE needs the 'bleak' package: pip install bleak") from exc
    return bleak


def _ble_error(what: str, exc: BaseException) -> SourceError:
    """One clear line for what bleak (or the D-Bus beneath it) raised."""
    from bleak.exc import BleakBluetoothNotAvailableError

    if isinstance(exc, BleakBluetoothNotAvailableError):
        return SourceError(f"{what}: no usable Bluetooth adapter ({exc.args[0]})")
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return SourceError(f"{what}: no system D-Bus to reach BlueZ on ({exc})")
    if "org.freedesktop.DBus.Error.ServiceUnknown" in str(exc):
        return SourceError(f"{what}: BlueZ (bluetoothd) is not running")
    if isinstance(exc, TimeoutError):
        return SourceError(f"{what}: timed out")
    return SourceError(f"{what}: {exc or type(exc).__name__}")


async def _bounded(awaitable: Awaitable, timeout_s: float):
    """``awaitable``'s result, or TimeoutError after ``timeout_s``.

    Not ``asyncio.wait_for``: on Python 3.11 it can swallow a cancellation that arrives as the
    result does (see ``DeviceSource._next``).
    """
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    finally:
        if not task.done():
            task.cancel()
    if not done:
        raise TimeoutError
    return task.result()


@dataclass(frozen=True)
class FoundDevice:
    address: str
    name: str
    rssi: int | None
    kind: str = "gaitedge"  # the device type (gaitedge.devices.DEVICES) its advertisement says


async def scan(timeout_s: float = 5.0) -> list[FoundDevice]:
    """BLE devices that gaitedge can stream from (gaitedge's own service or a supported sensor,
    by advertised services or name), strongest first."""
    from gaitedge.devices import detect

    bleak = _bleak()
    try:
        found = await bleak.BleakScanner.discover(timeout=timeout_s, return_adv=True)
    except Exception as exc:  # bleak raises backend-specific errors (no adapter, no BlueZ)
        raise _ble_error("BLE scan failed", exc) from exc
    devices = []
    for device, adv in found.values():
        name = adv.local_name or device.name or ""
        kind = detect(adv.service_uuids or [], name)
        if kind is not None:
            devices.append(FoundDevice(device.address, name, adv.rssi, kind))
    return sorted(devices, key=lambda d: -(d.rssi or -999))


class BleSource(DeviceSource):
    """Stream IMU frames from a BLE device.

    Args:
        address: the device's address (or platform UUID on macOS).
        watchdog_s: no notification for this long means the device went silent: reconnect
            (never less than WATCHDOG_NOTIFICATION_PERIODS notification periods). This is what
            notices a link that dropped without BlueZ ever saying so (a silent drop); a drop
            BlueZ reports (after the connection's supervision timeout) reconnects at once.
            Either way the device's sequence number and clock are kept across the reconnect:
            samples it made while the link was down are counted lost
            (``stats.lost_samples``), or a restart is said so (``stats.device_restarts``).
        max_reconnects: give up after this many failed attempts in a row (None: never).
        connect_timeout_s: one connection attempt (bleak-retry-connector's retries included).
        scan_timeout_s: how long to look for a device BlueZ does not know yet.
        connect_attempts: bleak-retry-connector's ``max_attempts`` per connection attempt.
        notify_acquire: subscribe with BlueZ's AcquireNotify (a socket per subscription, no
            D-Bus signal per notification) instead of StartNotify.
        device_type: force a device profile (a name of ``gaitedge.devices.DEVICES``); by
            default it is detected from the GATT services on the first connection.
        profile_options: passed to the profile (``layout=`` for ``gatt``).

    Attributes:
        mtu: the ATT MTU of the current connection.
        samples_per_notification: the most samples one notification can carry at that MTU.
    """

    first_backoff_s = 0.2

    def __init__(
        self,
        address: str,
        *,
        watchdog_s: float = 3.0,
        max_backoff_s: float = 10.0,
        max_reconnects: int | None = None,
        connect_timeout_s: float = 30.0,
        scan_timeout_s: float = 10.0,
        connect_attempts: int = 3,
        notify_acquire: bool = False,
        queue_size: int = 4096,
        device_type: str | None = None,
        profile_options: dict | None = None,
        no_gyroscope_refusal: str | None = "",
    ) -> None:
        super().__init__(
            address,
            watchdog_s=watchdog_s,
            max_backoff_s=max_backoff_s,
            max_reconnects=max_reconnects,
            queue_size=queue_size,
        )
        self.address = address
        self.min_watchdog_s = watchdog_s
        self.connect_timeout_s = connect_timeout_s
        self.scan_timeout_s = scan_timeout_s
        self.connect_attempts = connect_attempts
        self.notify_acquire = notify_acquire
        self.decoder = NotificationDecoder()
        self.mtu: int | None = None
        self.samples_per_notification: int | None = None
        self.device_type = device_type
        self.profile = None  # a gaitedge.devices profile, for a sensor of another make
        self._profile_options = profile_options or {}
        # A device without a gyroscope: refused with this (None: it streams [N, 3]; "": the
        # profile's own refusal, as no accelerometer-only model ships).
        self.no_gyroscope_refusal = no_gyroscope_refusal
        self._ble_name = ""
        self._client = None

    def _on_notify(self, link: int, _characteristic: object, data: bytearray) -> None:
        if link == self._link:  # a closed link's last notifications are not this link's
            self._put((bytes(data), time.monotonic()))

    def _on_disconnect(self, link: int, client: object) -> None:
        # Only an established link's loss counts: bleak also calls this for a connection
        # attempt that BlueZ aborted (le-connection-abort-by-local) and then retried itself.
        if client is self._client:
            self._link_lost(link)

    async def _find(self):
        """The BLEDevice for the address: BlueZ's own record if it has one, else a scan."""
        from bleak_retry_connector import get_device

        device = await get_device(self.address)  # BlueZ knows it: no scan needed to reconnect
        if device is None:
            device = await _bleak().BleakScanner.find_device_by_address(
                self.address, timeout=self.scan_timeout_s
            )
        if device is None:
            raise SourceError(
                f"BLE device {self.address} not found in {self.scan_timeout_s:g} s of scanning: "
                "is it switched on, in range and not connected to another host?"
            )
        return device

    async def _establish(self, link: int):
        from bleak_retry_connector import BleakClientWithServiceCache, establish_connection

        device = await self._find()
        self._ble_name = device.name or ""
        return await establish_connection(
            BleakClientWithServiceCache,
            device,
            self.address,
            disconnected_callback=partial(self._on_disconnect, link),
            max_attempts=self.connect_attempts,
        )

    async def _connect(self) -> None:
        link = self._link
        what = f"cannot connect to BLE device {self.address}"
        try:
            client = await _bounded(self._establish(link), self.connect_timeout_s)
        except SourceError:
            raise
        except Exception as exc:  # bleak's and bleak-retry-connector's errors, D-Bus errors
            raise _ble_error(what, exc) from exc
        try:
            await self._subscribe(client, link)
        except SourceError:
            await self._close_client(client)
            raise
        except Exception as exc:  # the link dropped while setting up: retried by the caller
            await self._close_client(client)
            raise _ble_error(what, exc) from exc
        if not client.is_connected:  # dropped as the subscription completed
            await self._close_client(client)
            raise SourceError(f"{what}: the link dropped while subscribing")
        self._client = client

    async def _subscribe(self, client, link: int) -> None:
        """Start the device's profile, or (gaitedge's own service) check the service, read MTU
        and DeviceInfo, subscribe to samples."""
        from gaitedge.devices import detect

        services = {s.uuid.lower() for s in client.services}
        kind = self.device_type or detect(services, self._ble_name)
        if kind not in (None, "gaitedge"):
            await self._start_profile(client, link, kind, services)
            return
        samples = client.services.get_characteristic(SAMPLES_CHAR_UUID)
        info_char = client.services.get_characteristic(DEVICE_INFO_CHAR_UUID)
        if (
            client.services.get_service(SERVICE_UUID) is None
            or samples is None
            or info_char is None
            or "notify" not in samples.properties
            or "read" not in info_char.properties
        ):
            raise IncompatibleDeviceError(
                f"BLE device {self.address} is not a gaitedge device: no gaitedge GATT service "
                f"{SERVICE_UUID} with its samples and device-info characteristics, and no "
                "sensor gaitedge supports (gaitedge scan lists them; --device-type forces one)"
            )
        self.mtu = samples.max_write_without_response_size + ATT_HEADER_LEN
        info = self.decoder.decode(bytes(await client.read_gatt_char(info_char)))
        if not isinstance(info, DeviceInfo):
            raise IncompatibleDeviceError(
                f"BLE device {self.address}: its device-info characteristic does not decode "
                f"({self.decoder.stats.dropped_total} bad messages so far)"
            )
        self._use_device_info(info)
        self.assembler.add(info, time.monotonic())
        await client.start_notify(
            samples,
            partial(self._on_notify, link),
            bluez={"use_start_notify": not self.notify_acquire},
        )

    async def _start_profile(self, client, link: int, kind: str, services: set[str]) -> None:
        """A sensor of another make: its profile's exchange on this (new) connection."""
        from gaitedge.devices import GattLink, make_profile
        from gaitedge.devices.stream import DeviceAssembler

        if self.profile is None:
            try:
                self.profile = make_profile(kind, **self._profile_options)
            except ValueError as exc:  # an unknown type, a layout file that does not parse
                raise IncompatibleDeviceError(str(exc)) from exc
            if self.no_gyroscope_refusal != "":
                self.profile.no_gyroscope_refusal = self.no_gyroscope_refusal
            self.device_type = kind  # reconnects speak to the same device the same way
            self.assembler = DeviceAssembler(self.device, self.stats, self.profile.rate_hz)
        profile = self.profile
        wanted = set(getattr(profile, "services", ()))
        if wanted and not wanted & services:
            raise IncompatibleDeviceError(
                f"BLE device {self.address} is not a {kind} device: none of its GATT services "
                f"({', '.join(sorted(wanted))}) is there"
            )
        profile.reset()
        gatt = GattLink(client, partial(self._on_profile_data, link), name=self._ble_name)
        await profile.start(gatt)
        self.assembler.rate_hz = profile.rate_hz
        self.assembler.acc_range_g = profile.acc_range_g
        self.samples_per_notification = profile.samples_per_notification
        period_s = profile.samples_per_notification / profile.rate_hz
        self.watchdog_s = max(self.min_watchdog_s, WATCHDOG_NOTIFICATION_PERIODS * period_s)
        log.info("%s: %s (%s) at %g Hz", self.address, kind, profile.model, profile.rate_hz)

    def _on_profile_data(self, link: int, uuid: str, data: bytes) -> None:
        if link == self._link:
            self._put(((uuid, data), time.monotonic()))

    def _use_device_info(self, info: DeviceInfo) -> None:
        """Samples per notification from the MTU, and the watchdog from the notification rate."""
        self.samples_per_notification = samples_per_notification(self.mtu)
        period_s = self.samples_per_notification / info.sample_rate_hz
        self.watchdog_s = max(self.min_watchdog_s, WATCHDOG_NOTIFICATION_PERIODS * period_s)
        log.info(
            "%s: ATT MTU %d, up to %d samples per notification at %g Hz; watchdog %.1f s",
            self.address,
            self.mtu,
            self.samples_per_notification,
            info.sample_rate_hz,
            self.watchdog_s,
        )

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._close_client(client)

    @staticmethod
    async def _close_client(client: object) -> None:
        try:
            await client.disconnect()
        except Exception as exc:  # already gone
            log.debug("disconnect: %s", exc)

    def _decode(self, payload) -> list:
        if self.profile is not None:  # (characteristic uuid, bytes) -> gaitedge.devices.Samples
            return self.profile.decode(*payload)
        message = self.decoder.decode(payload)
        return [] if message is None else [message]

    def _decoder_stats(self):
        return self.profile.stats if self.profile is not None else self.decoder.stats
