"""Any other CSV through a layout (``gaitedge.formats.generic``): the layout grammar, the
remembered layouts, a real phyphox export read as plain CSV files, and the demo recording
written in other units, names, clocks and signs read back to the canonical signal."""

from __future__ import annotations

import json
import os
import re
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.exports._common import gravity_split
from gaitedge.demo import DEMO_RECORDING as DEMO
from gaitedge.formats import Container, FormatError, ReadOptions, SensorKind, read
from gaitedge.formats import generic as gen
from gaitedge.formats.join import Convention
from gaitedge.recording import read_recording
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G

BASIC = "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:deg/s"
PDR = "phyphox_ios-walk-pdr-loop"
# phyphox iOS names its columns "X (m/s^2)" in every file: the sensor comes from the file.
PDR_LAYOUT = (
    'acc_file=Accelerometer.csv gyro_file=Gyroscope.csv time="Time (s)":s '
    'acc="X (m/s^2)","Y (m/s^2)","Z (m/s^2)":m/s^2 gyro="X (rad/s)","Y (rad/s)","Z (rad/s)":rad/s'
)


@pytest.fixture(autouse=True)
def _private_layouts(tmp_path, monkeypatch):
    monkeypatch.setenv("GAITEDGE_LAYOUTS", str(tmp_path / "cfg" / "layouts.json"))


@pytest.fixture(scope="module")
def demo():
    return read_recording(DEMO)


def _at(path: Path, rest: str) -> str:
    """A regex for a message that starts with ``path``."""
    return "^" + re.escape(str(path)) + rest


def _read(path: Path, layout: str, **kw):
    """The whole read; streamed too (blocks of 4 KiB: dozens per file), which must give the
    same samples bit for bit, or the same refusal (line numbers too, with or without a header)."""
    import gaitedge.formats.table as table
    from gaitedge.formats import open_chunks

    options = ReadOptions(layout=layout, **kw)
    try:
        whole = read(path, format="csv", options=options)
    except FormatError as exc:
        with pytest.MonkeyPatch.context() as mp, pytest.raises(FormatError) as streamed:
            mp.setattr(table, "BLOCK_BYTES", 4096)
            list(open_chunks(path, format="csv", options=options))

        # The same refusal; a figure judged on the data (a median |acc|) is the first block's
        # when streamed: the same words, line numbers included, the decimals may differ.
        def said(e: Exception) -> str:
            return re.sub(r"\d+\.\d+", "#", str(e))

        assert said(streamed.value) == said(exc)
        raise
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(table, "BLOCK_BYTES", 4096)
        stream = open_chunks(path, format="csv", options=options)
        chunks = list(stream)
    assert stream.streamed
    assert stream.start_epoch_s == whole.source.start_epoch_s
    np.testing.assert_array_equal(
        np.concatenate([c.timestamp_s for c in chunks]), whole.timestamp_s
    )
    np.testing.assert_array_equal(np.concatenate([c.imu for c in chunks]), whole.imu)
    return whole


def _write(path: Path, header: list[str], rows: np.ndarray, fmt: str, delim: str = ",") -> Path:
    body = "\n".join(delim.join(fmt % v for v in row) for row in rows)
    path.write_text(delim.join(header) + "\n" + body + "\n")
    return path


# --- the grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "seconds"), [("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("MS", 1e-3)]
)
def test_time_units(unit, seconds):
    layout = gen.parse_layout(f"time=t:{unit} acc=a,b,c:g gyro=d,e,f:rad/s")
    assert layout.time_column == "t"
    assert layout.time_unit.seconds == seconds
    assert layout.rate_hz is None


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("m/s^2", "m/s^2"),
        ("m/s2", "m/s^2"),
        ("m/s²", "m/s^2"),
        ("g", "g"),
        ("G", "g"),
        ("mg", "mg"),
        ("mG", "mg"),
    ],
)
def test_accel_units(written, stored):
    layout = gen.parse_layout(f"rate_hz=50 acc=a,b,c:{written} gyro=d,e,f:rad/s")
    assert layout.acc.unit == stored
    assert layout.rate_hz == 50.0


