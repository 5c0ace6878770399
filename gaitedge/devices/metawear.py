"""MbientLab MetaWear (MetaMotion boards): accelerometer and gyroscope modules over raw BLE.

From MbientLab's C++ SDK (``MetaWear-SDK-Cpp``: ``accelerometer_bosch``, ``gyro_bosch``,
``datasignal``) and vendor-formats.md C2: messages ``[module, register, payload]`` written to
``326A9001`` and notified on ``326A9006``; accelerometer module 0x03, gyroscope 0x13; reading
``[module, 0x80]`` answers ``[module, 0x80, implementation, revision]``, which says which Bosch
part (and so which data register) the board has. Samples are int16 LE; there is no time per
sample while streaming: the host clock and the nominal rate place them (gaitedge.devices.stream).

Known field problem: the stream can stop after minutes with the link up; the transport's
watchdog reconnects and this profile sets the board up again.
"""

from __future__ import annotations

import enum
import logging

import numpy as np

from gaitedge.devices.base import (
    DeviceError,
    DropReason,
    GattLink,
    Pairer,
    Profile,
    Samples,
    UnsupportedDeviceError,
)
from gaitedge.units import AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s

log = logging.getLogger(__name__)

NAME = "metawear"
TITLE = "MbientLab MetaMotion / MetaWear (BMI160 or BMI270: acc + gyro)"
NEEDS = "a board not connected to MetaBase or another app; streaming (not logging) mode"

SERVICE_UUID = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND_UUID = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY_UUID = "326a9006-85cb-9195-d9dd-464cfbbae75a"
SERVICES = (SERVICE_UUID,)
NAME_PREFIXES = ("MetaWear",)

ACC_MODULE, GYRO_MODULE = 0x03, 0x13
INFO_REGISTER = 0x80
POWER, ENABLE, CONFIG = 0x01, 0x02, 0x03  # start, enable axes/interrupt, configure
ACC_DATA = 0x04


class AccPart(enum.IntEnum):
    """The accelerometer module's implementation byte (SDK ``MBL_MW_MODULE_ACC_TYPE_*``)."""

    BMI160 = 1
    BMI270 = 4


class GyroPart(enum.IntEnum):
    """The gyroscope module's implementation byte (SDK ``MBL_MW_MODULE_GYRO_TYPE_*``)."""

    BMI160 = 0
    BMI270 = 1


GYRO_DATA = {GyroPart.BMI160: 0x05, GyroPart.BMI270: 0x04}
# Output data rate codes, the same in both parts' ACC_CONF and GYR_CONF (Bosch datasheets).
ODR_CODES = {25: 0x06, 50: 0x07, 100: 0x08, 200: 0x09, 400: 0x0A, 800: 0x0B}
NORMAL_FILTER = 0x20  # bandwidth parameter "normal" in bits 4..6
ACC_RANGE_CODES = {  # +-g -> range byte
    AccPart.BMI160: {2: 0x03, 4: 0x05, 8: 0x08, 16: 0x0C},
    AccPart.BMI270: {2: 0x00, 4: 0x01, 8: 0x02, 16: 0x03},
}
GYRO_RANGE_CODES = {2000: 0, 1000: 1, 500: 2, 250: 3, 125: 4}
ACC_LSB_PER_G = {2: 16384.0, 4: 8192.0, 8: 4096.0, 16: 2048.0}


def gyro_lsb_per_dps(range_dps: int) -> float:
    return 16.4 * 2000.0 / range_dps  # 16.4 at 2000 deg/s ... 262.4 at 125 deg/s


def acc_setup(part: AccPart, rate_hz: int, range_g: int) -> list[bytes]:
    """Configure, subscribe to data, enable, start: the SDK's order."""
    config = ODR_CODES[rate_hz] | NORMAL_FILTER
    return [
        bytes([ACC_MODULE, CONFIG, config, ACC_RANGE_CODES[part][range_g]]),
        bytes([ACC_MODULE, ACC_DATA, 1]),
        bytes([ACC_MODULE, ENABLE, 1, 0]),
        bytes([ACC_MODULE, POWER, 1]),
    ]


