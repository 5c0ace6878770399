"""Movesense: the wild IMU9 log read as the sensor's app wrote it, Suunto's own lines (the
Showcase CSV and JSON of ``CsvEncodingTests``) parsed to their values, the emulated exports
(IMU6/IMU9 JSON, Showcase CSV folder and JSON lines) read back against the canonical
recording, and bad input refused in one line naming the file (and line)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

from firmware_bridge.exports import movesense as app
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import movesense as reader
from gaitedge.recording import Recording
from tests.test_formats_metabase import assert_matches_canonical, canonical_excerpt

WILD = "movesense_imu9-json"
FILE = "MovesenseLog_2_625.json"
# Suunto's MovesenseShowcaseTests/CsvEncodingTests.swift: an acc event as the app records it
# (JSON line) and the CSV rows the app converts it to (vendor-formats.md Example 13).
VENDOR_JSON = (
    '{"acc":{"Timestamp":599025762,"ArrayAcc":[{"x":0.31347095966339111,"y":-0.31347095966339111,'
    '"z":9.9281759262084961},{"x":0.28475606441497803,"y":-0.31586387753486633,'
    '"z":9.949711799621582},{"x":0.33022132515907288,"y":-0.26800569891929626,'
    '"z":9.9353542327880859},{"x":0.33022132515907288,"y":-0.28236314654350281,'
    '"z":9.8922824859619141}]}}'
)
VENDOR_CSV = (
    "timestamp,x,y,z\n"
    "599025762,0.31347096,-0.31347096,9.928176\n"
    ",0.28475606,-0.31586388,9.949712\n"
    ",0.33022133,-0.2680057,9.935354\n"
    ",0.33022133,-0.28236315,9.8922825\n"
)
VENDOR_XYZ = [
    [0.31347095966339111, -0.31347095966339111, 9.9281759262084961],
    [0.28475606441497803, -0.31586387753486633, 9.949711799621582],
    [0.33022132515907288, -0.26800569891929626, 9.9353542327880859],
    [0.33022132515907288, -0.28236314654350281, 9.8922824859619141],
]


@pytest.fixture(scope="module")
def canonical() -> Recording:
    return canonical_excerpt()


def _export(path: Path, options: ReadOptions | None = None):
    with Container(path) as c:
        return reader.read(c, options or ReadOptions())


def _right_handed_corr(t: np.ndarray, acc: np.ndarray, gyro: np.ndarray) -> float:
    """Correlation of d(acc)/dt with acc x gyro below 0.5 Hz: gravity seen from a turning
    sensor changes as g x w when the gyroscope is right-handed about the accelerometer's axes."""
    sos = butter(2, 0.5, fs=1.0 / np.median(np.diff(t)), output="sos")
    a, w = sosfiltfilt(sos, acc, axis=0), sosfiltfilt(sos, gyro, axis=0)
    da, pred = np.gradient(a, t, axis=0), np.cross(a, w)
    return float(np.sum(da * pred) / np.sqrt(np.sum(da**2) * np.sum(pred**2)))


# -- the wild IMU9 log ---------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["file", "folder", "zip"])
def test_wild_imu9_log_reads_as_the_app_wrote_it(wild_exports, tmp_path, given):
    path = {
        "file": wild_exports / WILD / FILE,
        "folder": wild_exports / WILD,
        "zip": Path(shutil.make_archive(str(tmp_path / "log"), "zip", wild_exports / WILD)),
    }[given]
    rec = read(path)
    src = rec.source
    assert src.format == "movesense"
    acc, gyro = src.sensors
    # README: 1250 packets of 8, 74/75 ms apart: ~107 Hz for a nominal 104; m/s², deg/s.
    assert (acc.unit, gyro.unit, acc.samples, gyro.samples) == ("m/s^2", "deg/s", 10000, 10000)
    assert (
        "acceleration: 1250 packets of 8 samples, stamped at their first sample (sensor uptime, "
        "ms); spread at the 106.87 Hz the stamps imply"
    ) in src.rules
    assert "IMU9 ArrayMagn not used" in src.rules
    assert rec.median_rate_hz == pytest.approx(106.87, abs=0.01)
    assert rec.timestamp_s[0] == 158.319  # the first packet's uptime stamp
    assert rec.duration_s == pytest.approx(93.499 + 7 * 0.0093574, abs=1e-4)
    # The first ~40 s at rest with z = -9.63 m/s² (the "+z down" of the issue): specific force
    # with the sensor face down; read as written (no flip). |a| 9.68: its own calibration.
    rest = rec.timestamp_s - rec.timestamp_s[0] < 30
    np.testing.assert_allclose(
        np.median(rec.imu[rest, :3], axis=0), [0.0335, -0.0550, -9.6458], atol=0.002
    )
    assert np.linalg.norm(rec.imu[rest, :3], axis=1).std() < 0.05
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(9.682, abs=0.005)
    # deg/s -> rad/s, right-handed about the accelerometer's axes (a flipped sign or a wrong
    # unit scale would not correlate).
    corr = _right_handed_corr(rec.timestamp_s, rec.imu[:, :3], rec.imu[:, 3:])
    assert corr > 0.35
    assert _right_handed_corr(rec.timestamp_s, rec.imu[:, :3], -rec.imu[:, 3:]) < -0.35