@pytest.mark.parametrize(
    ("written", "stored"), [("rad/s", "rad/s"), ("deg/s", "deg/s"), ("dps", "deg/s")]
)
def test_gyro_units(written, stored):
    assert gen.parse_layout(f"rate_hz=50 acc=a,b,c:g gyro=d,e,f:{written}").gyro.unit == stored


def test_sign_gravity_files_and_dialect():
    layout = gen.parse_layout(
        "time=#1:s linacc=#2,#3,#4:m/s^2 gravity=#5,#6,#7:g gyro=#8,#9,#10:rad/s sign=ios "
        "header=no delimiter=semicolon decimal=comma skip=2 file=log.txt gyro_file=g.txt"
    )
    assert layout.sign is Convention.IOS
    assert layout.acc_with_gravity is False
    assert layout.gravity.columns == ("#5", "#6", "#7") and layout.gravity.unit == "g"
    assert (layout.acc.file, layout.gravity.file, layout.gyro.file) == ("log.txt",) * 2 + ("g.txt",)
    assert (layout.delimiter, layout.decimal, layout.skip_lines) == (";", ",", 2)
    assert layout.has_header is False
    assert [k for k, _ in layout.sensors()] == [
        SensorKind.LINEAR_ACC,
        SensorKind.GYRO,
        SensorKind.GRAVITY,
    ]
    assert gen.parse_layout(BASIC).sign is Convention.ANDROID  # the default


def test_quoted_names_and_round_trips():
    layout = gen.parse_layout(PDR_LAYOUT + " sign=ios delimiter=tab")
    assert layout.acc.columns == ("X (m/s^2)", "Y (m/s^2)", "Z (m/s^2)")
    assert layout.acc.file == "Accelerometer.csv" and layout.gyro.file == "Gyroscope.csv"
    assert layout.delimiter == "\t"
    assert gen.parse_layout(layout.to_string()) == layout
    assert gen.Layout.from_json(layout.to_json()) == layout
    headerless = gen.parse_layout("rate_hz=52.5 acc=#1,#2,#3:mg gyro=#4,#5,#6:dps header=no")
    assert gen.parse_layout(headerless.to_string()) == headerless
    assert gen.Layout.from_json(headerless.to_json()) == headerless


