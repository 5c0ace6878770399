"""A recording in the wrong unit is refused with one line on stderr, nothing before it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
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


@pytest.fixture(scope="module")
def gyro_in_deg_s(tmp_path_factory) -> Path:
    """The shipped real HAPT demo with its rotation rate in deg/s, under rad/s headers."""
    rec = read_recording(DEMO_RECORDING)
    imu = rec.imu.copy()
    imu[:, 3:] *= 180.0 / np.pi
    path = tmp_path_factory.mktemp("units") / "gyro_deg_s.csv"
    write_recording(path, Recording(rec.timestamp_s, imu))
    return path


def test_replay_of_deg_s_declared_as_rad_s_is_one_error_line(gyro_in_deg_s):
    """Rotation rate past any gyroscope's full scale (4000 deg/s) cannot be rad/s: refused in
    one line naming the first such moment (it replayed with 52 alerts for the demo's 21)."""
    gaitedge = str(Path(sys.executable).with_name("gaitedge"))
    done = subprocess.run(
        [gaitedge, "replay", str(gyro_in_deg_s), "--fast"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "rad/s at t=" in lines[0] and "look like deg/s" in lines[0], lines[0]


def test_the_gyroscope_check_passes_real_data_and_stray_values():
    """The check passes the real demo in rad/s, and two stray values past the full scale (a
    corrupted cell; and one past what the chain drops as corrupted): evidence needs three."""
    from gaitedge.units import check_gyro_scale

    rec = read_recording(DEMO_RECORDING)
    check_gyro_scale(rec.timestamp_s, rec.imu[:, 3:])
    stray = rec.imu[:, 3:].copy()
    stray[100, 0], stray[200, 1], stray[300, 2] = 500.0, -300.0, 1e300
    check_gyro_scale(rec.timestamp_s, stray)
    stray[400, 0] = 80.0
    with pytest.raises(ValueError, match=r"rotation rate 500 rad/s at t=2\.000 s"):
        check_gyro_scale(rec.timestamp_s, stray)


def test_a_streamed_file_counts_its_evidence_across_chunks(tmp_path):
    """A deg/s file whose fast moments fall one per streamed chunk (a quiet recording: three
    turns past 70 deg/s in an hour) is refused as it is when read whole; it replayed in
    silence, each chunk holding fewer than the three samples of evidence."""
    from gaitedge.formats import FormatError, open_chunks, read

    demo = read_recording(DEMO_RECORDING)
    copies = 23  # ~69 min at 50 Hz: several streamed chunks
    span = demo.timestamp_s[-1] - demo.timestamp_s[0] + 0.02
    t = np.concatenate([demo.timestamp_s + k * span for k in range(copies)])
    imu = np.tile(demo.imu, (copies, 1))
    rows = [10_000, 100_000, 190_000]
    for r in rows:
        imu[r, 3] = 80.0  # 80 deg/s read as rad/s: past any gyroscope's 69.8 rad/s
    path = tmp_path / "quiet_deg_s.csv"
    write_recording(path, Recording(t, imu))

    with pytest.raises(FormatError, match=r"rotation rate 80 rad/s at t=200\.0"):
        read(path)
    chunks_before = 0
    refused = pytest.raises(FormatError, match=r"rotation rate 80 rad/s at t=200\.0")
    with refused, open_chunks(path) as stream:
        for chunk in stream:
            chunks_before += 1
            assert chunk.timestamp_s[0] <= t[rows[-1]]
    assert chunks_before >= 2  # the evidence came from separate chunks

    gaitedge = str(Path(sys.executable).with_name("gaitedge"))
    done = subprocess.run(
        [gaitedge, "replay", str(path), "--fast"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert "look like deg/s" in done.stderr and "Traceback" not in done.stderr, done.stderr
