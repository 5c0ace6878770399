"""The interface every BLE device profile implements, and what profiles share.

A profile is one device family's knowledge: its GATT UUIDs, the exchange that starts and stops
streaming, and the decoding of its notifications into :class:`Samples` (SI units, with the
device's own time where it sends one). The transport (``gaitedge.sources.ble``: connect,
notify, reconnect, watchdog) is the same for all; it hands a profile a :class:`GattLink` on
every connection and feeds it every notification. :class:`gaitedge.devices.stream.
DeviceAssembler` turns Samples into stream time through the one clock model.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gaitedge.sources.device import IncompatibleDeviceError, SourceError

log = logging.getLogger(__name__)

# How long a device has to answer a command before the connection attempt counts as failed.
RESPONSE_TIMEOUT_S = 5.0


class DeviceError(SourceError):
    """A device refused a command or answered nonsense: this connection attempt failed."""


class UnsupportedDeviceError(IncompatibleDeviceError):
    """The device answers but cannot be used (no gyroscope, unknown layout): never retried."""


class DropReason(str, enum.Enum):
    """Why a notification (or part of one) was not turned into samples."""

    MALFORMED = "malformed"  # too short, a length that is no whole number of samples
    UNKNOWN = "unknown"  # a characteristic or message type the profile does not stream
    REPEATED = "repeated"  # a duplicate of the last frame (same device timestamp)


@dataclass(frozen=True)
class Samples:
    """Consecutive samples decoded from one device's notifications.

    Attributes:
        imu: [N, 6] acc in m/s², gyro in rad/s; [N, 3] acc for a device without a gyroscope.
        t_device_s: [N] each sample's time on the device clock (seconds, any origin), or None
            for devices that send no time: the host clock and the nominal rate place them.
        lost_samples: samples the device's own evidence (sequence numbers, timestamps) says
            were lost just before these.
    """

    imu: np.ndarray
    t_device_s: np.ndarray | None = None
    lost_samples: int = 0


@dataclass
class DecodeStats:
    """What a profile could not decode, by reason; ``dropped`` mirrors the protocol decoder's."""

    dropped: Counter = field(default_factory=Counter)

    def drop(self, reason: DropReason, why: str = "") -> None:
        self.dropped[reason] += 1
        if why:
            log.debug("dropped a notification (%s): %s", reason.value, why)


class GattLink:
    """One connection as a profile sees it: read, write, subscribe, request-and-wait.

    Wraps a connected bleak client. Every notification or indication on a subscribed
    characteristic first satisfies a pending :meth:`request` whose ``accept`` takes it (a
    control-point response); everything else goes to ``on_data(uuid, payload)``, which only
    enqueues (the transport's consumer decodes).
    """

    def __init__(self, client, on_data: Callable[[str, bytes], None], name: str = "") -> None:
        self.client = client
        self.name = name  # what the device advertises itself as
        self._on_data = on_data
        self._waiters: list[tuple[str, Callable[[bytes], bool], asyncio.Future]] = []

    def has(self, uuid: str) -> bool:
        return self.client.services.get_characteristic(uuid) is not None

    def services(self) -> set[str]:
        return {s.uuid.lower() for s in self.client.services}

    async def read(self, uuid: str) -> bytes:
        return bytes(await self.client.read_gatt_char(uuid))

    async def write(self, uuid: str, data: bytes, *, response: bool = True) -> None:
        await self.client.write_gatt_char(uuid, data, response=response)

    async def subscribe(self, uuid: str, *, acquire: bool = False) -> None:
        char = self.client.services.get_characteristic(uuid)
        await self.client.start_notify(
            char,
            lambda _c, data: self._received(uuid, bytes(data)),
            bluez={"use_start_notify": not acquire},
        )

    async def request(
        self,
        uuid: str,
        data: bytes,
        *,
        reply_uuid: str,
        accept: Callable[[bytes], bool],
        timeout_s: float = RESPONSE_TIMEOUT_S,
        response: bool = True,
    ) -> bytes:
        """Write ``data`` to ``uuid`` and return the first reply on ``reply_uuid`` it accepts."""
        future = asyncio.get_running_loop().create_future()
        waiter = (reply_uuid.lower(), accept, future)
        self._waiters.append(waiter)
        try:
            await self.write(uuid, data, response=response)
            done, _ = await asyncio.wait({future}, timeout=timeout_s)
            if not done:
                raise DeviceError(f"no answer to {data.hex(' ')} within {timeout_s:g} s")
            return future.result()
        finally:
            self._waiters.remove(waiter)

    def deliver(self, uuid: str, data: bytes) -> None:
        """Hand a reply that turned out to be data on to the data path."""
        self._on_data(uuid.lower(), data)

    def _received(self, uuid: str, data: bytes) -> None:
        uuid = uuid.lower()
        for reply_uuid, accept, future in self._waiters:
            if reply_uuid == uuid and not future.done() and accept(data):
                future.set_result(data)
                return
        self._on_data(uuid, data)


