"""Real data for the benchmarks, read by ``gaitedge.datasets`` (the one reader of each dataset):
HAPT from ``$GAITEDGE_DATA_ROOT`` or ``../shared/data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gaitedge.datasets import DatasetError, default_data_root, hapt_recordings


def data_root() -> Path:
    return default_data_root()


def hapt_signal(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_samples`` of HAPT (experiments back to back) in m/s² and rad/s, at 50 Hz."""
    parts, rate_hz = [], None
    try:
        for rec in hapt_recordings(data_root()):
            parts.append(rec.imu)
            rate_hz = rec.rate_hz
            if sum(map(len, parts)) >= n_samples:
                break
    except DatasetError as exc:
        raise SystemExit(f"benchmark needs HAPT: {exc}") from exc
    imu = np.concatenate(parts)[:n_samples]
    return np.arange(len(imu)) / rate_hz, imu