MALFORMED = {
    "empty": ("", "empty layout"),
    "no time": ("acc=a,b,c:g gyro=d,e,f:rad/s", "either a time column"),
    "time and rate": (f"{BASIC} rate_hz=50", "either a time column"),
    "time unit missing": ("time=t acc=a,b,c:g gyro=d,e,f:rad/s", "time=t needs its unit"),
    "time unit unknown": ("time=t:min acc=a,b,c:g gyro=d,e,f:rad/s", "time unit 'min'"),
    "no acc": ("time=t:s gyro=d,e,f:rad/s", "no acc="),
    "no gyro": ("time=t:s acc=a,b,c:g", "no gyro="),
    "two columns": ("time=t:s acc=a,b:g gyro=d,e,f:rad/s", "three columns"),
    "acc unit missing": ("time=t:s acc=a,b,c gyro=d,e,f:rad/s", "needs its unit"),
    "acc unit unknown": ("time=t:s acc=a,b,c:furlong gyro=d,e,f:rad/s", "unit 'furlong'"),
    "gyro in g": ("time=t:s acc=a,b,c:g gyro=d,e,f:g", "gyro= unit 'g' is not one of rad/s"),
    "acc in deg/s": ("time=t:s acc=a,b,c:deg/s gyro=d,e,f:rad/s", "acc= unit 'deg/s'"),
    "linacc alone": ("time=t:s linacc=a,b,c:g gyro=d,e,f:rad/s", "name the gravity columns"),
    "gravity with acc": (f"{BASIC} gravity=p,q,r:g", "only read with linacc="),
    "acc and linacc": (f"{BASIC} linacc=p,q,r:g", "not both"),
    "gravity file alone": (f"{BASIC} gravity_file=g.csv", "gravity_file= without gravity="),
    "sign": (f"{BASIC} sign=upside", "sign=upside is not android or ios"),
    "rate zero": ("rate_hz=0 acc=a,b,c:g gyro=d,e,f:rad/s", "positive number of Hz"),
    "rate text": ("rate_hz=fast acc=a,b,c:g gyro=d,e,f:rad/s", "rate_hz=fast is not a number"),
    "delimiter": (f"{BASIC} delimiter=pipe", "delimiter=pipe is not one of"),
    "decimal": (f"{BASIC} decimal=dot", "decimal=dot is not one of"),
    "decimal comma, comma": (f"{BASIC} decimal=comma delimiter=comma", "other than comma"),
    "skip negative": (f"{BASIC} skip=-1", "skip=-1 is not a number of lines"),
    "header": (f"{BASIC} header=maybe", "header=maybe is not yes or no"),
    "header=no by name": (f"{BASIC} header=no", "name columns by position"),
    "column #0": ("time=#1:s acc=#0,#2,#3:g gyro=#4,#5,#6:rad/s", "counted from #1"),
    # A long-format file (one sensor per row, the same x,y,z columns) read as both sensors.
    "acc and gyro the same columns": (
        "time=ms:ms acc=x,y,z:g gyro=x,y,z:deg/s",
        "column x is named twice (acc and gyro)",
    ),
    "one column twice": (
        "time=t:s acc=a,b,c:g gyro=x,y,x:deg/s",
        "column x is named twice (gyro)",
    ),
    "time as an axis": (
        "time=t:s acc=a,b,t:g gyro=d,e,f:rad/s",
        "column t is named twice (time and acc)",
    ),
    "unknown key": (f"{BASIC} tme=t:s", "unknown key 'tme'"),
    "repeated key": (f"{BASIC} sign=ios sign=android", "sign= given twice"),
    "not key=value": (f"{BASIC} ios", "'ios' is not KEY=VALUE"),
    "unbalanced quote": ('time="Time (s):s acc=a,b,c:g gyro=d,e,f:rad/s', "No closing quotation"),
}


@pytest.mark.parametrize(("text", "message"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_layouts(text, message):
    with pytest.raises(gen.LayoutError) as err:
        gen.parse_layout(text)
    assert str(err.value).startswith("layout: ")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_layout_file_plain_and_structured(tmp_path):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"time": "ts:ms", "acc": "ax,ay,az:g", "gyro": "gx,gy,gz:dps"}))
    assert gen.load_layout(str(plain)) == gen.parse_layout(BASIC)
    structured = tmp_path / "structured.json"
    structured.write_text(
        json.dumps(
            {
                "time": {"column": "t, ms", "unit": "ms"},
                "acc": {"columns": ["a,x", "a,y", "a,z"], "unit": "g", "file": "acc.csv"},
                "gyro": {"columns": ["gx", "gy", "gz"], "unit": "deg/s"},
                "header": True,
                "skip": 1,
            }
        )
    )
    layout = gen.load_layout(str(structured))
    assert layout.acc.columns == ("a,x", "a,y", "a,z")  # commas only the JSON form can hold
    assert layout.acc.file == "acc.csv" and layout.gyro.file is None
    assert layout.time_column == "t, ms" and layout.skip_lines == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"time": "ts:ms",\n "acc": }')
    with pytest.raises(gen.LayoutError, match=_at(bad, r":2: not JSON")):
        gen.load_layout(str(bad))
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(gen.LayoutError, match="a layout is a JSON object, not list"):
        gen.load_layout(str(tmp_path / "list.json"))
    with pytest.raises(gen.LayoutError, match="no such layout file"):
        gen.load_layout(str(tmp_path / "absent.json"))


# --- remembered layouts ----------------------------------------------------------------------


def test_save_and_load_by_name(tmp_path):
    path = gen.save_layout("homemade", BASIC + " sign=ios")
    assert path == tmp_path / "cfg" / "layouts.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert gen.load_layout("homemade") == gen.parse_layout(BASIC + " sign=ios")
    phy = gen.parse_layout(PDR_LAYOUT)
    gen.save_layout("phyphox-plain", phy)
    gen.save_layout("homemade", BASIC)  # replaced, the other kept
    assert gen.list_layouts() == {"homemade": gen.parse_layout(BASIC), "phyphox-plain": phy}
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["layouts.json"]  # no temp left
    assert json.loads(path.read_text())["layouts"]["homemade"]["acc"]["unit"] == "g"


