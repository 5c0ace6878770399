"""Physics Toolbox Sensor Suite: the users' lines quoted in vendor-formats.md §A3 (no vendor
source, no wild export), the emulated Multi Record file in both dialects read back against the
canonical recording, block by block as whole, and bad input refused in one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import physicstoolbox as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import physicstoolbox as reader
from gaitedge.recording import Recording
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G
from tests.test_formats_metabase import assert_matches_canonical, canonical_excerpt
from tests.test_long_recordings import _refused_alike, _streams_as_read

# vendor-formats.md Example 7 (a user's gyroscope tool export), verbatim.
EXAMPLE_7 = """time,wx,wy,wz
0.271,0.17,0.06,0.06
0.288,0.17,0.06,0.06
0.305,0.17,0.07,0.06
0.321,0.16,0.09,0.07
"""
# vendor-formats.md Example 8 (the same user's linear accelerometer export), verbatim.
EXAMPLE_8 = """time,ax,ay,az,atotal
0.419,-0.3,0.23,-0.41,0.56
0.429,-0.22,0.15,-0.48,0.55
0.439,-0.03,0.01,-0.62,0.62
0.449,0.1,-0.13,-0.71,0.73
"""
# Multi Record's header and first two rows as a user quotes them (§A3: "time,gFx,gFy,gFz,ax,ay,
# az,wx,wy,wz,..."; the rows from a third-party README), then rows as the app goes on: the
# gyroscope's first report, the g-force held while the gyroscope reports, and so on.
MULTI = """time,gFx,gFy,gFz,ax,ay,az,wx,wy,wz
0.078756,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000
0.123827,-0.0488,0.3217,1.0039,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000
0.125001,-0.0488,0.3217,1.0039,0.0100,0.0200,0.0300,0.0000,0.0000,0.0000
0.131000,-0.0488,0.3217,1.0039,0.0100,0.0200,0.0300,0.1000,-0.2000,0.0500
0.133800,-0.0490,0.3210,1.0040,0.0100,0.0200,0.0300,0.1000,-0.2000,0.0500
0.141000,-0.0490,0.3210,1.0040,0.0100,0.0200,0.0300,0.1100,-0.2100,0.0600
0.143800,-0.0495,0.3200,1.0041,0.0100,0.0200,0.0300,0.1100,-0.2100,0.0600
0.151000,-0.0495,0.3200,1.0041,0.0100,0.0200,0.0300,0.1200,-0.2200,0.0700
0.153800,-0.0500,0.3190,1.0042,0.0100,0.0200,0.0300,0.1200,-0.2200,0.0700
"""


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


def test_multi_record_rows_to_each_sensors_own_samples(tmp_path):
    (tmp_path / "2023-03-1715.50.47.csv").write_text(MULTI)
    with Container(tmp_path) as c:
        assert reader.detect(c) == (
            "Physics Toolbox Multi Record header (time, gFx, ...) in 2023-03-1715.50.47.csv"
        )
        export = reader.read(c, ReadOptions())
    acc, gyro = export.series
    # The all-zero row before any report is no sample; a row holding the last g-force while the
    # gyroscope reported is that sample again: each sensor keeps the rows it reported on.
    assert acc.kind is SensorKind.ACC and acc.unit == "g"
    np.testing.assert_array_equal(acc.t_s, [0.123827, 0.1338, 0.1438, 0.1538])
    # g to m/s², Android's sign kept: the phone lying on its back reads +1 g up on z.
    np.testing.assert_allclose(acc.xyz[0], np.array([-0.0488, 0.3217, 1.0039]) * G)
    assert gyro.kind is SensorKind.GYRO
    np.testing.assert_array_equal(gyro.t_s, [0.131, 0.141, 0.151])
    np.testing.assert_array_equal(gyro.xyz[0], [0.1, -0.2, 0.05])
    assert "wx..: 3 rows before its first report left out" in export.rules
    assert (
        "gFx..: 4 rows repeat its previous values (held while another sensor reported): left out"
    ) in export.rules
    assert "columns not read: ax, ay, az" in export.rules
    rec = read(tmp_path)
    # The g-force's stamps within the gyroscope's span (no extrapolation): 0.1338 and 0.1438.
    assert rec.source.format == "physicstoolbox" and len(rec) == 2


def test_a_gyroscope_tool_file_alone_is_refused_naming_multi_record(tmp_path):
    path = tmp_path / "highknees.csv"
    path.write_text(EXAMPLE_7)
    with Container(path) as c:
        assert "single-sensor header (time, wx, ...)" in reader.detect(c)
        (gyro,) = reader.read(c, ReadOptions()).series
    np.testing.assert_array_equal(gyro.t_s, [0.271, 0.288, 0.305, 0.321])
    np.testing.assert_array_equal(gyro.xyz[2], [0.17, 0.07, 0.06])  # not held: a tool's own rows
    with pytest.raises(FormatError) as err:
        read(path)
    assert str(err.value) == (
        f"{path}: no accelerometer in this physicstoolbox export; in Physics Toolbox, tick the "
        "g-Force Meter in Multi Record beside the gyroscope and record again"
    )


def test_linear_acceleration_alone_is_refused_naming_the_g_force_meter(tmp_path):
    path = tmp_path / "highknees_a.csv"
    path.write_text(EXAMPLE_8)
    with pytest.raises(FormatError, match=r"tick the g-Force Meter \(gFx..gFz, with gravity\)"):
        read(path, options=ReadOptions(accelerometer_only=True))


def test_two_tools_files_are_two_recordings_never_joined(tmp_path):
    (tmp_path / "highknees.csv").write_text(EXAMPLE_7)
    (tmp_path / "highknees_a.csv").write_text(EXAMPLE_8)
    with pytest.raises(FormatError) as err:
        read(tmp_path)
    assert str(err.value) == (
        f"{tmp_path}: 2 Physics Toolbox files (highknees.csv, highknees_a.csv); each is a "
        "recording of its own (the single-sensor tools record one sensor at a time): give one, "
        "or record the g-Force Meter and the gyroscope together with Multi Record"
    )


@pytest.mark.parametrize("variant", sorted(app.VARIANTS))
@pytest.mark.parametrize("as_zip", [False, True], ids=["file", "zip"])
def test_emulated_multi_record_reads_back_as_canonical(canonical, tmp_path, variant, as_zip):
    folder = tmp_path / "export"
    folder.mkdir()
    path = app.VARIANTS[variant](canonical, folder)
    text = path.read_text()
    if variant == "multi-csv":
        assert text.startswith("time,gFx,gFy,gFz,ax,ay,az,wx,wy,wz,p\n0.078847,0.6371,")
    else:
        assert text.startswith("\ntime;gFx;gFy;gFz;ax;ay;az;wx;wy;wz;p;\n0,078847;0,6371;")
    if as_zip:
        path = Path(shutil.make_archive(str(tmp_path / "shared"), "zip", root_dir=folder))
    back = read(path)
    assert back.source.format == "physicstoolbox"
    # The accelerometer's own ~100 Hz reports are the timeline (its held rows left out).
    assert back.median_rate_hz == pytest.approx(100.0, abs=1.0)
    # 4 decimals (1e-4 g, 1e-4 rad/s) and each sensor's jittered clock interpolated twice.
    assert_matches_canonical(back, canonical, 0.0, acc_m_s2=0.005, gyro_rad_s=0.01)


@pytest.mark.parametrize("variant", sorted(app.VARIANTS))
def test_multi_record_streams_as_read_whole(variant, tmp_path, monkeypatch):
    path = app.VARIANTS[variant](canonical_excerpt(), tmp_path)
    _streams_as_read(path, "physicstoolbox", monkeypatch)


def _edit(path: Path, line_no: int, edit) -> None:
    lines = path.read_text().split("\n")
    lines[line_no - 1] = edit(lines[line_no - 1])
    path.write_text("\n".join(lines))


def test_text_in_a_number_column_names_file_line_column(canonical, tmp_path, monkeypatch):
    path = app.render_multi_csv(canonical, tmp_path)
    _edit(
        path,
        9000,
        lambda line: ",".join(c if i != 3 else "x" + c for i, c in enumerate(line.split(","))),
    )
    monkeypatch.setattr("gaitedge.formats.table.BLOCK_BYTES", 8192)
    said = _refused_alike(path)
    assert re.match(rf"^{re.escape(str(path))}:9000: column 4 is not a number: 'x", said), said


def test_time_going_back_is_refused_with_its_line(canonical, tmp_path, monkeypatch):
    path = app.render_multi_csv(canonical, tmp_path)
    _edit(path, 5000, lambda line: "1.5" + line[line.index(",") :])
    monkeypatch.setattr("gaitedge.formats.table.BLOCK_BYTES", 8192)
    said = _refused_alike(path)
    assert re.match(
        rf"^{re.escape(str(path))}:5000: time goes back \d+\.\d{{3}} s \(rows out of order", said
    ), said


def test_an_ios_date_time_is_refused_with_a_layout_not_a_guessed_sign(tmp_path):
    # §A3: the iOS g-force tool's header and a row as a third-party notebook quotes them.
    path = tmp_path / "sensor.csv"
    path.write_text(
        "time,gFx,gFy,gFz,gFTotal\n"
        "2018-10-03 17:23:55.4640,0.035,-0.517,-0.821,0.971\n"
        "2018-10-03 17:23:55.4650,0.035,-0.517,-0.821,0.971\n"
    )
    with pytest.raises(FormatError) as err:
        read(path)
    assert str(err.value).startswith(
        f"{path}:2: time '2018-10-03 17:23:55.4640' is a date and time (Physics Toolbox on iOS)"
    )
    assert "--format csv --layout 'time=time:s acc=gFx,gFy,gFz:g sign=ios'" in str(err.value)


def test_wrong_format_and_truncated_zip(canonical, tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    path = app.render_multi_csv(canonical, folder)
    with pytest.raises(FormatError, match=r"does not look like a edgeimpulse export"):
        read(path, format="edgeimpulse")
    # Never archive into the folder archived: the zip would take itself in, without end.
    shared = Path(shutil.make_archive(str(tmp_path / "z"), "zip", root_dir=folder))
    shared.write_bytes(shared.read_bytes()[:5000])
    with pytest.raises(FormatError, match=rf"^{re.escape(str(shared))}: "):
        read(shared)
