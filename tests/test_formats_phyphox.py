"""phyphox exports: the real ones, the vendor's own lines, every emulated variant, bad input.

Facts pinned here come from ``shared/data/wild-exports`` (its README's quirks and the files
themselves), ``shared/reference/vendor-formats.md`` §A2 (literal lines captured from files the
app wrote) and phyphox's sources (``DataExport.java``, ``ExperimentExportSet.swift``,
``ExperimentSensorInput.swift``: iOS writes CoreMotion's g x -9.81).
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports import phyphox as app
from gaitedge import formats
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, phyphox
from gaitedge.recording import Recording, read_recording
from gaitedge.units import STANDARD_GRAVITY_M_S2
from tests.conftest import REPO

IOS_SCALE = STANDARD_GRAVITY_M_S2 / 9.81  # the reader's rescale of iOS acceleration


def _export(path: Path):
    """The reader's Export (before the join), for facts the join hides (first stamps)."""
    with Container(path) as c:
        return phyphox.read(c, ReadOptions())


def _zip(folder: Path, out: Path, *, under: str | None = None) -> Path:
    """``folder`` zipped flat as the app shares it (or inside ``under/``, as a user re-zips)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                name = p.relative_to(folder).as_posix()
                zf.write(p, f"{under}/{name}" if under else name)
    return out


def _write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(text.encode("utf-8"))
    return folder


# --- 1. the real exports ---------------------------------------------------------------------

# set -> (acc file, gyro file, acc rows, gyro rows, rate Hz, joined samples, first joined stamp,
#         mean acceleration after reading (m/s², canonical sign), dialect words)
WILD = {
    "phyphox_android-walk-semicolon-oneplus": (
        "Accelerometer.csv", "Gyroscope.csv", 10803, 10756, 408.41, 10755, 0.145075263,
        (1.111, -9.853, -0.151), "semicolon, decimal point",
    ),
    "phyphox_ios-gaitlab-rec2": (
        "Accelerometer_2.csv", "Gyroscope_2.csv", 3316, 3316, 49.72, 3315, 0.02989816666,
        (9.480, -0.045, -2.262), "comma, decimal point",
    ),
    "phyphox_ios-rigidbody-tab": (
        "Accelerometer.csv", "Gyroscope.csv", 2399, 2399, 100.79, 2398,
        1.750378873597766e9 + 1.281300001e-2, (2.331, 3.039, 6.180), "tab, decimal point",
    ),
    "phyphox_ios-walk-pdr-loop": (
        "Accelerometer.csv", "Gyroscope.csv", 10577, 10575, 100.67, 10574, 0.02331108334,
        (0.597, 1.854, 9.597), "comma, decimal point",
    ),
    "phyphox_ios-walk-semicolon-constantin": (
        "Accelerometer.csv", "Gyroscope.csv", 52811, 52811, 100.38, 52810, 0.007403333322,
        (-0.690, -9.928, -0.592), "semicolon, decimal point",
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "as_given"),
    [(name, "folder") for name in sorted(WILD)]
    + [(name, "zip") for name in sorted(WILD)]
    + [("phyphox_ios-rigidbody-tab", "zip-of-folder")],
)
def test_wild_exports_read(wild_exports, tmp_path, name, as_given):
    """Each set as unzipped and as the app shares it (a flat zip; one also re-zipped with its
    folder inside)."""
    acc, gyro, n_acc, n_gyro, rate, n, t0, mean, dialect = WILD[name]
    folder = wild_exports / name
    path = {
        "folder": lambda: folder,
        "zip": lambda: _zip(folder, tmp_path / f"{name}.zip"),
        "zip-of-folder": lambda: _zip(folder, tmp_path / "shared.zip", under=name),
    }[as_given]()
    with Container(path) as c:
        assert formats.detect(c)[0] == "phyphox"
    rec = formats.read(path)
    src = rec.source
    assert src.format == "phyphox"
    assert [s.where.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for s in src.sensors] == [acc, gyro]
    assert [s.samples for s in src.sensors] == [n_acc, n_gyro]
    assert [s.rate_hz for s in src.sensors] == pytest.approx([rate, rate], abs=0.05)
    assert len(rec) == n
    assert rec.timestamp_s[0] == pytest.approx(t0, abs=1e-6)
    assert rec.imu[:, :3].mean(axis=0) == pytest.approx(mean, abs=2e-3)
    assert f"CSV ({dialect})" in src.rules[0]


def test_wild_android_oneplus_quirks(wild_exports):
    """~408 Hz, gyro 115 ms after acc, Android headers: no rescale (platform not told)."""
    ex = _export(wild_exports / "phyphox_android-walk-semicolon-oneplus")
    acc, gyro = ex.get(SensorKind.ACC), ex.get(SensorKind.GYRO)
    assert gyro.t_s[0] - acc.t_s[0] == pytest.approx(0.115394, abs=1e-6)
    assert acc.xyz[0] == pytest.approx([-3.133401155, 2.883650303, 8.678768158], abs=1e-9)
    assert gyro.xyz[0] == pytest.approx([-1.903552771, -3.521839857, 0.7379034758], abs=1e-9)
    assert ex.start_epoch_s is None
    assert any("platform not told" in r for r in ex.rules)
    rec = formats.read(wild_exports / "phyphox_android-walk-semicolon-oneplus")
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(10.234, abs=0.01)


def test_wild_ios_pdr_loop_flat_screen_up_reads_plus_z(wild_exports):
    """iOS acceleration is already Android's sign in phyphox: the phone, flat and screen up at
    the start, reads +9.45 m/s² on z (x 9.80665/9.81); the magnetometer file is left out."""
    ex = _export(wild_exports / "phyphox_ios-walk-pdr-loop")
    acc = ex.get(SensorKind.ACC)
    assert acc.t_s[0] == pytest.approx(3.446083327e-3, abs=1e-12)
    assert ex.get(SensorKind.GYRO).t_s[0] == pytest.approx(1.958608333e-2, abs=1e-12)
    assert acc.xyz[0] == pytest.approx(
        np.array([-4.806504822e-1, 1.707798615, 9.449848938]) * IOS_SCALE, abs=1e-9
    )
    assert any("left out: Magnetometer.csv" in r for r in ex.rules)
    assert any("9.80665/9.81" in r for r in ex.rules)
    rec = formats.read(wild_exports / "phyphox_ios-walk-pdr-loop")
    assert np.median(np.linalg.norm(rec.imu[:, :3], axis=1)) == pytest.approx(9.7607, abs=1e-3)


def test_wild_ios_constantin_first_time_negative(wild_exports):
    ex = _export(wild_exports / "phyphox_ios-walk-semicolon-constantin")
    assert ex.get(SensorKind.ACC).t_s[0] == pytest.approx(-2.558666631e-3, abs=1e-12)
    rec = formats.read(wild_exports / "phyphox_ios-walk-semicolon-constantin")
    assert rec.source.rules[-2].startswith("1 samples outside the span")


def test_wild_ios_rigidbody_wall_clock_and_device(wild_exports):
    """meta/time.csv's START (1.750378873597766E9) puts the series on Unix seconds;
    meta/device.csv names the phone."""
    ex = _export(wild_exports / "phyphox_ios-rigidbody-tab")
    assert ex.start_epoch_s == 1.750378873597766e9
    assert ex.device == "Apple iPhone13,4"
    assert ex.get(SensorKind.ACC).t_s[0] == pytest.approx(1.750378873597766e9 + 2.890625008e-3)
    assert any("wall clock" in r and "1750378873.598" in r for r in ex.rules)
    assert any("Apple iPhone13,4 (iOS)" in r for r in ex.rules)


def test_wild_gaitlab_renamed_files_detected_by_header(wild_exports, tmp_path):
    """``Accelerometer_2.csv``/``Gyroscope_2.csv``, and the same files renamed beyond
    recognition: the header finds them, the data says the acceleration holds g."""
    folder = wild_exports / "phyphox_ios-gaitlab-rec2"
    renamed = _write(
        tmp_path / "renamed",
        {
            "a.csv": (folder / "Accelerometer_2.csv").read_text(encoding="utf-8"),
            "b.csv": (folder / "Gyroscope_2.csv").read_text(encoding="utf-8"),
        },
    )
    rec = formats.read(renamed)
    assert len(rec) == 3315
    assert any(
        "a.csv: neither header nor file name" in r and "with g" in r for r in rec.source.rules
    )


@pytest.mark.parametrize(
    ("member", "missing"), [("Accelerometer.csv", "no gyroscope"), ("Gyroscope.csv", "no accel")]
)
def test_wild_single_file_is_refused_naming_the_other_sensor(wild_exports, member, missing):
    path = wild_exports / "phyphox_ios-walk-pdr-loop" / member
    with pytest.raises(FormatError) as err:
        formats.read(path)
    msg = str(err.value)
    assert msg.startswith(str(path))
    assert missing in msg
    assert "simple experiment" in msg and "Gyroscope ticked" in msg


# --- 2. the vendor's own lines (vendor-formats.md §A2) ---------------------------------------

EXAMPLE_3 = """\
"Time (s)","Acceleration x (m/s^2)","Acceleration y (m/s^2)","Acceleration z (m/s^2)",\
"Absolute acceleration (m/s^2)"
3.674579167E-2,2.908451843E-1,3.552562408E0,9.095835114E0,9.769314561E0
4.671779167E-2,2.959346008E-1,3.465144196E0,8.940757599E0,9.593328308E0
5.669079167E-2,2.875520325E-1,3.392545166E0,8.788224792E0,9.424698609E0
6.666279167E-2,2.486329651E-1,3.307821350E0,8.796607361E0,9.401265952E0
"""
EXAMPLE_3_VALUES = np.array(
    [
        [3.674579167e-2, 2.908451843e-1, 3.552562408, 9.095835114],
        [4.671779167e-2, 2.959346008e-1, 3.465144196, 8.940757599],
        [5.669079167e-2, 2.875520325e-1, 3.392545166, 8.788224792],
        [6.666279167e-2, 2.486329651e-1, 3.307821350, 8.796607361],
    ]
)
EXAMPLE_4 = """\
"Time (s)","Linear Acceleration x (m/s^2)","Linear Acceleration y (m/s^2)",\
"Linear Acceleration z (m/s^2)","Absolute acceleration (m/s^2)"
3.532458337E-3,-4.257187782E-2,-3.667077642E-2,-7.763757527E-2,9.583685991E-2
1.358445833E-2,-6.377347978E-2,1.179482982E-2,-8.003025591E-2,1.030097888E-1
2.363545833E-2,-4.593669461E-2,4.569975447E-2,-8.213291466E-2,1.046157882E-1
3.368745834E-2,5.334396567E-3,4.185323674E-2,-8.050329566E-2,9.088965741E-2
"""
EXAMPLE_5_ACC = """\
"Time (s)","X (m/s^2)","Y (m/s^2)","Z (m/s^2)"
9.783166664E-3,9.910441132E0,-5.530998230E-1,-2.115700378E0
2.989816666E-2,1.028900391E1,2.727328491E-1,-2.171384583E0
5.001408333E-2,1.058583664E1,5.372328186E-1,-2.050735474E0
7.012908332E-2,1.018751495E1,5.878276062E-1,-1.821711731E0"""
EXAMPLE_5_GYRO = """\
"Time (s)","X (rad/s)","Y (rad/s)","Z (rad/s)"
2.738316666E-2,-2.378040105E-1,3.599078953E-1,1.223954838E-2
4.749908333E-2,-2.865853012E-1,2.256933749E-1,1.343095675E-2
6.761408332E-2,-2.901663184E-1,6.766715646E-2,-2.975128591E-2
8.772908335E-2,-2.332262397E-1,-4.866907373E-2,-7.077695429E-2"""
EXAMPLE_6 = """\
"Time (s)";"Acceleration x (m/s^2)";"Acceleration y (m/s^2)";"Acceleration z (m/s^2)";\
"Absolute acceleration (m/s^2)"
3,674579167E-2;2,908451843E-1;3,552562408E0;9,095835114E0;9,769314561E0
4,671779167E-2;2,959346008E-1;3,465144196E0;8,940757599E0;9,593328308E0
5,669079167E-2;2,875520325E-1;3,392545166E0;8,788224792E0;9,424698609E0
6,666279167E-2;2,486329651E-1;3,307821350E0;8,796607361E0;9,401265952E0
"""
TIME_CSV_IOS = """\
"event","experiment time","system time","system time text"
"START",0.000000000000000E0,1.673005635262126E9,"2023-01-06 13:47:15.262 UTC+02:00"
"PAUSE",3.239742649998516E1,1.673005667659162E9,"2023-01-06 13:47:47.659 UTC+02:00"
"""
DEVICE_CSV_IOS = '"property","value"\n"deviceModel","iPhone13,4"\n"version","1.1.13"\n'
DEVICE_CSV_IOS += '"fileFormat","1.17"\n'


def _in_dialect(text: str, delimiter: str, decimal: str) -> str:
    """A comma / decimal-point phyphox file in another of the app's CSV choices, the way
    ``DataExport.CsvFormat(separator, decimalPoint)`` writes it (how vendor-formats.md built
    Example 6 from Example 3)."""
    return text.replace(",", delimiter).replace(".", decimal)


@pytest.mark.parametrize("dialect", sorted(app.DIALECTS))
def test_example3_raw_data_in_all_five_dialects(tmp_path, dialect):
    """Example 3 ("Acceleration with g", ``Raw Data.csv``) in each dialect: the same values,
    the Absolute column left out; alone it is refused (one sensor), saying what to export."""
    delimiter, decimal = app.DIALECTS[dialect]
    text = _in_dialect(EXAMPLE_3, delimiter, decimal)
    if dialect == "semicolon-decimal-comma":
        assert text == EXAMPLE_6
    path = _write(tmp_path, {"Raw Data.csv": text}) / "Raw Data.csv"
    ex = _export(path)
    acc = ex.get(SensorKind.ACC)
    assert acc.t_s == pytest.approx(EXAMPLE_3_VALUES[:, 0], abs=1e-12)
    assert acc.xyz == pytest.approx(EXAMPLE_3_VALUES[:, 1:], abs=1e-12)
    assert ex.get(SensorKind.GYRO) is None
    assert any("Absolute acceleration (m/s^2)" in r for r in ex.rules)
    words = {",": "comma", ";": "semicolon", "\t": "tab"}[delimiter]
    assert f"({words}, decimal {'comma' if decimal == ',' else 'point'})" in ex.rules[0]
    with pytest.raises(FormatError, match=r"no gyroscope.*'Acceleration with g'"):
        formats.read(path)


def test_example6_literal_semicolon_decimal_comma(tmp_path):
    path = _write(tmp_path, {"Raw Data.csv": EXAMPLE_6}) / "Raw Data.csv"
    acc = _export(path).get(SensorKind.ACC)
    assert acc.xyz == pytest.approx(EXAMPLE_3_VALUES[:, 1:], abs=1e-12)


def test_semicolon_point_line_from_a_third_party_test(tmp_path):
    text = (
        '"Time (s)";"Acceleration x (m/s^2)";"Acceleration y (m/s^2)";"Acceleration z (m/s^2)"\n'
        "0.000000000E0;3.555450439E-1;3.094482422E-1;1.006282043E1\n"
        "1.000000000E-2;3.555450439E-1;3.094482422E-1;1.006282043E1\n"
    )
    acc = _export(_write(tmp_path, {"Accelerometer.csv": text})).get(SensorKind.ACC)
    assert acc.t_s[0] == 0.0
    assert acc.xyz[0] == pytest.approx([0.3555450439, 0.3094482422, 10.06282043], abs=1e-12)


def test_example4_linear_without_gravity_is_refused_naming_what_to_export(tmp_path):
    path = _write(tmp_path, {"Raw.csv": EXAMPLE_4}) / "Raw.csv"
    lin = _export(path).get(SensorKind.LINEAR_ACC)
    assert lin.xyz[0] == pytest.approx([-4.257187782e-2, -3.667077642e-2, -7.763757527e-2])
    with pytest.raises(FormatError) as err:
        formats.read(path)
    assert str(err.value).startswith(str(path))
    assert "without gravity" in str(err.value) and "Gravity next to Linear Accelerometer" in str(
        err.value
    )


def test_example5_ios_pair_with_meta(tmp_path):
    """Example 5 (iOS, acc and gyro on their own stamps) with the captured ``meta/time.csv``
    and ``meta/device.csv``: iOS from the device file, acceleration x 9.80665/9.81, Unix time
    from START, one sensor interpolated onto the other's stamps inside its span."""
    folder = _write(
        tmp_path / "Gait 2023-01-06 13-47-15",
        {
            "Accelerometer.csv": EXAMPLE_5_ACC,
            "Gyroscope.csv": EXAMPLE_5_GYRO,
            "meta/time.csv": TIME_CSV_IOS,
            "meta/device.csv": DEVICE_CSV_IOS,
        },
    )
    for path in (folder, _zip(folder, tmp_path / "Gait 2023-01-06 13-47-15.zip")):
        rec = formats.read(path)
        assert rec.source.start_epoch_s == 1.673005635262126e9
        rows = {
            name: np.array([[float(v) for v in line.split(",")] for line in text.splitlines()[1:]])
            for name, text in (("acc", EXAMPLE_5_ACC), ("gyro", EXAMPLE_5_GYRO))
        }
        # 4 rows each: the gyroscope's median interval is the shorter, so its stamps are the
        # timeline; its last (87.7 ms) lies after the accelerometer's last (70.1 ms): left out
        t = rows["gyro"][:3, 0]
        assert rec.timestamp_s - 1.673005635262126e9 == pytest.approx(t, abs=1e-6)
        assert rec.imu[:, 3:] == pytest.approx(rows["gyro"][:3, 1:], abs=1e-9)
        acc = np.stack([np.interp(t, rows["acc"][:, 0], rows["acc"][:, c]) for c in (1, 2, 3)], 1)
        # 1e-5: the join interpolates at Unix-second stamps (float64: 2.4e-7 s at 1.7e9 s)
        assert rec.imu[:, :3] == pytest.approx(acc * IOS_SCALE, abs=1e-5)
        assert rec.imu[0, 0] == pytest.approx(10.23817, abs=1e-4)  # 9.910 -> 10.289 at 27.4 ms
        assert any("iPhone13,4 (iOS)" in r for r in rec.source.rules)


