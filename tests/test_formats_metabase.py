"""MbientLab MetaBase CSVs: the wild exports, the vendor's own lines, the emulated app's three
dialects read back against the canonical recording, and bad input refused in one line."""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import metabase as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import metabase as reader
from gaitedge.recording import Recording, read_recording
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G
from tests.conftest import REPO

ANDROID = "metabase_android-barbell-rest-standing"
IOS_ACC_ONLY = "metabase_ios-gait-lowback-acconly"
STEM = "A-rest-standing_MetaWear_2019-01-18T18.25.39.382_C42732BE255C"


def canonical_excerpt() -> Recording:
    """60 s of the shipped HAPT demo (getting up, walking, stairs: gravity on every axis and
    the fastest movement in it), from t = 0."""
    rec = read_recording(REPO / "gaitedge" / "assets" / "demo_hapt.csv")
    keep = slice(5000, 8000)
    return Recording(timestamp_s=rec.timestamp_s[keep] - rec.timestamp_s[5000], imu=rec.imu[keep])


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


def assert_matches_canonical(
    back: Recording, rec: Recording, t0_s: float, *, acc_m_s2: float, gyro_rad_s: float
) -> None:
    """``back`` (read from an emulated export whose clock starts at ``t0_s``) against ``rec`` at
    the same instants (linear interpolation). Per axis: the median |error| and the mean error
    within the tolerance (print precision plus resampling: the app's own rates interpolate the
    50 Hz signal twice, which moves single samples of a jerky signal, not the median or the
    mean), and a correlation above 0.99. A wrong sign, unit, axis order or gravity misses the
    mean by metres per second squared."""
    t = back.timestamp_s - t0_s
    assert t[0] >= rec.timestamp_s[0] - 1e-6 and t[-1] <= rec.timestamp_s[-1] + 1e-6
    assert back.duration_s > 0.95 * rec.duration_s
    ref = np.stack([np.interp(t, rec.timestamp_s, rec.imu[:, c]) for c in range(6)], axis=1)
    err = back.imu - ref
    tol = np.array([acc_m_s2] * 3 + [gyro_rad_s] * 3)
    assert (np.median(np.abs(err), axis=0) <= tol).all(), np.median(np.abs(err), axis=0)
    assert (np.abs(err.mean(axis=0)) <= tol).all(), err.mean(axis=0)
    corr = [np.corrcoef(back.imu[:, c], ref[:, c])[0, 1] for c in range(6)]
    assert min(corr) > 0.99, corr


def _zip_of(folder: Path, out: Path) -> Path:
    """The folder's files at the top of a zip, as a phone shares them."""
    return Path(shutil.make_archive(str(out), "zip", root_dir=folder))


# -- the wild exports ------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_wild_android_barbell_reads_as_metabase_wrote_it(wild_exports, tmp_path, as_zip):
    path = wild_exports / ANDROID
    if as_zip:
        path = _zip_of(path, tmp_path / "shared")
    rec = read(path)
    src = rec.source
    assert src.format == "metabase"
    acc, gyro = src.sensors
    # Quirks in the README: acc 12.5 Hz (below 20 Hz: read as is), gyro 25 Hz in deg/s, both
    # rates and the firmware in the names, the gyro starting 330 ms before the acc.
    assert (acc.unit, acc.samples, round(acc.rate_hz, 3)) == ("g", 498, 12.5)
    assert (gyro.unit, gyro.samples, round(gyro.rate_hz, 3)) == ("deg/s", 1002, 25.0)
    assert src.start_epoch_s == pytest.approx(1547832339.578)
    assert any("file name: 12.500 Hz, firmware 1.4.4" in r for r in src.rules)
    # inspect said replay finds gaps: it interpolates the acc onto the gyro's 25 Hz stamps
    # (and a warning says so, which replay prints: it reported activity in silence)
    assert (
        "acceleration at 12.5 Hz, below 20 Hz: interpolated onto the other sensor's stamps, a "
        "rate the model's figures were not measured at" in src.rules
    )
    # The gyro's stamps are the timeline; those before the acc starts (330 ms) and after it
    # ends are left out, not extrapolated: 1002 - 9.
    assert len(rec) == 993
    assert rec.timestamp_s[0] == pytest.approx(1547832339.918)
    # Resting between sets, the sensor on the wrist with the arm hanging: about 1 g, most of it
    # on -y (+1 g points up, so the y axis points down the arm).
    norm = np.linalg.norm(rec.imu[:, :3], axis=1)
    assert np.median(norm) == pytest.approx(10.06, abs=0.05)
    assert np.median(rec.imu[:, 1]) == pytest.approx(-0.8915 * G, abs=0.1)
    assert np.abs(np.median(rec.imu[:, 3:], axis=0)).max() < 0.05  # rad/s at rest


