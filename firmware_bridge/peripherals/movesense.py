"""An emulated Movesense sensor running the GATT sensor-data app (vendor-formats.md C3).

Answers ``[1, ref, "/Meas/IMU6/<rate>"]`` with ``[1, ref, 200 (u16 LE)]`` and streams
``[2, ref, u32 LE ms of the first sample, acc xyz float32 x n, gyro xyz float32 x n]`` (acc
m/s², gyro deg/s), 4 samples a packet at 52 Hz; ``[2, ref]`` unsubscribes.
"""

from __future__ import annotations

import struct

import numpy as np

from firmware_bridge.peripherals.base import CharSpec, Notification, Peripheral, ServiceSpec

SERVICE = "34802252-7185-4d5d-b431-630e7050e8f0"
WRITE = "34800001-7185-4d5d-b431-630e7050e8f0"
NOTIFY = "34800002-7185-4d5d-b431-630e7050e8f0"
OK, NOT_FOUND = 200, 404
CLOCK_START_MS = 123_456  # the sensor has been up two minutes when the host arrives


class MovesensePeripheral(Peripheral):
    name = "Movesense 220330000123"
    advertised_uuids = (SERVICE,)
    services = (ServiceSpec(SERVICE, (CharSpec(WRITE, ("write",)), CharSpec(NOTIFY, ("notify",)))),)
    rate_hz = 52.0
    samples_per_notification = 4
    sensors = ("imu",)

    def __init__(self, timestamp_s, imu, config=None) -> None:
        self.reference: int | None = None
        super().__init__(timestamp_s, imu, config)

    def read(self, uuid: str) -> bytes:
        return b""

    def write(self, uuid: str, data: bytes) -> None:
        self.stats.writes.append(bytes(data))
        if len(data) < 2:
            return
        command, reference = data[0], data[1]
        if command == 1:
            path = data[2:].decode("ascii", errors="replace").lower()
            ok = path == f"/meas/imu6/{int(self.rate_hz)}"
            self.reply(
                NOTIFY, bytes([1, reference]) + (OK if ok else NOT_FOUND).to_bytes(2, "little")
            )
            if ok:
                self.reference = reference
                self.start_sensor("imu")
        elif command == 2:
            self.stop_sensor("imu")

    def encode(self, start: int, stop: int) -> list[Notification]:
        if not self.streams("imu", start):
            return []
        x = self.samples(start, stop)
        stamp = (CLOCK_START_MS + round(start * 1000 / self.rate_hz)) % (1 << 32)
        body = x[:, :3].astype("<f4").tobytes() + np.rad2deg(x[:, 3:]).astype("<f4").tobytes()
        payload = bytes([2, self.reference]) + struct.pack("<I", stamp) + body
        return [(NOTIFY, payload, "imu", range(start, stop))]