# --- 3. every emulated variant against the canonical recording --------------------------------


@pytest.fixture(scope="module")
def walk() -> Recording:
    """12 s of walking from the demo recording (HAPT experiment 1, 50 Hz)."""
    rec = read_recording(REPO / "gaitedge" / "assets" / "demo_hapt.csv")
    keep = (rec.timestamp_s >= 104.0) & (rec.timestamp_s < 116.0)
    return Recording(timestamp_s=rec.timestamp_s[keep], imu=rec.imu[keep])


def _canonical_at(walk: Recording, rec: Recording, platform: str) -> np.ndarray:
    t = rec.timestamp_s - app.START_UNIX_S + walk.timestamp_s[0] + app.LEAD_S[platform]
    return np.stack([np.interp(t, walk.timestamp_s, walk.imu[:, c]) for c in range(6)], axis=1)


@pytest.mark.parametrize("variant", sorted(app.VARIANTS))
def test_variant_reads_back_as_the_canonical_recording(walk, tmp_path, variant):
    """Tolerances: the timeline sensor's own samples come back to 1e-3 (10 significant digits
    in the file; Unix-second stamps in float64 resolve 2.4e-7 s); the other sensor is
    re-interpolated from its own clock onto those stamps (linear of linear: measured RMS 0.2-2.4 %
    of the signal on this walk), held to 5 %. A flipped sign, a swapped axis, a missing g or
    the 9.81 factor (0.034 %: 3e-3 m/s²) each fail."""
    platform = variant.split("-")[0]
    path = app.VARIANTS[variant](walk, tmp_path)
    assert path.suffix == {"zip": ".zip", "xlsx": ".xlsx"}.get(variant.split("-")[-1], "")
    rec = formats.read(path)
    src = rec.source
    assert src.format == "phyphox"
    assert src.start_epoch_s == app.START_UNIX_S
    ref = _canonical_at(walk, rec, platform)
    err = rec.imu - ref
    linear_gravity = "linear-gravity" in variant
    assert np.abs(err[:, :3]).max() < 1e-3
    if linear_gravity:  # linear, gravity and gyroscope share iOS's device-motion stamps
        assert np.abs(err[:, 3:]).max() < 1e-3
    else:
        rms = np.sqrt((err[:, 3:] ** 2).mean(axis=0) / (ref[:, 3:] ** 2).mean(axis=0))
        assert (rms < 0.05).all(), rms
    assert rec.duration_s == pytest.approx(walk.duration_s, abs=0.3)  # clocks start late
    rates = [s.rate_hz for s in src.sensors]
    want = {"android": [408.4, 403.2], "ios": [100.3, 100.3] if linear_gravity else [100.7, 100.3]}
    assert rates == pytest.approx(want[platform], rel=0.01)
    assert any("1 trailing row(s)" in r and "Gyroscope.csv" in r for r in src.rules)
    assert any(("9.80665/9.81" in r) == (platform == "ios") for r in src.rules if "units" in r)