def gyro_setup(part: GyroPart, rate_hz: int, range_dps: int) -> list[bytes]:
    config = ODR_CODES[rate_hz] | NORMAL_FILTER
    return [
        bytes([GYRO_MODULE, CONFIG, config, GYRO_RANGE_CODES[range_dps]]),
        bytes([GYRO_MODULE, GYRO_DATA[part], 1]),
        bytes([GYRO_MODULE, ENABLE, 1, 0]),
        bytes([GYRO_MODULE, POWER, 1]),
    ]


def parse_xyz(message: bytes) -> np.ndarray:
    """``[module, register, x, y, z]`` (int16 LE) -> [1, 3] counts."""
    if len(message) != 8:
        raise DeviceError(f"MetaWear: {len(message)}-byte data message, expected 8")
    return np.frombuffer(message[2:], "<i2").astype(np.float64).reshape(1, 3)


class MetaWearProfile(Profile):
    name = NAME
    services = SERVICES

    def __init__(self, rate_hz: int = 50, range_g: int = 16, range_dps: int = 2000) -> None:
        super().__init__()
        if rate_hz not in ODR_CODES:
            raise ValueError(f"MetaWear rates: {sorted(ODR_CODES)} Hz, not {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.acc_range_g = float(range_g)
        self.range_g, self.range_dps = range_g, range_dps
        self.gyro_register = GYRO_DATA[GyroPart.BMI160]
        self.pairer = Pairer()

    def reset(self) -> None:
        self.pairer.reset()

    async def start(self, link: GattLink) -> None:
        await link.subscribe(NOTIFY_UUID)
        acc = await self._part(link, ACC_MODULE, AccPart, "accelerometer")
        gyro = await self._part(link, GYRO_MODULE, GyroPart, "gyroscope")
        self.model = f"{link.name or 'MetaWear'} ({acc.name})"
        self.gyro_register = GYRO_DATA[gyro]
        for message in acc_setup(acc, int(self.rate_hz), self.range_g) + gyro_setup(
            gyro, int(self.rate_hz), self.range_dps
        ):
            await link.write(COMMAND_UUID, message)

    async def _part(self, link: GattLink, module: int, parts: type[enum.IntEnum], what: str):
        def answers(data: bytes) -> bool:
            return len(data) >= 2 and data[0] == module and data[1] == INFO_REGISTER

        reply = await link.request(
            COMMAND_UUID, bytes([module, INFO_REGISTER]), reply_uuid=NOTIFY_UUID, accept=answers
        )
        if len(reply) < 3:  # an empty info answer: the module is not on this board
            if module == GYRO_MODULE:
                raise UnsupportedDeviceError(
                    f"{link.name or 'MetaWear'} has no gyroscope: gaitedge does not ship an "
                    "accelerometer-only model yet, and never pads a missing gyroscope with zeros"
                )
            raise UnsupportedDeviceError(f"{link.name or 'MetaWear'}: no accelerometer module")
        try:
            return parts(reply[2])
        except ValueError as exc:
            raise UnsupportedDeviceError(
                f"MetaWear {what} implementation {reply[2]} is not a BMI160 or BMI270"
            ) from exc

    def decode(self, uuid: str, payload: bytes) -> list[Samples]:
        if len(payload) < 2:
            self.stats.drop(DropReason.MALFORMED, "short message")
            return []
        head = (payload[0], payload[1])
        try:
            if head == (ACC_MODULE, ACC_DATA):
                counts = parse_xyz(payload) / ACC_LSB_PER_G[self.range_g]
                pairs = self.pairer.add(acc=accel_to_m_s2(counts, AccelUnit.G))
            elif head == (GYRO_MODULE, self.gyro_register):
                dps = parse_xyz(payload) / gyro_lsb_per_dps(self.range_dps)
                pairs = self.pairer.add(gyro=gyro_to_rad_s(dps, GyroUnit.DEG_S))
            else:
                self.stats.drop(DropReason.UNKNOWN, payload[:2].hex())
                return []
        except DeviceError as exc:
            self.stats.drop(DropReason.MALFORMED, str(exc))
            return []
        lost, self.pairer.lost = self.pairer.lost, 0
        return [Samples(pairs, None, lost)] if len(pairs) else []


def profile(**options) -> MetaWearProfile:
    return MetaWearProfile(**options)
