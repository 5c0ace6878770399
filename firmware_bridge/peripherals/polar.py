"""An emulated Polar sensor speaking PMD: a Verity Sense (ACC + GYRO) or an H10 / OH1 (ACC only).

Written from Polar's Measurement Data Specification and SDK (vendor-formats.md C1), pinned by
the exchanges in ``firmware_bridge/vectors/devices.json``: the control point answers
``[0xF0, op, type, status, more, params]`` by indication; ACC goes out as delta frames of
type 1 (0x81, mG), GYRO as delta frames of type 0 (0x80, counts of FACTOR deg/s, FACTOR in the
start response); each frame's stamp (ns since 2000-01-01 on the sensor clock, here never set:
the Verity's default 2017-01-01T10:00Z) is its last sample's.
"""

from __future__ import annotations

import datetime
import struct

import numpy as np

from firmware_bridge.peripherals.base import CharSpec, Notification, Peripheral, ServiceSpec

SERVICE = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_POINT = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
HEART_RATE_SERVICE = "0000180d-0000-1000-8000-00805f9b34fb"  # what Polar sensors advertise

ACC, GYRO = 2, 5
START, STOP = 2, 3
SUCCESS, INVALID_MEASUREMENT_TYPE, ALREADY_IN_STATE, INVALID_SAMPLE_RATE = 0, 2, 6, 8
INVALID_LENGTH = 4
G_MG = 9.80665 / 1000.0  # m/s² per mG
GYRO_FACTOR = 0.061  # deg/s per count of the emulated Verity's 16-bit gyroscope at 2000 deg/s
# Never set: the Verity Sense's firmware default (vendor-formats.md C1, polar-ble-sdk #818).
CLOCK_START_NS = int(
    (datetime.datetime(2017, 1, 1, 10) - datetime.datetime(2000, 1, 1)).total_seconds() * 1e9
)

MODELS = {
    # name prefix, measurement feature bits (ECG 0, PPG 1, ACC 2, PPI 3, GYRO 5, MAG 6, SDK 9)
    "verity": ("Polar Sense", (1, 2, 3, 5, 6, 9)),
    "h10": ("Polar H10", (0, 2)),
    "oh1": ("Polar OH1", (1, 2, 3)),
}


def delta_bits(deltas: np.ndarray) -> int:
    """The fewest two's complement bits that hold every delta."""
    hi = int(np.max(np.maximum(deltas, -deltas - 1), initial=0))
    return max(1, hi.bit_length() + 1)


def delta_block(samples: np.ndarray, bits: int | None = None) -> bytes:
    """[N, C] integers -> reference sample (int16 LE) + one block of N-1 packed deltas."""
    samples = np.asarray(samples, dtype=np.int64)
    deltas = np.diff(samples, axis=0).reshape(-1)
    bits = bits or delta_bits(deltas)
    twos = deltas & ((1 << bits) - 1)
    bit_rows = (twos[:, None] >> np.arange(bits)) & 1  # LSB first
    packed = np.packbits(bit_rows.reshape(-1).astype(np.uint8), bitorder="little").tobytes()
    reference = samples[0].astype("<i2").tobytes()
    return reference + bytes([bits, len(samples) - 1]) + packed


class PolarPeripheral(Peripheral):
    rate_hz = 52.0
    samples_per_notification = 9  # a reference sample and 8 deltas per frame
    advertised_uuids = (HEART_RATE_SERVICE,)
    services = (
        ServiceSpec(
            SERVICE,
            (
                CharSpec(CONTROL_POINT, ("read", "write", "indicate")),
                CharSpec(DATA, ("notify",)),
            ),
        ),
    )

    def __init__(self, timestamp_s, imu, config=None, *, model: str = "verity") -> None:
        prefix, features = MODELS[model]
        self.name = f"{prefix} 1A2B3C4D"
        self.features = features
        self.sensors = ("acc", "gyro") if GYRO in features else ("acc",)
        super().__init__(timestamp_s, imu, config)

    def read(self, uuid: str) -> bytes:
        bits = sum(1 << f for f in self.features)
        return bytes([0x0F]) + bits.to_bytes(2, "little")

    def write(self, uuid: str, data: bytes) -> None:
        self.stats.writes.append(bytes(data))
        if uuid != CONTROL_POINT or len(data) < 2:
            return
        op, kind = data[0], data[1]
        sensor = {ACC: "acc", GYRO: "gyro"}.get(kind)
        status, params = SUCCESS, b""
        if sensor is None or kind not in self.features:
            status = INVALID_MEASUREMENT_TYPE
        elif op == START:
            status = self._check_settings(data[2:])
            if status == SUCCESS and sensor in self.streaming:
                status = ALREADY_IN_STATE
            if status == SUCCESS:
                self.start_sensor(sensor)
                if kind == GYRO:  # FACTOR (type 5), one float32
                    params = bytes([5, 1]) + struct.pack("<f", GYRO_FACTOR)
        elif op == STOP:
            self.stop_sensor(sensor)
        self.reply(CONTROL_POINT, bytes([0xF0, op, kind, status, 0]) + params)

    def _check_settings(self, tlv: bytes) -> int:
        sizes = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1}
        i = 0
        while i < len(tlv):
            if i + 2 > len(tlv) or tlv[i] not in sizes:
                return INVALID_LENGTH
            kind, count = tlv[i], tlv[i + 1]
            value = int.from_bytes(tlv[i + 2 : i + 2 + sizes[kind]], "little")
            if kind == 0 and value != int(self.rate_hz):
                return INVALID_SAMPLE_RATE
            i += 2 + count * sizes[kind]
        return SUCCESS

    def stamp_ns(self, index: int) -> int:
        return CLOCK_START_NS + round(index * 1e9 / self.rate_hz)

    def encode(self, start: int, stop: int) -> list[Notification]:
        x = self.samples(start, stop)
        header = self.stamp_ns(stop - 1).to_bytes(8, "little")
        out = []
        if self.streams("acc", start):
            mg = np.round(x[:, :3] / G_MG)
            payload = bytes([ACC]) + header + bytes([0x81]) + delta_block(mg)
            out.append((DATA, payload, "acc", range(start, stop)))
        if self.streams("gyro", start):
            counts = np.round(np.rad2deg(x[:, 3:]) / GYRO_FACTOR)
            payload = bytes([GYRO]) + header + bytes([0x80]) + delta_block(counts)
            out.append((DATA, payload, "gyro", range(start, stop)))
        return out