class Profile:
    """One device family on one source: base of every profile.

    Subclasses set the attributes, implement :meth:`start` (the exchange that makes the device
    stream on a fresh connection) and :meth:`decode`; :meth:`reset` clears per-connection state.

    Attributes:
        name: the registry name (``gaitedge.devices.DEVICES``).
        model: what the device said it is (``Polar Sense``, ``MetaMotion (BMI160)``), once known.
        rate_hz: the nominal sample rate it streams at.
        acc_range_g: the accelerometer's full scale, where known.
        samples_per_notification: how many samples one notification carries, for the watchdog.
        services: GATT services of which the device must have one (checked on connect).
        no_gyroscope_refusal: for a device that turns out to have no gyroscope, why the
            session cannot run it (None: it can, on a model that needs no gyroscope, and the
            device then streams [N, 3] accelerations; never a padded gyroscope).
    """

    name = ""
    no_gyroscope_refusal: str | None = (
        "no accelerometer-only model is installed, and a missing gyroscope is never padded"
    )
    services: tuple[str, ...] = ()
    model = ""
    rate_hz = 50.0
    acc_range_g: float | None = None
    samples_per_notification = 1

    def __init__(self) -> None:
        self.stats = DecodeStats()

    async def start(self, link: GattLink) -> None:
        raise NotImplementedError

    def decode(self, uuid: str, payload: bytes) -> list[Samples]:
        raise NotImplementedError

    def reset(self) -> None:
        """A new connection: forget what the last one left half done."""


class Pairer:
    """Acceleration and rotation rate from two characteristics, paired in arrival order.

    For devices that notify each sensor on its own (MetaWear, Arduino layouts) at one rate with
    no per-sample time: the k-th gyroscope sample belongs to the k-th accelerometer sample.
    The two sensors are started one after the other, so until both have sent, only each
    side's newest sample is kept (the pair starts with two samples taken together). A side that
    runs ahead by more than ``max_lead`` samples (the other sensor's notifications were lost)
    drops its oldest, counted as lost.
    """

    def __init__(self, max_lead: int = 64) -> None:
        self.max_lead = max_lead
        self.lost = 0
        self.reset()

    def reset(self) -> None:
        self._acc: list[np.ndarray] = []
        self._gyro: list[np.ndarray] = []
        self._paired = False  # both sides have sent since the connection began

    def add(self, acc: np.ndarray | None = None, gyro: np.ndarray | None = None) -> np.ndarray:
        """Add [n, 3] rows of either; returns the [m, 6] pairs complete so far."""
        if acc is not None:
            self._acc.extend(acc)
        if gyro is not None:
            self._gyro.extend(gyro)
        if not self._paired:
            del self._acc[:-1], self._gyro[:-1]
            self._paired = bool(self._acc and self._gyro)
        for side in (self._acc, self._gyro):
            if len(side) > self.max_lead:
                extra = len(side) - self.max_lead
                del side[:extra]
                self.lost += extra
        n = min(len(self._acc), len(self._gyro))
        if n == 0:
            return np.zeros((0, 6))
        out = np.column_stack([np.array(self._acc[:n]), np.array(self._gyro[:n])])
        del self._acc[:n], self._gyro[:n]
        return out
