"""Movesense (Suunto): a recording written as the Movesense apps export it.

* ``imu6-json`` / ``imu9-json``: one line of JSON, no final newline, ``{"Meas":{"IMU6":[{
  "ArrayAcc":[...],"ArrayGyro":[...],"Timestamp":ms},...]}}`` (IMU9 adds ``ArrayMagn`` before
  the stamp), every value the sensor's float32 printed with 17 significant digits: the encoder
  reproduces the wild IMU9 log (wild-exports ``movesense_imu9-json``) byte for byte.
* ``csv-folder``: the Showcase app's recordings of Acc and Gyro (two subscriptions, each on its
  own packets) converted to CSV as the app does (``Recorder.swift``): ``timestamp,x,y,z``, the
  stamp on each packet's first row only, floats in Swift's shortest form, a newline after every
  row, named ``<start ISO 8601>_<serial>_<acc|gyro>_stream.csv`` in a folder.
* :func:`render_showcase_jsonl`: the Showcase app's raw recordings (one ``{"acc":{...}}`` /
  ``{"gyroscope":{...}}`` per line), the files the CSVs are converted from.

The sensor samples on its own clock: the nominal 104 Hz runs at :data:`DEVICE_RATE_HZ` by its
ms uptime (the wild IMU9 log's stamps), 8 samples per packet, each packet stamped (ms, truncated)
at its first sample. Acceleration m/s², rotation rate deg/s, both with Android's sign (specific
force: the Movesense accelerometer reads +g on the axis pointing up).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import resample
from gaitedge.recording import Recording

DEVICE_RATE_HZ = 106.87  # the nominal 104 Hz by the sensor's ms clock (wild IMU9 log)
PER_PACKET = 8  # samples per notification at 104 Hz
UPTIME_START_MS = 158319  # the sensor's uptime at the first sample (as in the wild log)
GYRO_LAG_MS = 3.4  # the Gyro subscription starts a little after the Acc one (Showcase)
MAGN_UT = (21.5, -4.25, 39.75)  # a steady field for IMU9's ArrayMagn (unused by readers)
SERIAL = "174630000192"
START_UTC = dt.datetime(2024, 3, 4, 9, 15, 0, tzinfo=dt.timezone.utc)
LOG_NAME = "MovesenseLog_1.json"


def json_number(v: float) -> str:
    """A float32 sample as the Movesense apps print it: 17 significant digits of its value."""
    return f"{float(np.float32(v)):.17g}"


def swift_float(v: float) -> str:
    """A float32 as Swift's ``Float.description`` writes it (shortest round-trip form)."""
    return str(np.float32(v))


def _vectors(xyz: np.ndarray) -> str:
    cells = [
        f'{{"x":{json_number(x)},"y":{json_number(y)},"z":{json_number(z)}}}' for x, y, z in xyz
    ]
    return "[" + ",".join(cells) + "]"


def encode_meas(name: str, stamps_ms: np.ndarray, arrays: dict[str, np.ndarray]) -> str:
    """``{"Meas":{name:[packet, ...]}}``: per packet the arrays (``ArrayAcc``... ->
    [P, n, 3]) in the order given, then ``Timestamp``."""
    packets = []
    for k, stamp in enumerate(stamps_ms):
        body = ",".join(f'"{key}":{_vectors(v[k])}' for key, v in arrays.items())
        packets.append(f'{{{body},"Timestamp":{int(stamp)}}}')
    return f'{{"Meas":{{"{name}":[{",".join(packets)}]}}}}'


def encode_stream_line(key: str, array: str, stamp_ms: int, xyz: np.ndarray) -> str:
    """One Showcase raw event: ``{"acc":{"Timestamp":ms,"ArrayAcc":[...]}}``."""
    return f'{{"{key}":{{"Timestamp":{int(stamp_ms)},"{array}":{_vectors(xyz)}}}}}'


def encode_csv_packet(stamp_ms: int, xyz: np.ndarray) -> str:
    """One packet as the Showcase CSV encoder writes it (no final newline)."""
    rows = [",".join(swift_float(v) for v in row) for row in xyz]
    return f"{stamp_ms}," + "\n,".join(rows)


def _packets(rec: Recording, columns: slice, lag_ms: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The recording on the sensor's clock: [P] ms stamps and [P, PER_PACKET, 3] samples."""
    t, x = resample(rec.timestamp_s, rec.imu[:, columns], DEVICE_RATE_HZ, offset_s=lag_ms / 1000)
    n = len(x) // PER_PACKET * PER_PACKET
    t, x = t[:n], x[:n]
    uptime_ms = UPTIME_START_MS + (t[::PER_PACKET] - rec.timestamp_s[0]) * 1000.0
    return np.floor(uptime_ms + 1e-6).astype(np.int64), x.reshape(-1, PER_PACKET, 3)


def _acc(rec: Recording, lag_ms: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    return _packets(rec, slice(0, 3), lag_ms)  # m/s², Android sign: as written


def _gyro(rec: Recording, lag_ms: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    stamps, x = _packets(rec, slice(3, 6), lag_ms)
    return stamps, np.rad2deg(x)


def render_imu6_json(rec: Recording, out_dir: Path) -> Path:
    stamps, acc = _acc(rec)
    _, gyro = _gyro(rec)
    path = out_dir / LOG_NAME
    path.write_text(encode_meas("IMU6", stamps, {"ArrayAcc": acc, "ArrayGyro": gyro}))
    return path


def render_imu9_json(rec: Recording, out_dir: Path) -> Path:
    stamps, acc = _acc(rec)
    _, gyro = _gyro(rec)
    magn = np.broadcast_to(np.array(MAGN_UT), acc.shape)
    arrays = {"ArrayAcc": acc, "ArrayGyro": gyro, "ArrayMagn": magn}
    path = out_dir / LOG_NAME
    path.write_text(encode_meas("IMU9", stamps, arrays))
    return path


def _recording_prefix() -> str:
    return f"{START_UTC.strftime('%Y-%m-%dT%H:%M:%SZ')}_{SERIAL}"


def render_csv_folder(rec: Recording, out_dir: Path) -> Path:
    folder = out_dir / _recording_prefix()
    folder.mkdir(parents=True, exist_ok=True)
    for name, (stamps, x) in (("acc", _acc(rec)), ("gyro", _gyro(rec, GYRO_LAG_MS))):
        body = "".join(encode_csv_packet(s, v) + "\n" for s, v in zip(stamps, x, strict=True))
        path = folder / f"{_recording_prefix()}_{name}_stream.csv"
        path.write_text("timestamp,x,y,z\n" + body)
    return folder


def render_showcase_jsonl(rec: Recording, out_dir: Path) -> Path:
    """The Showcase app's raw recordings of Acc and Gyro, one event per line."""
    folder = out_dir / _recording_prefix()
    folder.mkdir(parents=True, exist_ok=True)
    streams = (
        ("acc", "acc", "ArrayAcc", _acc(rec)),
        ("gyro", "gyroscope", "ArrayGyro", _gyro(rec, GYRO_LAG_MS)),
    )
    for name, key, array, (stamps, x) in streams:
        lines = "".join(
            encode_stream_line(key, array, s, v) + "\n" for s, v in zip(stamps, x, strict=True)
        )
        (folder / f"{_recording_prefix()}_{name}_stream.json").write_text(lines)
    return folder


VARIANTS = {
    "imu6-json": render_imu6_json,
    "imu9-json": render_imu9_json,
    "csv-folder": render_csv_folder,
}
