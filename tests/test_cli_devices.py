"""The CLI with recordings as other devices make them: phone stamps, other mountings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from typer.testing import CliRunner

from gaitedge import datasets as ds
from gaitedge.cli import app
from gaitedge.mounting import MountStore, rotation_angle_deg
from gaitedge.preprocess import ChainConfig, calibrate
from gaitedge.recording import Recording, write_recording
from tests.bundles import make_bundle

runner = CliRunner()


@pytest.fixture(scope="module")
def hapt_rec(data_root):
    rec = next(ds.hapt_recordings(data_root, ["hapt:2"]))
    return rec.timestamp_s, rec.imu


@pytest.fixture
def bundle(tmp_path):
    return make_bundle(tmp_path / "m.onnx")


def test_phone_csv_with_tied_stamps_replays_and_inspect_counts_the_repair(
    bundle, hapt_rec, tmp_path
):
    _, x = hapt_rec
    rx = ds.render_rate(x[:3000], 50.0, 104.0)
    stamps_ms = np.floor(np.arange(len(rx)) / 104.0 * 100) * 10  # 10 ms resolution, in ms
    path = tmp_path / "phone.csv"
    header = "timestamp_ms,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z\n"
    rows = "\n".join(
        ",".join(f"{v:.6f}" for v in [s, *r]) for s, r in zip(stamps_ms, rx, strict=True)
    )
    path.write_text(header + rows + "\n")
    result = runner.invoke(app, ["replay", str(path), "--model", str(bundle), "--fast", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["windows"] > 0
    strict = runner.invoke(app, ["replay", str(path), "--model", str(bundle), "--strict"])
    assert strict.exit_code == 2 and "does not increase" in strict.output
    info = runner.invoke(app, ["inspect", str(path)])
    assert info.exit_code == 0, info.output
    tied = int((np.diff(stamps_ms) == 0).sum())
    assert json.loads(info.stdout)["timestamp_repair"]["tied"] == tied > 0


def test_calibrate_a_rotated_recording_and_reuse_it(hapt_rec, tmp_path):
    t, x = hapt_rec
    r = Rotation.from_euler("xyz", [30, -100, 75], degrees=True).as_matrix()
    xr = np.concatenate([x[:, :3] @ r.T, x[:, 3:] @ r.T], axis=1)
    path = tmp_path / "belt.csv"
    write_recording(path, Recording(t, xr))
    mount_file = tmp_path / "mount.json"
    result = runner.invoke(
        app, ["calibrate", str(path), "--device-id", "belt-1", "--mount-file", str(mount_file)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[0])["calibrated"] is True
    est = MountStore(mount_file).get("belt-1", 50.0)
    reference = calibrate(ChainConfig(mounting="auto"), [(t, x)]).rotation
    assert rotation_angle_deg(est.rotation @ r @ reference.T) < 1.0


def test_a_recorded_device_calibrated_is_the_one_replay_and_summarize_restore(hapt_rec, tmp_path):
    """A listen --record file (one device, its id in a column): calibrate stored the estimate
    under the device's id only, replay and summarize looked the file's name up, and the
    device calibrated online again from a cold start (a stored estimate silently unused)."""
    from gaitedge.recording import RecordingWriter

    t, x = hapt_rec
    path = tmp_path / "session.csv"
    writer = RecordingWriter(path, with_device_id=True)
    writer.write(t, x, device_id="belt-7")
    writer.close()
    mount_file = tmp_path / "mount.json"
    result = runner.invoke(app, ["calibrate", str(path), "--mount-file", str(mount_file)])
    assert result.exit_code == 0, result.output
    assert set(MountStore(mount_file).entries) == {"belt-7", "session.csv"}
    cold = runner.invoke(app, ["replay", str(path), "--fast"])
    assert "calibrated online" in cold.stderr
    kept = runner.invoke(app, ["replay", str(path), "--fast", "--mount-file", str(mount_file)])
    assert kept.exit_code == 0, kept.output
    assert "calibrated online" not in kept.stderr and "cold start" not in kept.stdout


def test_calibrate_without_walking_says_so(hapt_rec, tmp_path):
    t, x = hapt_rec
    still = np.tile(x[:1], (1500, 1))
    path = tmp_path / "still.csv"
    write_recording(path, Recording(t[:1500], still))
    result = runner.invoke(app, ["calibrate", str(path), "--mount-file", str(tmp_path / "m.json")])
    assert result.exit_code == 1
    assert "walking" in result.output and "Traceback" not in result.output


def test_a_malformed_axis_map_is_one_clear_line(bundle, hapt_rec, tmp_path):
    t, x = hapt_rec
    path = tmp_path / "r.csv"
    write_recording(path, Recording(t[:500], x[:500]))
    result = runner.invoke(
        app, ["replay", str(path), "--model", str(bundle), "--fast", "--mount", "x,x,z"]
    )
    assert result.exit_code == 2
    assert "uses an axis twice" in result.output and "Traceback" not in result.output
    # two signs are no axis (they were stripped: '--x' read as x, then 'mirrors the axes')
    from gaitedge.mounting import MountingError, parse_axis_map

    with pytest.raises(MountingError, match="'--x' is not one of x, y, z, -x, -y, -z"):
        parse_axis_map("--x,y,z")
    np.testing.assert_array_equal(parse_axis_map("-y,+x,z"), parse_axis_map("-y,x,z"))


def test_calibrate_a_live_device_over_a_serial_link(hapt_rec, tmp_path):
    """`gaitedge calibrate --serial`: an emulated device plays a turned HAPT recording (walking
    from 2 min in) at 40x; the estimate is stored under the device's port."""
    from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig

    t, x = hapt_rec
    r = Rotation.from_euler("y", 90, degrees=True).as_matrix()
    xr = np.concatenate([x[:, :3] @ r.T, x[:, 3:] @ r.T], axis=1)
    emulator = Emulator(t[5000:12000], xr[5000:12000], EmulatorConfig(speed=40.0))  # 140 s in 3.5 s
    mount_file = tmp_path / "mount.json"
    with EmulatedSerialDevice(emulator) as device:
        result = runner.invoke(
            app,
            ["calibrate", "--serial", device.path, "--duration", "5", "--mount-file",
             str(mount_file)],
        )  # fmt: skip
        path = device.path
    assert result.exit_code == 0, result.output
    assert '"mounting": "calibrated' in result.output
    est = MountStore(mount_file).get(path, 50.0)
    part = calibrate(ChainConfig(mounting="auto"), [(t[5000:12000], x[5000:12000])])
    # The same as calibrating that part offline in the body frame, turned (int16 counts on the
    # wire and the stream's start aside).
    assert rotation_angle_deg(est.rotation @ r @ part.rotation.T) < 3.0


def test_a_recording_of_several_devices_replays_one_at_a_time(bundle, hapt_rec, tmp_path):
    """`listen --record` with two sensors interleaves their rows; their clocks are not one
    stream, so replay asks which one (and repairs nothing across them)."""
    t, x = hapt_rec
    n = 3000
    path = tmp_path / "two.csv"
    ids = np.where(np.arange(2 * n) % 2 == 0, "left", "right")
    stamps = np.repeat(t[:n], 2)  # both devices' clocks start at 0: interleaved, tied
    write_recording(path, Recording(stamps, np.repeat(x[:n], 2, axis=0), device_id=ids))
    both = runner.invoke(app, ["replay", str(path), "--model", str(bundle), "--fast"])
    assert both.exit_code == 2 and "holds 2 devices (left, right)" in both.output
    one = runner.invoke(
        app, ["replay", str(path), "--model", str(bundle), "--fast", "--device", "right"]
    )
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout.strip().splitlines()[-1])["windows"] > 0
    missing = runner.invoke(app, ["replay", str(path), "--model", str(bundle), "--device", "x"])
    assert missing.exit_code == 2 and "no rows of device 'x'" in missing.output
