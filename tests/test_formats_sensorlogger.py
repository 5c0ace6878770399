"""Sensor Logger exports (iOS, Android, Apple Watch) read as the app wrote them.

Pinned by (1) the real exports in ``shared/data/wild-exports/sensorlogger_*`` and the quirks
their README lists, (2) the vendor's own lines quoted in vendor-formats.md §A1 (the SkiSim CSV
rows, the README's JSON example), (3) every emulated variant of
``firmware_bridge.exports.sensorlogger`` read back against the canonical recording it was
rendered from, and (4) bad input refused in one line naming the file (and line).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import sensorlogger as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import sensorlogger as sl
from gaitedge.recording import Recording, describe_recording, read_recording, write_recording
from tests.conftest import REPO

G = 9.80665
DEMO = REPO / "gaitedge" / "assets" / "demo_hapt.csv"


def _export(path: Path, **options) -> object:
    """The reader's Export (series before the join), for exact values and rules."""
    with Container(path) as c:
        return sl.read(c, ReadOptions(**options))


def _zip(folder: Path, out: Path, *, nested: bool) -> Path:
    """``folder`` zipped as the app shares it: ``2022-09-26_15-32-56.zip``, flat or holding the
    folder."""
    path = out / f"{app.LOCAL_NAME}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"{app.LOCAL_NAME}/{f.name}" if nested else f.name)
    return path


def _refused_whole_and_streamed(path: Path, message: str) -> None:
    """``path`` is refused with ``message`` read whole and streamed block by block."""
    from gaitedge.formats import open_chunks

    with pytest.raises(FormatError, match=message):
        read(path)
    with pytest.raises(FormatError, match=message):
        for _ in open_chunks(path):
            pass


def _sensor(rec: Recording, kind: str) -> dict:
    return next(s for s in rec.source.to_dict()["sensors"] if s["kind"] == kind)


# --- (1) the real exports ------------------------------------------------------------------


@pytest.fixture(scope="module")
def wild(wild_exports: Path) -> Path:
    return wild_exports


@pytest.mark.parametrize("shared", ["folder", "zip"])
def test_android_pixel6_total_acceleration_android_sign(wild, tmp_path, shared):
    folder = wild / "sensorlogger_android-walk-pixel6"
    path = folder if shared == "folder" else _zip(folder, tmp_path, nested=True)
    rec = read(path)
    acc, gyro = _sensor(rec, "acceleration"), _sensor(rec, "rotation rate")
    assert rec.source.format == "sensorlogger"
    assert acc["file"].endswith("TotalAcceleration.csv") and acc["samples"] == 23487
    assert gyro["file"].endswith("Gyroscope.csv") and gyro["samples"] == 23593
    # ~56 Hz although Metadata.csv says sampleRateMs 10 (README): samples per second over the
    # span (the median interval alone gives 56.43).
    assert acc["rate_hz"] == pytest.approx(56.31, abs=0.02)
    assert gyro["rate_hz"] == pytest.approx(56.56, abs=0.02)
    # The first TotalAcceleration row, z,y,x as written, in x,y,z and Android's sign.
    assert rec.timestamp_s[0] == pytest.approx(1713800421.046693, abs=2.5e-7)
    np.testing.assert_allclose(
        rec.imu[0, :3], [-0.3888336718082428, 0.7962117195129395, 9.973882675170898], rtol=1e-12
    )
    # Portrait, upright, walking: y carries gravity, +9.0 (README: TotalAcceleration y ≈ +9.3).
    assert np.median(rec.imu[:, 1]) == pytest.approx(9.02, abs=0.05)
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(10.43, abs=0.05)
    assert rec.source.start_epoch_s == 1713800420.922  # Metadata.csv recording epoch time
    rules = " | ".join(rec.source.rules)
    assert "Metadata.csv platform android" in rules
    assert "acceleration: TotalAcceleration.csv (with gravity)" in rules
    assert (
        "not read (5): Accelerometer.csv, AccelerometerUncalibrated.csv, Annotation.csv (0 bytes), "
        "GyroscopeUncalibrated.csv, Pedometer.csv" in rules
    )