def test_replay_says_a_sensor_is_slower_than_the_model_s_figures(wild_exports):
    """The real 12.5 Hz accelerometer interpolated onto the 25 Hz gyroscope's stamps: replay
    reported activity in silence (the chain saw 25 Hz; only inspect's rule spoke, wrongly)."""
    import subprocess
    import sys

    gaitedge = str(Path(sys.executable).with_name("gaitedge"))
    done = subprocess.run(
        [gaitedge, "replay", str(wild_exports / ANDROID), "--fast"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    slow = [ln for ln in done.stderr.splitlines() if "below 20 Hz" in ln]
    assert len(slow) == 1 and "acceleration at 12.5 Hz" in slow[0], done.stderr


def test_wild_ios_accelerometer_only_is_refused_in_one_line(wild_exports):
    path = wild_exports / IOS_ACC_ONLY / "Accelerometer.csv"
    with pytest.raises(FormatError) as err:
        read(path)
    assert str(err.value) == (
        f"{path}: this metabase export has an accelerometer but no gyroscope; the model needs "
        "both (6 axes) and is never fed zeros; in MetaBase, enable the Gyroscope next to the "
        "Accelerometer and export both CSVs"
    )


def test_wild_ios_accelerometer_itself_is_read(wild_exports):
    # What the refusal is about is read right: epoc ms, dotted local time skipped, 100 Hz, g.
    with Container(wild_exports / IOS_ACC_ONLY / "Accelerometer.csv") as c:
        assert reader.detect(c) == "MetaBase iOS/macOS header in Accelerometer.csv"
        export = reader.read(c, ReadOptions())
    (acc,) = export.series
    assert acc.kind is SensorKind.ACC and acc.unit == "g" and len(acc.t_s) == 4578
    assert 1 / np.median(np.diff(acc.t_s)) == pytest.approx(100.0, abs=0.1)
    assert export.start_epoch_s == pytest.approx(1659731173.153)
    # First row, verbatim: -0.061,0.991,0.036 g. On the lower back, standing: y up, +1 g.
    np.testing.assert_allclose(acc.xyz[0], np.array([-0.061, 0.991, 0.036]) * G)


# -- the vendor's own lines (vendor-formats.md §B1) -------------------------------------------

EXAMPLE_10 = """epoc (ms),timestamp (-0800),elapsed (s),x-axis (g),y-axis (g),z-axis (g)
1515983969561,2018-01-14T18.39.29.561,0.000,-0.013,-0.062,0.994
1515983969561,2018-01-14T18.39.29.561,0.000,-0.013,-0.062,1.003
1515983969561,2018-01-14T18.39.29.561,0.000,-0.014,-0.063,1.000
1515983969801,2018-01-14T18.39.29.801,0.240,-0.014,-0.063,1.000
"""
# SYNTHETIC in vendor-formats.md (built from DataHandler.java's format strings); the wild
# Android set confirms the header shape and the colon times.
ANDROID_LINES = """epoch (ms),time (-13:00),elapsed (s),x-axis (g),y-axis (g),z-axis (g)
1659731173153,2022-08-05T15:26:13.153,0.000,-0.061,0.991,0.036
1659731173163,2022-08-05T15:26:13.163,0.010,-0.063,0.998,0.039
1659731173173,2022-08-05T15:26:13.173,0.020,-0.063,0.998,0.040
1659731173184,2022-08-05T15:26:13.184,0.031,-0.063,0.999,0.041
"""
EXAMPLE_11 = """Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z
1639715268.244,2021-12-16T20.27.48.244,0.000,-0.0450,0.0048,1.0206
1639715268.245,2021-12-16T20.27.48.245,0.001,-0.0455,0.0063,1.0309
1639715268.246,2021-12-16T20.27.48.246,0.002,-0.0468,0.0046,1.0305
1639715268.247,2021-12-16T20.27.48.247,0.003,-0.0440,0.0046,1.0290"""


def _gyro_like(acc_text: str) -> str:
    """A gyroscope file on the same stamps, in the same dialect, 1 deg/s on x."""
    lines = acc_text.strip().splitlines()
    header = lines[0].replace("(g)", "(deg/s)")
    rows = [",".join([*line.split(",")[:3], "1.000", "0.000", "0.000"]) for line in lines[1:]]
    return "\n".join([header, *rows])


@pytest.mark.parametrize(
    ("text", "acc_name", "dialect", "t_s"),
    [
        (
            EXAMPLE_10,
            "Accelerometer.csv",
            "MetaBase iOS/macOS",
            [1515983969.561] * 3 + [1515983969.801],
        ),
        (
            ANDROID_LINES,
            "x_C42732BE255C_Accelerometer_100.000Hz_1.4.4.csv",
            "MetaBase Android",
            [1659731173.153, 1659731173.163, 1659731173.173, 1659731173.184],
        ),
        (
            EXAMPLE_11,
            "Accelerometer Dec 16, 2021 at 8.27 PM.csv",
            "MetaBase 5",
            [1639715268.244, 1639715268.245, 1639715268.246, 1639715268.247],
        ),
    ],
    ids=["ios-example10", "android", "metabase5-example11"],
)
def test_vendor_lines_parse_to_their_values(tmp_path, text, acc_name, dialect, t_s):
    (tmp_path / acc_name).write_text(text)
    with Container(tmp_path) as c:
        assert reader.detect(c) == f"{dialect} header in {acc_name}"
        (acc,) = reader.read(c, ReadOptions()).series
    values = np.array([[float(v) for v in line.split(",")[3:]] for line in text.split("\n")[1:5]])
    np.testing.assert_allclose(acc.t_s, t_s, rtol=0, atol=1e-6)
    np.testing.assert_allclose(acc.xyz, values * G, rtol=0, atol=1e-12)
    assert acc.unit == "g"


def test_example_10_packed_ties_through_the_join(tmp_path):
    # Three rows share the first stamp (one packed notification). With no earlier stamp the
    # repair spreads them back over the stream's interval, (next stamp - stamp) / 3 = 80 ms
    # (``TimestampRepair``), the last keeping the stamp. The fourth row comes 240 ms later, a
    # stamp both sensors share: it is kept, not taken for a hole.
    (tmp_path / "Accelerometer.csv").write_text(EXAMPLE_10)
    (tmp_path / "Gyroscope.csv").write_text(_gyro_like(EXAMPLE_10))
    rec = read(tmp_path)
    np.testing.assert_allclose(
        rec.timestamp_s - 1515983969.561, [-0.16, -0.08, 0.0, 0.24], atol=1e-6
    )
    np.testing.assert_allclose(rec.imu[:, 2] / G, [0.994, 1.003, 1.000, 1.000])
    np.testing.assert_allclose(rec.imu[:, 3], np.radians(1.0))
    rules = rec.source.rules
    assert any("2 rows share the previous row's stamp" in r for r in rules)
    assert not any("hole" in r for r in rules)


# -- the emulated app ------------------------------------------------------------------------

# Print precision: iOS and Android write 3 decimals of g (±0.0049 m/s²), MetaBase 5 four.
TOLERANCE = {"ios": (0.01, 0.002), "android": (0.01, 0.002), "metabase5": (0.002, 0.002)}


@pytest.mark.parametrize("variant", sorted(app.VARIANTS))
@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_emulated_variant_reads_back_as_canonical(canonical, tmp_path, variant, as_zip):
    path = app.VARIANTS[variant](canonical, tmp_path)
    if as_zip:
        path = _zip_of(path, tmp_path / "shared")
    back = read(path)
    assert back.source.format == "metabase"
    acc_tol, gyro_tol = TOLERANCE[variant]
    assert_matches_canonical(
        back, canonical, app.START_EPOCH_S, acc_m_s2=acc_tol, gyro_rad_s=gyro_tol
    )


def test_emulated_ios_rows_are_packed_and_unterminated(canonical, tmp_path):
    folder = app.render_ios(canonical, tmp_path)
    data = (folder / "Accelerometer.csv").read_bytes()
    assert not data.endswith(b"\n")
    rows = data.decode().splitlines()
    assert rows[0] == "epoc (ms),timestamp (-0500),elapsed (s),x-axis (g),y-axis (g),z-axis (g)"
    stamps = [r.split(",")[0] for r in rows[1:7]]
    assert stamps[0] == stamps[1] == stamps[2] != stamps[3] == stamps[4] == stamps[5]


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture
def android_copy(wild_exports, tmp_path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(wild_exports / ANDROID, folder)
    return folder


def _edit_line(path: Path, line_no: int, edit) -> None:
    lines = path.read_text().split("\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_text("\n".join(lines))


def test_text_in_a_number_column_names_file_line_column(android_copy):
    gyro = android_copy / f"{STEM}_Gyroscope_25.000Hz_1.4.4.csv"
    _edit_line(gyro, 7, lambda s: s.rsplit(",", 1)[0] + ",n/a")
    with pytest.raises(
        FormatError, match=rf"^{re.escape(str(gyro))}:7: column 6 is not a number: 'n/a'$"
    ):
        read(android_copy)


def test_time_going_back_is_refused_with_its_line(android_copy):
    acc = android_copy / f"{STEM}_Accelerometer_12.500Hz_1.4.4.csv"
    _edit_line(acc, 100, lambda s: str(int(s.split(",")[0]) - 10_000) + s[13:])
    with pytest.raises(FormatError, match=rf"^{re.escape(str(acc))}:100: time goes back 9\.920 s"):
        read(android_copy)


def test_only_one_sensor_is_refused(android_copy):
    (android_copy / f"{STEM}_Accelerometer_12.500Hz_1.4.4.csv").unlink()
    with pytest.raises(FormatError, match=r"no accelerometer in this metabase export"):
        read(android_copy)


def test_mixed_dialects_are_refused(android_copy, tmp_path):
    acc = android_copy / f"{STEM}_Accelerometer_12.500Hz_1.4.4.csv"
    _edit_line(
        acc, 1, lambda s: s.replace("epoch (ms),time (01:00)", "epoc (ms),timestamp (+0100)")
    )
    with pytest.raises(FormatError, match=r"mixed MetaBase dialects .*MetaBase iOS/macOS.*Android"):
        read(android_copy)


def test_two_devices_need_device(android_copy):
    for f in list(android_copy.iterdir()):
        shutil.copy(f, android_copy / f.name.replace("C42732BE255C", "D5F1A2B3C4E6"))
    with pytest.raises(FormatError, match=r"2 devices: C42732BE255C, D5F1A2B3C4E6; give --device"):
        read(android_copy)
    rec = read(android_copy, options=ReadOptions(device="d5f1a2b3c4e6"))
    assert len(rec) == 993 and "device D5F1A2B3C4E6" in rec.source.rules[1]
    with pytest.raises(FormatError, match=r"--device 'FFFF' matches none of: C42732BE255C"):
        read(android_copy, options=ReadOptions(device="FFFF"))


def test_two_recordings_of_one_board_are_named_by_their_files(android_copy):
    """A folder of several sessions of one board (MetaBase names each by its session): listed
    by name, not as one MAC address twice, and picked by a part of it."""
    for f in list(android_copy.iterdir()):
        shutil.copy(f, android_copy / f.name.replace(STEM.split("_")[0], "A-rest-sitting", 1))
    with pytest.raises(FormatError) as refused:
        read(android_copy)
    said = str(refused.value)
    assert "2 recordings of one device (C42732BE255C)" in said and "A-rest-sitting" in said
    rec = read(android_copy, options=ReadOptions(device="A-rest-sitting"))
    assert len(rec) == 993


def test_truncated_zip_is_refused(android_copy, tmp_path):
    shared = _zip_of(android_copy, tmp_path / "shared")
    data = shared.read_bytes()
    shared.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=rf"^{re.escape(str(shared))}: "):
        read(shared)


def test_wrong_format_is_refused(android_copy):
    with pytest.raises(FormatError, match=r"does not look like a shimmer export"):
        read(android_copy, format="shimmer")
    with pytest.raises(FormatError, match=r"unknown format 'other'"):
        read(android_copy, format="other")
    assert read(android_copy, format="metabase").source.format == "metabase"


def test_zip_member_errors_name_the_member(android_copy, tmp_path):
    gyro = f"{STEM}_Gyroscope_25.000Hz_1.4.4.csv"
    _edit_line(android_copy / gyro, 3, lambda s: s.replace(",", ";", 3))
    shared = _zip_of(android_copy, tmp_path / "shared")
    assert zipfile.is_zipfile(shared)
    with pytest.raises(FormatError, match=rf"^{re.escape(f'{shared}:{gyro}')}:3: "):
        read(shared)


@pytest.mark.parametrize(
    "kept",
    [("Elapsed (s)",), ()],
    ids=["epoch-elapsed", "epoch-only"],
)
def test_metabase5_date_columns_as_chosen(canonical, tmp_path, kept):
    """MetaBase 5 writes the SDK's table: Epoch, the date columns chosen (local time and
    elapsed, or fewer: MetaWear-Swift-Combine-SDK's MWDataTable tests show ``Epoch,X,Y,Z`` and
    ``Epoch,Elapsed (s),X,Y,Z``), then X, Y, Z. Every choice reads the same samples."""
    full = app.VARIANTS["metabase5"](canonical, tmp_path / "full")
    short = tmp_path / "short"
    short.mkdir()
    for f in full.iterdir():
        rows = [line.split(",") for line in f.read_text().splitlines()]
        keep = [i for i, h in enumerate(rows[0]) if i == 0 or h in kept or h in "XYZ"]
        lines = [",".join(r[i] for i in keep) for r in rows]
        (short / f.name).write_text("\n".join(lines) + "\n")
    assert (
        (short / next(full.iterdir()).name)
        .read_text()
        .startswith("Epoch," + "".join(f"{k}," for k in kept) + "X,Y,Z\n")
    )
    whole, cut = read(full), read(short)
    assert "MetaBase 5" in " | ".join(cut.source.rules)
    np.testing.assert_array_equal(cut.timestamp_s, whole.timestamp_s)
    np.testing.assert_array_equal(cut.imu, whole.imu)


@pytest.mark.parametrize("damage", ["empty", "header"])
def test_an_accelerometer_file_it_cannot_read_is_named(wild_exports, tmp_path, damage):
    """The real Android export with its accelerometer CSV emptied, or its header changed (upper
    case): 'no accelerometer in this metabase export', though the file is there. Named now,
    with what is wrong with it."""
    folder = tmp_path / "export"
    shutil.copytree(wild_exports / ANDROID, folder)
    (acc,) = folder.glob("*_Accelerometer_*.csv")
    text = acc.read_text()
    acc.write_text(
        "" if damage == "empty" else text.split("\n", 1)[0].upper() + "\n" + text.split("\n", 1)[1]
    )
    why = "is empty" if damage == "empty" else "has the header 'EPOCH (MS),"
    with pytest.raises(FormatError, match=re.escape(f"{acc.name}: {why}")):
        read(folder)