def test_saved_layout_errors(tmp_path):
    with pytest.raises(gen.LayoutError, match=r"layout 'walk': not a layout string .*none yet"):
        gen.load_layout("walk")
    gen.save_layout("run", BASIC)
    with pytest.raises(gen.LayoutError, match=r"saved in .*layouts\.json: run\)"):
        gen.load_layout("walk")
    for name in ("a b", "x=y", "walk.json", "", "-x"):
        with pytest.raises(gen.LayoutError, match="layout name"):
            gen.save_layout(name, BASIC)
    store = tmp_path / "cfg" / "layouts.json"
    store.write_text("{not json")
    with pytest.raises(gen.LayoutError, match=_at(store, r": not a readable layouts file")):
        gen.load_layout("run")
    with pytest.raises(gen.LayoutError):  # a broken store is never overwritten
        gen.save_layout("other", BASIC)
    assert store.read_text() == "{not json"


# --- a real export read as plain CSV files ---------------------------------------------------


def test_detect_never_guesses(wild_exports):
    for path in (wild_exports / PDR, wild_exports / PDR / "Accelerometer.csv", DEMO):
        with Container(path) as c:
            assert gen.detect(c) is None


def test_phyphox_files_through_a_layout(wild_exports, tmp_path):
    folder = wild_exports / PDR
    zipped = tmp_path / "pdr.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for name in ("Accelerometer.csv", "Gyroscope.csv", "Magnetometer.csv"):
            z.write(folder / name, f"pdr/{name}")
    for path in (folder, zipped):
        with Container(path) as c:
            export = gen.read(c, ReadOptions(layout=PDR_LAYOUT))
        acc, gyro = export.get(SensorKind.ACC), export.get(SensorKind.GYRO)
        # The files' first data lines, literally:
        # 3.446083327E-3,-4.806504822E-1,1.707798615E0,9.449848938E0
        # 1.958608333E-2,1.314016283E-1,1.265425533E-1,7.930336893E-2
        assert acc.t_s[0] == 3.446083327e-3 and gyro.t_s[0] == 1.958608333e-2
        assert acc.xyz[0].tolist() == [-4.806504822e-1, 1.707798615, 9.449848938]
        assert gyro.xyz[0].tolist() == [1.314016283e-1, 1.265425533e-1, 7.930336893e-2]
        # No final newline in either file (README): the last rows are still read.
        assert (len(acc.t_s), len(gyro.t_s)) == (10577, 10575)
        assert gyro.xyz[-1].tolist() == [4.733432531e-1, 9.727308154e-2, -5.550370365e-2]
        assert export.start_epoch_s is None  # seconds since the experiment started
        rec = _read(path, PDR_LAYOUT)
        assert len(rec) == 10574  # 2 acc rows before the gyroscope starts, 1 after it ends
        assert rec.median_rate_hz == pytest.approx(100.67, abs=0.01)
        norm = np.linalg.norm(rec.imu[:, :3], axis=1)
        assert np.median(norm) == pytest.approx(9.76, abs=0.02)
        # Held in front, screen up: phyphox writes Android's sign on iOS, +g on z.
        assert np.median(rec.imu[:, 2]) == pytest.approx(9.52, abs=0.02)
        assert any("3 samples outside the span" in r for r in rec.source.rules)
        assert any(r.startswith("files: ") and "Gyroscope.csv" in r for r in rec.source.rules)
        unread = "files not named by the layout, not read: "
        assert [r for r in rec.source.rules if r.startswith(unread)] == [
            unread + ("pdr/" if path == zipped else "") + "Magnetometer.csv"
        ]
    flipped = _read(folder, PDR_LAYOUT + " sign=ios")
    np.testing.assert_array_equal(flipped.imu[:, :3], -rec.imu[:, :3])
    np.testing.assert_array_equal(flipped.imu[:, 3:], rec.imu[:, 3:])
    assert any(r.startswith("sign: ios (layout)") for r in flipped.source.rules)


