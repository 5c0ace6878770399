"""Sensors Data Logger (Android; the RoNIN dataset's logger), pinned by the vendor's own lines
(vendor-formats.md §A4, Example 9: ``gyro.txt`` as the app wrote it) and the app's writer
(``IMUSession.java``, ``FileStreamer.java``), emulated in ``firmware_bridge.exports``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import sensorsdatalogger as app
from gaitedge import formats
from gaitedge.formats import FormatError, open_chunks
from gaitedge.recording import Recording, read_recording
from tests.conftest import REPO

# vendor-formats.md §A4, Example 9 (captured: PyojinKim/Sensors-Data-Logger, gyro.txt), byte for
# byte: the comment line and every row end in a space.
EXAMPLE_9 = (
    "# Created at Mon Aug 12 13:16:15 PDT 2019 in Burnaby Canada \n"
    "4240911748748 -0.000473 -0.003398 -0.002045 \n"
    "4240931324321 -0.000168 -0.003093 -0.002045 \n"
    "4240950901508 -0.001084 -0.003704 -0.002045 \n"
    "4240970477133 -0.000779 -0.003093 -0.002350 \n"
)


@pytest.fixture(scope="module")
def walk() -> Recording:
    """30 s of the demo recording with walking (HAPT experiment 1, 50 Hz)."""
    rec = read_recording(REPO / "gaitedge" / "assets" / "demo_hapt.csv")
    keep = (rec.timestamp_s >= 95.0) & (rec.timestamp_s < 125.0)
    return Recording(timestamp_s=rec.timestamp_s[keep], imu=rec.imu[keep])


def _acce(rows: int, t0_ns: int = 4240911700000, step_ns: int = 19_576_000) -> str:
    """acce.txt rows as the app writes them: a phone lying flat (+9.81 m/s² on z)."""
    return app.COMMENT + "".join(
        f"{t0_ns + i * step_ns} 0.171178 0.269336 9.562031 \n" for i in range(rows)
    )


def test_example_9_reads_as_written(tmp_path):
    """The vendor's gyro.txt beside an acce.txt: rad/s as written, seconds since boot (not a
    date), the sensors joined on the accelerometer's stamps."""
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "gyro.txt").write_text(EXAMPLE_9)
    (folder / "acce.txt").write_text(_acce(4))
    rec = formats.read(folder)
    assert rec.source.format == "sensorsdatalogger"
    assert rec.timestamp_s[0] == pytest.approx(4240.911748748, abs=1e-6)
    np.testing.assert_allclose(rec.imu[0], [0.171178, 0.269336, 9.562031, -0.000473, -0.003398,
                                            -0.002045], atol=1e-6)  # fmt: skip
    assert rec.source.start_epoch_s is None  # no wall clock in the export
    assert any("not Unix time" in r for r in rec.source.rules)


@pytest.mark.parametrize("variant", sorted(app.VARIANTS))
def test_variant_reads_back_as_the_recording(walk, tmp_path, variant):
    """The app's folder (or its zip, as shared): acceleration with gravity and Android's sign to
    the file's 6 decimals on its own stamps; the gyroscope, on a clock of its own, interpolated
    onto them (linear of linear at ~51 Hz on this walk: 3-9 % RMS, held to 15 %; a flipped sign
    or swapped axes are 100-200 %); at the app's ~51 Hz; streamed as read whole; the other files
    not read."""
    path = app.VARIANTS[variant](walk, tmp_path)
    rec = formats.read(path)
    ref = _reference(walk, rec)
    assert np.abs(rec.imu[:, :3] - ref[:, :3]).max() < 2e-6
    rms = np.sqrt(((rec.imu[:, 3:] - ref[:, 3:]) ** 2).mean(axis=0) / (ref[:, 3:] ** 2).mean(0))
    assert (rms < 0.15).all(), rms
    assert rec.median_rate_hz == pytest.approx(51.07, rel=1e-3)
    with open_chunks(path, chunk_samples=300) as stream:
        np.testing.assert_array_equal(np.concatenate([c.imu for c in stream]), rec.imu)
    rules = " ".join(rec.source.rules)
    assert "not read: acce_bias.txt, acce_uncalib.txt, game_rv.txt, gravity.txt" in rules


