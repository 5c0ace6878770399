"""Sensors without a gyroscope (issue 19 item 2, issue 21's ``acc`` student): the chain runs on
the accelerometer alone, the runtime picks the shipped accelerometer-only bundle by its
contract's channels (``listen`` over bleak's real BlueZ backend, ``replay`` of a real file), and
refuses in one line when none ships or an explicit ``--model`` needs the gyroscope. Nothing is
ever padded: the bundles here are test bundles (tests/bundles.py) with acc-only channels.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

import gaitedge.engine
from gaitedge.cli import app
from gaitedge.engine import accelerometer_only_model
from gaitedge.preprocess import ChainConfig, ChainInputError, run_offline
from gaitedge.recording import RecordingError, RecordingWriter, read_recording
from tests.bundles import NORM_MEAN, NORM_STD, make_bundle

runner = CliRunner()
ACC_CHANNELS = ("body_acc_x", "body_acc_y", "body_acc_z", "gravity_x", "gravity_y", "gravity_z")


def acc_chain(mounting: str = "auto") -> ChainConfig:
    chain = ChainConfig(channels=ACC_CHANNELS, hop_samples=25, mounting=mounting)
    return chain.with_normalization(np.array(NORM_MEAN[:6]), np.array(NORM_STD[:6]))


@pytest.fixture(scope="module")
def six_axis_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("six") / "m.onnx")


@pytest.fixture(scope="module")
def acc_bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("acc") / "m.onnx", chain=acc_chain())


@pytest.fixture
def shipped(tmp_path, monkeypatch, acc_bundle, six_axis_bundle):
    """A models folder holding a 6-axis bundle named as if it were the acc one, and the
    acc-only bundle under a neutral name: found by its contract, not its name."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copyfile(six_axis_bundle, models / "gaitedge-acc.onnx")
    shutil.copyfile(acc_bundle, models / "zz-student.onnx")
    # An INT8 bundle's FP32 reference ships beside it: a reference, never the model picked.
    shutil.copyfile(acc_bundle, models / "a-fp32.onnx")
    monkeypatch.setattr(gaitedge.engine, "MODELS_DIR", models)
    return models / "zz-student.onnx"


@pytest.fixture
def none_shipped(tmp_path, monkeypatch, six_axis_bundle):
    models = tmp_path / "models-none"
    models.mkdir()
    shutil.copyfile(six_axis_bundle, models / "gaitedge-default.onnx")
    monkeypatch.setattr(gaitedge.engine, "MODELS_DIR", models)


def test_the_chain_runs_on_the_accelerometer_alone(hapt_experiment):
    t, imu, _ = hapt_experiment
    n = 50 * 90
    chain = replace(acc_chain("none"), norm_mean=None, norm_std=None)
    from_six = run_offline(chain, t[:n], imu[:n])
    from_acc = run_offline(chain, t[:n], imu[:n, :3])
    assert from_acc.data.shape[-1] == 6 and len(from_acc) > 10
    np.testing.assert_array_equal(from_acc.data, from_six.data)  # the gyroscope is unused
    with pytest.raises(ChainInputError, match="gyro_x, gyro_y, gyro_z"):
        run_offline(ChainConfig(mounting="none"), t[:n], imu[:n, :3])


def test_the_acc_only_bundle_is_found_by_its_contract(shipped, none_shipped):
    assert accelerometer_only_model(shipped.parent) == shipped
    assert accelerometer_only_model() is None  # none_shipped patched the models folder last


def _acc_csv(path, hapt, seconds: float = 60.0):
    t, imu, _ = hapt
    n = int(seconds * 50)
    with path.open("w") as f:
        f.write("timestamp_s,acc_x,acc_y,acc_z\n")
        np.savetxt(f, np.column_stack([t[:n], imu[:n, :3]]), fmt="%.5f", delimiter=",")
    return path


