"""Shimmer3 Consensys CSVs: the wild fixture (Example 14's file), its dialect variants, the
emulated export read back against the canonical recording, and bad input refused in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import shimmer as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import shimmer as reader
from gaitedge.recording import Recording
from tests.test_formats_metabase import assert_matches_canonical, canonical_excerpt

WILD = "shimmer_consensys-fixture"


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


@pytest.fixture
def fixture_text(wild_exports) -> str:
    return (wild_exports / WILD / "read_test_data.csv").read_bytes().decode("utf-8")


# -- the wild export (vendor-formats.md Example 14 is its first lines) -------------------------


@pytest.mark.parametrize("given", ["file", "folder", "zip"])
def test_wild_fixture_reads(wild_exports, tmp_path, given):
    path = {
        "file": wild_exports / WILD / "read_test_data.csv",
        "folder": wild_exports / WILD,
        "zip": Path(shutil.make_archive(str(tmp_path / "s"), "zip", root_dir=wild_exports / WILD)),
    }[given]
    rec = read(path)
    src = rec.source
    assert src.format == "shimmer"
    acc, gyro = src.sensors
    assert (acc.unit, acc.samples) == ("m/(s^2)", 90)
    assert (gyro.unit, gyro.samples) == ("deg/s", 90)
    assert acc.where.endswith("(Shimmer_40AC_Accel_LN)")  # low noise preferred, within ±2 g
    assert src.start_epoch_s == pytest.approx(1595933810.034)
    # README: 4 duplicate stamps in 90 rows, spread by the join; 1.7 s only.
    assert "4 rows repeat the previous stamp; the join spreads them" in src.rules
    assert len(rec) == 90 and (np.diff(rec.timestamp_s) > 0).all()
    assert rec.duration_s == pytest.approx(1.74, abs=0.005)
    # Roughly at rest: 1 g (10.11 m/s², the default calibration), mostly on +y: the Shimmer3
    # reads +1 g up like Android, no sign change.
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(10.11, abs=0.01)
    np.testing.assert_allclose(
        np.median(rec.imu[:, :3], axis=0), [-1.4239, 10.0, 0.5326], atol=1e-3
    )
    np.testing.assert_allclose(
        np.median(rec.imu[:, 3:], axis=0), np.radians([0.5191, 1.8702, -0.1985]), atol=1e-3
    )


def test_example_14_rows_to_their_values(fixture_text, tmp_path):
    # The first two data rows of Example 14, to the digit.
    head = "\r\n".join(fixture_text.split("\r\n")[:5]) + "\r\n"
    (tmp_path / "x.csv").write_bytes(head.encode())
    with Container(tmp_path / "x.csv") as c:
        assert reader.detect(c) == (
            "Consensys CSV (a sep= line, ..._Accel/Gyro_*_CAL columns) in x.csv"
        )
        export = reader.read(c, ReadOptions())
    acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
    np.testing.assert_array_equal(acc.t_s, [1595933810.034, 1595933810.057])
    np.testing.assert_array_equal(
        acc.xyz,
        [
            [-1.434782608695652, 10.0, 0.5543478260869565],
            [-1.4021739130434783, 10.0, 0.5543478260869565],
        ],
    )
    np.testing.assert_allclose(
        gyro.xyz,
        np.radians(
            [
                [0.13740458015267176, 1.8778625954198473, -0.183206106870229],
                [0.183206106870229, 1.3282442748091603, -0.41221374045801523],
            ]
        ),
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    ("sep_line", "delimiter"),
    [('"sep=;"', ";"), ("sep=,", ","), ("sep=\t", "\t"), (None, ";")],
    ids=["quoted-semicolon", "comma", "tab", "no-sep-line"],
)
def test_dialects_and_device_prefixes(fixture_text, tmp_path, sep_line, delimiter):
    # Consensys variants: the Excel hint with another delimiter or none, a trial prefix
    # (S_SeatHead_) instead of the device's, LF instead of CRLF.
    lines = fixture_text.split("\r\n")[1:]
    lines = [line.replace(";", delimiter).replace("Shimmer_40AC_", "S_SeatHead_") for line in lines]
    text = "\n".join(([sep_line] if sep_line else []) + lines)
    (tmp_path / "s.csv").write_text(text)
    rec = read(tmp_path / "s.csv")
    assert rec.source.format == "shimmer" and len(rec) == 90
    assert f"Consensys CSV, delimiter {delimiter!r}, device S_SeatHead" in rec.source.rules
    assert np.median(rec.imu[:, 1]) == pytest.approx(10.0)


def test_wide_range_when_low_noise_saturates(fixture_text, tmp_path):
    # A jolt past the low-noise accelerometer's ±2 g: the whole file is read from Accel_WR.
    lines = fixture_text.split("\r\n")
    cells = lines[10].split(";")
    cells[2] = "24.66"  # Accel_LN_Y at its rail
    lines[10] = ";".join(cells)
    (tmp_path / "s.csv").write_text("\r\n".join(lines))
    rec = read(tmp_path / "s.csv")
    assert rec.source.sensors[0].where.endswith("(Shimmer_40AC_Accel_WR)")
    assert any("reaches its ±2 g range in 1 samples" in r for r in rec.source.rules)
    assert np.median(rec.imu[:, 1]) == pytest.approx(8.4345, abs=1e-3)  # WR's y


# -- the emulated export ---------------------------------------------------------------------


def test_emulated_consensys_reads_back_as_canonical(canonical, tmp_path):
    path = app.render_consensys(canonical, tmp_path)
    raw = path.read_bytes()
    assert raw.startswith(b'"sep=;"\r\nShimmer_40AC_Timestamp_Unix_CAL;') and raw.endswith(b";\r\n")
    assert re.match(rb"^1\.5959338\d+E12;", raw.split(b"\r\n")[3])
    back = read(path)
    assert back.source.format == "shimmer"
    # Full precision, but stamps in whole ms at 51.2 Hz: up to 0.5 ms off the sample (0.007
    # m/s² median on this walk). Pairs sharing a stamp are spread back evenly by the join.
    assert_matches_canonical(back, canonical, app.START_EPOCH_S, acc_m_s2=0.02, gyro_rad_s=0.005)


def test_java_double_prints_like_consensys():
    assert app.java_double(1.595933810034e12) == "1.595933810034E12"
    assert app.java_double(10.0) == "10.0"
    assert app.java_double(-0.183206106870229) == "-0.183206106870229"
    assert app.java_double(1e-4) == "1.0E-4"


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture
def fixture_copy(fixture_text, tmp_path) -> Path:
    path = tmp_path / "read_test_data.csv"
    path.write_bytes(fixture_text.encode())
    return path


def _set_cell(path: Path, line_no: int, column: int, value: str) -> None:
    lines = path.read_bytes().decode().split("\r\n")
    cells = lines[line_no - 1].split(";")
    cells[column - 1] = value
    lines[line_no - 1] = ";".join(cells)
    path.write_bytes("\r\n".join(lines).encode())


def test_text_in_a_number_column_names_file_line_column(fixture_copy):
    _set_cell(fixture_copy, 9, 14, "1,5")  # Gyro_Y_CAL with a decimal comma
    with pytest.raises(
        FormatError, match=rf"^{re.escape(str(fixture_copy))}:9: column 14 is not a number: '1,5'$"
    ):
        read(fixture_copy)


def test_no_gyroscope_is_refused_with_what_to_enable(fixture_copy):
    text = fixture_copy.read_bytes().decode().replace("_Gyro_", "_Gyr0_")
    fixture_copy.write_bytes(text.encode())
    with pytest.raises(FormatError) as err:
        read(fixture_copy)
    assert str(err.value) == (
        f"{fixture_copy}: this shimmer export has an accelerometer but no gyroscope; the model "
        "needs both (6 axes) and is never fed zeros; in Consensys, enable the Gyroscope on the "
        "Shimmer3 and export the calibrated (CAL) channels"
    )


def test_time_going_back_a_little_is_repaired_a_lot_is_refused(fixture_copy):
    # 280 ms back is jitter to the chain's repair (tied to the newest stamp) ...
    _set_cell(fixture_copy, 30, 1, "1.595933810300E12")
    rec = read(fixture_copy)
    assert len(rec) == 90 and (np.diff(rec.timestamp_s) > 0).all()
    # ... a minute back is not one recording.
    _set_cell(fixture_copy, 30, 1, "1.595933750300E12")
    with pytest.raises(
        FormatError, match=rf"^{re.escape(str(fixture_copy))}:30: time goes back 60\.2\d\d s"
    ):
        read(fixture_copy)


def test_two_devices_in_one_file_need_device(fixture_copy):
    lines = fixture_copy.read_bytes().decode().split("\r\n")
    lines[1] += lines[1].replace("Shimmer_40AC_", "Shimmer_8D77_")
    lines[2:] = [line + line if line else line for line in lines[2:]]
    fixture_copy.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(FormatError, match=r"2 Shimmer devices in one file \(Shimmer_40AC, Shim"):
        read(fixture_copy)
    rec = read(fixture_copy, options=ReadOptions(device="8d77"))
    assert "Consensys CSV, delimiter ';', device Shimmer_8D77" in rec.source.rules


def test_wrong_format_and_truncated_zip(fixture_copy, tmp_path):
    with pytest.raises(FormatError, match=r"does not look like a edgeimpulse export"):
        read(fixture_copy, format="edgeimpulse")
    shared = Path(shutil.make_archive(str(tmp_path / "z"), "zip", root_dir=fixture_copy.parent))
    shared.write_bytes(shared.read_bytes()[:3000])
    with pytest.raises(FormatError, match=rf"^{re.escape(str(shared))}: "):
        read(shared)


# ShimmerCapture (the desktop app before Consensys): four header rows, as a public recording
# writes them (mxochicale/publications, 2016/PerDis/data/p04/ShimmerData131513042016.csv).
CAPTURE_HEAD = [
    ",".join(["Shimmer"] * 20),
    "Timestamp,Timestamp,Wide Range Accelerometer X,Wide Range Accelerometer X,"
    "Wide Range Accelerometer Y,Wide Range Accelerometer Y,Wide Range Accelerometer Z,"
    "Wide Range Accelerometer Z,Gyroscope X,Gyroscope X,Gyroscope Y,Gyroscope Y,Gyroscope Z,"
    "Gyroscope Z,Magnetometer X,Magnetometer X,Magnetometer Y,Magnetometer Y,Magnetometer Z,"
    "Magnetometer Z",
    ",".join(["RAW", "CAL"] * 10),
    "no units,mSecs,no units,m/(sec^2),no units,m/(sec^2),no units,m/(sec^2),no units,deg/sec,"
    "no units,deg/sec,no units,deg/sec,no units,local,no units,local,no units,local",
]
CAPTURE_ROW = (
    "3937694,7734.375,-3712,2.2759043532,928,0.5689760883,-15744,9.6529736358,-12,2.0731707317,"
    "-34,0.7317073171,8,-0.487804878,3,-0.0130434783,-57,-0.247826087,139,-0.6780487805"
)


def test_shimmercapture_csv_reads_its_cal_columns(canonical, tmp_path):
    """The CAL columns by their channel names, ms of the device clock, m/(sec^2), deg/sec; the
    RAW columns and the magnetometer never read. The vendor's row reads to its own values."""
    n = len(canonical)
    t_ms = 7754.375 + (canonical.timestamp_s - canonical.timestamp_s[0]) * 1e3
    gyro_dps = np.degrees(canonical.imu[:, 3:])
    rows = [CAPTURE_ROW] + [
        ",".join(
            [str(3937694 + 640 * (i + 1)), repr(float(t_ms[i]))]
            + [v for a in range(3) for v in ("-1", repr(float(canonical.imu[i, a])))]
            + [v for a in range(3) for v in ("7", repr(float(gyro_dps[i, a])))]
            + ["1", "0.1", "2", "0.2", "3", "0.3"]
        )
        for i in range(n)
    ]
    path = tmp_path / "ShimmerData.csv"
    path.write_text("\r\n".join(CAPTURE_HEAD + rows) + "\r\n")
    rec = read(path)
    assert rec.source.format == "shimmer"
    assert rec.source.rules[0].startswith("ShimmerCapture CSV")
    assert rec.source.sensors[0].where.endswith("(Shimmer_Accel_WR)")
    np.testing.assert_allclose(rec.imu[0, :3], [2.2759043532, 0.5689760883, 9.6529736358])
    np.testing.assert_allclose(
        np.degrees(rec.imu[0, 3:]), [2.0731707317, 0.7317073171, -0.487804878]
    )
    np.testing.assert_allclose(rec.timestamp_s[0], 7.734375)
    np.testing.assert_allclose(rec.imu[1:], canonical.imu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rec.timestamp_s[1:], t_ms / 1e3, rtol=1e-12)
    from gaitedge.formats import open_chunks, table

    with pytest.MonkeyPatch.context() as mp:  # streamed in blocks of 4 KiB: the same samples
        mp.setattr(table, "BLOCK_BYTES", 4096)
        stream = open_chunks(path)
        chunks = list(stream)
    assert stream.streamed and len(chunks) >= 5
    np.testing.assert_array_equal(np.concatenate([c.imu for c in chunks]), rec.imu)
    np.testing.assert_array_equal(np.concatenate([c.timestamp_s for c in chunks]), rec.timestamp_s)
    lines = path.read_bytes().decode().split("\r\n")
    lines[9] = lines[9].replace(",", ",x", 3)
    path.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(FormatError, match=r"ShimmerData\.csv:10: column \d+ is not a number"):
        read(path)
    with pytest.raises(FormatError, match=r"ShimmerData\.csv:10: column \d+ is not a number"):
        list(open_chunks(path))