def test_wild_log_first_packet_to_its_values(wild_exports):
    # vendor-formats.md B4's verbatim prefix of this file.
    export = _export(wild_exports / WILD / FILE)
    acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
    np.testing.assert_array_equal(
        acc.xyz[:2],
        [
            [0.031107805669307709, -0.071787245571613312, -9.6290616989135742],
            [0.040679436177015305, -0.045465253293514252, -9.6314554214477539],
        ],
    )
    np.testing.assert_allclose(
        np.degrees(gyro.xyz[:2]), [[-1.47, -3.71, 0.14], [-1.61, -3.78, 0.21]], atol=1e-6
    )
    np.testing.assert_allclose(acc.t_s[:9] - 158.319, np.r_[np.arange(8) * 93.499 / 9992, 0.075])


def test_encoder_writes_the_wild_log_byte_for_byte(wild_exports):
    # The emulated app's JSON encoder, fed the wild log's own packets, writes the file exactly.
    raw = (wild_exports / WILD / FILE).read_text()
    packets = json.loads(raw)["Meas"]["IMU9"]
    arrays = {
        key: np.array([[[v["x"], v["y"], v["z"]] for v in p[key]] for p in packets])
        for key in ("ArrayAcc", "ArrayGyro", "ArrayMagn")
    }
    stamps = np.array([p["Timestamp"] for p in packets])
    assert app.encode_meas("IMU9", stamps, arrays) == raw


# -- Suunto's own lines --------------------------------------------------------------------------


def test_vendor_csv_rows_to_their_values():
    p = reader.parse_csv(VENDOR_CSV, "acc.csv", SensorKind.ACC)
    np.testing.assert_array_equal(p.stamps_ms, [599025762])
    np.testing.assert_array_equal(p.counts, [4])
    np.testing.assert_array_equal(
        p.xyz,
        [
            [0.31347096, -0.31347096, 9.928176],
            [0.28475606, -0.31586388, 9.949712],
            [0.33022133, -0.2680057, 9.935354],
            [0.33022133, -0.28236315, 9.8922825],
        ],
    )
    # The CSV's shortest float32 forms are the JSON event's float32 values.
    np.testing.assert_array_equal(p.xyz.astype(np.float32), np.float32(VENDOR_XYZ))
    assert p.locate(0) == "acc.csv:2"
    with pytest.raises(FormatError, match=r"acc\.csv: one packet only; its sample rate cannot be"):
        reader.spread(p)


def test_vendor_json_line_to_its_values():
    p = reader.parse_stream(VENDOR_JSON + "\n", "acc_stream.json")
    assert p.kind is SensorKind.ACC
    np.testing.assert_array_equal(p.stamps_ms, [599025762])
    np.testing.assert_array_equal(p.xyz, VENDOR_XYZ)


def test_encoders_write_the_vendor_lines():
    xyz = np.array(VENDOR_XYZ)
    assert app.encode_stream_line("acc", "ArrayAcc", 599025762, xyz) == VENDOR_JSON
    assert "timestamp,x,y,z\n" + app.encode_csv_packet(599025762, xyz) + "\n" == VENDOR_CSV


