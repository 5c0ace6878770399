"""Shared by the benchmarks: real data, read by ``gaitedge.datasets`` (the one reader of each
dataset; HAPT from ``$GAITEDGE_DATA_ROOT`` or ``../shared/data``), and the process's memory."""

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


def rss_mb() -> float:
    """This process's resident memory in MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


def held_out_recordings(
    root: Path, hapt_subjects: int | None = None, sisfall_every: int = 1
) -> tuple[list, list]:
    """The held-out test subjects' HAPT experiments and SisFall trials (a subset for quick
    runs: the first ``hapt_subjects`` HAPT subjects, every ``sisfall_every``-th trial)."""
    from gaitedge import datasets as ds

    hapt_test = ds.dataset_split("hapt", root).test
    keep = hapt_test if hapt_subjects is None else hapt_test[:hapt_subjects]
    hapt = [r for r in ds.hapt_recordings(root, hapt_test) if r.subject in keep]
    sisfall = list(ds.sisfall_recordings(root, [f"sisfall:{s}" for s in ds.SISFALL_TEST_SUBJECTS]))
    return hapt, sisfall[::sisfall_every]