@pytest.mark.parametrize("shared", ["folder", "zip"])
def test_ios_standing_gravity_added_back_and_negated(wild, tmp_path, shared):
    folder = wild / "sensorlogger_ios-standing"
    path = folder if shared == "folder" else _zip(folder, tmp_path, nested=False)
    rec = read(path)
    assert len(rec) == 16035
    assert _sensor(rec, "acceleration")["rate_hz"] == pytest.approx(99.8, abs=0.05)
    # Row 1: Accelerometer z,y,x = -0.1871475424647331,-0.14589564075246453,0.11334916967377066
    # and Gravity -9.54767640773058,-2.2179294397100806,-0.30503488529110323: summed, negated.
    np.testing.assert_allclose(
        rec.imu[0, :3],
        [
            -(0.11334916967377066 - 0.30503488529110323),
            -(-0.14589564075246453 - 2.2179294397100806),
            -(-0.1871475424647331 - 9.54767640773058),
        ],
        rtol=1e-12,
    )
    # Gyroscope: same sign on both platforms (x,y,z from z,y,x).
    np.testing.assert_allclose(
        rec.imu[0, 3:], [-0.03500782698392868, 0.025990258902311325, 0.025978637859225273]
    )
    # Lying roughly flat, screen up: gravity -9.45 on z in the file, +9.06 once read.
    assert np.median(rec.imu[:, 2]) == pytest.approx(9.06, abs=0.05)
    rules = " | ".join(rec.source.rules)
    assert "platform ios, no standardisation column" in rules and "iOS sign" in rules
    assert "not read (1): Annotation.csv (0 bytes)" in rules


@pytest.mark.parametrize("shared", ["zip", "folder"])
def test_ios_uncalibrated_in_g_when_no_gravity(wild, tmp_path, shared):
    path = wild / "sensorlogger_ios-unlabelled-zip-tue" / f"{app.LOCAL_NAME}.zip"
    if shared == "folder":
        with zipfile.ZipFile(path) as z:
            z.extractall(tmp_path / "unzipped")
        path = tmp_path / "unzipped"
    rec = read(path)
    acc = _sensor(rec, "acceleration")
    assert acc["file"].endswith("AccelerometerUncalibrated.csv") and acc["unit"] == "g"
    # One extra leading row (10 ms before the others): outside the gyroscope's span.
    assert acc["samples"] == 15128 and _sensor(rec, "rotation rate")["samples"] == 15127
    assert len(rec) == 15127
    # Row 2 (the first both cover): z,y,x = -0.9654388427734375,-0.29803466796875,0.0562744140625 g.
    np.testing.assert_allclose(
        rec.imu[0, :3], [-0.0562744140625 * G, 0.29803466796875 * G, 0.9654388427734375 * G]
    )
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(9.93, abs=0.05)
    rules = " | ".join(rec.source.rules)
    assert "in g (median |a| 1.01" in rules and "iOS sign" in rules
    assert "Microphone.csv, Microphone.mp4" in rules and "Accelerometer.csv" in rules


def test_ios_falldetector_without_metadata_inferred_ios(wild):
    rec = read(wild / "sensorlogger_ios-falldetector")
    assert len(rec) == 8283
    assert _sensor(rec, "acceleration")["rate_hz"] == pytest.approx(100.0, abs=0.05)
    # Row 1: Accelerometer x -0.227317201898247 + Gravity x -1.0511864115599543, negated.
    assert rec.imu[0, 0] == pytest.approx(0.227317201898247 + 1.0511864115599543, rel=1e-12)
    assert np.median(rec.imu[:, 2]) == pytest.approx(9.29, abs=0.05)
    sign = next(r for r in rec.source.rules if r.startswith("sign:"))
    assert "no Metadata.csv; iOS inferred" in sign and "share 100% of their stamps" in sign
    assert "taken as off (the default)" in sign


