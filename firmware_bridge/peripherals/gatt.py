"""Emulated DIY boards: the Arduino Science Journal firmware (acc and gyro characteristics,
3 float32 LE each, g and deg/s; vendor-formats.md C5) and a sketch printing CSV lines
``ax,ay,az,gx,gy,gz`` (g, deg/s) over the Nordic UART Service, split across notifications of
at most 20 bytes as a default-MTU UART bridge does (a line counts as sent when a receiver
can know it whole: its pieces and the newline before it delivered)."""

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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pieces: dict[int, int] = {}  # line (its sample) -> its pieces
        self._got: dict[int, int] = {}  # line -> its pieces delivered
        self._ended: set[int] = set()  # lines whose last piece (the newline) was delivered

    def encode(self, start: int, stop: int) -> list[Notification]:
        x = self.samples(start, stop)[0]
        values = np.concatenate([x[:3] / G, np.rad2deg(x[3:])])
        line = (",".join(f"{v:.5f}" for v in values) + "\n").encode()
        chunks = [line[i : i + NUS_CHUNK] for i in range(0, len(line), NUS_CHUNK)]
        self._pieces[start] = len(chunks)
        for old in (self._pieces, self._got):  # bounded: no line is delivered that late
            old.pop(start - 64, None)
        self._ended.discard(start - 64)
        # The sample rides on its line's last piece; the others carry only where they belong.
        last = len(chunks) - 1
        return [
            (NUS_TX, c, "imu", range(start, stop) if i == last else range(start, start))
            for i, c in enumerate(chunks)
        ]

    def _on_sent(self, sensor: str, indices: range):
        """A line counts as sent only when a receiver can know it whole: every piece of it
        delivered, and the newline before it too (a host that subscribes, or reconnects,
        mid-stream cannot tell the first line it sees from the tail of one)."""

        def sent() -> None:
            self.stats.notifications += 1
            start = indices.start
            self._got[start] = self._got.get(start, 0) + 1
            if len(indices):  # the last piece
                self._ended.add(start)
                if self._got[start] == self._pieces.get(start) and start - 1 in self._ended:
                    self.stats.sent.setdefault(sensor, set()).update(indices)

        return sent
