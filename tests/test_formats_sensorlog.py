"""SensorLog (iOS) wide CSVs: the wild unit-less export, the documented column names, the
emulated app (with and without units) read back against the canonical recording, and bad input
refused in one line."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import sensorlog as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import sensorlog as reader
from gaitedge.recording import Recording
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G
from tests.test_formats_metabase import assert_matches_canonical, canonical_excerpt

WILD = "sensorlog_ios-steady-unitless"


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


def _drop_columns(src: Path, dst: Path, drop) -> Path:
    """A copy of a SensorLog CSV without the columns ``drop(name)`` selects, as if those
    sensors had not been enabled."""
    with src.open(newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, h in enumerate(rows[0]) if not drop(h)]
    with dst.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([[r[i] for i in keep] for r in rows])
    return dst


# -- the wild export -------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["file", "folder", "zip"])
def test_wild_unitless_export_reads(wild_exports, tmp_path, given):
    path = {
        "file": wild_exports / WILD / "25.csv",
        "folder": wild_exports / WILD,
        "zip": Path(shutil.make_archive(str(tmp_path / "s"), "zip", root_dir=wild_exports / WILD)),
    }[given]
    rec = read(path)
    src = rec.source
    assert src.format == "sensorlog"
    acc, gyro = src.sensors
    # README: no units in the names (the documented G and rad/s), 99.5 Hz, loggingTime is epoch
    # seconds as a number; each sensor on its own sinceReboot clock.
    assert (acc.unit, acc.samples, round(acc.rate_hz, 1)) == ("G", 3065, 99.5)
    assert (gyro.unit, gyro.samples) == ("rad/s", 3065)
    assert src.start_epoch_s == pytest.approx(1616158295.962107)
    assert "SensorLog export without units in the column names" in src.rules
    assert rec.timestamp_s[0] == pytest.approx(13422.179543375)  # the accelerometer's clock
    assert len(rec) == 3064  # the gyro's first stamp is 5 ms earlier, its last 5 ms earlier too
    # At rest: |a| = 1.0015 G; CoreMotion's +0.95 G on y becomes -9.33 m/s² (Android's sign).
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(1.0015 * G, abs=0.01)
    np.testing.assert_allclose(
        np.median(rec.imu[:, :3], axis=0), [-0.1291, -9.3348, 3.0521], atol=0.01
    )
    # The raw gyroscope's bias at rest, sign unchanged.
    np.testing.assert_allclose(
        np.median(rec.imu[:, 3:], axis=0), [0.0141, 0.0186, 0.0065], atol=1e-3
    )


def test_wild_device_motion_path_agrees_with_the_raw_sensors(wild_exports, tmp_path):
    # Without the raw accelerometer and gyroscope, CoreMotion's user acceleration + gravity and
    # its bias-corrected rotation rate are read instead: the same 1 g, the same direction.
    path = _drop_columns(
        wild_exports / WILD / "25.csv",
        tmp_path / "motion.csv",
        lambda h: h.startswith(("accelerometer", "gyro")),
    )
    rec = read(path)
    assert "acceleration = " in " ".join(rec.source.rules)  # joined with gravity
    assert any("motionRotationRate*" in r for r in rec.source.rules)
    np.testing.assert_allclose(
        np.median(rec.imu[:, :3], axis=0), [-0.1291, -9.3348, 3.0521], atol=0.05
    )
    assert np.abs(np.median(rec.imu[:, 3:], axis=0)).max() < 2e-3  # bias removed


# -- the documented names and the wild lines --------------------------------------------------


def test_first_wild_row_to_its_values(wild_exports, tmp_path):
    lines = (wild_exports / WILD / "25.csv").read_text().splitlines()[:4]
    (tmp_path / "log.csv").write_text("\n".join(lines))
    with Container(tmp_path / "log.csv") as c:
        assert reader.detect(c) == "SensorLog header (loggingTime, ...) in log.csv"
        export = reader.read(c, ReadOptions())
    acc = export.get(SensorKind.ACC)
    gyro = export.get(SensorKind.GYRO)
    # Row 1 verbatim: accelerometerAcceleration 0.001617431640625, 0.9509429931640625,
    # -0.2769622802734375 G at 13422.179543375 s; gyroRotationX 0.07636747509241104 rad/s.
    assert acc.t_s[0] == 13422.179543375
    np.testing.assert_allclose(
        acc.xyz[0], -np.array([0.001617431640625, 0.9509429931640625, -0.2769622802734375]) * G
    )
    assert gyro.t_s[0] == 13422.174535375
    assert gyro.xyz[0, 0] == 0.07636747509241104


DOCUMENTED = (
    "loggingTime(txt),loggingSample(N),identifierForVendor(txt),"
    "accelerometerTimestamp_sinceReboot(s),accelerometerAccelerationX(G),"
    "accelerometerAccelerationY(G),accelerometerAccelerationZ(G),"
    "motionTimestamp_sinceReboot(s),motionYaw(rad),motionRotationRateX(rad/s),"
    "motionRotationRateY(rad/s),motionRotationRateZ(rad/s),motionAttitudeReferenceFrame(txt),"
    "gyroTimestamp_sinceReboot(s),gyroRotationX(rad/s),gyroRotationY(rad/s),gyroRotationZ(rad/s)"
)


def test_documented_names_with_units_and_text_columns(tmp_path):
    # The names SensorLog writes (vendor-formats.md §A5), the text columns among them, the
    # loggingTime string of its docs; lying flat, screen up: -1 G on z (CoreMotion).
    rows = [
        f"2017-06-23 15:42:42.{144 + 10 * i:03d} +0200,{i + 1},ABCD-1234,{100 + i / 100:.2f},"
        f"0.0,0.0,-1.0,{100 + i / 100:.2f},0.1,0.0,0.0,0.0,XArbitraryCorrectedZVertical,"
        f"{100 + i / 100:.2f},0.5,-0.25,0.125"
        for i in range(5)
    ]
    (tmp_path / "log.csv").write_text("\n".join([DOCUMENTED, *rows]) + "\n")
    with Container(tmp_path / "log.csv") as c:
        export = reader.read(c, ReadOptions())
    assert export.start_epoch_s == pytest.approx(1498225362.144)
    acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
    np.testing.assert_allclose(acc.xyz, [[0, 0, G]] * 5)  # +9.81 on z, Android's
    np.testing.assert_allclose(gyro.xyz, [[0.5, -0.25, 0.125]] * 5)  # gyroRotation, not motion
    np.testing.assert_allclose(acc.t_s, 100 + np.arange(5) / 100)
    assert acc.unit == "G" and gyro.unit == "rad/s"


# -- the emulated app ------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(app.VARIANTS))
def test_emulated_variant_reads_back_as_canonical(canonical, tmp_path, variant):
    back = read(app.VARIANTS[variant](canonical, tmp_path))
    assert back.source.format == "sensorlog"
    # Full double precision; the sensors' own stamps are the sample instants: only the join's
    # interpolation of the gyroscope (5 ms off the accelerometer) remains.
    assert_matches_canonical(back, canonical, app.UPTIME_S, acc_m_s2=1e-6, gyro_rad_s=0.002)


def test_emulated_device_motion_only_reads_back(canonical, tmp_path):
    path = _drop_columns(
        app.render_units(canonical, tmp_path),
        tmp_path / "motion.csv",
        lambda h: h.startswith(("accelerometer", "gyro")),
    )
    back = read(path)
    # User acceleration + gravity add back exactly (gravity_split), on the motion clock.
    assert_matches_canonical(back, canonical, app.UPTIME_S, acc_m_s2=1e-6, gyro_rad_s=1e-6)


def test_emulated_files_keep_their_dialect(canonical, tmp_path):
    units = app.render_units(canonical, tmp_path).read_text().splitlines()
    assert units[0].startswith("loggingTime(txt),loggingSample(N),identifierForVendor(txt),")
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+0100,1,", units[1])
    unitless = app.render_unitless(canonical, tmp_path).read_text().splitlines()
    assert unitless[0].split(",") == app.UNITLESS_HEADER and len(app.UNITLESS_HEADER) == 37
    assert re.match(r"^\d{10}\.\d{6},1,", unitless[1])


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture
def wild_copy(wild_exports, tmp_path) -> Path:
    path = tmp_path / "25.csv"
    shutil.copy(wild_exports / WILD / "25.csv", path)
    return path


def _edit_line(path: Path, line_no: int, edit) -> None:
    lines = path.read_text().split("\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_text("\n".join(lines))


def _set_cell(column: int, value: str):
    def edit(line: str) -> str:
        cells = line.split(",")
        cells[column - 1] = value
        return ",".join(cells)

    return edit


def test_text_in_a_number_column_names_file_line_column(wild_copy):
    _edit_line(wild_copy, 5, _set_cell(5, "abc"))  # accelerometerAccelerationY
    with pytest.raises(
        FormatError, match=rf"^{re.escape(str(wild_copy))}:5: column 5 is not a number: 'abc'$"
    ):
        read(wild_copy)


def test_text_in_a_column_not_read_is_fine(wild_copy):
    _edit_line(wild_copy, 5, _set_cell(12, "n/a"))  # magnetometerX: not read
    assert len(read(wild_copy)) == 3064


def test_repeated_ticks_and_empty_cells_are_left_out_and_counted(wild_copy):
    # A tick logged twice (SensorLog faster than the sensor) is one sample; a tick without a
    # gyroscope value has no gyroscope sample. Both said in the rules, nothing else lost.
    lines = wild_copy.read_text().split("\n")
    lines.insert(10, lines[9])
    wild_copy.write_text("\n".join(lines))
    _edit_line(wild_copy, 20, _set_cell(8, ""))  # gyroRotationX
    rec = read(wild_copy)
    rules = rec.source.rules
    assert (
        "accelerometerAcceleration*: 1 ticks repeat the sample before (logged faster than "
        "the sensor): left out" in rules
    )
    assert "gyroRotation*: 1 rows without a value left out" in rules
    assert [s.samples for s in rec.source.sensors] == [3065, 3064]


def test_time_going_back_is_refused_with_its_line(wild_copy):
    _edit_line(wild_copy, 50, _set_cell(3, "13000.0"))
    with pytest.raises(
        FormatError,
        match=rf"^{re.escape(str(wild_copy))}:50: "
        r"accelerometerAcceleration\* time goes back 422\.\d+ s",
    ):
        read(wild_copy)


def test_accelerometer_only_is_refused_with_what_to_enable(wild_copy, tmp_path):
    path = _drop_columns(
        wild_copy, tmp_path / "acc.csv", lambda h: h.startswith(("gyro", "motionRotation"))
    )
    with pytest.raises(FormatError) as err:
        read(path)
    assert str(err.value) == (
        f"{path}: this sensorlog export has an accelerometer but no gyroscope; the model needs "
        "both (6 axes) and is never fed zeros; in SensorLog, enable the gyroscope (or Device "
        "Motion) and log again"
    )


def test_user_acceleration_without_gravity_is_refused(wild_copy, tmp_path):
    path = _drop_columns(
        wild_copy, tmp_path / "lin.csv", lambda h: h.startswith(("accelerometer", "motionGravity"))
    )
    with pytest.raises(FormatError, match=r"acceleration without gravity .*in SensorLog, log Dev"):
        read(path)


def test_two_logs_in_one_folder_are_refused(wild_copy):
    shutil.copy(wild_copy, wild_copy.parent / "26.csv")
    with pytest.raises(FormatError, match=r"2 SensorLog files \(25\.csv, 26\.csv\); give one"):
        read(wild_copy.parent)


def test_wrong_format_and_truncated_zip(wild_copy, tmp_path):
    with pytest.raises(FormatError, match=r"does not look like a metabase export"):
        read(wild_copy, format="metabase")
    shared = Path(shutil.make_archive(str(tmp_path / "shared"), "zip", root_dir=wild_copy.parent))
    shared.write_bytes(shared.read_bytes()[:4000])
    with pytest.raises(FormatError, match=rf"^{re.escape(str(shared))}: "):
        read(shared)