@pytest.mark.parametrize("variant", ["android-semicolon-decimal-comma-zip", "ios-tab-folder"])
def test_variant_bytes_are_the_apps(walk, tmp_path, variant):
    """Headers, number format, padding and final newline as each platform writes them."""
    platform = variant.split("-")[0]
    path = app.VARIANTS[variant](walk, tmp_path)
    with Container(path) as c:
        acc = c.read_text(c.find("Accelerometer.csv")[0])
        gyro = c.read_text(c.find("Gyroscope.csv")[0])
        time_csv = c.read_text(c.find("time.csv")[0])
    if platform == "android":
        assert acc.startswith('"Time (s)";"Acceleration x (m/s^2)";"Acceleration y (m/s^2)";')
        assert gyro.endswith("\n") and gyro.splitlines()[-1].startswith("NaN;")
        assert gyro.splitlines()[-1].endswith(";NaN")
        assert time_csv.splitlines()[1] == (
            '"START";0,000000000E0;1718000000,125;"2024-06-10 08:13:20.125 UTC+02:00"'
        )
    else:
        assert acc.startswith('"Time (s)"\t"X (m/s^2)"\t"Y (m/s^2)"\t"Z (m/s^2)"\n')
        assert acc.splitlines()[1].startswith("-2.")  # the first stamp is negative
        assert not gyro.endswith("\n") and gyro.splitlines()[-1].startswith('""\t')
        assert time_csv.splitlines()[1] == (
            '"START"\t0.000000000000000E0\t1.718000000125000E9\t"2024-06-10 08:13:20.125 UTC+02:00"'
        )
    cells = [c for line in acc.splitlines()[1:] for c in line.replace("\t", ";").split(";")]
    number = re.compile(r"^-?\d[.,]\d{9}E-?[1-9]?\d$")
    assert all(number.match(c) for c in cells), [c for c in cells if not number.match(c)][:3]