@pytest.mark.parametrize("seconds", [100, 1, -1])
@pytest.mark.parametrize("sensor", ["Accelerometer", "Gravity"])
def test_one_glitched_stamp_is_refused_naming_its_line(wild, tmp_path, sensor, seconds):
    """One row of the real falldetector export stamped 100 s (or 1 s) off: read as a clock
    reset, the join kept the 5 s before it of 83 s (exit 0, no rule said so). Refused, whole
    and streamed, naming the file and line, as phyphox and MetaBase files are."""
    folder = tmp_path / "export"
    shutil.copytree(wild / "sensorlogger_ios-falldetector", folder)
    path = folder / f"{sensor}.csv"
    lines = path.read_text().splitlines()
    cells = lines[501].split(",")
    cells[0] = str(int(cells[0]) + seconds * 1_000_000_000)
    lines[501] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    line = 503 if seconds > 0 else 502  # the row whose time is before the one above it
    message = rf"{sensor}\.csv:{line}: time goes back \d+\.\d+ s \(a glitched stamp"
    _refused_whole_and_streamed(folder, message)


@pytest.mark.parametrize("shared", ["file", "folder", "zip"])
def test_watch_wristmotion_g_and_gap(wild, tmp_path, shared):
    folder = wild / "sensorlogger_watch-swim-wristmotion"
    path = {
        "file": folder / "WristMotion.csv",
        "folder": folder,
        "zip": _zip(folder, tmp_path, nested=True) if shared == "zip" else None,
    }[shared]
    rec = read(path)
    assert _sensor(rec, "acceleration")["unit"] == "g"
    assert _sensor(rec, "rotation rate")["rate_hz"] == pytest.approx(99.45, abs=0.05)
    (gap,) = describe_recording(rec)["gaps"]
    assert gap["length_s"] == pytest.approx(12.367, abs=0.001)  # README: "a 12.4 s gap"
    assert len(rec) == 1702
    # Row 1: gravityX -0.18771232664585114 + accelerationX -0.04818853735923767 g, negated.
    assert rec.imu[0, 0] == pytest.approx((0.18771232664585114 + 0.04818853735923767) * G)
    assert rec.imu[0, 2] == pytest.approx((0.851267397403717 + 0.007420897483825684) * G)
    np.testing.assert_allclose(
        rec.imu[0, 3:], [0.262128084897995, 0.5849967002868652, 1.0596885681152344]
    )
    assert "Apple Watch (CoreMotion)" in " | ".join(rec.source.rules)


def test_skisim_second_set_ignored_and_refused_without_gravity(wild):
    folder = wild / "sensorlogger_ios-skisim-2legs"
    with pytest.raises(FormatError) as err:
        read(folder)
    assert str(err.value) == (
        f"{folder}: {folder / 'Accelerometer.csv'} is acceleration without gravity and the "
        "export has no gravity to add back (the model needs acceleration with gravity); "
        "enable Gravity (iOS) or Total Acceleration (Android) in Sensor Logger and record again"
    )
    export = _export(folder)
    assert [s.kind for s in export.series] == [SensorKind.LINEAR_ACC, SensorKind.GYRO]
    assert len(export.series[0].t_s) == 1693  # Accelerometer.csv, not Accelerometer2.csv (1694)
    rules = " | ".join(export.rules)
    assert "not read: Accelerometer2.csv, Gyroscope2.csv: a second set" in rules
    assert "iOS inferred" in rules


def test_time_is_epoch_seconds_within_a_float64_step(wild):
    """``time`` is the app's float64 printed with its shortest digits: read back to within half
    a float64 step of that number (1.2e-7 s), and one step of the printed digits."""
    path = wild / "sensorlogger_android-walk-pixel6" / "TotalAcceleration.csv"
    printed = [line.split(",", 1)[0] for line in path.read_text().splitlines()[1::97]]
    t = _export(path.parent).get(SensorKind.ACC).t_s[::97]
    for got, text in zip(t, printed, strict=True):
        assert abs(Fraction(got) - Fraction(float(text)) / 10**9) <= Fraction(12, 10**8)
        assert abs(Fraction(got) - Fraction(int(text), 10**9)) <= Fraction(25, 10**8)


