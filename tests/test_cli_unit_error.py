"""A recording in the wrong unit is refused with one line on stderr, nothing before it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gaitedge.demo import DEMO_RECORDING
from gaitedge.recording import Recording, read_recording, write_recording

STANDARD_GRAVITY = 9.80665


@pytest.fixture(scope="module")
def recording_in_g(tmp_path_factory) -> Path:
    """60 s of the shipped real HAPT demo with acceleration in g, under m/s² headers."""
    rec = read_recording(DEMO_RECORDING)
    keep = rec.timestamp_s < rec.timestamp_s[0] + 60.0
    imu = rec.imu[keep].copy()
    imu[:, :3] /= STANDARD_GRAVITY
    path = tmp_path_factory.mktemp("units") / "in_g.csv"
    write_recording(path, Recording(rec.timestamp_s[keep], imu))
    return path


@pytest.mark.parametrize("extra", [[], ["--mount", "none"]], ids=["auto-mount", "mount-none"])
def test_replay_of_g_declared_as_m_s2_is_one_error_line(recording_in_g, extra):
    gaitedge = str(Path(sys.executable).with_name("gaitedge"))
    done = subprocess.run(
        [gaitedge, "replay", str(recording_in_g), "--fast", *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: in_g.csv: median |acceleration| is 1.0")
    assert "look like g" in lines[0] and "Traceback" not in done.stderr
