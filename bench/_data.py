"""Real data for the benchmarks: HAPT from ``$GAITEDGE_DATA_ROOT`` or ``../shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gaitedge.units import STANDARD_GRAVITY_M_S2


def data_root() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return Path(os.environ.get("GAITEDGE_DATA_ROOT", default))


def hapt_signal(n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_samples`` of HAPT (experiments back to back) in m/s² and rad/s, at 50 Hz."""
    path = data_root() / "hapt" / "hapt_raw_50hz.npz"
    if not path.exists():
        raise SystemExit(f"benchmark needs HAPT at {path} (set GAITEDGE_DATA_ROOT)")
    with np.load(path) as d:
        imu = d["imu"][:n_samples].astype(np.float64)
        rate_hz = float(d["sample_rate_hz"])
    imu[:, :3] *= STANDARD_GRAVITY_M_S2
    return np.arange(len(imu)) / rate_hz, imu