def test_phyphox_file_alone_needs_its_folder(wild_exports):
    acc = wild_exports / PDR / "Accelerometer.csv"
    with pytest.raises(
        FormatError, match=_at(acc, r": the layout reads gyro from 'Gyroscope.csv'")
    ):
        _read(acc, PDR_LAYOUT)
    without_files = PDR_LAYOUT.split(" ", 2)[2]
    with pytest.raises(FormatError, match=r"holds 3 CSV files .*name the one to read"):
        _read(wild_exports / PDR, without_files)
    with pytest.raises(FormatError, match=r"no file 'Gyro.csv' \(the layout's gyro\)"):
        _read(wild_exports / PDR, PDR_LAYOUT.replace("Gyroscope.csv", "Gyro.csv"))


# --- the demo recording written the ways homemade loggers write it ---------------------------

# The demo prints 5 decimals; the files below print acceleration in g with 7 decimals
# (half a unit: 5e-8 g = 4.9e-7 m/s²) and rotation in deg/s with 6 (5e-7 deg/s = 8.7e-9 rad/s).
ACC_ATOL = 1e-6
GYRO_ATOL = 1e-8


def _assert_canonical(rec, demo, t_atol=1e-9):
    assert len(rec) == len(demo)
    np.testing.assert_allclose(rec.timestamp_s - rec.timestamp_s[0], demo.timestamp_s, atol=t_atol)
    np.testing.assert_allclose(rec.imu[:, :3], demo.imu[:, :3], rtol=0, atol=ACC_ATOL)
    np.testing.assert_allclose(rec.imu[:, 3:], demo.imu[:, 3:], rtol=0, atol=GYRO_ATOL)


def test_the_demo_itself_text_column_left_alone(demo):
    # demo_hapt.csv has a text column (label) the layout does not name: not read, and said so.
    layout = "time=timestamp_s:s acc=acc_x,acc_y,acc_z:m/s^2 gyro=gyro_x,gyro_y,gyro_z:rad/s"
    rec = _read(DEMO, layout)
    np.testing.assert_array_equal(rec.imu, demo.imu)
    np.testing.assert_array_equal(rec.timestamp_s, demo.timestamp_s)
    assert f"{DEMO}: columns not named by the layout, not read: label" in rec.source.rules
    assert str(gen.parse_layout(layout)) == layout  # what `gaitedge formats` lists


def test_gaitedge_csv_quoted_by_a_spreadsheet_is_still_detected(demo, tmp_path):
    """gaitedge's own CSV saved with every cell quoted (a spreadsheet, pandas' QUOTE_ALL) is
    detected as such and reads the same samples, whole and streamed (it was "not a format
    gaitedge knows")."""
    import csv

    from gaitedge.formats import open_chunks

    rows = list(csv.reader(DEMO.read_text().splitlines()))
    quoted = tmp_path / "quoted.csv"
    with quoted.open("w", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL).writerows(rows)
    assert quoted.read_text().startswith('"timestamp_s","acc_x"')
    rec = read(quoted)
    assert rec.source.format == "gaitedge"
    np.testing.assert_array_equal(rec.imu, demo.imu)
    np.testing.assert_array_equal(rec.timestamp_s, demo.timestamp_s)
    streamed = np.concatenate([c.imu for c in open_chunks(quoted)])
    np.testing.assert_array_equal(streamed, demo.imu)


def test_a_layout_is_used_without_format_csv_and_refused_beside_another(demo):
    """A layout given is the CSV it describes: read with it without --format csv (it was left
    unused, unchecked, beside the detected format), and refused beside another --format."""
    from gaitedge.formats import open_chunks

    layout = "time=timestamp_s:s acc=acc_z,acc_y,acc_x:m/s^2 gyro=gyro_x,gyro_y,gyro_z:rad/s"
    options = ReadOptions(layout=layout)
    rec = read(DEMO, options=options)
    assert rec.source.format == "csv"
    np.testing.assert_array_equal(rec.imu[:, :3], demo.imu[:, 2::-1])  # the layout's axes
    streamed = np.concatenate([c.imu for c in open_chunks(DEMO, options=options)])
    np.testing.assert_array_equal(streamed, rec.imu)
    with pytest.raises(FormatError, match="unknown key 'garbage'"):
        read(DEMO, options=ReadOptions(layout="garbage=="))
    with pytest.raises(FormatError, match="does not apply to --format gaitedge"):
        read(DEMO, format="gaitedge", options=options)


