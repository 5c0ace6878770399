"""An emulated Nordic Thingy:52: the motion service's configuration and raw data (vendor-formats
C4): 9 int16 LE per notification, acc Q6.10 g, gyro Q11.5 deg/s, compass Q12.4 µT (a constant
field here), at the motion rate the host writes into the configuration."""

from __future__ import annotations

import struct

import numpy as np

from firmware_bridge.peripherals.base import CharSpec, Notification, Peripheral, ServiceSpec

CONFIGURATION_SERVICE = "ef680100-9b35-4933-9b10-52ffa9740042"
MOTION_SERVICE = "ef680400-9b35-4933-9b10-52ffa9740042"
MOTION_CONFIG = "ef680401-9b35-4933-9b10-52ffa9740042"
RAW_DATA = "ef680406-9b35-4933-9b10-52ffa9740042"
CONFIG_FORMAT = "<HHHHB"
G = 9.80665


class ThingyPeripheral(Peripheral):
    name = "Thingy"
    advertised_uuids = (CONFIGURATION_SERVICE,)
    services = (
        ServiceSpec(
            MOTION_SERVICE,
            (
                CharSpec(MOTION_CONFIG, ("read", "write")),
                CharSpec(RAW_DATA, ("notify",)),
            ),
        ),
    )
    rate_hz = 50.0
    sensors = ("imu",)

    def __init__(self, timestamp_s, imu, config=None) -> None:
        # The firmware's defaults: pedometer 1 s, temperature 1 s, compass 100 ms, 10 Hz motion.
        self.config_bytes = struct.pack(CONFIG_FORMAT, 1000, 1000, 100, 10, 1)
        super().__init__(timestamp_s, imu, config)

    def read(self, uuid: str) -> bytes:
        return self.config_bytes

    def write(self, uuid: str, data: bytes) -> None:
        self.stats.writes.append(bytes(data))
        if uuid == MOTION_CONFIG and len(data) == struct.calcsize(CONFIG_FORMAT):
            self.config_bytes = bytes(data)
            if struct.unpack(CONFIG_FORMAT, data)[3] == int(self.rate_hz):
                self.start_sensor("imu")  # raw data flows at the rate the recording plays

    def encode(self, start: int, stop: int) -> list[Notification]:
        if not self.streams("imu", start):
            return []
        x = self.samples(start, stop)[0]
        acc = np.round(x[:3] / G * 1024)
        gyro = np.round(np.rad2deg(x[3:]) * 32)
        compass = np.array([200.0, -80.0, 640.0])  # 12.5, -5, 40 µT in Q12.4
        values = np.clip(np.concatenate([acc, gyro, compass]), -32768, 32767).astype("<i2")
        return [(RAW_DATA, values.tobytes(), "imu", range(start, stop))]
