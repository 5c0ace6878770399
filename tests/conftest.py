"""Shared fixtures: where the real data lives, and small real signals from it.

Real data is read from ``$GAITEDGE_DATA_ROOT`` (default ``../shared/data`` next to the repo)
through ``gaitedge.datasets``, the readers the runtime and training use. Tests that need data
or a system tool that is absent skip with the reason; with ``CI=true`` they fail instead, so a
CI run that lost its data or its MQTT broker cannot pass by skipping.
"""

from __future__ import annotations

import os

# The suite runs on two workers (pytest-xdist, one per core): each keeps to one thread, so that a
# training test's thread pools never crowd out a real-time test beside it (a browser, a BLE
# link). Set before numpy, torch or polars start their pools.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _pool in ("OMP", "MKL", "OPENBLAS"):
        os.environ.setdefault(f"{_pool}_NUM_THREADS", "1")
    os.environ.setdefault("POLARS_MAX_THREADS", "1")

from pathlib import Path
from typing import NoReturn

import numpy as np
import pytest

from gaitedge import datasets as ds

REPO = Path(__file__).resolve().parents[1]

# The C network's float first convolution (export/mcu) sums in the order of ONNX Runtime's
# kernels on the CPUs it was written on, which have AVX-512: bit-exact there (0 LSB on every
# window, BENCHMARKS). On a CPU without AVX-512 (an AMD EPYC with AVX2 only, 2026-12-06) ORT's
# AVX2 kernels round some of those sums differently in the last bit, a quantised activation
# moves by a step now and then, and a borderline window can decide otherwise: measured there
# 1 / 7 LSB at most on the demo / held-out windows, argmax 887 of 888 and 1024 of 1024, one
# activity change in 101 moved by a window on a MobiFall walk. The MCU tests ask for bit
# equality where ORT runs the kernels the C code mirrors, and for that closeness elsewhere.
ORT_AVX512 = "avx512f" in Path("/proc/cpuinfo").read_text().split()

# `pytester`: a pytest session inside the test process (the CI=true check in test_datasets.py),
# rather than a new interpreter importing pytest and the project again.
pytest_plugins = ["pytester"]


def missing(reason: str) -> NoReturn:
    """Skip for want of ``reason`` locally; fail under CI (``CI=true``), where it must exist."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def data_root() -> Path:
    return Path(os.environ.get("GAITEDGE_DATA_ROOT", REPO.parent / "shared" / "data"))


def _dataset(root: Path, name: str, marker: str) -> Path:
    path = root / name
    if not (path / marker).exists():
        missing(f"real data {name} not found at {path} (set GAITEDGE_DATA_ROOT)")
    return path


@pytest.fixture(scope="session")
def hapt_dir(data_root: Path) -> Path:
    return _dataset(data_root, "hapt", "hapt_raw_50hz.npz")


@pytest.fixture(scope="session")
def sisfall_dir(data_root: Path) -> Path:
    return _dataset(data_root, "sisfall", "sisfall_50hz_counts_int16.npz")


@pytest.fixture(scope="session")
def mobifall_dir(data_root: Path) -> Path:
    return _dataset(data_root, "mobifall", "mobifall_100hz_counts_int16.npz")


@pytest.fixture(scope="session")
def hapt_experiment(hapt_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HAPT experiment 1 (subject 1): timestamps (s), [N, 6] in m/s² and rad/s, labels."""
    rec = next(r for r in ds.hapt_recordings(hapt_dir.parent, ["hapt:1"]) if r.group == 1)
    return rec.timestamp_s, rec.imu, rec.sample_label


@pytest.fixture(scope="session")
def train_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One window cache for every training test, so the chain runs once per dataset config."""
    return tmp_path_factory.mktemp("train_window_cache")


@pytest.fixture(autouse=True)
def _private_mount_file(tmp_path, monkeypatch):
    """`listen` stores mounting estimates in the user's cache; tests keep theirs private."""
    monkeypatch.setenv("GAITEDGE_MOUNT_FILE", str(tmp_path / "mounting.json"))
    # Saved CSV layouts (`gaitedge formats --save-layout`) likewise.
    monkeypatch.setenv("GAITEDGE_LAYOUTS", str(tmp_path / "layouts.json"))


@pytest.fixture(scope="session")
def wild_exports(data_root: Path) -> Path:
    """Real app and wearable exports, byte for byte (``shared/data/wild-exports``)."""
    return _dataset(data_root, "wild-exports", "manifest.csv")


def damage_zip_member(
    zip_path: Path, member: str, out: Path, compression: int | None = None, part: str = "data"
) -> Path:
    """A copy of a real zip (rewritten with ``compression`` when given) with one member damaged
    as storage damages it: 16 bytes in the middle of its stored data flipped (``part="data"``:
    a deflate stream that breaks, or a CRC that does not match), or its local header's magic
    (``"header"``). The central directory stays intact: the zip opens, and the damage shows
    only as that member is opened or inflated."""
    import zipfile

    if compression is None:
        out.write_bytes(zip_path.read_bytes())
    else:
        with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w", compression) as dst:
            for info in src.infolist():
                dst.writestr(info.filename, src.read(info.filename))
    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(out) as z:
        info = z.getinfo(member)
    at = info.header_offset
    if part == "header":
        data[at : at + 4] = b"JUNK"
    else:
        name_len = int.from_bytes(data[at + 26 : at + 28], "little")
        extra_len = int.from_bytes(data[at + 28 : at + 30], "little")
        middle = at + 30 + name_len + extra_len + info.compress_size // 2
        for i in range(middle, middle + 16):
            data[i] ^= 0x5A
    out.write_bytes(bytes(data))
    return out