def test_ios_sign_g_deg_s_ms_semicolon_decimal_comma(demo, tmp_path):
    acc_g = -demo.imu[:, :3] / G  # iOS: flat reads -1 g on z
    gyro_dps = np.rad2deg(demo.imu[:, 3:])
    # z, y, x order in the file: read by name, never by position.
    rows = np.column_stack([demo.timestamp_s * 1e3, acc_g[:, ::-1], gyro_dps[:, ::-1]])
    text = "\n".join(
        ";".join([f"{r[0]:.3f}"] + [f"{v:.7f}" for v in r[1:4]] + [f"{v:.6f}" for v in r[4:]])
        for r in rows
    ).replace(".", ",")
    path = tmp_path / "phone.csv"
    path.write_text("Zeit [ms];AccZ;AccY;AccX;GyrZ;GyrY;GyrX\n" + text + "\n")
    layout = (
        'time="Zeit [ms]":ms acc=AccX,AccY,AccZ:g gyro=GyrX,GyrY,GyrZ:deg/s sign=ios '
        "delimiter=semicolon decimal=comma"
    )
    rec = _read(path, layout)
    _assert_canonical(rec, demo)
    assert rec.imu[0, 0] == pytest.approx(9.95647, abs=ACC_ATOL)  # the demo's first line
    assert rec.source.format == "csv"
    assert rec.source.sensors[0].unit == "g" and rec.source.sensors[1].unit == "deg/s"
    assert "time: column Zeit [ms] in ms" in rec.source.rules
    # Sniffed instead of given: the same numbers.
    sniffed = _read(path, layout.replace(" delimiter=semicolon decimal=comma", ""))
    np.testing.assert_array_equal(sniffed.imu, rec.imu)


def test_two_files_epoch_ns_mg(demo, tmp_path):
    t0_ns = 1_700_000_000_000_000_000
    t_ns = t0_ns + np.round(demo.timestamp_s * 1e9).astype(np.int64)
    folder = tmp_path / "logger"
    folder.mkdir()
    acc = np.column_stack([t_ns.astype(object), demo.imu[:, :3] / G * 1000])
    (folder / "acc.csv").write_text(
        "stamp,x_mg,y_mg,z_mg\n"
        + "\n".join(f"{r[0]},{r[1]:.4f},{r[2]:.4f},{r[3]:.4f}" for r in acc)
    )  # no final newline
    gyro = demo.imu[:, 3:]
    (folder / "gyro.csv").write_text(
        "stamp,wx,wy,wz\n"
        + "\n".join(f"{t},{x:.8f},{y:.8f},{z:.8f}" for t, (x, y, z) in zip(t_ns, gyro, strict=True))
        + "\n"
    )
    layout = (
        "time=stamp:ns acc=x_mg,y_mg,z_mg:mg gyro=wx,wy,wz:rad/s acc_file=acc.csv "
        "gyro_file=gyro.csv"
    )
    rec = _read(folder, layout)
    # Epoch ns in float64 keep about 0.25 us; mg with 4 decimals: 5e-5 mg = 4.9e-7 m/s².
    _assert_canonical(rec, demo, t_atol=1e-6)
    assert rec.timestamp_s[0] == pytest.approx(1.7e9, abs=1e-6)
    assert rec.source.start_epoch_s == pytest.approx(1.7e9, abs=1e-6)
    assert any("epoch (starts 2023-11-14T22:13:20" in r for r in rec.source.rules)
    assert [s.where for s in rec.source.sensors] == [
        str(folder / "acc.csv"),
        str(folder / "gyro.csv"),
    ]