# --- 4. bad input ----------------------------------------------------------------------------


def _pair(tmp_path: Path, acc: str = EXAMPLE_5_ACC, gyro: str = EXAMPLE_5_GYRO, **more) -> Path:
    return _write(tmp_path / "export", {"Accelerometer.csv": acc, "Gyroscope.csv": gyro, **more})


def test_text_in_a_number_column(tmp_path):
    gyro = EXAMPLE_5_GYRO.replace("-2.865853012E-1", "n/a")
    with pytest.raises(FormatError, match=r"Gyroscope\.csv:3: column 2 is not a number: 'n/a'"):
        formats.read(_pair(tmp_path, gyro=gyro))


def test_truncated_zip(walk, tmp_path):
    path = app.VARIANTS["ios-comma-zip"](walk, tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=r"truncated or damaged zip") as err:
        formats.read(path)
    assert str(err.value).startswith(str(path))


def test_only_one_sensor_in_a_zip(tmp_path):
    folder = _write(tmp_path / "only", {"Accelerometer.csv": EXAMPLE_5_ACC})
    path = _zip(folder, tmp_path / "only.zip")
    with pytest.raises(FormatError, match=r"^.*only\.zip: .*no gyroscope.*simple experiment"):
        formats.read(path)


def test_wrong_format(tmp_path):
    path = _pair(tmp_path)
    with pytest.raises(FormatError, match="unknown format 'other'"):
        formats.read(path, format="other")
    with pytest.raises(FormatError, match=r"does not look like a gaitedge export"):
        formats.read(path, format="gaitedge")


