"""Physics Toolbox Sensor Suite (Android) as its Multi Record tool writes a recording
(vendor-formats.md §A3, from users' exports and third-party readers: no vendor source).

One wide CSV ``time,gFx,gFy,gFz,ax,ay,az,wx,wy,wz,p``: a row each time one sensor reports (the
g-force meter and the linear accelerometer ~100 Hz, the gyroscope ~60 Hz, each on its own
jittered clock, the gyroscope's first report 0.35 s after the accelerometer's), every other
sensor's columns holding its last value and ``0.0000`` before its first. ``time`` in seconds
from the start (6 decimals), values with 4 (g-force in g with gravity and Android's sign, linear
acceleration in m/s², rad/s; pressure in hPa, never read).

* ``multi-csv``: comma and decimal point, as an English-locale phone writes it.
* ``multi-semicolon-decimal-comma``: a European locale: a blank first line, ``;`` between cells
  and at the end of every line, decimal commas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, gravity_split, resample
from gaitedge.recording import Recording

HEADER = ("time", "gFx", "gFy", "gFz", "ax", "ay", "az", "wx", "wy", "wz", "p")
# Each sensor's clock, in the row's column order (g-force, linear, gyroscope): rate (Hz), first
# report after the recording's start (s), jitter (s), seed.
_CLOCKS = ((100.0, 0.0788, 0.002, 1), (100.0, 0.0813, 0.002, 2), (60.0, 0.35, 0.003, 3))


def _rows(rec: Recording) -> tuple[np.ndarray, np.ndarray]:
    """Every report of every sensor as the Multi Record rows: time from the start [R], and the
    10 values [R, 10] (each sensor's last report held, zeros before its first)."""
    linear, _ = gravity_split(rec.timestamp_s, rec.imu[:, :3])
    sensors = []
    values = (rec.imu[:, :3] / G, linear, rec.imu[:, 3:])
    for (rate, offset, jitter, seed), x in zip(_CLOCKS, values, strict=True):
        sensors.append(
            resample(rec.timestamp_s, x, rate, jitter_s=jitter, offset_s=offset, seed=seed)
        )
    times = np.unique(np.concatenate([t for t, _ in sensors]))
    out = np.zeros((len(times), 10))
    out[:, 9] = 1013.25
    for k, (t, x) in enumerate(sensors):
        last = np.searchsorted(t, times, side="right") - 1  # the report each row holds
        has = last >= 0
        out[has, 3 * k : 3 * k + 3] = x[last[has]]
    return times - rec.timestamp_s[0], out


def _render(rec: Recording, out_dir: Path, delimiter: str, decimal: str, blank: bool) -> Path:
    t, x = _rows(rec)
    end = delimiter if delimiter == ";" else ""
    lines = [""] if blank else []
    lines.append(delimiter.join(HEADER) + end)
    for ti, row in zip(t.tolist(), x.tolist(), strict=True):
        cells = [f"{ti:.6f}"] + [f"{v:.4f}" for v in row]
        line = delimiter.join(cells) + end
        lines.append(line.replace(".", ",") if decimal == "," else line)
    path = out_dir / "2026-12-0711.42.05.csv"  # the app names a recording by its start
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def render_multi_csv(rec: Recording, out_dir: Path) -> Path:
    return _render(rec, out_dir, ",", ".", blank=False)


def render_multi_semicolon(rec: Recording, out_dir: Path) -> Path:
    return _render(rec, out_dir, ";", ",", blank=True)


VARIANTS = {
    "multi-csv": render_multi_csv,
    "multi-semicolon-decimal-comma": render_multi_semicolon,
}
