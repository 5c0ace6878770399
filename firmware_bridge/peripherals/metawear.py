"""An emulated MbientLab MetaWear board (MetaMotion): BMI160 or BMI270 accelerometer + gyroscope.

Written from MbientLab's C++ SDK and the Bosch datasheets (vendor-formats.md C2), pinned by the
node-metawear exchange in ``firmware_bridge/vectors/devices.json``: the host writes
``[module, register, ...]`` to the command characteristic; the board answers module-info reads
(``[module, 0x80]``) and streams ``[0x03, 0x04, x, y, z]`` and ``[0x13, 0x05 | 0x04, x, y, z]``
(int16 LE, the configured range) on the notify characteristic, one sample per notification,
without timestamps. ``PlaybackConfig.stall_after_s`` reproduces the field problem of a stream
that stops while the link stays up.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge.peripherals.base import CharSpec, Notification, Peripheral, ServiceSpec

SERVICE = "326a9000-85cb-9195-d9dd-464cfbbae75a"
COMMAND = "326a9001-85cb-9195-d9dd-464cfbbae75a"
NOTIFY = "326a9006-85cb-9195-d9dd-464cfbbae75a"
ACC, GYRO, INFO = 0x03, 0x13, 0x80
# part -> (acc implementation, gyro implementation, gyro data register, acc range byte -> g)
PARTS = {
    "bmi160": (1, 0, 0x05, {0x03: 2, 0x05: 4, 0x08: 8, 0x0C: 16}),
    "bmi270": (4, 1, 0x04, {0x00: 2, 0x01: 4, 0x02: 8, 0x03: 16}),
}
ODR_HZ = {0x06: 25, 0x07: 50, 0x08: 100, 0x09: 200, 0x0A: 400, 0x0B: 800}
GYRO_RANGE_DPS = {0: 2000, 1: 1000, 2: 500, 3: 250, 4: 125}
G = 9.80665


class MetaWearPeripheral(Peripheral):
    name = "MetaWear"
    advertised_uuids = (SERVICE,)
    services = (
        ServiceSpec(
            SERVICE,
            (
                CharSpec(COMMAND, ("write", "write-without-response")),
                CharSpec(NOTIFY, ("notify",)),
            ),
        ),
    )
    sensors = ("acc", "gyro")
    rate_hz = 50.0

    def __init__(
        self, timestamp_s, imu, config=None, *, part: str = "bmi160", gyro: bool = True
    ) -> None:
        self.acc_impl, self.gyro_impl, self.gyro_register, self.acc_ranges = PARTS[part]
        self.has_gyro = gyro
        self.acc_range_g, self.gyro_range_dps = 16, 2000
        self.odr_hz: int | None = None
        super().__init__(timestamp_s, imu, config)

    def read(self, uuid: str) -> bytes:
        return b""

    def write(self, uuid: str, data: bytes) -> None:
        self.stats.writes.append(bytes(data))
        if uuid != COMMAND or len(data) < 2:
            return
        module, register = data[0], data[1]
        if register == INFO:
            impl = {ACC: self.acc_impl, GYRO: self.gyro_impl if self.has_gyro else None}
            body = b"" if impl.get(module) is None else bytes([impl[module], 1])
            self.reply(NOTIFY, bytes([module, INFO]) + body)
        elif register == 0x03 and len(data) == 4:  # configure: odr | bandwidth, range
            self.odr_hz = ODR_HZ.get(data[2] & 0x0F)  # the recording plays at rate_hz regardless
            if module == ACC:
                self.acc_range_g = self.acc_ranges[data[3]]
            else:
                self.gyro_range_dps = GYRO_RANGE_DPS[data[3]]
        elif register == 0x01 and len(data) == 3:  # power the sensor on or off
            sensor = "acc" if module == ACC else "gyro"
            if data[2]:
                self.start_sensor(sensor)
            else:
                self.stop_sensor(sensor)

    def encode(self, start: int, stop: int) -> list[Notification]:
        x = self.samples(start, stop)[0]
        out = []
        if self.streams("acc", start):
            lsb = 32768.0 / self.acc_range_g
            counts = np.clip(np.round(x[:3] / G * lsb), -32768, 32767).astype("<i2")
            out.append((NOTIFY, bytes([ACC, 0x04]) + counts.tobytes(), "acc", range(start, stop)))
        if self.streams("gyro", start):
            lsb = 16.4 * 2000.0 / self.gyro_range_dps
            counts = np.clip(np.round(np.rad2deg(x[3:]) * lsb), -32768, 32767).astype("<i2")
            payload = bytes([GYRO, self.gyro_register]) + counts.tobytes()
            out.append((NOTIFY, payload, "gyro", range(start, stop)))
        return out
