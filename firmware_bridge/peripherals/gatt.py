"""Emulated DIY boards: the Arduino Science Journal firmware (acc and gyro characteristics,
3 float32 LE each, g and deg/s; vendor-formats.md C5) and a sketch printing CSV lines
``ax,ay,az,gx,gy,gz`` (g, deg/s) over the Nordic UART Service, split across notifications of
at most 20 bytes as a default-MTU UART bridge does."""

from __future__ import annotations

import numpy as np

from firmware_bridge.peripherals.base import CharSpec, Notification, Peripheral, ServiceSpec

G = 9.80665
SJ_SERVICE = "555a0002-0000-467a-9538-01f0652c74e8"
SJ_ACC = "555a0002-0011-467a-9538-01f0652c74e8"
SJ_GYRO = "555a0002-0012-467a-9538-01f0652c74e8"
NUS_SERVICE = "6e400001-b5a3-f393-e0a9-e50e24dcca9e"
NUS_RX = "6e400002-b5a3-f393-e0a9-e50e24dcca9e"
NUS_TX = "6e400003-b5a3-f393-e0a9-e50e24dcca9e"
NUS_CHUNK = 20  # bytes per notification at the default ATT MTU of 23


class SubscriptionStarts(Peripheral):
    """Firmware that streams as soon as anyone is connected (no start command)."""

    def connected(self, send) -> None:
        super().connected(send)
        for sensor in self.sensors:
            self.start_sensor(sensor)

    def read(self, uuid: str) -> bytes:
        return b""

    def write(self, uuid: str, data: bytes) -> None:
        self.stats.writes.append(bytes(data))


class ScienceJournalPeripheral(SubscriptionStarts):
    name = "BLESense-4A21"
    advertised_uuids = (SJ_SERVICE,)
    services = (
        ServiceSpec(SJ_SERVICE, (CharSpec(SJ_ACC, ("notify",)), CharSpec(SJ_GYRO, ("notify",)))),
    )
    sensors = ("acc", "gyro")

    def encode(self, start: int, stop: int) -> list[Notification]:
        x = self.samples(start, stop)[0]
        acc = (x[:3] / G).astype("<f4").tobytes()
        gyro = np.rad2deg(x[3:]).astype("<f4").tobytes()
        span = range(start, stop)
        return [(SJ_ACC, acc, "acc", span), (SJ_GYRO, gyro, "gyro", span)]


class UartCsvPeripheral(SubscriptionStarts):
    name = "XIAO-Sense-UART"
    advertised_uuids = (NUS_SERVICE,)
    services = (
        ServiceSpec(NUS_SERVICE, (CharSpec(NUS_RX, ("write",)), CharSpec(NUS_TX, ("notify",)))),
    )
    sensors = ("imu",)

    def encode(self, start: int, stop: int) -> list[Notification]:
        x = self.samples(start, stop)[0]
        values = np.concatenate([x[:3] / G, np.rad2deg(x[3:])])
        line = (",".join(f"{v:.5f}" for v in values) + "\n").encode()
        chunks = [line[i : i + NUS_CHUNK] for i in range(0, len(line), NUS_CHUNK)]
        # The sample counts as sent with its last piece (a line is only whole then).
        empty = range(start, start)
        return [
            (NUS_TX, c, "imu", range(start, stop) if i == len(chunks) - 1 else empty)
            for i, c in enumerate(chunks)
        ]
