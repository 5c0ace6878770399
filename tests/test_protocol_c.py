"""The reference C encoder agrees with the Python codec byte for byte."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import DeviceInfo, SampleFrame, cobs_encode
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


def test_c_encoder_matches_the_golden_vectors(test_vectors_bin: Path) -> None:
    n_valid = sum(isinstance(v, ValidVector) for v in load_vectors())
    result = _run(test_vectors_bin, str(VECTORS_PATH))
    assert result.returncode == 0, result.stdout
    assert f"checked {n_valid} vectors, 0 failed" in result.stdout


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
    for i in range(50):
        fields = [int(rng.integers(1, hi)) for hi in (2**32, 2**32, 256, 2**16, 256, 256)]
        vectors.append(valid_vector(f"random_info_{i}", DeviceInfo(*fields)))
    path = tmp_path / "random.txt"
    path.write_text(format_vectors(vectors), encoding="ascii")
    result = _run(test_vectors_bin, str(path))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "checked 350 vectors, 0 failed" in result.stdout


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
