"""MbientLab MetaBase as it exports a MetaMotion recording: one CSV per sensor (vendor-formats.md
§B1, the wild exports ``metabase_*``).

* ``ios``: MetaBase iOS/macOS v4, ``epoc (ms),timestamp (-0500),elapsed (s),x-axis (g),...``,
  local time with dots, 3 decimals, no final newline (the wild iOS file), files named as the
  vendor's own test fixture (``Accelerometer.csv``, ``Gyroscope.csv``). Logged data downloaded in
  packed notifications: three rows share the stamp of the notification (its last sample), acc and
  gyro both 100 Hz on their own clocks.
* ``android``: MetaBase Android, ``epoch (ms),time (01:00),elapsed (s),...`` with colon times,
  stamps from a packet counter and the nominal period (no ties), a final newline, names carrying
  MAC, sensor, rate and firmware like the wild set; acc 50 Hz, gyro 100 Hz starting 330 ms
  before the acc (the wild set's gyro starts first).
* ``metabase5``: MetaBase 5 (Swift Combine SDK), ``Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z``
  with the epoch in seconds (3 decimals), values with 4 decimals, no units, no final newline
  (``MWDataTable.makeCSV`` trims it); names ``<sensor> <start date>.csv`` (the SDK's example
  app); acc 100 Hz, gyro 200 Hz.

Acceleration is written in g with gravity and Android's sign (the Bosch IMU reads +1 g up), the
gyroscope in deg/s.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, resample
from gaitedge.recording import Recording

START_EPOCH_S = 1659731173.153  # the wild iOS set's first stamp (2022-08-05)
MAC = "C42732BE255C"


def _local(epoch_ms: np.ndarray, offset_h: float, clock_sep: str) -> list[str]:
    tz = timezone(timedelta(hours=offset_h))
    fmt = f"%Y-%m-%dT%H{clock_sep}%M{clock_sep}%S.%f"
    return [datetime.fromtimestamp(ms / 1000.0, tz).strftime(fmt)[:-3] for ms in epoch_ms.tolist()]


def _sensor(rec: Recording, kind: str, rate_hz: float, offset_s: float = 0.0):
    """Samples of one sensor at its own rate: (seconds from the recording's start, values as
    MetaBase writes them: g or deg/s)."""
    cols = slice(0, 3) if kind == "Accelerometer" else slice(3, 6)
    t, x = resample(rec.timestamp_s, rec.imu[:, cols], rate_hz, offset_s=offset_s)
    x = x / G if kind == "Accelerometer" else np.degrees(x)
    return t - rec.timestamp_s[0], x


def _packed(t_s: np.ndarray, per_packet: int) -> np.ndarray:
    """Each row stamped with its notification's time: that of the packet's last sample."""
    last = np.minimum((np.arange(len(t_s)) // per_packet + 1) * per_packet - 1, len(t_s) - 1)
    return t_s[last]


def _rows(cells: list[list[str]]) -> list[str]:
    return [",".join(row) for row in zip(*cells, strict=True)]


def _write(path: Path, header: str, rows: list[str], final_newline: bool) -> None:
    text = "\n".join([header, *rows]) + ("\n" if final_newline else "")
    path.write_bytes(text.encode("utf-8"))


def _v4_file(t_s, x, *, header_time: str, offset_h: float, clock_sep: str, unit: str):
    epoch_ms = np.round((START_EPOCH_S + t_s) * 1000.0).astype(np.int64)
    elapsed = (epoch_ms - epoch_ms[0]) / 1000.0
    cells = [
        [str(v) for v in epoch_ms.tolist()],
        _local(epoch_ms, offset_h, clock_sep),
        [f"{v:.3f}" for v in elapsed.tolist()],
        *([f"{v:.3f}" for v in x[:, c].tolist()] for c in range(3)),
    ]
    header = f"{header_time},elapsed (s)," + ",".join(f"{a}-axis ({unit})" for a in "xyz")
    return header, _rows(cells)


def render_ios(rec: Recording, out_dir: Path) -> Path:
    folder = out_dir / "metabase-ios"
    folder.mkdir(parents=True, exist_ok=True)
    for kind, unit, offset in (("Accelerometer", "g", 0.0), ("Gyroscope", "deg/s", 0.004)):
        t, x = _sensor(rec, kind, 100.0, offset)
        header, rows = _v4_file(
            _packed(t, 3),
            x,
            header_time="epoc (ms),timestamp (-0500)",
            offset_h=-5,
            clock_sep=".",
            unit=unit,
        )
        _write(folder / f"{kind}.csv", header, rows, final_newline=False)
    return folder


def render_android(rec: Recording, out_dir: Path) -> Path:
    folder = out_dir / "metabase-android"
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime.fromtimestamp(START_EPOCH_S, timezone(timedelta(hours=1)))
    session = f"gaitedge_MetaWear_{start.strftime('%Y-%m-%dT%H.%M.%S.%f')[:-3]}_{MAC}"
    for kind, unit, rate, offset in (
        ("Accelerometer", "g", 50.0, 0.33),
        ("Gyroscope", "deg/s", 100.0, 0.0),
    ):
        t, x = _sensor(rec, kind, rate, offset)
        t = t[0] + np.arange(len(t)) / rate  # packet counter x nominal period
        header, rows = _v4_file(
            t, x, header_time="epoch (ms),time (01:00)", offset_h=1, clock_sep=":", unit=unit
        )
        _write(folder / f"{session}_{kind}_{rate:.3f}Hz_1.4.4.csv", header, rows, True)
    return folder


def render_metabase5(rec: Recording, out_dir: Path) -> Path:
    folder = out_dir / "metabase-5"
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime.fromtimestamp(START_EPOCH_S, timezone(timedelta(hours=-8)))
    for kind, rate, offset in (("Accelerometer", 100.0, 0.0), ("Gyroscope", 200.0, 0.002)):
        t, x = _sensor(rec, kind, rate, offset)
        epoch_ms = np.round((START_EPOCH_S + t) * 1000.0).astype(np.int64)
        cells = [
            [f"{ms // 1000}.{ms % 1000:03d}" for ms in epoch_ms.tolist()],
            _local(epoch_ms, -8, "."),
            [f"{v:.3f}" for v in ((epoch_ms - epoch_ms[0]) / 1000.0).tolist()],
            *([f"{v:.4f}" for v in x[:, c].tolist()] for c in range(3)),
        ]
        header = "Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z"
        name = f"{kind} {start.strftime('%b %d, %Y at %H.%M')}.csv"
        _write(folder / name, header, _rows(cells), final_newline=False)
    return folder


VARIANTS = {"ios": render_ios, "android": render_android, "metabase5": render_metabase5}