def _reference(walk: Recording, rec: Recording) -> np.ndarray:
    """The recording at the read-back's instants (boot-clock seconds back to its own)."""
    t = rec.timestamp_s - app.BOOT_NS * 1e-9 + walk.timestamp_s[0]
    return np.stack([np.interp(t, walk.timestamp_s, walk.imu[:, c]) for c in range(6)], axis=1)


def test_linear_plus_gravity_without_acce(walk, tmp_path):
    """Without acce.txt the fused split, added back: the acceleration with gravity to the two
    files' 6 decimals."""
    path = app.VARIANTS["folder"](walk, tmp_path)
    (path / "acce.txt").unlink()
    rec = formats.read(path)
    assert "acce.txt absent: linacce.txt + gravity.txt" in rec.source.rules
    assert np.abs(rec.imu[:, :3] - _reference(walk, rec)[:, :3]).max() < 3e-6


def test_bad_rows_name_the_files_own_line(tmp_path):
    """A row that is not numbers names its line in the file (the comment is line 1), with or
    without the comment line; time going back, a missing gyroscope: one line each."""
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "gyro.txt").write_text(EXAMPLE_9)
    bad = _acce(6).splitlines(keepends=True)
    bad[3] = "4240970477133 0.17 abc 9.56 \n"
    (folder / "acce.txt").write_text("".join(bad))
    with pytest.raises(FormatError, match=r"acce\.txt:4: column 3 is not a number: 'abc'"):
        formats.read(folder)
    (folder / "acce.txt").write_text("".join(bad[1:]))  # the comment line removed
    with pytest.raises(FormatError, match=r"acce\.txt:3: column 3 is not a number: 'abc'"):
        formats.read(folder)
    back = _acce(6).splitlines(keepends=True)
    back[5] = (
        back[5]
        .replace("4240911700000", "4240000000000")
        .replace(str(4240911700000 + 4 * 19_576_000), "4240000000000")
    )
    (folder / "acce.txt").write_text("".join(back))
    with pytest.raises(FormatError, match=r"acce\.txt:6: time goes back"):
        formats.read(folder)
    (folder / "acce.txt").write_text(_acce(6))
    (folder / "gyro.txt").unlink()
    with pytest.raises(FormatError, match=r"gyro\.txt beside acce\.txt"):
        formats.read(folder)


def test_two_recordings_need_a_device(walk, tmp_path):
    first = app.VARIANTS["folder"](walk, tmp_path / "a")
    shutil.copytree(first, tmp_path / "a" / "second")
    with pytest.raises(FormatError, match="2 recordings"):
        formats.read(tmp_path / "a")
    opts = formats.ReadOptions(device="second")
    assert len(formats.read(tmp_path / "a", options=opts)) == len(formats.read(first))


def test_not_taken_for_other_space_separated_text(tmp_path):
    (tmp_path / "acce.txt").write_text("t x y z\n0.01 0.1 0.2 9.8\n")
    with pytest.raises(FormatError, match="not a format gaitedge knows"):
        formats.read(tmp_path)


def test_the_emulated_files_are_the_apps(walk, tmp_path):
    path = app.VARIANTS["folder"](walk, tmp_path)
    lines = (path / "gyro.txt").read_text().splitlines(keepends=True)
    assert lines[0] == "# Created at Mon Aug 12 13:16:15 PDT 2019 in Burnaby Canada \n"
    assert all(line.endswith(" \n") and len(line.split()) == 4 for line in lines[1:])
    assert all(len(c.split(".")[1]) == 6 for c in lines[1].split()[1:])
    assert len((path / "gyro_uncalib.txt").read_text().splitlines()[1].split()) == 7
    assert Path(path / "rv.txt").read_text().splitlines()[1].count(" ") == 5
