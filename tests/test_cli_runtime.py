"""Runtime commands in-process with CliRunner: listen, replay, scan; user errors exit cleanly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from firmware_bridge import counts_to_si, si_to_counts
from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig
from gaitedge.bundle import read_contract
from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL
from gaitedge.recording import Recording, read_recording, write_recording

runner = CliRunner()


@pytest.fixture
def bundle():
    """The shipped model: runtime tests run a trained model on real data."""
    return DEFAULT_MODEL


@pytest.fixture(scope="module")
def hapt_csv(hapt_experiment, tmp_path_factory):
    """Written once for the module: the commands only read it."""
    t, x, _ = hapt_experiment
    path = tmp_path_factory.mktemp("hapt") / "hapt.csv"
    # 4 minutes: the first 2 are postures, then walking to calibrate the mounting from.
    write_recording(path, Recording(t[:12000], x[:12000]))
    return path


def test_replay_prints_the_timeline_and_writes_alerts(bundle, hapt_csv, tmp_path):
    jsonl = tmp_path / "alerts.jsonl"
    args = ["replay", str(hapt_csv), "--model", str(bundle), "--fast", "--alerts-jsonl", str(jsonl)]
    result = runner.invoke(app, [*args, "--stats"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    hop = read_contract(bundle).chain.hop_samples
    assert summary["windows"] == (12000 - 128) // hop + 1
    alerts = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert len(alerts) == summary["alerts"] >= 1
    assert "activity" in result.stdout  # the timeline printed by the stdout sink


def test_listen_serial_streams_records_and_alerts(bundle, hapt_csv, tmp_path):
    rec = read_recording(hapt_csv)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(speed=5.0, loop=True))
    record, jsonl = tmp_path / "live.csv", tmp_path / "alerts.jsonl"
    with EmulatedSerialDevice(emulator) as device:
        result = runner.invoke(
            app,
            [
                "listen", "--serial", device.path, "--model", str(bundle), "--duration", "4",
                "--record", str(record), "--alerts-jsonl", str(jsonl), "--stats",
                # A new device calibrates from walking first (activity held back until then);
                # this stretch is postures only, and HAPT's frame is close to the body frame.
                "--mount", "none",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    recorded = read_recording(record)
    assert len(recorded) > 500  # ~4 s at 5x of 50 Hz
    # What was recorded is a contiguous stretch of what the device sent (it may have started
    # before the port was opened), value for value.
    sent = counts_to_si(si_to_counts(rec.imu, emulator.info), emulator.info)
    start = int(np.flatnonzero((sent == recorded.imu[0]).all(axis=1))[0])
    n = min(len(recorded), len(sent) - start)
    np.testing.assert_array_equal(recorded.imu[:n], sent[start : start + n])
    assert jsonl.read_text().strip()
    assert '"latency"' in result.output  # --stats histograms


def test_listen_without_a_device_is_a_usage_error():
    result = runner.invoke(app, ["listen"])
    assert result.exit_code == 2
    assert "give at least one device" in result.output


def test_listen_on_a_missing_port_is_a_clear_error(bundle):
    result = runner.invoke(
        app, ["listen", "--serial", "/dev/nonexistent-port", "--model", str(bundle)]
    )
    assert result.exit_code == 1
    assert "cannot open serial port /dev/nonexistent-port" in result.output
    assert "Traceback" not in result.output


HEADER = "timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n"


@pytest.mark.parametrize(
    ("body", "message", "extra"),
    [
        ("0,1,2,3,4,5\n", "expected 7 fields", []),
        ("0,1,2,nan,4,5,6\n", "non-finite", []),
        ("1,1,2,3,4,5,6\n0,1,2,3,4,5,6\n", "does not increase", ["--strict"]),
    ],
    ids=["malformed", "nan", "out-of-order-strict"],
)
def test_replay_of_a_bad_recording_is_refused(bundle, tmp_path, body, message, extra):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + body)
    args = ["replay", str(bad), "--model", str(bundle), "--fast", *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["replay", "{csv}", "--speed", "0"], "--speed must be a positive number, not 0"),
        (["replay", "{csv}", "--speed", "nan"], "--speed must be a positive number, not nan"),
        (["demo", "--speed", "-1"], "--speed must be a positive number, not -1"),
        (["demo", "--duration", "0"], "--duration must be a positive number, not 0"),
        (["listen", "--serial", "/dev/null", "--duration", "-3"], "--duration must be a "),
        (["calibrate", "--serial", "/dev/null", "--duration", "inf"], "--duration must be a "),
        (["scan", "--timeout", "-1"], "--timeout must be a positive number, not -1"),
        (
            ["replay", "{csv}", "--acc-range-g", "0"],
            "the accelerometer's full scale (acc_range_g / --acc-range-g) must be a positive "
            "number of g, not 0",
        ),
        (["replay", "{csv}", "--acc-range-g", "nan"], "must be a positive number of g, not nan"),
        (
            ["replay", "{seed}", "--rate-hz", "0"],
            "the sample rate (rate_hz / --rate-hz) must be a positive number of Hz, not 0",
        ),
        (["convert", "{seed}", "{out}", "--rate-hz", "inf"], "a positive number of Hz, not inf"),
        (["inspect", "{seed}", "--rate-hz", "-5"], "a positive number of Hz, not -5"),
        (["evaluate", "--limit-subjects", "0"], "--limit-subjects must be at least 1 subject"),
        (["evaluate", "--limit-subjects", "-2"], "--limit-subjects must be at least 1 subject"),
        (["evaluate", "--threshold", "nan"], "--threshold is a fall probability from 0 to 1"),
        (["evaluate", "--labels", "7"], "--labels must be 6 or 12, not 7"),
    ],
)
def test_a_number_no_option_can_take_is_one_line(hapt_csv, tmp_path, args, message):
    # Before: --speed 0 ended in a ValueError traceback; --acc-range-g 0 named the fall
    # detector's internals and nan was taken; --rate-hz 0 asked for the rate it was given, inf
    # stamped every sample at 0 s and replayed; evaluate --limit-subjects -2 scored all but two
    # subjects (0: "need at least one array to concatenate").
    seed = tmp_path / "seed.csv"  # no time column: the rate is the user's
    seed.write_text("acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n" + "0,0,9.8,0,0,0\n" * 200)
    paths = {"csv": str(hapt_csv), "seed": str(seed), "out": str(tmp_path / "out.csv")}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "out.csv").exists()


def test_an_alerts_file_that_cannot_be_written_is_one_line(hapt_csv, tmp_path):
    # Before: "error: [Errno 17] File exists: '...'", naming neither the file's use nor why.
    (tmp_path / "file").write_text("")
    target = tmp_path / "file" / "alerts.jsonl"  # under a file: refused even for root
    result = runner.invoke(app, ["replay", str(hapt_csv), "--alerts-jsonl", str(target)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: alerts file {target}: cannot write: ")


def test_model_without_a_contract_is_refused(bundle, tmp_path, hapt_csv):
    import onnx

    model = onnx.load(bundle)  # the shipped model, its contract stripped
    del model.metadata_props[:]
    onnx.save(model, tmp_path / "bare.onnx")
    result = runner.invoke(app, ["replay", str(hapt_csv), "--model", str(tmp_path / "bare.onnx")])
    assert result.exit_code == 2
    assert "has no gaitedge contract" in result.output


def test_bad_sink_options_are_refused(bundle, hapt_csv):
    result = runner.invoke(
        app, ["replay", str(hapt_csv), "--model", str(bundle), "--webhook", "ftp://x"]
    )
    assert result.exit_code == 2 and "error:" in result.output


def test_scan_without_bluetooth_fails_clearly():
    """This machine has no Bluetooth adapter: scan must say so, not crash."""
    result = runner.invoke(app, ["scan", "--timeout", "0.5"])
    assert result.exit_code in (0, 1), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        assert "BLE scan failed" in result.output


def test_demo_streams_the_shipped_recording_from_an_emulated_device(bundle, tmp_path):
    jsonl = tmp_path / "alerts.jsonl"
    result = runner.invoke(
        app, ["demo", "--model", str(bundle), "--duration", "4", "--alerts-jsonl", str(jsonl)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["windows"] >= 5
    assert jsonl.read_text().strip()


def test_demo_on_a_full_disk_says_its_alerts_were_not_delivered(bundle, tmp_path):
    """`listen` (here its demo) with --alerts-jsonl on a full disk printed a traceback per
    alert and exited 0: one line for the failure, and exit 1 naming the alerts lost, as
    `replay` does. An option the session refuses is its one line, exit 2 (it was followed by
    'error: 2' and exit 1)."""
    full = tmp_path / "alerts.jsonl"
    full.symlink_to("/dev/full")
    gaitedge = str(Path(sys.executable).with_name("gaitedge"))
    args = [gaitedge, "demo", "--model", str(bundle), "--duration", "8", "-q"]
    done = subprocess.run([*args, "--alerts-jsonl", str(full)], capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert re.fullmatch(
        r"error: alerts not delivered: (\d+) of \1 to JsonlSink", done.stderr.splitlines()[-1]
    )
    done = subprocess.run([*args, "--alerts-jsonl", str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"error: alerts file {tmp_path}: cannot write: Is a directory"
    ]


def test_bench_reports_stage_latencies(bundle, hapt_experiment, tmp_path):
    # One minute (288 windows) times every stage as well as four; latencies are per window.
    t, x, _ = hapt_experiment
    path = tmp_path / "hapt.csv"
    write_recording(path, Recording(t[:3000], x[:3000]))
    result = runner.invoke(app, ["bench", str(path), "--model", str(bundle)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["latency"]) == {"chain", "engine", "alerts", "end_to_end"}
    # one engine call per window, but for the first 5 s (held until the units are checked:
    # the 13 windows that end within the first 250 samples in one call)
    assert report["latency"]["engine"]["n"] == report["windows"] - 12 > 0
    assert report["sensors_per_core"] > 1


def test_replay_refuses_data_in_the_wrong_units(bundle, hapt_dir, tmp_path):
    """HAPT's sample is in g; declared as SI (plain acc_x) it must be refused, not scored."""
    # The check is Pipeline.process's, paced or not: --fast spares the 5 s (250 samples at
    # 50 Hz) a paced replay waits in real time before it.
    sample = hapt_dir / "sample_exp01_first3000.csv"
    result = runner.invoke(app, ["replay", str(sample), "--model", str(bundle), "--fast"])
    assert result.exit_code == 2
    assert "look like g (use acc_x_g headers)" in result.output
