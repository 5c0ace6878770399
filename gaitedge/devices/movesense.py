"""Movesense with its GATT sensor-data firmware (``gatt_sensordata_app``): IMU6 over GATT.

From the Movesense device library's sample app (``GATTSensorDataClient``) and vendor-formats.md
C3: commands ``[cmd, ref, data]`` written to ``34800001`` (1 SUBSCRIBE with an ASCII resource
path such as ``/Meas/IMU6/52``, 2 UNSUBSCRIBE); notifications on ``34800002`` are
``[1 = result, ref, u16 status]`` or ``[2 = data, ref, u32 LE ms, acc xyz float32 x n, gyro xyz
float32 x n]``: the stamp is the first sample's, on the sensor's clock; acc m/s², gyro deg/s.
"""

from __future__ import annotations

import logging
import struct

import numpy as np

from gaitedge.devices.base import DeviceError, DropReason, GattLink, Profile, Samples
from gaitedge.units import GyroUnit, gyro_to_rad_s

log = logging.getLogger(__name__)

NAME = "movesense"
TITLE = "Movesense running the GATT sensor-data app (IMU6: acc + gyro, sensor time)"
NEEDS = "the gatt_sensordata_app firmware (Movesense device library sample, flashed by DFU)"

SERVICE_UUID = "34802252-7185-4d5d-b431-630e7050e8f0"
WRITE_UUID = "34800001-7185-4d5d-b431-630e7050e8f0"
NOTIFY_UUID = "34800002-7185-4d5d-b431-630e7050e8f0"
SERVICES = (SERVICE_UUID,)
NAME_PREFIXES = ("Movesense",)

SUBSCRIBE, UNSUBSCRIBE = 1, 2
RESULT, DATA = 1, 2
REFERENCE = 0x47  # our subscription's client reference (any non-zero byte)
RATES_HZ = (13, 26, 52, 104, 208, 416, 833, 1666)
SAMPLE_BYTES = 24  # acc and gyro, 3 float32 each
STAMP_MODULUS_MS = 1 << 32


def subscribe_command(rate_hz: int, reference: int = REFERENCE) -> bytes:
    return bytes([SUBSCRIBE, reference]) + f"/Meas/IMU6/{rate_hz}".encode("ascii")


def parse_data(payload: bytes) -> tuple[int, np.ndarray]:
    """A DATA notification -> (first sample's ms, [n, 6] acc m/s² + gyro deg/s)."""
    body = payload[6:]
    if len(payload) < 6 + SAMPLE_BYTES or len(body) % SAMPLE_BYTES:
        raise DeviceError(f"Movesense: {len(payload)}-byte IMU6 packet")
    n = len(body) // SAMPLE_BYTES
    values = np.frombuffer(body, "<f4").astype(np.float64)
    acc, gyro = values[: 3 * n].reshape(n, 3), values[3 * n :].reshape(n, 3)
    return struct.unpack_from("<I", payload, 2)[0], np.hstack([acc, gyro])


class MovesenseProfile(Profile):
    name = NAME
    services = SERVICES

    def __init__(self, rate_hz: int = 52) -> None:
        super().__init__()
        if rate_hz not in RATES_HZ:
            raise ValueError(f"Movesense IMU rates: {RATES_HZ} Hz, not {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.acc_range_g = 16.0  # the IMU6 resource's default full scale
        self.samples_per_notification = max(1, rate_hz // 13)
        # The sensor clock runs through a reconnect, so this is kept across connections (the
        # assembler tells a restarted sensor, whose clock went back, from one that ran on).
        self._previous: tuple[int, int] | None = None  # (stamp ms, samples) of the last packet
        self._elapsed_ms = 0  # unwrapped sensor time of the last packet

    async def start(self, link: GattLink) -> None:
        await link.subscribe(NOTIFY_UUID)

        def ours(data: bytes) -> bool:
            return len(data) >= 2 and data[0] in (RESULT, DATA) and data[1] == REFERENCE

        reply = await link.request(
            WRITE_UUID, subscribe_command(int(self.rate_hz)), reply_uuid=NOTIFY_UUID, accept=ours
        )
        if reply[0] == DATA:  # no result first: the stream itself says it started
            link.deliver(NOTIFY_UUID, reply)
        elif len(reply) >= 4 and (status := int.from_bytes(reply[2:4], "little")) >= 300:
            raise DeviceError(f"Movesense refused /Meas/IMU6/{int(self.rate_hz)}: status {status}")
        self.model = link.name or "Movesense"

    def decode(self, uuid: str, payload: bytes) -> list[Samples]:
        if len(payload) < 2 or payload[0] != DATA or payload[1] != REFERENCE:
            self.stats.drop(DropReason.UNKNOWN, payload[:2].hex())
            return []
        try:
            stamp_ms, values = parse_data(payload)
        except DeviceError as exc:
            self.stats.drop(DropReason.MALFORMED, str(exc))
            return []
        n, lost = len(values), 0
        if self._previous is not None:
            last_ms, last_n = self._previous
            step_ms = (stamp_ms - last_ms) % STAMP_MODULUS_MS
            if step_ms == 0:
                self.stats.drop(DropReason.REPEATED, f"stamp {stamp_ms} again")
                return []
            self._elapsed_ms += step_ms
            lost = max(0, round(step_ms * self.rate_hz / 1000.0) - last_n)
        self._previous = (stamp_ms, n)
        t = self._elapsed_ms / 1000.0 + np.arange(n) / self.rate_hz
        imu = np.hstack([values[:, :3], gyro_to_rad_s(values[:, 3:], GyroUnit.DEG_S)])
        return [Samples(imu, t, lost)]


def profile(**options) -> MovesenseProfile:
    return MovesenseProfile(**options)
