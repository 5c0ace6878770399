"""A recording as Sensors Data Logger writes it (Pyojin Kim's Android app, with which the RoNIN
dataset was recorded; ``PyojinKim/Sensors-Data-Logger``: ``IMUSession.java``,
``fio/FileStreamer.java``; vendor-formats.md §A4).

* One text file per sensor in the recording's folder: ``acce.txt`` (``TYPE_ACCELEROMETER``: m/s²
  with gravity, Android's sign), ``gyro.txt`` (``TYPE_GYROSCOPE``, rad/s), ``linacce.txt`` and
  ``gravity.txt`` (the fused split), ``acce_uncalib.txt`` / ``gyro_uncalib.txt`` (six values:
  the reading and its bias), ``acce_bias.txt`` / ``gyro_bias.txt``, ``magnet.txt``, ``rv.txt``
  and ``game_rv.txt`` (four values), ``pressure.txt`` and ``step.txt`` (one).
* Every file opens with ``# Created at <java.util.Date> in Burnaby Canada `` (a space before
  the newline); a row is ``SensorEvent.timestamp`` (ns on the boot clock) and the values
  ``%.6f`` (``Locale.US``), each after a space, and a space before the newline.
* ``SENSOR_DELAY_GAME``: ~51 Hz on a Galaxy S9 (the repository's own recording steps 19.58 ms),
  each sensor on its own stamps; the recording starts ~70 min after boot.

``folder``: the folder as the app leaves it; ``zip``: that folder zipped (as shared).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import gravity_split, resample
from gaitedge.recording import Recording

BOOT_NS = 4_240_911_748_748  # the first stamp: ~70 min after boot (the repository's gyro.txt)
COMMENT = "# Created at Mon Aug 12 13:16:15 PDT 2019 in Burnaby Canada \n"
# (rate Hz, first stamp after the recording's first sample s) per sensor clock
_CLOCKS = {"acce": (51.07, 0.0), "gyro": (51.07, 0.0146), "motion": (51.07, 0.0071)}


def _rows(t_s: np.ndarray, values: np.ndarray, t0: float) -> str:
    ns = BOOT_NS + np.round((t_s - t0) * 1e9).astype(np.int64)
    fmt = "%d" + " %.6f" * values.shape[1] + " \n"
    return "".join(fmt % (n, *v) for n, v in zip(ns.tolist(), values.tolist(), strict=True))


def _files(rec: Recording) -> dict[str, str]:
    t, acc, gyro = rec.timestamp_s, rec.imu[:, :3], rec.imu[:, 3:]
    t0 = float(t[0])
    files = {}
    ta, xa = resample(t, acc, _CLOCKS["acce"][0], offset_s=_CLOCKS["acce"][1])
    tg, xg = resample(t, gyro, _CLOCKS["gyro"][0], offset_s=_CLOCKS["gyro"][1])
    linear, gravity = gravity_split(t, acc)
    tm, xl = resample(t, linear, _CLOCKS["motion"][0], offset_s=_CLOCKS["motion"][1])
    _, xgr = resample(t, gravity, _CLOCKS["motion"][0], offset_s=_CLOCKS["motion"][1])
    bias_g = np.tile([0.0012, -0.0007, 0.0003], (len(tg), 1))
    files["acce.txt"] = _rows(ta, xa, t0)
    files["acce_uncalib.txt"] = _rows(ta, np.concatenate([xa, np.zeros_like(xa)], axis=1), t0)
    files["acce_bias.txt"] = _rows(ta, np.zeros_like(xa), t0)
    files["gyro.txt"] = _rows(tg, xg, t0)
    files["gyro_uncalib.txt"] = _rows(tg, np.concatenate([xg + bias_g, bias_g], axis=1), t0)
    files["gyro_bias.txt"] = _rows(tg, bias_g, t0)
    files["linacce.txt"] = _rows(tm, xl, t0)
    files["gravity.txt"] = _rows(tm, xgr, t0)
    files["magnet.txt"] = _rows(tm, np.tile([-12.5, 30.1, -38.0], (len(tm), 1)), t0)
    files["game_rv.txt"] = _rows(tm, np.tile([0.01, 0.02, 0.7, 0.71], (len(tm), 1)), t0)
    files["rv.txt"] = files["game_rv.txt"]
    files["pressure.txt"] = _rows(tm[::10], np.full((len(tm[::10]), 1), 1011.2), t0)
    files["step.txt"] = _rows(tm[:1], np.ones((1, 1)), t0)
    return {name: COMMENT + text for name, text in files.items()}


def render_folder(rec: Recording, out_dir: Path) -> Path:
    folder = out_dir / "2019-08-12T13-16-15"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in _files(rec).items():
        (folder / name).write_bytes(text.encode("ascii"))
    return folder


def render_zip(rec: Recording, out_dir: Path) -> Path:
    path = out_dir / "2019-08-12T13-16-15.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, text in _files(rec).items():
            zf.writestr(f"2019-08-12T13-16-15/{name}", text.encode("ascii"))
    return path


VARIANTS = {"folder": render_folder, "zip": render_zip}