def test_vendor_csv_pair_reads_with_packets_spread(tmp_path):
    # Example 13's rows as two packets of acc and gyro (the gyro file: the same rows), named as
    # the Showcase app names them; the second packet 38 ms later: 4 samples at 9.5 ms.
    rows = VENDOR_CSV.splitlines()
    second = [f"599025800{rows[1][9:]}", *rows[2:]]
    text = "\n".join([*rows, *second]) + "\n"
    for sensor in ("acc", "gyro"):
        (tmp_path / f"2018-12-10T10:43:52Z_174630000192_{sensor}_stream.csv").write_text(text)
    export = _export(tmp_path)
    acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
    np.testing.assert_allclose(acc.t_s, 599025.762 + np.r_[0:4, 4:8] * 0.0095)
    np.testing.assert_array_equal(acc.xyz[:4, 2], [9.928176, 9.949712, 9.935354, 9.8922825])
    np.testing.assert_allclose(
        np.degrees(gyro.xyz[:4, 2]), [9.928176, 9.949712, 9.935354, 9.8922825]
    )


# -- the emulated apps ---------------------------------------------------------------------------


RENDERERS = {**app.VARIANTS, "jsonl-folder": app.render_showcase_jsonl}


@pytest.mark.parametrize("variant", sorted(RENDERERS))
def test_emulated_export_reads_back_the_canonical_recording(canonical, tmp_path, variant):
    path = RENDERERS[variant](canonical, tmp_path)
    # Each sensor on its own clock first: the stamps are truncated to the ms (up to 1 ms late
    # on the clock the reader rebuilds), so a sample may differ from the canonical signal at the
    # read instant by 1 ms of its slope (the 50 Hz signal is piecewise linear) plus float32.
    export = _export(path)
    t0 = app.UPTIME_START_MS / 1000
    for series, cols in ((export.get(SensorKind.ACC), slice(0, 3)),
                         (export.get(SensorKind.GYRO), slice(3, 6))):  # fmt: skip
        t = series.t_s - t0
        lag = app.GYRO_LAG_MS / 1000 if variant.endswith("folder") and cols.start else 0.0
        assert t[0] == pytest.approx(lag, abs=1e-3)
        ref = np.stack([np.interp(t, canonical.timestamp_s, canonical.imu[:, c])
                        for c in range(cols.start, cols.stop)], axis=1)  # fmt: skip
        slope = np.abs(np.diff(canonical.imu[:, cols], axis=0)) / 0.02  # per 20 ms segment
        seg = np.clip(np.searchsorted(canonical.timestamp_s, t) - 1, 0, len(slope) - 1)
        near = np.max([slope[np.clip(seg + d, 0, len(slope) - 1)] for d in (-1, 0, 1)], axis=0)
        bound = 1.001e-3 * near + 1e-5 * (1 + np.abs(ref))
        assert (np.abs(series.xyz - ref) <= bound).all()
    # Then joined into the one recording as the CLI reads it: the same ms truncation (0.5 ms
    # on average, times the signal's slope) sets the median error; the gyroscope of the CSV and
    # JSON-lines folders is interpolated onto the acc's instants 3.4 ms apart.
    rec = read(path)
    assert rec.source.format == "movesense"
    assert rec.median_rate_hz == pytest.approx(app.DEVICE_RATE_HZ, abs=0.01)
    assert_matches_canonical(rec, canonical, t0, acc_m_s2=0.03, gyro_rad_s=0.01)


def test_csv_and_json_of_one_recording_prefer_the_json(canonical, tmp_path):
    csvs = app.render_csv_folder(canonical, tmp_path / "a")
    jsonl = app.render_showcase_jsonl(canonical, tmp_path / "b")
    both = tmp_path / "both"
    shutil.copytree(csvs, both)
    for p in jsonl.iterdir():
        shutil.copy(p, both)
    export = _export(both)
    assert export.get(SensorKind.ACC).where.endswith("_acc_stream.json")
    prefix = csvs.name
    assert (
        f"{prefix}_acc_stream.csv not read: the same recording's JSON stream "
        f"{prefix}_acc_stream.json was (full precision)"
    ) in export.rules


# -- bad input -----------------------------------------------------------------------------------


def _csv_folder(canonical: Recording, tmp_path: Path) -> Path:
    return app.render_csv_folder(canonical, tmp_path / "export")


def test_only_one_sensor_is_refused(canonical, tmp_path):
    folder = _csv_folder(canonical, tmp_path)
    next(folder.glob("*_gyro_stream.csv")).unlink()
    with pytest.raises(FormatError) as exc:
        read(folder)
    assert str(exc.value) == (
        f"{folder}: this movesense export has an accelerometer but no gyroscope; the model "
        "needs both (6 axes) and is never fed zeros; subscribe to IMU6 or IMU9 (IMU6m has no "
        "gyroscope), or record Gyro beside Acc in the Showcase app"
    )