@pytest.mark.parametrize(
    ("gyro_dialect", "refused"),
    [(("\t", "."), False), ((",", "."), True), (("\t", ","), True), ((";", ","), True)],
)
def test_mixed_dialects_across_files(tmp_path, gyro_dialect, refused):
    """Decided: the app writes one export in one dialect (every set and meta/), so sets in
    different delimiters or decimal separators come from different exports, whose times start
    at different experiments: refused, naming both files. The same dialect reads."""
    acc = _in_dialect(EXAMPLE_5_ACC, "\t", ".")
    path = _pair(tmp_path, acc=acc, gyro=_in_dialect(EXAMPLE_5_GYRO, *gyro_dialect))
    if not refused:
        assert len(formats.read(path)) == 3
        return
    with pytest.raises(FormatError, match=r"Gyroscope\.csv: written in another CSV dialect") as e:
        formats.read(path)
    assert "Accelerometer.csv (tab, decimal .)" in str(e.value)


def test_time_csv_in_another_dialect_is_refused(tmp_path):
    path = _pair(tmp_path, **{"meta/time.csv": TIME_CSV_IOS.replace(",", ";")})
    with pytest.raises(FormatError, match=r"meta/time\.csv: written in another CSV dialect"):
        formats.read(path)


def test_time_going_back_in_a_file(tmp_path):
    """A step back of seconds is two runs in one file (refused at its line); a few ms back is
    jitter, repaired by the join as the live chain does, and counted."""
    row = EXAMPLE_5_GYRO.splitlines()[1].split(",", 1)[1]
    two_runs = f"{EXAMPLE_5_GYRO}\n9.0E0,{row}\n2.0E-1,{row}"
    with pytest.raises(FormatError, match=r"Gyroscope\.csv:7: time goes back from 9\.0+ s to 0\.2"):
        formats.read(_pair(tmp_path / "a", gyro=two_runs))
    jitter = f"{EXAMPLE_5_GYRO}\n8.0E-2,{row}"
    rec = formats.read(_pair(tmp_path / "b", gyro=jitter))
    assert any("Gyroscope.csv: 1 stamp(s) that do not increase" in r for r in rec.source.rules)


def test_time_going_back_in_meta_time(tmp_path):
    bad = TIME_CSV_IOS.replace("1.673005667659162E9", "1.673005600000000E9")
    with pytest.raises(FormatError, match=r"meta/time\.csv:3: time goes back"):
        formats.read(_pair(tmp_path, **{"meta/time.csv": bad}))


