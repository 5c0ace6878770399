"""The command line reads any export a user names: `formats`, `convert`, `inspect`, bad input."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitedge import formats
from gaitedge.cli import app
from gaitedge.demo import DEMO_RECORDING
from gaitedge.recording import read_recording

runner = CliRunner()


def _one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), line
    for needle in needles:
        assert needle in line, line
    return line


def test_formats_lists_every_registered_format_with_what_it_needs():
    result = runner.invoke(app, ["formats"])
    assert result.exit_code == 0, result.output
    names = [ln.split()[0] for ln in result.stdout.splitlines() if not ln.startswith(" ")]
    assert [n for n in names if n != "layout"] == list(formats.FORMATS)
    assert result.stdout.count("needs: ") == len(formats.FORMATS)


def test_convert_round_trips_gaitedge_csv(tmp_path):
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["convert", str(DEMO_RECORDING), str(out)])
    assert result.exit_code == 0, result.output
    a, b = read_recording(DEMO_RECORDING), read_recording(out)
    np.testing.assert_allclose(b.timestamp_s, a.timestamp_s, atol=5e-7)  # 6 decimals written
    np.testing.assert_array_equal(b.imu, a.imu)  # repr(): the same float64


def test_convert_refuses_to_overwrite_its_input(tmp_path):
    src = tmp_path / "rec.csv"
    shutil.copy(DEMO_RECORDING, src)
    _one_line_error(runner.invoke(app, ["convert", str(src), str(src)]), "overwrite")


def test_convert_refuses_to_overwrite_a_file_of_the_export_folder(wild_exports, tmp_path):
    """An export folder converted onto one of its own files (it replaced Gravity.csv with the
    canonical CSV, and the export no longer read): refused, the file untouched; a new file in
    the folder is written, and the folder still reads."""
    folder = tmp_path / "export"
    shutil.copytree(wild_exports / "sensorlogger_ios-falldetector", folder)
    gravity = (folder / "Gravity.csv").read_bytes()
    for member in ("Gravity.csv", "./Accelerometer.csv"):
        result = runner.invoke(app, ["convert", str(folder), str(folder / member)])
        _one_line_error(result, "would overwrite a file of the export")
    assert (folder / "Gravity.csv").read_bytes() == gravity
    result = runner.invoke(app, ["convert", str(folder), str(folder / "canonical.csv")])
    assert result.exit_code == 0, result.output
    assert len(read_recording(folder / "canonical.csv")) == len(formats.read(folder)) > 8000


@pytest.mark.parametrize(
    "command",
    [["windows", "--out"], ["replay", "--fast", "--alerts-jsonl"], ["replay", "--mount-file"]],
    ids=["windows", "replay-jsonl", "replay-mount-file"],
)
def test_no_output_writes_over_the_recording_it_reads(tmp_path, command):
    """`windows --out REC` replaced the recording with its windows (exit 0), `replay
    --alerts-jsonl REC` appended alert lines to it: refused in one line, the file untouched."""
    src = tmp_path / "rec.csv"
    shutil.copy(DEMO_RECORDING, src)
    before = src.read_bytes()
    result = runner.invoke(app, [command[0], str(src), *command[1:], str(src)])
    _one_line_error(result, "would overwrite the recording it reads")
    assert src.read_bytes() == before


def test_an_export_converts_to_the_canonical_csv_that_replays_the_same(wild_exports, tmp_path):
    folder = wild_exports / "sensorlogger_android-walk-pixel6"
    out = tmp_path / "walk.csv"
    result = runner.invoke(app, ["convert", str(folder), str(out)])
    assert result.exit_code == 0, result.output
    direct, converted = formats.read(folder), read_recording(out)
    assert len(converted) == len(direct)
    np.testing.assert_allclose(converted.imu, direct.imu, rtol=0, atol=1e-12)
    info = json.loads(runner.invoke(app, ["inspect", str(folder)]).stdout)
    assert info["source"]["format"] == "sensorlogger"
    assert {s["kind"] for s in info["source"]["sensors"]} == {"acceleration", "rotation rate"}
    assert info["source"]["rules"], "inspect says which sign, unit and gravity rules applied"


def test_unknown_format_is_one_line():
    result = runner.invoke(app, ["inspect", str(DEMO_RECORDING), "--format", "nonsense"])
    _one_line_error(result, "unknown format 'nonsense'")


def test_wrong_format_is_one_line():
    result = runner.invoke(app, ["inspect", str(DEMO_RECORDING), "--format", "phyphox"])
    _one_line_error(result, str(DEMO_RECORDING), "phyphox")


def test_truncated_zip_is_one_line(tmp_path):
    src = tmp_path / "export.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.write(DEMO_RECORDING, "Accelerometer.csv")
    cut = tmp_path / "cut.zip"
    cut.write_bytes(src.read_bytes()[:300])
    _one_line_error(runner.invoke(app, ["inspect", str(cut)]), str(cut), "zip")


def test_not_utf8_names_file_and_line(tmp_path):
    bad = tmp_path / "rec.csv"
    text = DEMO_RECORDING.read_text().splitlines()
    bad.write_bytes(("\n".join(text[:5]) + "\n").encode() + b"0.1,\x86\x87,0,0,0,0,0\n")
    _one_line_error(runner.invoke(app, ["inspect", str(bad)]), str(bad))


def test_unknown_export_lists_what_was_looked_at(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01")
    _one_line_error(runner.invoke(app, ["inspect", str(tmp_path)]), "not a format", "notes.txt")


def test_an_empty_file_folder_or_zip_says_it_is_empty(tmp_path):
    """Each said "not a format gaitedge knows (NAME)" (an empty folder: "()")."""
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    cases = {
        "empty.csv": "empty.csv: empty file (0 bytes): no recording in it",
        "folder": "folder: empty folder: no files in it",
        "empty.zip": "empty.zip: empty zip: no files in it",
    }
    for name, says in cases.items():
        _one_line_error(runner.invoke(app, ["replay", str(tmp_path / name), "--fast"]), says)


# One export per app, as the app writes it, through every command a user runs on it.
APP_EXPORTS = [
    ("sensorlogger", "ios-zip"),
    ("sensorlogger", "android-folder"),
    ("phyphox", "ios-semicolon-decimal-comma-zip"),
    ("phyphox", "android-xlsx"),
    ("metabase", "android"),
    ("sensorlog", "units"),
    ("shimmer", "consensys"),
    ("edgeimpulse", "csv"),
    ("physicstoolbox", "multi-semicolon-decimal-comma"),
    ("axivity", "ax6"),
    ("movesense", "imu6-json"),
    ("sensorsdatalogger", "zip"),
]


@pytest.mark.parametrize(("app_name", "variant"), APP_EXPORTS, ids=[v for _, v in APP_EXPORTS])
def test_an_app_export_goes_through_every_command(app_name, variant, tmp_path):
    from firmware_bridge.exports import render

    demo = read_recording(DEMO_RECORDING)  # 3 min of HAPT with walking (CC BY 4.0)
    path = render(f"{app_name}-{variant}", demo, tmp_path / "export")
    info = runner.invoke(app, ["inspect", str(path)])
    assert info.exit_code == 0, info.output
    assert json.loads(info.stdout)["source"]["format"] == app_name
    out = tmp_path / "canonical.csv"
    converted = runner.invoke(app, ["convert", str(path), str(out)])
    assert converted.exit_code == 0, converted.output
    assert len(read_recording(out)) == len(formats.read(path))
    store = tmp_path / "mounting.json"
    cal = runner.invoke(app, ["calibrate", str(path), "--mount-file", str(store)])
    assert cal.exit_code == 0, cal.output
    assert json.loads(cal.stdout.splitlines()[0])["calibrated"] is True
    jsonl = tmp_path / "alerts.jsonl"
    rep = runner.invoke(app, ["replay", str(path), "--fast", "-q", "--alerts-jsonl", str(jsonl)])
    assert rep.exit_code == 0, rep.output
    labels = {json.loads(x)["label"] for x in jsonl.read_text().splitlines()}
    assert labels & {"WALKING", "SITTING", "STANDING", "LAYING"}, labels


def test_an_export_without_a_gyroscope_inspects_converts_and_summarizes(wild_exports, tmp_path):
    """`replay` ran the real accelerometer-only MetaBase export on the accelerometer-only
    bundle, while inspect, convert and summarize refused it ('the model needs both'): each
    reads it now; the converted CSV (the accelerometer alone, said so by inspect) replays as
    the export does."""
    folder = wild_exports / "metabase_ios-gait-lowback-acconly"
    info = json.loads(runner.invoke(app, ["inspect", str(folder)]).stdout)
    assert [s["kind"] for s in info["source"]["sensors"]] == ["acceleration"]
    out = tmp_path / "acc.csv"
    result = runner.invoke(app, ["convert", str(folder), str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines()[0] == "timestamp_s,acc_x,acc_y,acc_z"
    info = json.loads(runner.invoke(app, ["inspect", str(out)]).stdout)
    assert [(s["kind"], s["unit"]) for s in info["source"]["sensors"]] == [("acceleration", "m/s²")]
    replays = [runner.invoke(app, ["replay", str(p), "--fast", "-q"]) for p in (folder, out)]
    assert [r.exit_code for r in replays] == [0, 0], replays[0].output
    summaries = [json.loads(r.stdout.splitlines()[-1]) for r in replays]
    assert summaries[0] == summaries[1] and summaries[0]["windows"] > 200
    result = runner.invoke(
        app, ["summarize", str(folder), "--out", str(tmp_path / "s"), "--no-plot"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["totals_min"]["wear"] > 0.5


def test_convert_keeps_the_date_of_an_export_on_a_clock_of_no_date(wild_exports, tmp_path):
    """SensorLog stamps in seconds since the phone's reboot and states its start in
    loggingTime: the canonical CSV held the reboot clock, and `summarize` of it said 'day 1'
    where the export's says 2021-03-19. Written on the wall clock now: the same days, the same
    decisions."""
    folder = wild_exports / "sensorlog_ios-steady-unitless"
    out = tmp_path / "sl.csv"
    assert runner.invoke(app, ["convert", str(folder), str(out)]).exit_code == 0
    start = json.loads(runner.invoke(app, ["inspect", str(folder)]).stdout)["source"]
    converted, direct = read_recording(out), formats.read(folder)
    assert converted.timestamp_s[0] == pytest.approx(start["start_epoch_s"], abs=1e-6)
    np.testing.assert_allclose(
        np.diff(converted.timestamp_s), np.diff(direct.timestamp_s), atol=2e-6
    )
    days = []
    for path, name in ((folder, "export"), (out, "csv")):
        args = ["summarize", str(path), "--out", str(tmp_path / name), "--no-plot"]
        assert runner.invoke(app, args).exit_code == 0
        (daily,) = (tmp_path / name).glob("*-daily.csv")
        days.append(daily.read_text())
    assert days[0] == days[1] and "2021-03-19" in days[0]