def test_the_writer_prints_numbers_as_the_app_does(wild):
    """Every field of these rows, as the emulated app would print its value, byte for byte."""
    rows = {  # file: (line, how many value columns are float32 sensor values; the rest float64)
        "sensorlogger_android-walk-pixel6/TotalAcceleration.csv": (2, 3),
        "sensorlogger_ios-standing/Gyroscope.csv": (1373, 3),  # 0.000016058649634942412
        "sensorlogger_ios-standing/Gravity.csv": (2, 0),
        "sensorlogger_watch-swim-wristmotion/WristMotion.csv": (2, 9),  # quaternion ...e-17
    }
    for name, (line_no, n_float32) in rows.items():
        cells = (wild / name).read_text().splitlines()[line_no - 1].split(",")
        assert app.js_number(float(cells[0])) == cells[0]
        assert app.js_number(float(cells[1])) == cells[1]
        for i, cell in enumerate(cells[2:]):
            printed = app._numbers(np.array([float(cell)]), float32=i < n_float32)
            assert printed == [cell], name


# --- (2) the vendor's own lines ------------------------------------------------------------

SKISIM_ACC = """time,seconds_elapsed,z,y,x
1739980914176274000,0.03027392578125,0.5944505785048008,-0.12636814352436923,-0.09561041902597062
1739980914186295800,0.0402958984375,0.03926467341780662,-0.04800298340767622,-0.09685166039187461
1739980914196318000,0.05031787109375,-0.33468262098729606,0.0797376175136771,0.0778436387269292
1739980914206340900,0.0603408203125,-0.32388474811911583,0.11025359654491766,0.10161945018242113
"""
SKISIM_GYRO = """time,seconds_elapsed,z,y,x
1739980914176274000,0.03027392578125,-0.004095002077519894,0.03933865204453468,-0.08440401405096054
1739980914186295800,0.0402958984375,-0.00035805441439151764,0.02524147555232048,-0.042118072509765625
1739980914196318000,0.05031787109375,0.00014673126861453056,-0.015591412782669067,0.027339478954672813
1739980914206340900,0.0603408203125,0.0015169279649853706,-0.03035091608762741,0.059846289455890656
"""
README_JSON = """[
  {
    "sensor": "Accelerometer",
    "time": "1698501144401773000",
    "seconds_elapsed": "0.21677294921875",
    "z": "-0.10382747650146484",
    "y": "-0.0009566396474838257",
    "x": "0.06110857427120209"
  },
  {
    "sensor": "Accelerometer",
    "time": "1698501144411773000",
    "seconds_elapsed": "0.22677294921875",
    "z": "-0.10387134552001953",
    "y": "-0.002205267548561096",
    "x": "0.06393256038427353"
  },
  {
    "sensor": "Location",
    "time": "1698501145514000000",
    "seconds_elapsed": "1.328999755859375",
    "bearingAccuracy": "0",
    "speedAccuracy": "0",
    "verticalAccuracy": "1.773818016052246",
    "horizontalAccuracy": "15.102999687194824",
    "speed": "0",
    "bearing": "0",
    "altitude": "214.1999969482422",
    "longitude": "0.0",
    "latitude": "0.0"
  }
]"""


def test_vendor_skisim_lines_decoded(tmp_path):
    (tmp_path / "Accelerometer.csv").write_text(SKISIM_ACC)
    (tmp_path / "Gyroscope.csv").write_text(SKISIM_GYRO)
    export = _export(tmp_path)
    acc, gyro = export.get(SensorKind.LINEAR_ACC), export.get(SensorKind.GYRO)
    assert abs(Fraction(acc.t_s[0]) - Fraction(1739980914176274, 10**6)) <= Fraction(25, 10**8)
    assert np.diff(acc.t_s) == pytest.approx([0.0100218, 0.0100222, 0.0100229], abs=3e-7)
    # Shared stamps: iOS, so acceleration is negated; z,y,x columns come out x,y,z.
    np.testing.assert_array_equal(
        acc.xyz[0], [0.09561041902597062, 0.12636814352436923, -0.5944505785048008]
    )
    np.testing.assert_array_equal(
        gyro.xyz[3], [0.059846289455890656, -0.03035091608762741, 0.0015169279649853706]
    )
    assert export.start_epoch_s == pytest.approx(1739980914.176274 - 0.03027392578125)


