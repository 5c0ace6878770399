"""ActiGraph files are recognised and refused: no gyroscope, never zeros (vendor's own lines)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from gaitedge.formats import Container, FormatError, ReadOptions, actigraph, read

# vendor-formats.md §B3, Example 12: the vendor's test fixture tests/resources/neo.csv (pygt3x).
NEO = (
    "------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4 Firmware v2.5.0 date "
    "format M/d/yyyy at 30 Hz  Filter Normal -----------\r\n"
    "Serial Number: NEO1C04110003\r\nStart Time 11:55:00\r\nStart Date 12/20/2021\r\n"
    "Epoch Period (hh:mm:ss) 00:00:00\r\nDownload Time 12:09:58\r\nDownload Date 12/20/2021\r\n"
    "Current Memory Address: 0\r\nCurrent Battery Voltage: 4.26     Mode = 12\r\n"
    "--------------------------------------------------\r\n"
    "Accelerometer X,Accelerometer Y,Accelerometer Z\r\n"
    "-0.015,0.029,-1.006\r\n-0.012,0.029,-1.012\r\n-0.015,0.026,-1.012\r\n-0.015,0.029,-1.006\r\n"
)


def test_actilife_csv_reads_in_g_at_the_banner_rate(tmp_path):
    path = tmp_path / "neo.csv"
    path.write_bytes(NEO.encode())
    with Container(path) as c:
        assert actigraph.detect(c) == "ActiLife banner line"
        export = actigraph.read(c, ReadOptions())
    (acc,) = export.series
    np.testing.assert_allclose(acc.xyz[1], np.array([-0.012, 0.029, -1.012]) * 9.80665)
    np.testing.assert_allclose(np.diff(acc.t_s), 1 / 30, rtol=1e-5)  # epoch s in float64
    assert export.start_epoch_s == 1640001300.0  # 2021-12-20 11:55:00, device-local


def test_actilife_csv_is_refused_for_want_of_a_gyroscope(tmp_path):
    path = tmp_path / "neo.csv"
    path.write_bytes(NEO.encode())
    with pytest.raises(FormatError, match=r"no gyroscope.*never fed zeros.*ActiGraph"):
        read(path)


def test_actilife_csv_reads_as_acceleration_alone_for_the_acc_model(tmp_path):
    """For the accelerometer-only model (``replay`` with no ``--model``): the samples in m/s²,
    [N, 3], nothing padded."""
    path = tmp_path / "neo.csv"
    path.write_bytes(NEO.encode())
    rec = read(path, options=ReadOptions(accelerometer_only=True))
    assert rec.imu.shape == (4, 3)
    np.testing.assert_allclose(rec.imu[1], np.array([-0.012, 0.029, -1.012]) * 9.80665)
    np.testing.assert_allclose(np.diff(rec.timestamp_s), 1 / 30, rtol=1e-5)


def test_actilife_csv_with_its_optional_timestamp_column(tmp_path):
    """ActiLife may add a text Timestamp column (vendor-formats.md §B3, flagged, not seen): the
    axes are read by name ('column 1 is not a number' refused the file)."""
    lines = NEO.split("\r\n")
    lines[10] = "Timestamp," + lines[10]
    for k, row in enumerate(lines[11:-1]):
        lines[11 + k] = f"12/20/2021 11:55:00.{k * 33:03d}," + row
    path = tmp_path / "neo-ts.csv"
    path.write_bytes("\r\n".join(lines).encode())
    plain = tmp_path / "neo.csv"
    plain.write_bytes(NEO.encode())
    options = ReadOptions(accelerometer_only=True)
    got, want = read(path, options=options), read(plain, options=options)
    np.testing.assert_array_equal(got.imu, want.imu)
    np.testing.assert_array_equal(got.timestamp_s, want.timestamp_s)


def test_gt3x_is_recognised_and_refused(tmp_path):
    path = tmp_path / "NEO1C04110003.gt3x"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("info.txt", "Serial Number: NEO1C04110003\r\nSample Rate: 30\r\n")
        z.writestr("log.bin", b"\x1e\x00\x00")
    with pytest.raises(FormatError, match=r"\.gt3x holds an accelerometer only"):
        read(path)
