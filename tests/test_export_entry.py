"""The export scripts' bad input, run as users run them (``python -m export.*``): one line on
stderr naming what is wrong, exit 2, no traceback (each was a traceback before)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gaitedge.bundle import SHIPPED_MODEL

REPO = Path(__file__).resolve().parents[1]


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    import torch

    d = tmp_path_factory.mktemp("export_entry")
    junk = d / "junk.pt"
    junk.write_bytes(bytes(range(256)) * 4)  # no pickle, no zip
    other = d / "other.pt"
    torch.save({"weights": [1, 2, 3]}, other)  # a checkpoint, not of a gaitedge model
    return {"dir": d, "junk": junk, "other": other}


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("missing", "No such file or directory"),
        ("junk", "junk.pt: not a checkpoint torch can load (UnpicklingError"),
        ("other", "other.pt: not a gaitedge checkpoint (no state_dict in it)"),
    ],
)
def test_export_onnx_refuses_what_is_no_checkpoint(files, case, says) -> None:
    checkpoint = files.get(case, files["dir"] / "nosuch.pt")
    done = _script("export.onnx", "--checkpoint", str(checkpoint), "--out", str(files["dir"] / "m"))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], done.stderr
    assert not (files["dir"] / "m").exists()


def test_quantize_and_parity_name_the_model_not_there(files) -> None:
    missing = files["dir"] / "nosuch.onnx"
    for args in (
        ["export.quantize", "--onnx", str(missing), "--int8-dynamic", str(files["dir"] / "q")],
        ["export.parity", "--reference", str(SHIPPED_MODEL), "--candidate", str(missing)],
    ):
        done = _script(*args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines() == [f"error: {missing}: no such model file"]


def test_quantize_with_nothing_to_write_says_so(files) -> None:
    # It exited 0 having done nothing.
    done = _script("export.quantize", "--onnx", str(SHIPPED_MODEL))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: nothing to write: give --int8-static, --int8-dynamic or --fp16 PATH"
    )


def test_parity_of_no_windows_is_refused_by_the_option() -> None:
    # --windows 0 was a "zero-size array to reduction operation" traceback.
    done = _script(
        "export.parity", "--reference", str(SHIPPED_MODEL), "--candidate", str(SHIPPED_MODEL),
        "--windows", "0",
    )  # fmt: skip
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .endswith("argument --windows: must be at least 1, not 0")
    )