def test_vendor_json_example_decoded(tmp_path):
    path = tmp_path / "2023-10-28_14-52-24.json"
    path.write_text(README_JSON)
    with Container(path) as c:
        assert sl.detect(c)
    export = _export(path)
    (acc,) = export.series
    assert acc.kind is SensorKind.LINEAR_ACC
    np.testing.assert_array_equal(
        acc.xyz, [[0.06110857427120209, -0.0009566396474838257, -0.10382747650146484],
                  [0.06393256038427353, -0.002205267548561096, -0.10387134552001953]]
    )  # fmt: skip
    assert acc.t_s[1] - acc.t_s[0] == pytest.approx(0.01, abs=3e-7)
    assert "not read (1): Location (1 records)" in export.rules
    with pytest.raises(FormatError, match="is acceleration without gravity"):
        read(path)


# --- (3) the emulated app ------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Recording:
    rec = read_recording(DEMO)
    n = int(40 * rec.median_rate_hz)  # 40 s: standing, then walking
    return Recording(rec.timestamp_s[:n], rec.imu[:n])


def _on_canonical(rec: Recording, demo: Recording) -> np.ndarray:
    """The canonical signal at the instants ``rec`` was read at ([N, 6])."""
    t = rec.timestamp_s - app.FIRST_SAMPLE_EPOCH_S + demo.timestamp_s[0]
    return np.stack([np.interp(t, demo.timestamp_s, demo.imu[:, c]) for c in range(6)], axis=1)


# Per variant: acceleration file, rates (acc, gyro), words its rules must hold, and the largest
# acceleration error allowed against the canonical signal at the read instants. Where acc and
# gyro share stamps the error is print precision (float32: 6e-8 relative) plus the stamps' own
# (the app's float64 ms: 5e-7 s times the steepest slope in the walk, ~300 m/s³): 5e-4 m/s².
# Android's acceleration is interpolated from 100 Hz onto the gyroscope's 400 Hz stamps: the
# linear interpolation misses the canonical signal's corners by up to 0.4 m/s².
VARIANT_FACTS = {
    "android-zip": ("TotalAcceleration.csv", (100, 400), "platform android", 0.4),
    "android-folder": ("TotalAcceleration.csv", (100, 400), "platform android", 0.4),
    "ios-zip": ("Gravity.csv", (100, 100), "standardisation false: iOS sign", 5e-4),
    "ios-standardised-folder": ("Gravity.csv", (100, 100), "standardisation true", 5e-4),
    "ios-uncalibrated-zip": ("AccelerometerUncalibrated.csv", (100, 100), "in g (median", 5e-4),
    "ios-json": ("(Gravity)", (100, 100), "iOS inferred", 5e-4),
    "watch-wristmotion": ("(gravityX..Z)", (100, 100), "WristMotion.csv in g", 5e-4),
}


def test_every_variant_has_facts():
    assert set(app.VARIANTS) == set(VARIANT_FACTS)


@pytest.mark.parametrize("variant", list(VARIANT_FACTS))
def test_variant_reads_back_the_canonical_signal(variant, demo, tmp_path):
    acc_file, (acc_hz, gyro_hz), rule, acc_tol = VARIANT_FACTS[variant]
    path = app.VARIANTS[variant](demo, tmp_path)
    rec = read(path)
    assert rec.source.format == "sensorlogger"
    acc, gyro = _sensor(rec, "acceleration"), _sensor(rec, "rotation rate")
    assert acc["file"].endswith(acc_file)
    assert acc["rate_hz"] == pytest.approx(acc_hz, rel=0.01)
    assert gyro["rate_hz"] == pytest.approx(gyro_hz, rel=0.01)
    assert rule in " | ".join(rec.source.rules)
    assert rec.duration_s == pytest.approx(demo.duration_s, abs=0.03)
    # Canonical sign: the demo starts standing with the phone's x up (+9.95 m/s²).
    assert rec.imu[0, 0] == pytest.approx(demo.imu[0, 0], abs=0.05)
    err = np.abs(rec.imu - _on_canonical(rec, demo))
    assert err[:, :3].max() <= acc_tol
    assert np.median(err[:, :3]) <= 1e-5
    assert err[:, 3:].max() <= 5e-4  # rad/s: float32 print and the same stamps' precision