def test_without_gravity_plus_gravity(demo, tmp_path):
    linear, gravity = gravity_split(demo.timestamp_s, demo.imu[:, :3])
    rows = np.column_stack([demo.timestamp_s, linear, gravity, demo.imu[:, 3:]])
    header = ["t", "lx", "ly", "lz", "gx", "gy", "gz", "rx", "ry", "rz"]
    path = _write(tmp_path / "fused.csv", header, rows, "%.9f")
    layout = "time=t:s linacc=lx,ly,lz:m/s^2 gravity=gx,gy,gz:m/s^2 gyro=rx,ry,rz:rad/s"
    rec = _read(path, layout)
    _assert_canonical(rec, demo)  # 9 decimals: the sum is within 1e-9 of the demo
    assert any(
        r.startswith("acceleration = ") and "(without gravity)" in r for r in rec.source.rules
    )


def test_headerless_rate_tab_skip(demo, tmp_path):
    # A serial logger: a title and a blank line, no header, tabs, no time column; gyroscope
    # first, acceleration in m/s² after it.
    body = "\n".join("\t".join(f"{v:.6f}" for v in np.r_[row[3:], row[:3]]) for row in demo.imu)
    path = tmp_path / "serial.log"
    path.write_text("my logger v0.1\n\n" + body + "\n")
    layout = "rate_hz=50 gyro=#1,#2,#3:rad/s acc=#4,#5,#6:m/s^2 header=no skip=2"
    rec = _read(path, layout)
    np.testing.assert_allclose(rec.timestamp_s, np.arange(len(demo)) / 50.0, atol=1e-12)
    np.testing.assert_allclose(rec.imu, demo.imu, rtol=0, atol=5e-7)
    assert "time: no column; row i at i / 50 Hz (layout)" in rec.source.rules
    # Line numbers in messages are the file's own, also without a header.
    lines = path.read_text().splitlines()
    lines[9] = lines[9].replace(lines[9].split("\t")[4], "oops", 1)
    path.write_text("\n".join(lines))
    with pytest.raises(FormatError, match=_at(path, r":10: column 5 is not a number: 'oops'")):
        _read(path, layout)
    lines[9] = "\t".join(["", *lines[10].split("\t")[1:]])
    path.write_text("\n".join(lines))
    with pytest.raises(FormatError, match=_at(path, r":10: gyro has 1 of 3 cells empty")):
        _read(path, layout)


def test_a_byte_order_mark_with_and_without_a_header(demo, tmp_path):
    """A BOM before the header, or before the first row of a headerless file: never part of a
    name or a number (read whole and streamed alike, by _read)."""
    rows = "\n".join(
        ",".join(f"{v:.6f}" for v in np.r_[t, row])
        for t, row in zip(demo.timestamp_s, demo.imu, strict=True)
    )
    with_header = tmp_path / "h.csv"
    with_header.write_bytes(b"\xef\xbb\xbf" + ("t,ax,ay,az,gx,gy,gz\n" + rows + "\n").encode())
    rec = _read(with_header, "time=t:s acc=ax,ay,az:m/s^2 gyro=gx,gy,gz:rad/s")
    np.testing.assert_allclose(rec.imu, demo.imu, atol=5e-7)
    bare = tmp_path / "n.csv"
    bare.write_bytes(b"\xef\xbb\xbf" + (rows + "\n").encode())
    again = _read(bare, "time=#1:s acc=#2,#3,#4:m/s^2 gyro=#5,#6,#7:rad/s header=no")
    np.testing.assert_array_equal(again.imu, rec.imu)


def test_interleaved_rows_are_counted(demo, tmp_path):
    # A logger writing one row per sensor event: acc rows and gyro rows, the other cells empty.
    lines = ["t,ax,ay,az,gx,gy,gz"]
    for t, row in zip(demo.timestamp_s, demo.imu, strict=True):
        lines.append(f"{t:.6f}," + ",".join(f"{v:.5f}" for v in row[:3]) + ",,,")
        lines.append(f"{t:.6f},,,," + ",".join(f"{v:.5f}" for v in row[3:]))
    path = tmp_path / "events.csv"
    path.write_text("\n".join(lines) + "\n")
    rec = _read(path, "time=t:s acc=ax,ay,az:m/s^2 gyro=gx,gy,gz:rad/s")
    _assert_canonical(rec, demo)  # the demo's own 5 decimals, written again: equal
    n = len(demo)
    assert f"acc: {n} rows of {path} without acc left out" in rec.source.rules
    assert f"gyro: {n} rows of {path} without gyro left out" in rec.source.rules