def test_nan_before_the_end_is_a_hole_not_padding(tmp_path):
    gyro = EXAMPLE_5_GYRO.replace("2.256933749E-1", "NaN")
    with pytest.raises(FormatError, match=r"Gyroscope\.csv:3: 'Y \(rad/s\)' is empty or NaN"):
        formats.read(_pair(tmp_path, gyro=gyro))


def test_padding_at_the_end_is_trimmed_and_counted(tmp_path):
    gyro = EXAMPLE_5_GYRO + '\n"",-1.0E-1,2.0E-1,""'  # iOS: a longer x and y column
    acc = EXAMPLE_5_ACC + "\nNaN,1.0E1,NaN,NaN"  # Android style NaN
    rec = formats.read(_pair(tmp_path, acc=acc, gyro=gyro))
    assert len(rec) == 3
    assert sum("1 trailing row(s)" in r for r in rec.source.rules) == 2


def test_tab_rows_of_empty_cells_at_the_end_are_padding_not_a_crash(tmp_path):
    """A tab-separated file ending with rows of empty cells (a line of tabs): an IndexError's
    traceback (the line was taken for a blank one after polars had made it a row)."""
    tab = [x.replace(",", "\t") for x in (EXAMPLE_5_ACC, EXAMPLE_5_GYRO)]
    rec = formats.read(_pair(tmp_path, acc=tab[0], gyro=tab[1] + "\n\t\t\t\n\t\t\t"))
    want = formats.read(_pair(tmp_path / "plain", acc=tab[0], gyro=tab[1]))
    np.testing.assert_array_equal(rec.imu, want.imu)
    assert any("2 trailing row(s)" in r for r in rec.source.rules)


def test_two_exports_in_one_folder(tmp_path):
    path = _pair(tmp_path, **{"Accelerometer_2.csv": EXAMPLE_5_ACC})
    with pytest.raises(FormatError, match=r"2 acceleration \(with g\) sets .*one export"):
        formats.read(path)


def test_a_missing_axis_column(tmp_path):
    acc = "\n".join(line.rsplit(",", 1)[0] for line in EXAMPLE_5_ACC.splitlines())
    with pytest.raises(
        FormatError, match=r"Accelerometer\.csv: acceleration \(with g\) .*without z"
    ):
        formats.read(_pair(tmp_path, acc=acc))


def test_not_utf8(tmp_path):
    path = _pair(tmp_path)
    (path / "Gyroscope.csv").write_bytes(EXAMPLE_5_GYRO.encode("utf-8") + b"\n\xff\xfe,1,2,3")
    with pytest.raises(FormatError, match=r"Gyroscope\.csv:6: not UTF-8"):
        formats.read(path)


def test_linear_plus_gravity_joins_and_accelerometer_wins_over_them(walk, tmp_path):
    """iOS Linear Accelerometer + Gravity add up to acceleration with g; with Accelerometer.csv
    also there, that is used and the others are named as not used."""
    rec = formats.read(app.VARIANTS["ios-linear-gravity-zip"](walk, tmp_path))
    assert any(r.startswith("acceleration = ") and "Gravity.csv" in r for r in rec.source.rules)
    linear = EXAMPLE_5_ACC.replace("E0,", "E-1,")  # any values: it is not read
    rec = formats.read(_pair(tmp_path, **{"Linear Accelerometer.csv": linear}))
    assert (rec.imu[:, 0] > 10.0).all()  # Accelerometer.csv's x (10.0-10.6), not ~1.0
    assert any("not used: Linear Accelerometer.csv" in r for r in rec.source.rules)


def test_paused_and_resumed_runs_each_from_their_start(tmp_path):
    """Experiment time runs on through a pause; the wall clock does not: each sample is placed
    from the last START at or before it."""
    time_csv = (
        '"event","experiment time","system time","system time text"\n'
        '"START",0.000000000000000E0,1.673005635262126E9,"2023-01-06 13:47:15.262 UTC+02:00"\n'
        '"PAUSE",5.000000000000000E-2,1.673005635312126E9,"2023-01-06 13:47:15.312 UTC+02:00"\n'
        '"START",5.000000000000000E-2,1.673005645312126E9,"2023-01-06 13:47:25.312 UTC+02:00"\n'
    )
    ex = _export(_pair(tmp_path, **{"meta/time.csv": time_csv}))
    acc = ex.get(SensorKind.ACC)
    gaps = [0.0, 0.0, 10.0, 10.0]  # 9.8 and 29.9 ms before the pause, 50.0 and 70.1 ms after
    want = 1.673005635262126e9 + np.array([9.783166664e-3, 2.989816666e-2, 5.001408333e-2,
                                           7.012908332e-2]) + gaps  # fmt: skip
    assert acc.t_s == pytest.approx(want, abs=1e-6)
    assert any("2 runs (paused, resumed)" in r for r in ex.rules)


# --- 5. the Excel export (the dialog's first choice) -----------------------------------------


def _sheets(path: Path) -> dict[str, list[list]]:
    """Every sheet's rows as gaitedge's workbook reader hands them to the CSV readers."""
    from gaitedge.formats import workbook

    with Container(path) as c:
        book = workbook.WorkbookContainer(c, workbook.kind_of(c))
        return {n[:-4]: [list(r) for r in book._rows(n[:-4])] for n in book.names}