def test_android_total_acceleration_at_its_own_stamps(demo, tmp_path):
    """Before the join: TotalAcceleration.csv on its own clock is the canonical signal."""
    export = _export(app.VARIANTS["android-folder"](demo, tmp_path))
    acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
    t = acc.t_s - app.FIRST_SAMPLE_EPOCH_S + demo.timestamp_s[0]
    ref = np.stack([np.interp(t, demo.timestamp_s, demo.imu[:, c]) for c in range(3)], axis=1)
    assert np.abs(acc.xyz - ref).max() <= 5e-4
    assert len(np.intersect1d(acc.t_s, gyro.t_s)) < 0.1 * len(acc.t_s)  # own clocks
    assert export.start_epoch_s == app.TAP_MS / 1e3


def test_negative_seconds_elapsed_and_ns_ending_in_00(demo, tmp_path):
    folder = app.VARIANTS["android-folder"](demo, tmp_path)
    rows = [line.split(",") for line in (folder / "Gyroscope.csv").read_text().splitlines()[1:]]
    assert float(rows[0][1]) < 0
    assert sum(r[0].endswith("00") for r in rows) > 0.9 * len(rows)
    assert not (folder / "Metadata.csv").read_text().endswith("\n")


def test_watch_device_option_in_a_phone_export(demo, tmp_path):
    with zipfile.ZipFile(app.VARIANTS["ios-zip"](demo, tmp_path)) as z:
        z.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / app.LOCAL_NAME
    shutil.copy(app.VARIANTS["watch-wristmotion"](demo, tmp_path / "watch"), folder)
    phone = read(folder)
    assert "WristMotion.csv (the watch) not read; --device watch reads it" in phone.source.rules
    watch = read(folder, options=ReadOptions(device="watch"))
    assert _sensor(watch, "acceleration")["file"].endswith("(gravityX..Z)")
    assert "the phone's sensor files not read (--device watch)" in watch.source.rules
    np.testing.assert_allclose(watch.imu, _on_canonical(watch, demo), atol=5e-4)
    with pytest.raises(FormatError, match="give --device phone or watch"):
        read(folder, options=ReadOptions(device="left"))


# --- (4) bad input -------------------------------------------------------------------------


@pytest.fixture()
def ios_folder(demo, tmp_path) -> Path:
    return app.VARIANTS["ios-standardised-folder"](demo, tmp_path / "export")


def _edit(path: Path, line_no: int, fn) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line_no - 1] = fn(lines[line_no - 1])
    path.write_text("".join(lines))


def test_text_in_a_number_column(ios_folder):
    _edit(ios_folder / "Gyroscope.csv", 7, lambda line: line.rsplit(",", 1)[0] + ",abc\n")
    with pytest.raises(FormatError, match=r"Gyroscope\.csv:7: column 5 is not a number: 'abc'"):
        read(ios_folder)


def test_text_in_the_time_column(ios_folder):
    _edit(ios_folder / "Gravity.csv", 4, lambda line: "12:00:01" + line[19:])
    with pytest.raises(FormatError, match=r"Gravity\.csv:4: column 1 is not a number"):
        read(ios_folder)


def test_truncated_zip(demo, tmp_path):
    path = app.VARIANTS["ios-zip"](demo, tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match=rf"{path}: a truncated or damaged zip"):
        read(path)


@pytest.mark.parametrize(
    ("only", "says"),
    [
        ("Gyroscope.csv", "no accelerometer in this sensorlogger export; enable Accelerometer"),
        ("Accelerometer.csv", "is acceleration without gravity"),
        ("TotalAcceleration.csv", "has an accelerometer but no gyroscope; the model needs both"),
    ],
)
def test_one_sensor_alone(demo, tmp_path, only, says):
    variant = "android-folder" if only == "TotalAcceleration.csv" else "ios-standardised-folder"
    folder = app.VARIANTS[variant](demo, tmp_path)
    with pytest.raises(FormatError) as err:
        read(folder / only)
    assert str(err.value).startswith(str(folder / only)) and says in str(err.value)


