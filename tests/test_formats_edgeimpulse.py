"""Edge Impulse CSV: the vendor's documented example, the emulated sketch's file read back
against the canonical recording, and bad input refused in one line. (No wild export: the
wild-exports set has none.)"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import edgeimpulse as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import edgeimpulse as reader
from gaitedge.recording import Recording
from tests.test_formats_metabase import assert_matches_canonical, canonical_excerpt

# edgeimpulse/example-data-collection-csv's README (vendor-formats.md Example 15), verbatim.
EXAMPLE_15 = """timestamp,accX,accY,accZ
0,4.220828473773600,1.8800472920291100,-16.89228981323240
16,4.471770735278730,2.0017025177553300,-17.887080018505500
32,4.31928972478658,2.4953566802978500,-18.926163539013300
48,4.648792312787470,2.958335718591510,-18.5336641043514
"""


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


def test_example_15_parses_to_its_values(tmp_path):
    (tmp_path / "sample.csv").write_text(EXAMPLE_15)
    with Container(tmp_path / "sample.csv") as c:
        assert reader.detect(c) == "Edge Impulse header (timestamp, accX, accY, accZ) in sample.csv"
        export = reader.read(c, ReadOptions())
    (acc,) = export.series
    assert acc.kind is SensorKind.ACC and acc.unit == "m/s^2"
    np.testing.assert_array_equal(acc.t_s, [0.0, 0.016, 0.032, 0.048])
    np.testing.assert_array_equal(
        acc.xyz[[0, 3]],
        [
            [4.2208284737736, 1.88004729202911, -16.8922898132324],
            [4.64879231278747, 2.95833571859151, -18.5336641043514],
        ],
    )


def test_example_15_without_gyroscope_is_refused_in_one_line(tmp_path):
    path = tmp_path / "sample.csv"
    path.write_text(EXAMPLE_15)
    with pytest.raises(FormatError) as err:
        read(path)
    assert str(err.value) == (
        f"{path}: this edgeimpulse export has an accelerometer but no gyroscope; the model needs "
        "both (6 axes) and is never fed zeros; sample the gyroscope too (gyrX, gyrY, gyrZ in "
        "deg/s, as Edge Impulse's inertial firmware does) and export again"
    )


def test_six_axes_in_any_column_order_with_extra_columns(tmp_path):
    # Read by name: the gyroscope first, a magnetometer nobody asked for, in deg/s.
    lines = ["timestamp,gyrZ,gyrY,gyrX,accZ,accY,accX,magX"] + [
        f"{10 * i},{i}.0,0.0,-90.0,9.80665,0.5,-0.25,33.1" for i in range(5)
    ]
    (tmp_path / "imu.csv").write_text("\n".join(lines))
    rec = read(tmp_path / "imu.csv")
    assert rec.source.format == "edgeimpulse"
    assert "columns not read: magX" in rec.source.rules
    np.testing.assert_allclose(rec.imu[0], [-0.25, 0.5, 9.80665, -np.pi / 2, 0.0, 0.0])
    np.testing.assert_allclose(rec.imu[:, 5], np.radians(np.arange(5)))
    np.testing.assert_allclose(rec.timestamp_s, np.arange(5) * 0.01)


@pytest.mark.parametrize("as_zip", [False, True], ids=["file", "zip"])
def test_emulated_csv_reads_back_as_canonical(canonical, tmp_path, as_zip):
    path = app.render_csv(canonical, tmp_path)
    assert path.read_text().startswith("timestamp,accX,accY,accZ,gyrX,gyrY,gyrZ\n0,")
    if as_zip:
        # Archived beside the folder, never into it (the zip would take itself in).
        path = Path(
            shutil.make_archive(
                str(tmp_path.parent / f"{tmp_path.name}-shared"), "zip", root_dir=tmp_path
            )
        )
    back = read(path)
    assert back.source.format == "edgeimpulse"
    assert back.median_rate_hz == pytest.approx(62.5)
    # Full precision and exact 16 ms stamps: only float rounding of deg/s and back.
    assert_matches_canonical(back, canonical, 0.0, acc_m_s2=1e-9, gyro_rad_s=1e-9)


def test_acceleration_in_g_is_refused_not_read_ten_times_off(canonical, tmp_path):
    path = app.render_csv(canonical, tmp_path)
    as_written = read(path)
    lines = path.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[1:4] = [repr(float(v) / 9.80665) for v in row[1:4]]
    path.write_text("\n".join([lines[0]] + [",".join(r) for r in rows]) + "\n")
    with pytest.raises(
        FormatError,
        match=rf"^{re.escape(str(path))}: median \|acceleration\| is 1\.02 m/s², not about 9\.8; "
        r"Edge Impulse firmware writes m/s², this file looks like g \(a sketch of its own\): "
        r"--format csv --layout 'time=timestamp:ms acc=accX,accY,accZ:g "
        r"gyro=gyrX,gyrY,gyrZ:deg/s' reads it",
    ):
        read(path)
    # The layout it names reads the file: the canonical acceleration again.
    layout = "time=timestamp:ms acc=accX,accY,accZ:g gyro=gyrX,gyrY,gyrZ:deg/s"
    again = read(path, format="csv", options=ReadOptions(layout=layout))
    np.testing.assert_allclose(again.imu, as_written.imu, rtol=1e-12)


def test_text_in_a_number_column_names_file_line_column(canonical, tmp_path):
    path = app.render_csv(canonical, tmp_path)
    lines = path.read_text().split("\n")
    lines[6] = lines[6].replace(",", ",x", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(FormatError, match=rf"^{re.escape(str(path))}:7: column 2 is not a number"):
        read(path)


def test_wrong_format_truncated_zip_and_two_files(canonical, tmp_path):
    path = app.render_csv(canonical, tmp_path)
    with pytest.raises(FormatError, match=r"does not look like a sensorlog export"):
        read(path, format="sensorlog")
    shutil.copy(path, tmp_path / "second.csv")
    with pytest.raises(FormatError, match=r"2 Edge Impulse CSVs \(edgeimpulse\.csv, second\.csv\)"):
        read(tmp_path)
    shared = Path(
        shutil.make_archive(str(tmp_path.parent / f"{tmp_path.name}-z"), "zip", root_dir=tmp_path)
    )
    shared.write_bytes(shared.read_bytes()[:5000])
    with pytest.raises(FormatError, match=rf"^{re.escape(str(shared))}: "):
        read(shared)
