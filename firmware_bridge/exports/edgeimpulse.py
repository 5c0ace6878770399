"""A recording as an Edge Impulse data-collection sketch writes it for the uploader
(``edgeimpulse/example-data-collection-csv``, vendor-formats.md §B6).

``csv``: ``timestamp,accX,accY,accZ,gyrX,gyrY,gyrZ``, the timestamp in whole ms from 0 (the
vendor's example steps 16 ms: 62.5 Hz), acceleration in m/s² with gravity and Android's sign,
the gyroscope in deg/s (the units Edge Impulse firmware declares: ``m/s2``, ``dps``), numbers as
a float prints with full precision, a final newline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import resample
from gaitedge.recording import Recording

INTERVAL_MS = 16  # the vendor's example


def render_csv(rec: Recording, out_dir: Path) -> Path:
    t, x = resample(rec.timestamp_s, rec.imu, 1000.0 / INTERVAL_MS)
    stamp_ms = np.arange(len(t)) * INTERVAL_MS
    x = np.concatenate([x[:, :3], np.degrees(x[:, 3:])], axis=1)
    rows = (
        f"{ms}," + ",".join(repr(v) for v in row)
        for ms, row in zip(stamp_ms.tolist(), x.tolist(), strict=True)
    )
    path = out_dir / "edgeimpulse.csv"
    text = "timestamp,accX,accY,accZ,gyrX,gyrY,gyrZ\n" + "\n".join(rows) + "\n"
    path.write_bytes(text.encode("utf-8"))
    return path


VARIANTS = {"csv": render_csv}
