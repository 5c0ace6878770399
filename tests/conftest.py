"""Shared fixtures: where the real data lives, and small real signals from it.

Real data is read from ``$GAITEDGE_DATA_ROOT`` (default ``../shared/data`` next to the repo);
tests that need it skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gaitedge.units import STANDARD_GRAVITY_M_S2

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_root() -> Path:
    return Path(os.environ.get("GAITEDGE_DATA_ROOT", REPO.parent / "shared" / "data"))


def _dataset(root: Path, name: str, marker: str) -> Path:
    path = root / name
    if not (path / marker).exists():
        pytest.skip(f"real data {name} not found at {path} (set GAITEDGE_DATA_ROOT)")
    return path


@pytest.fixture(scope="session")
def hapt_dir(data_root: Path) -> Path:
    return _dataset(data_root, "hapt", "hapt_raw_50hz.npz")


@pytest.fixture(scope="session")
def sisfall_dir(data_root: Path) -> Path:
    return _dataset(data_root, "sisfall", "sisfall_50hz_counts_int16.npz")


@pytest.fixture(scope="session")
def hapt_experiment(hapt_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HAPT experiment 1 (subject 1): timestamps (s), [N, 6] in m/s² and rad/s, labels."""
    with np.load(hapt_dir / "hapt_raw_50hz.npz") as d:
        rows = d["exp_id"] == 1
        imu = d["imu"][rows].astype(np.float64)
        label = d["label"][rows]
        rate_hz = float(d["sample_rate_hz"])
    imu[:, :3] *= STANDARD_GRAVITY_M_S2
    return np.arange(len(imu)) / rate_hz, imu, label


@pytest.fixture(scope="session")
def train_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One window cache for every training test, so the chain runs once per dataset config."""
    return tmp_path_factory.mktemp("train_window_cache")