# --- bad input -----------------------------------------------------------------------------


@pytest.fixture()
def small(demo, tmp_path) -> Path:
    rows = np.column_stack(
        [demo.timestamp_s[:200] * 1e3, demo.imu[:200, :3] / G, demo.imu[:200, 3:]]
    )
    return _write(tmp_path / "small.csv", ["ts", "ax", "ay", "az", "gx", "gy", "gz"], rows, "%.6f")


def test_no_layout(small):
    with pytest.raises(
        FormatError, match=_at(small, r": --format csv needs a layout .*--layout '")
    ):
        read(small, format="csv")
    with pytest.raises(FormatError, match=r"give the rate in the layout \(rate_hz=HZ"):
        _read(small, BASIC.replace("deg/s", "rad/s"), rate_hz=50.0)


def test_missing_column(small):
    with pytest.raises(FormatError) as err:
        _read(small, "time=ts:ms acc=ax,ay,accz:g gyro=gx,gy,gz:rad/s")
    assert str(err.value) == (
        f"{small}: no column 'accz' (the layout's acc); "
        "header: ['ts', 'ax', 'ay', 'az', 'gx', 'gy', 'gz']"
    )
    with pytest.raises(FormatError, match=_at(small, r": the layout's gyro names column #9 but")):
        _read(small, "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,#9:rad/s")


def test_duplicate_header_names(small):
    text = small.read_text()
    small.write_text(text.replace("ts,ax,ay,az,gx,gy,gz", "ts,ax,ay,az,gx,gy,AX", 1))
    with pytest.raises(FormatError, match=_at(small, r": the header holds 'ax' 2 times")):
        _read(small, BASIC)
    # By position the same name is still ambiguous: refused, never the first one taken.
    with pytest.raises(
        FormatError, match=_at(small, r": the header holds 'ax' 2 times \(the layout's acc\)")
    ):
        _read(small, "time=#1:ms acc=#2,#3,#4:g gyro=#5,#6,#7:deg/s")


def test_text_in_a_number_column(small):
    lines = small.read_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split(",")[2], "n/a")
    small.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=_at(small, r":5: column 3 is not a number: 'n/a'")):
        _read(small, "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:rad/s")


def test_partial_row_and_time_without_value(small):
    lines = small.read_text().splitlines()
    cells = lines[7].split(",")
    cells[5] = ""
    lines[7] = ",".join(cells)
    small.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=_at(small, r":8: gyro has 1 of 3 cells empty")):
        _read(small, "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:rad/s")
    lines = small.read_text().splitlines()
    lines[7] = "," + lines[8].split(",", 1)[1]
    small.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=_at(small, r":8: acc has values but no time")):
        _read(small, "time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:rad/s")


def test_unknown_unit_through_read(small):
    with pytest.raises(gen.LayoutError, match=r"^layout: acc= unit 'm/s' is not one of m/s\^2"):
        _read(small, "time=ts:ms acc=ax,ay,az:m/s gyro=gx,gy,gz:rad/s")


def test_wrong_units_are_refused(small):
    # The columns hold g: read as m/s² they are ten times too small for a person on Earth.
    with pytest.raises(
        FormatError, match=_at(small, r": median \|acc\| is 1\.03 m/s² read as m/s\^2")
    ):
        _read(small, "time=ts:ms acc=ax,ay,az:m/s^2 gyro=gx,gy,gz:rad/s")
    # The stamps are ms: read as seconds the sensor would run at 0.05 Hz.
    with pytest.raises(FormatError, match=_at(small, r": time=ts:s gives acc 0\.05 Hz")):
        _read(small, "time=ts:s acc=ax,ay,az:g gyro=gx,gy,gz:rad/s")
