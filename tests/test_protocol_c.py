"""The reference C encoder agrees with the Python codec byte for byte."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import PROTOCOL_MINOR, DeviceInfo, ResultFrame, SampleFrame, cobs_encode
from firmware_bridge.golden import (
    VECTORS_PATH,
    ValidVector,
    format_vectors,
    load_vectors,
    valid_vector,
)

C_DIR = Path(__file__).resolve().parents[1] / "firmware_bridge" / "c"
# Firmware builds with strict warnings; so does this test, so the encoder stays warning-free.
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wshadow"]

pytestmark = pytest.mark.skipif(
    shutil.which("gcc") is None, reason="gcc not found: the C encoder cannot be compiled here"
)


@pytest.fixture(scope="module")
def test_vectors_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("c") / "test_vectors"
    sources = [str(C_DIR / "gaitedge_protocol.c"), str(C_DIR / "test_vectors.c")]
    subprocess.run(["gcc", *CFLAGS, *sources, "-o", str(exe)], check=True, timeout=120)
    return exe


def _run(exe: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(exe), *args], input=stdin, capture_output=True, text=True, timeout=60
    )


def _other_minor(vector: object) -> bool:
    decoded = getattr(vector, "decoded", None)
    return isinstance(decoded, DeviceInfo) and decoded.protocol_minor != PROTOCOL_MINOR


def test_c_encoder_matches_the_golden_vectors(test_vectors_bin: Path) -> None:
    vectors = [v for v in load_vectors() if isinstance(v, ValidVector)]
    n_old = sum(map(_other_minor, vectors))
    mounted = [
        v.name
        for v in vectors
        if getattr(v.decoded, "mounting", None) is not None and not _other_minor(v)
    ]
    results = [v.name for v in vectors if isinstance(v.decoded, ResultFrame)]
    # 1.0 and 1.1 device info are skipped: the encoder speaks 1.2 (their bytes stay pinned).
    assert n_old == 10 and len(mounted) == 3 and len(results) == 6
    result = _run(test_vectors_bin, str(VECTORS_PATH))
    assert result.returncode == 0, result.stdout
    assert f"checked {len(vectors) - n_old} vectors, 0 failed, {n_old} skipped" in result.stdout
    # The C encoder writes the declared mounting and the result frames byte for byte.
    assert all(f"ok {name}\n" in result.stdout for name in mounted + results)


def test_c_encoder_matches_python_on_random_messages(
    test_vectors_bin: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(7)
    vectors = []
    for i in range(300):
        n = int(rng.integers(1, 21))
        samples = rng.integers(-32768, 32768, (n, 6))
        samples[rng.random((n, 6)) < 0.2] = 0  # zero bytes exercise COBS
        seq, ts = int(rng.integers(0, 2**16)), int(rng.integers(0, 2**32))
        vectors.append(valid_vector(f"random_{i}", SampleFrame(seq, ts, samples)))
    rotations = [m for m in itertools.product(*[(-3, -2, -1, 1, 2, 3)] * 3) if is_rotation(m)]
    assert len(rotations) == 24
    for i in range(96):
        fields = [int(rng.integers(1, hi)) for hi in (2**32, 2**32, 256, 2**16, 256, 256)]
        mounting = rotations[i % 24] if i < 72 else None
        info = DeviceInfo(*fields, mounting=mounting, outputs=int(rng.choice([0, 1, 3])))
        vectors.append(valid_vector(f"random_info_{i}", info))
    for i in range(100):
        flags = int(rng.integers(0, 16))
        if bool(flags & 2) != bool(flags & 12):
            flags ^= 2  # a fall and its confirmation go together
        activity = int(rng.integers(0, 255)) if flags & 1 or i % 4 else None
        wide = [int(v) for v in rng.integers(0, 2**16, 5)]
        result = ResultFrame(
            int(rng.integers(0, 2**16)), int(rng.integers(0, 2**32)), activity,
            int(rng.integers(0, 256)), flags, *wide,
        )  # fmt: skip
        vectors.append(valid_vector(f"random_result_{i}", result))
    path = tmp_path / "random.txt"
    path.write_text(format_vectors(vectors), encoding="ascii")
    result = _run(test_vectors_bin, str(path))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "checked 496 vectors, 0 failed, 0 skipped" in result.stdout


def is_rotation(mounting: tuple[int, int, int]) -> bool:
    rot = np.zeros((3, 3))
    for row, axis in enumerate(mounting):
        rot[row, abs(axis) - 1] = np.sign(axis)
    return bool(np.isclose(np.linalg.det(rot), 1.0))


@pytest.mark.parametrize(
    ("mounting", "why"), [("-2 -1 3", "mirrored"), ("1 1 3", "axis twice"), ("0 2 3", "partial")]
)
def test_c_encoder_refuses_an_invalid_mounting(
    test_vectors_bin: Path, tmp_path: Path, mounting: str, why: str
) -> None:
    line = next(
        x
        for x in VECTORS_PATH.read_text(encoding="ascii").splitlines()
        if x.startswith("info device_info_1_2_mounting_-y_x_z ")
    )
    assert " 2 -2 1 3 " in line
    path = tmp_path / f"{why}.txt"
    path.write_text(line.replace(" 2 -2 1 3 ", f" 2 {mounting} ") + "\n", encoding="ascii")
    result = _run(test_vectors_bin, str(path))
    assert result.returncode == 1
    assert "FAIL device_info_1_2_mounting_-y_x_z: message could not be encoded" in result.stdout


def test_c_program_reports_a_mismatch(test_vectors_bin: Path, tmp_path: Path) -> None:
    text = VECTORS_PATH.read_text(encoding="ascii").replace(" 0211010101", " 0211010102", 1)
    path = tmp_path / "tampered.txt"
    path.write_text(text, encoding="ascii")
    result = _run(test_vectors_bin, str(path))
    assert result.returncode == 1
    assert "FAIL one_sample_zeros: serial packet" in result.stdout


@settings(max_examples=20, deadline=None)
@given(st.lists(st.binary(max_size=700), min_size=1, max_size=20))
def test_c_cobs_matches_python(test_vectors_bin: Path, inputs: list[bytes]) -> None:
    stdin = "".join((data.hex() or "-") + "\n" for data in inputs)
    result = _run(test_vectors_bin, "--cobs", stdin=stdin)
    assert result.returncode == 0
    assert result.stdout.split() == [cobs_encode(data).hex() for data in inputs]


def test_c_cobs_matches_python_on_long_nonzero_runs(test_vectors_bin: Path) -> None:
    inputs = [bytes([7]) * n + tail for n in (253, 254, 255, 508, 509) for tail in (b"", b"\0")]
    stdin = "".join(data.hex() + "\n" for data in inputs)
    result = _run(test_vectors_bin, "--cobs", stdin=stdin)
    assert result.stdout.split() == [cobs_encode(data).hex() for data in inputs]