def test_imu6m_log_is_refused(canonical, tmp_path):
    path = app.render_imu6_json(canonical, tmp_path)
    doc = json.loads(path.read_text())
    packets = [
        {"ArrayAcc": p["ArrayAcc"], "Timestamp": p["Timestamp"]} for p in doc["Meas"]["IMU6"]
    ]
    path.write_text(json.dumps({"Meas": {"IMU6m": packets}}))
    with pytest.raises(FormatError, match="movesense export has an accelerometer but no gyro"):
        read(path)


def test_text_in_a_number_column(canonical, tmp_path):
    folder = _csv_folder(canonical, tmp_path)
    acc = next(folder.glob("*_acc_stream.csv"))
    lines = acc.read_text().splitlines()
    lines[5] = ",abc" + lines[5][lines[5].index(",", 1) :]
    acc.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=rf"{acc.name}:6: .*abc"):
        read(folder)


def test_time_going_back(canonical, tmp_path):
    folder = _csv_folder(canonical, tmp_path)
    gyro = next(folder.glob("*_gyro_stream.csv"))
    lines = gyro.read_text().splitlines()
    lines[9] = "100" + lines[9][lines[9].index(",") :]  # the second packet's stamp
    gyro.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as exc:
        read(folder)
    first = lines[1].split(",")[0]
    assert str(exc.value) == (
        f"{gyro}:10: Timestamp 100 ms is not after the previous packet's {first} ms (time goes "
        "back: a restarted sensor, or files of two recordings?)"
    )


def test_first_csv_row_without_a_stamp(tmp_path):
    rows = VENDOR_CSV.splitlines()
    text = "\n".join([rows[0], "," + rows[1].split(",", 1)[1], *rows[2:]]) + "\n"
    with pytest.raises(FormatError, match=r"acc\.csv:2: the first row has no timestamp"):
        reader.parse_csv(text, "acc.csv", SensorKind.ACC)
    with pytest.raises(FormatError, match=r"acc\.csv:2: column 1 is not a number: '5990x'"):
        reader.parse_csv(VENDOR_CSV.replace("599025762", "5990x"), "acc.csv", SensorKind.ACC)
    with pytest.raises(FormatError, match=r"acc\.csv:2: timestamp 599025762.5 is not ms of upt"):
        reader.parse_csv(VENDOR_CSV.replace("599025762", "599025762.5"), "acc.csv", SensorKind.ACC)


def test_csv_without_acc_or_gyro_in_its_name(canonical, tmp_path):
    folder = _csv_folder(canonical, tmp_path)
    acc = next(folder.glob("*_acc_stream.csv"))
    acc.rename(folder / "data.csv")
    with pytest.raises(FormatError, match=r"data\.csv: cannot tell acc from gyro"):
        read(folder)


def test_truncated_json_and_mismatched_packets(wild_exports, tmp_path):
    raw = (wild_exports / WILD / FILE).read_text()
    cut = tmp_path / "cut.json"
    cut.write_text(raw[:-5000])
    with pytest.raises(FormatError, match=r"cut\.json:1: not JSON: .*\(column 22\d{5}\)"):
        read(cut)
    doc = json.loads(raw)
    doc["Meas"]["IMU9"][2]["ArrayGyro"].pop()
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(doc))
    with pytest.raises(FormatError) as exc:
        read(odd)
    assert str(exc.value) == f"{odd}: Meas/IMU9 packet 3: 8 acc samples but 7 gyro samples"


def test_wrong_format_truncated_zip_and_two_recordings(canonical, wild_exports, tmp_path):
    with pytest.raises(FormatError, match="does not look like a axivity export"):
        read(wild_exports / WILD / FILE, format="axivity")
    zpath = tmp_path / "log.zip"
    with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(wild_exports / WILD / FILE, FILE)
    (tmp_path / "cut.zip").write_bytes(zpath.read_bytes()[:20000])
    with pytest.raises(FormatError, match=r"cut\.zip: a truncated or damaged zip"):
        read(tmp_path / "cut.zip")
    two = tmp_path / "two"
    two.mkdir()
    for serial in ("174630000190", "174630000191"):
        for p in app.render_csv_folder(canonical, tmp_path / serial).iterdir():
            shutil.copy(p, two / p.name.replace(app.SERIAL, serial))
    with pytest.raises(FormatError, match=r"2 Showcase recordings \(.*0, .*1\); give one"):
        read(two)
    rec = read(two, options=ReadOptions(device="174630000191"))
    assert "174630000191_acc" in rec.source.sensors[0].where
