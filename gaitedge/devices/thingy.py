"""Nordic Thingy:52: the motion service's raw data (accelerometer, gyroscope, compass).

From Nordic's Thingy:52 firmware (``ble_tms.h``, ``drv_motion``) and vendor-formats.md C4:
motion service ``EF680400``; configuration ``EF680401`` (9 bytes LE: pedometer, temperature
and compass intervals in ms, motion rate in Hz, wake-on-motion); raw data ``EF680406``
(notify): 9 int16 LE, accelerometer Q6.10 g, gyroscope Q11.5 deg/s, compass Q12.4 µT. No
timestamps: the host clock and the nominal rate place the samples.
"""

from __future__ import annotations

import struct

import numpy as np

from gaitedge.devices.base import DeviceError, DropReason, GattLink, Profile, Samples
from gaitedge.units import AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s

NAME = "thingy"
TITLE = "Nordic Thingy:52 (motion service raw data: acc + gyro)"
NEEDS = "Nordic's stock Thingy:52 firmware"

CONFIGURATION_SERVICE_UUID = "ef680100-9b35-4933-9b10-52ffa9740042"  # what it advertises
MOTION_SERVICE_UUID = "ef680400-9b35-4933-9b10-52ffa9740042"
MOTION_CONFIG_UUID = "ef680401-9b35-4933-9b10-52ffa9740042"
RAW_DATA_UUID = "ef680406-9b35-4933-9b10-52ffa9740042"
SERVICES = (MOTION_SERVICE_UUID, CONFIGURATION_SERVICE_UUID)
NAME_PREFIXES = ("Thingy",)

CONFIG_FORMAT = "<HHHHB"  # pedometer ms, temperature ms, compass ms, motion Hz, wake on motion
RAW_FORMAT = "<9h"
ACC_FRACTION_BITS, GYRO_FRACTION_BITS = 10, 5  # Q6.10 g, Q11.5 deg/s
MOTION_RATE_HZ = (5, 200)  # what the firmware accepts


def parse_raw(payload: bytes) -> np.ndarray:
    """A raw-data notification -> [1, 6] acc g, gyro deg/s."""
    if len(payload) != struct.calcsize(RAW_FORMAT):
        raise DeviceError(f"Thingy:52: {len(payload)}-byte raw data, expected 18")
    values = np.array(struct.unpack(RAW_FORMAT, payload), dtype=np.float64)
    acc = values[0:3] / (1 << ACC_FRACTION_BITS)
    gyro = values[3:6] / (1 << GYRO_FRACTION_BITS)
    return np.concatenate([acc, gyro]).reshape(1, 6)


class ThingyProfile(Profile):
    name = NAME
    services = (MOTION_SERVICE_UUID,)

    def __init__(self, rate_hz: int = 50) -> None:
        super().__init__()
        if not MOTION_RATE_HZ[0] <= rate_hz <= MOTION_RATE_HZ[1]:
            raise ValueError(f"Thingy:52 motion rates: {MOTION_RATE_HZ} Hz, not {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.acc_range_g = 32.0  # what Q6.10 in an int16 holds

    async def start(self, link: GattLink) -> None:
        config = await link.read(MOTION_CONFIG_UUID)
        if len(config) != struct.calcsize(CONFIG_FORMAT):
            raise DeviceError(f"Thingy:52: {len(config)}-byte motion configuration")
        pedometer, temperature, compass, _, wake = struct.unpack(CONFIG_FORMAT, config)
        wanted = struct.pack(
            CONFIG_FORMAT, pedometer, temperature, compass, int(self.rate_hz), wake
        )
        await link.write(MOTION_CONFIG_UUID, wanted)
        await link.subscribe(RAW_DATA_UUID)
        self.model = link.name or "Thingy:52"

    def decode(self, uuid: str, payload: bytes) -> list[Samples]:
        if uuid != RAW_DATA_UUID:
            self.stats.drop(DropReason.UNKNOWN, uuid)
            return []
        try:
            values = parse_raw(payload)
        except DeviceError as exc:
            self.stats.drop(DropReason.MALFORMED, str(exc))
            return []
        imu = np.hstack(
            [
                accel_to_m_s2(values[:, :3], AccelUnit.G),
                gyro_to_rad_s(values[:, 3:], GyroUnit.DEG_S),
            ]
        )
        return [Samples(imu)]


def profile(**options) -> ThingyProfile:
    return ThingyProfile(**options)