def test_excel_exports_read_as_the_csv_export_whole_and_streamed(walk, tmp_path):
    """Android's own xlsx writer (emulated from ``XlsxWriter.java``), iOS's libxlsxwriter (its
    Python original, XlsxWriter, writes the file) and Android's older HSSF ``.xls`` (xlwt
    writes it): the samples of the same export as CSV (which rounds to 10 significant digits),
    the two Android workbooks identical to each other (full doubles), streamed as read whole."""
    out = {}
    for name, write in (
        ("android-csv", app.VARIANTS["android-comma-zip"]),
        ("android-xlsx", app.VARIANTS["android-xlsx"]),
        ("android-xls", app.write_xls),
        ("ios-csv", app.VARIANTS["ios-comma-zip"]),
        ("ios-xlsx", app.VARIANTS["ios-xlsx"]),
    ):
        (tmp_path / name).mkdir()
        path = write(walk, tmp_path / name)
        out[name] = rec = formats.read(path)
        with formats.open_chunks(path, chunk_samples=500) as stream:
            np.testing.assert_array_equal(np.concatenate([c.imu for c in stream]), rec.imu)
        assert rec.source.format == "phyphox"
        if name == "android-xlsx":  # a download folder holding the workbook alone
            np.testing.assert_array_equal(formats.read(tmp_path / name).imu, rec.imu)
        if "csv" not in name:
            book = "xls" if name.endswith("xls") else "xlsx"
            assert rec.source.rules[0].endswith(f"export; Excel (.{book}), a sheet per set")
            assert rec.source.rules[1].startswith("units: the Metadata Device sheet says")
    np.testing.assert_array_equal(out["android-xls"].imu, out["android-xlsx"].imu)
    np.testing.assert_array_equal(out["android-xls"].timestamp_s, out["android-xlsx"].timestamp_s)
    for platform in ("android", "ios"):
        excel, csv = out[f"{platform}-xlsx"], out[f"{platform}-csv"]
        assert len(excel) == len(csv) > 1000
        # the timeline sensor's own samples to the CSV's rounding; the other sensor is
        # interpolated onto those stamps, which the CSV rounds (up to 1e-5 rad/s here)
        np.testing.assert_allclose(excel.imu[:, :3], csv.imu[:, :3], rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(excel.imu[:, 3:], csv.imu[:, 3:], rtol=0, atol=1e-4)
        np.testing.assert_allclose(excel.timestamp_s, csv.timestamp_s, rtol=0, atol=1e-6)
        assert excel.source.start_epoch_s == app.START_UNIX_S  # the Metadata Time sheet


def test_excel_sheets_read_as_a_third_party_reader_reads_them(walk, tmp_path):
    """openpyxl (the package index's xlsx reader) reads the same cells from both xlsx files
    (phyphox's own writer's, emulated, and libxlsxwriter's, written by its Python original):
    numbers as numbers, phyphox's ``NaN`` padding as text, iOS's as an empty cell."""
    import openpyxl

    for variant in ("android-xlsx", "ios-xlsx"):
        (tmp_path / variant).mkdir()
        path = app.VARIANTS[variant](walk, tmp_path / variant)
        ours = _sheets(path)
        book = openpyxl.load_workbook(path, read_only=True)
        theirs = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in book}
        book.close()
        assert list(ours) == list(theirs) == [
            "Accelerometer", "Gyroscope", "Metadata Device", "Metadata Time"
        ]  # fmt: skip
        for name, rows in theirs.items():
            width = max(len(r) for r in rows)
            padded = [r + [None] * (width - len(r)) for r in ours[name]]
            assert padded == [[None if v is None else v for v in r] for r in rows], name
        last = ours["Gyroscope"][-1]
        assert last[0] == ("NaN" if variant == "android-xlsx" else None)  # the padded row
        assert ours["Metadata Time"][1][:2] == ["START", 0.0]


def test_a_damaged_or_foreign_workbook_is_one_line(walk, tmp_path):
    path = app.VARIANTS["android-xlsx"](walk, tmp_path)
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatError, match="truncated or damaged zip"):
        formats.read(cut)
    import xlsxwriter

    other = tmp_path / "budget.xlsx"
    book = xlsxwriter.Workbook(str(other))
    book.add_worksheet("Costs").write_row(0, 0, ["item", "EUR"])
    book.close()
    with pytest.raises(FormatError, match=r"not a format gaitedge knows \(Costs\.csv\)"):
        formats.read(other)
    text = tmp_path / "text.xlsx"
    book = xlsxwriter.Workbook(str(text))
    sheet = book.add_worksheet("Accelerometer")
    sheet.write_row(0, 0, ["Time (s)", "Acceleration x (m/s^2)", "Acceleration y (m/s^2)",
                           "Acceleration z (m/s^2)"])  # fmt: skip
    sheet.write_row(1, 0, [0.01, 0.1, 9.8, 0.2])
    sheet.write_row(2, 0, [0.02, "abc", 9.8, 0.2])
    book.close()
    with pytest.raises(FormatError, match=r"text\.xlsx:Accelerometer\.csv:3: .*not a number"):
        formats.read(text, options=ReadOptions(accelerometer_only=True))


@pytest.mark.parametrize("part", ["header", "data"])
def test_a_workbook_with_a_damaged_sheet_is_one_line(walk, tmp_path, part):
    """The Excel export with its accelerometer sheet damaged (its local header: BadZipFile when
    opened; its deflated data: zlib.error or a CRC mismatch as it inflates) is refused naming
    the workbook, whole and streamed (these escaped as zipfile and zlib errors)."""
    from gaitedge.formats import open_chunks
    from tests.conftest import damage_zip_member

    path = app.VARIANTS["android-xlsx"](walk, tmp_path)
    with zipfile.ZipFile(path) as z:
        sheet = next(n for n in z.namelist() if n.startswith("xl/worksheets/"))
    bad = damage_zip_member(path, sheet, tmp_path / "damaged.xlsx", part=part)
    with pytest.raises(FormatError, match=r"damaged\.xlsx"):
        formats.read(bad)
    with pytest.raises(FormatError, match=r"damaged\.xlsx"):
        for _ in open_chunks(bad):
            pass