def test_wrong_format_either_way(ios_folder, demo, tmp_path):
    with pytest.raises(FormatError, match="does not look like a gaitedge export"):
        read(ios_folder, format="gaitedge")
    with pytest.raises(FormatError, match="unknown format 'sensor-logger'"):
        read(ios_folder, format="sensor-logger")
    canonical = tmp_path / "canonical.csv"
    write_recording(canonical, demo)
    with pytest.raises(FormatError, match=r"does not look like a sensorlogger export \(Gyroscope"):
        read(canonical, format="sensorlogger")


def test_a_phyphox_file_is_not_sensor_logger(tmp_path):
    (tmp_path / "Accelerometer.csv").write_text(
        '"Time (s)","X (m/s^2)","Y (m/s^2)","Z (m/s^2)"\n0.0034,0.1,0.2,9.8\n'
    )
    with Container(tmp_path) as c:
        assert sl.detect(c) is None


def test_mixed_dialects(ios_folder):
    """A file re-saved by a spreadsheet in a European locale: semicolons, decimal commas."""
    path = ios_folder / "Gyroscope.csv"
    text = path.read_text().replace(",", ";")
    path.write_text(text.replace(".", ","))
    with pytest.raises(FormatError, match=r"Gyroscope\.csv:1: header .*\(mixed dialects"):
        read(ios_folder)


def test_time_going_back_between_files(ios_folder):
    """A Gyroscope.csv from another recording (a day earlier) does not overlap the others."""
    path = ios_folder / "Gyroscope.csv"
    lines = path.read_text().splitlines()
    day_ns = 86_400 * 10**9
    shifted = [f"{int(c[0]) - day_ns},{c[1]}" for c in (x.split(",", 1) for x in lines[1:])]
    path.write_text("\n".join([lines[0], *shifted]) + "\n")
    with pytest.raises(FormatError, match=r"Gyroscope\.csv .* do not overlap in time"):
        read(ios_folder)


def test_time_going_back_within_a_file_strict(ios_folder):
    path = ios_folder / "Accelerometer.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[10], lines[11] = lines[11], lines[10]
    path.write_text("".join(lines))
    assert len(read(ios_folder)) > 3000  # repaired, as the chain would
    with pytest.raises(
        FormatError, match=r"Accelerometer\.csv: sample 11: time .* does not increase"
    ):
        read(ios_folder, options=ReadOptions(strict=True))


def test_two_recordings_in_one_zip(demo, tmp_path):
    a = app.VARIANTS["ios-standardised-folder"](demo, tmp_path / "a")
    path = tmp_path / "both.zip"
    with zipfile.ZipFile(path, "w") as z:
        for f in a.iterdir():
            z.write(f, f"one/{f.name}")
            z.write(f, f"two/{f.name}")
    with pytest.raises(FormatError, match=r"holds several Sensor Logger recordings \(one, two\)"):
        read(path)


def test_json_with_a_value_that_is_not_a_number(tmp_path):
    records = json.loads(README_JSON)
    records[1]["y"] = "n/a"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records))
    with pytest.raises(FormatError, match=r"export\.json: record 2 \(Accelerometer\)"):
        read(path)