def test_replay_of_a_file_without_gyroscope_runs_the_acc_bundle(
    shipped, tmp_path, hapt_experiment, caplog
):
    csv = _acc_csv(tmp_path / "acc.csv", hapt_experiment)
    with caplog.at_level(logging.WARNING):
        args = ["replay", str(csv), "--fast", "--mount", "none"]
        result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["windows"] >= 100  # 60 s, hop 25 at 50 Hz
    notes = [r.getMessage() for r in caplog.records if "no gyroscope" in r.getMessage()]
    assert len(notes) == 1 and "accelerometer-only model tiny-test" in notes[0]
    assert "gravity_z" in notes[0] and "gyro" not in notes[0].split("channels")[1]
    # --calibrate-first calibrates the chain of the model the device runs (the acc one's)
    result = runner.invoke(app, ["replay", str(csv), "--fast", "--calibrate-first", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["windows"] >= 100


def test_replay_without_an_acc_bundle_is_refused_in_one_line(
    none_shipped, tmp_path, hapt_experiment
):
    csv = _acc_csv(tmp_path / "acc.csv", hapt_experiment, seconds=10)
    result = runner.invoke(app, ["replay", str(csv), "--fast", "--mount", "none"])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "no gyroscope" in result.output and "gyro_x, gyro_y, gyro_z" in result.output
    assert "no accelerometer-only model is installed" in result.output
    assert "Traceback" not in result.output


def test_an_explicit_model_that_needs_the_gyroscope_names_the_channels(
    shipped, six_axis_bundle, tmp_path, hapt_experiment
):
    csv = _acc_csv(tmp_path / "acc.csv", hapt_experiment, seconds=10)
    args = ["replay", str(csv), "--fast", "--model", str(six_axis_bundle), "--mount", "none"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "gyro_x, gyro_y, gyro_z" in result.output and "--model was given" in result.output
    # the acc-only bundle given explicitly runs the same file
    args = ["replay", str(csv), "--fast", "--model", str(shipped), "--mount", "none"]
    assert runner.invoke(app, args).exit_code == 0


def test_a_real_metabase_export_without_gyroscope_replays_on_the_acc_bundle(shipped, data_root):
    """A MetaBase accelerometer-only export as its app wrote it (wild-exports: a lower-back
    sensor, ~20 s standing then walking): `replay` reads it as acceleration alone and runs the
    accelerometer-only bundle; `inspect` describes it, saying what to enable in MetaBase for a
    model that needs the gyroscope, and an explicit 6-axis `--model` refuses it so."""
    folder = data_root / "wild-exports" / "metabase_ios-gait-lowback-acconly"
    if not folder.is_dir():
        pytest.fail("wild-exports/metabase_ios-gait-lowback-acconly missing")
    path = folder / "Accelerometer.csv"
    result = runner.invoke(app, ["replay", str(path), "--fast", "--mount", "none", "-q"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["windows"] >= 60  # ~46 s at hop 25
    six_axis = shipped.parent / "gaitedge-acc.onnx"  # the 6-axis bundle under a misleading name
    refused = runner.invoke(app, ["replay", str(path), "--model", str(six_axis)])
    assert refused.exit_code == 2, refused.output
    assert "no gyroscope" in refused.stderr and "MetaBase" in refused.stderr, refused.stderr
    described = runner.invoke(app, ["inspect", str(path)])
    assert described.exit_code == 0, described.output
    (rule,) = [r for r in json.loads(described.stdout)["source"]["rules"] if "gyroscope" in r]
    assert rule.startswith("no gyroscope: acceleration alone") and "MetaBase" in rule, rule


# Polar H10 over bleak's real BlueZ backend (the emulated BlueZ, as test_devices_ble.py).
needs_dbus = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian package 'dbus')"
)


@pytest.fixture
def bluez():
    from firmware_bridge.ble_emulator import EmulatedBlueZ, PrivateSystemBus

    with PrivateSystemBus(), EmulatedBlueZ() as emulated:
        yield emulated


def _h10(bluez, hapt, seconds: float = 8.0):
    from firmware_bridge.peripherals import PlaybackConfig, make_peripheral

    t, imu, _ = hapt
    n = int(seconds * 50)
    peripheral = make_peripheral("polar-h10", t[:n], imu[:n], PlaybackConfig(speed=4.0))
    return bluez.add_peripheral(peripheral)


ACC_START, GYRO_START = bytes([0x02, 0x02]), bytes([0x02, 0x05])


@needs_dbus
def test_polar_h10_streams_to_the_acc_bundle(shipped, bluez, hapt_experiment, tmp_path, caplog):
    device = _h10(bluez, hapt_experiment)
    record = tmp_path / "h10.csv"
    args = ["listen", "--ble", device.address, "--duration", "4", "--mount", "none"]
    with caplog.at_level(logging.WARNING):
        result = runner.invoke(app, [*args, "--record", str(record)])
    assert result.exit_code == 0, result.output
    # --record keeps what it streamed: acceleration alone, read back as [N, 3]
    assert record.read_text().splitlines()[0] == "timestamp_s,acc_x,acc_y,acc_z,device_id"
    recorded = read_recording(record)
    assert recorded.imu.shape[1] == 3 and len(recorded) > 100
    windows = [int(w) for w in re.findall(r" windows=(\d+)", result.output)]
    assert windows and windows[-1] > 0, result.output  # the acc-only bundle scored the H10
    status = [line for line in result.output.splitlines() if " windows=" in line]
    assert "model=tiny-test@" in status[-1], status[-1]  # the status line names the model
    writes = device.peripheral.stats.writes
    assert any(w.startswith(ACC_START) for w in writes)
    assert not any(w.startswith(GYRO_START) for w in writes)  # no gyroscope asked for
    notes = [r.getMessage() for r in caplog.records if "no gyroscope" in r.getMessage()]
    assert len(notes) == 1 and "accelerometer-only model tiny-test" in notes[0], notes


@needs_dbus
def test_polar_h10_with_a_model_that_needs_the_gyroscope_is_refused(
    shipped, six_axis_bundle, bluez, hapt_experiment
):
    device = _h10(bluez, hapt_experiment)
    args = ["listen", "--ble", device.address, "--duration", "4", "--model", str(six_axis_bundle)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Polar H10" in result.output and "gyro_x, gyro_y, gyro_z" in result.output
    assert "Traceback" not in result.output
    assert device.peripheral.stats.writes == []  # refused before anything was started


def test_the_recorder_keeps_acceleration_alone_and_refuses_a_mix(tmp_path, hapt_experiment):
    t, imu, _ = hapt_experiment
    path = tmp_path / "acc.csv"
    with RecordingWriter(path) as w:
        w.write(t[:50], imu[:50, :3])
        with pytest.raises(RecordingError, match="6-axis samples cannot join this 3-axis"):
            w.write(t[50:60], imu[50:60])
    with RecordingWriter(path) as w:  # appending to an accelerometer-only file
        w.write(t[60:100], imu[60:100, :3])
    back = read_recording(path)
    np.testing.assert_array_equal(back.imu, imu[:100, :3][np.r_[0:50, 60:100]])