def test_workbook_rows_match_openpyxl_across_blocks(tmp_path):
    """The sheet reader against openpyxl on what writers do beyond phyphox's own files: shared
    strings, cell references with gaps, rows left out, escaped text; and phyphox's writer's
    rows of numbers (read in one pass) broken by rows of text in the middle of a sheet, across
    the reader's 1 MiB blocks."""
    import openpyxl

    rng = np.random.default_rng(3)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Data"
    sheet.append(["Time (s)", "x & y", 'a "b", c'])
    for i in range(20_000):
        sheet.append([i / 100, float(rng.normal()), float(rng.normal())])
    sheet.cell(row=20_003, column=1, value=1.5)
    sheet.cell(row=20_003, column=3, value="gap")  # B left out; row 20 002 too
    for i in range(10):
        sheet.append([float(i), None, 2.0])
    written = tmp_path / "openpyxl.xlsx"
    book.save(written)

    rows = [["Time (s)", "X", "Y"]] + [
        [i / 100, float(rng.normal()), 1e-5 * i] for i in range(30_000)
    ]
    rows[15_000] = ["NaN", "NaN", 0.5]
    minimal = tmp_path / "minimal.xlsx"
    app._write_phyphox_xlsx(minimal, {"Sheet A": rows})

    for path in (written, minimal):
        theirs = openpyxl.load_workbook(path, read_only=True)
        want = [list(r) for r in theirs.worksheets[0].iter_rows(values_only=True)]
        theirs.close()
        got = next(iter(_sheets(path).values()))
        width = max(len(r) for r in want)
        pad = [r + [None] * (width - len(r)) for r in got]
        assert len(pad) == len(want) > 20_000
        mismatch = [i for i, (a, b) in enumerate(zip(pad, want, strict=True)) if a != b]
        assert not mismatch, (mismatch[:3], pad[mismatch[0]], want[mismatch[0]])


def test_referenced_rows_are_read_in_one_pass_only_when_whole():
    """libxlsxwriter's rows of numbers become CSV lines at once only when each row follows the
    one before and fills every column from A; otherwise the sheet is read cell by cell."""
    from gaitedge.formats.workbook import _referenced_csv

    def row(n: int, cells: str = "ABC") -> str:
        body = "".join(f'<c r="{c}{n}"><v>{n}.{i}</v></c>' for i, c in enumerate(cells))
        return f'<row r="{n}" spans="1:3">{body}</row>'

    assert _referenced_csv(row(2) + row(3), 2, 3) == "2.0,2.1,2.2\n3.0,3.1,3.2\n"
    assert _referenced_csv(row(2) + row(4), 2, 3) is None  # a row left out
    assert _referenced_csv(row(2) + row(2), 2, 3) is None  # a row twice
    assert _referenced_csv(row(3), 2, 3) is None  # not where the sheet is
    assert _referenced_csv(row(2) + row(3, "AC"), 2, 3) is None  # a cell left out
    assert _referenced_csv(row(2, "ABD"), 2, 3) is None  # past the header's columns
    assert _referenced_csv(row(2).replace("<c r=", '<c s="2" r=', 1), 2, 3) is None  # styled


def test_a_workbook_with_namespace_prefixes_reads_the_same(walk, tmp_path):
    """Writers that prefix the spreadsheet namespace (``<x:row>``, ``<x:c>``: the .NET SDK's
    habit) give the same rows, read cell by cell."""
    path = app.VARIANTS["android-xlsx"](walk, tmp_path)
    prefixed = tmp_path / "prefixed.xlsx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(prefixed, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.startswith("xl/worksheets/"):
                text = data.decode()
                text = text.replace('xmlns="', 'xmlns:x="', 1)
                text = re.sub(r"<(/?)(worksheet|sheetData|row|c|v|is|t)\b", r"<\1x:\2", text)
                data = text.encode()
            dst.writestr(item, data)
    want, got = _sheets(path), _sheets(prefixed)
    assert got == want and len(got["Accelerometer"]) > 1000
    np.testing.assert_array_equal(formats.read(prefixed).imu, formats.read(path).imu)


@pytest.mark.parametrize(
    "name", ["phyphox_ios-walk-pdr-loop", "phyphox_android-walk-semicolon-oneplus"]
)
def test_a_header_a_spreadsheet_unquoted_reads_as_phyphox_wrote_it(wild_exports, tmp_path, name):
    """Real exports whose CSV headers lost their quotes (Excel, LibreOffice, pandas re-save):
    'no accelerometer in this phyphox export' (one file) or 'not a format gaitedge knows'
    (both), telling the user to record again. Read as the untouched export is."""
    folder = tmp_path / name
    shutil.copytree(wild_exports / name, folder)
    for member in folder.glob("*.csv"):
        lines = member.read_bytes().split(b"\n")
        lines[0] = lines[0].replace(b'"', b"")
        member.write_bytes(b"\n".join(lines))
    got, want = formats.read(folder), formats.read(wild_exports / name)
    assert got.source.format == "phyphox" and len(got) == len(want) > 1000
    np.testing.assert_array_equal(got.imu, want.imu)
    np.testing.assert_array_equal(got.timestamp_s, want.timestamp_s)