def test_json_with_a_byte_that_is_not_utf8(demo, tmp_path):
    """The JSON export with one byte damaged into 0xff: one line naming its line, whole and
    streamed (json.loads' UnicodeDecodeError escaped the reader)."""

    path = app.VARIANTS["ios-json"](demo, tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b'"x"', len(data) // 2)
    data[at + 1] = 0xFF
    path.write_bytes(bytes(data))
    line = data[:at].count(b"\n") + 1
    message = rf"{path.name}:{line}: not UTF-8 text \(byte 0xff\)"
    _refused_whole_and_streamed(path, message)


def test_files_renamed_with_a_prefix(wild, demo, tmp_path):
    """Users put a name before the sensor's (``Back0626WristMotion.csv``, a public swimming
    set of ~300 such files): read by the name it ends with and the app's header; several such
    recordings in one folder are refused, naming them."""
    watch = wild / "sensorlogger_watch-swim-wristmotion"
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(watch / "WristMotion.csv", one / "Back0626WristMotion.csv")
    renamed, original = read(one / "Back0626WristMotion.csv"), read(watch)
    np.testing.assert_array_equal(renamed.imu, original.imu)
    np.testing.assert_array_equal(read(one).imu, original.imu)
    shutil.copy(watch / "WristMotion.csv", one / "Breast0626WristMotion.csv")
    with pytest.raises(FormatError, match=r"several WristMotion files \(Back0626WristMotion"):
        read(one)
    phone = app.VARIANTS["android-folder"](demo, tmp_path / "phone")
    walk = tmp_path / "walk"
    walk.mkdir()
    for f in phone.iterdir():
        shutil.copy(f, walk / (f"walk1{f.name}" if f.name != "Metadata.csv" else f.name))
    np.testing.assert_array_equal(read(walk).imu, read(phone).imu)


def test_a_folder_holding_the_shared_zip_reads_the_zip(wild, tmp_path):
    """The wild export as it was downloaded: a folder holding the app's zip and nothing else a
    format reads; the folder reads as the zip (streamed too), and the recording names the zip.
    Beside something a format reads, the folder is read as it is."""
    from gaitedge.formats import open_chunks

    folder = wild / "sensorlogger_ios-unlabelled-zip-tue"
    shared = folder / "2022-09-26_15-32-56.zip"
    rec, want = read(folder), read(shared)
    np.testing.assert_array_equal(rec.imu, want.imu)
    np.testing.assert_array_equal(rec.timestamp_s, want.timestamp_s)
    assert rec.source.path == str(shared) and len(rec) > 1000
    with open_chunks(folder, format="sensorlogger") as stream:
        streamed = np.concatenate([c.imu for c in stream])
    np.testing.assert_array_equal(streamed, want.imu)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(shared, mixed / shared.name)
    (mixed / "notes.zip").write_bytes(shared.read_bytes())  # two zips: which one is not guessed
    with pytest.raises(FormatError, match="not a format gaitedge knows"):
        read(mixed)


def test_shared_stamps_with_a_raw_gyroscope_are_android(demo, tmp_path):
    """Without Metadata.csv, stamps shared by acceleration and gyroscope say iOS (one CoreMotion
    update), unless the gyroscope's values are a raw sensor's steps, as only Android reports
    them (a public export: every value a multiple of 7.63581e-5 rad/s, gravity +9.8 on y: an
    upright Android phone, which the stamps alone read upside down)."""
    folder = app.VARIANTS["ios-standardised-folder"](demo, tmp_path / "x")
    (folder / "Metadata.csv").unlink()
    ios = read(folder)
    assert any("iOS inferred" in r and "share 100%" in r for r in ios.source.rules)
    gyro = folder / "Gyroscope.csv"
    lines = gyro.read_text().splitlines()
    step = 7.63581e-5
    out = [lines[0]]
    for line in lines[1:]:
        cells = line.split(",")
        cells[2:] = [repr(round(float(c) / step) * step) for c in cells[2:]]
        out.append(",".join(cells))
    gyro.write_text("\n".join(out) + "\n")
    android = read(folder)
    assert any(
        "android inferred" in r and "whole multiples of 7.63581e-05" in r
        for r in android.source.rules
    )
    np.testing.assert_allclose(android.imu[:, :3], -ios.imu[:, :3])  # the sign, nothing else


def test_files_saved_with_a_byte_order_mark(wild, tmp_path):
    """Excel's "CSV UTF-8" starts every file with a BOM: not part of the first name; the same
    samples whole and streamed as without it."""
    from gaitedge.formats import open_chunks

    folder = tmp_path / "bom"
    shutil.copytree(wild / "sensorlogger_android-walk-pixel6", folder)
    for f in folder.glob("*.csv"):
        f.write_bytes(b"\xef\xbb\xbf" + f.read_bytes())
    original = read(wild / "sensorlogger_android-walk-pixel6")
    np.testing.assert_array_equal(read(folder).imu, original.imu)
    streamed = np.concatenate([c.imu for c in open_chunks(folder)])
    np.testing.assert_array_equal(streamed, original.imu)
