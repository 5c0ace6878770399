"""Sensors of other makes end to end: bleak's real BlueZ backend, the emulated BlueZ, and each
vendor's emulated peripheral streaming real HAPT data encoded as that device encodes it.

Only the radio is emulated (``firmware_bridge.ble_emulator``); the peripherals
(``firmware_bridge.peripherals``) are written apart from the profiles that decode them
(``gaitedge.devices``), and both are pinned by the vendors' bytes (test_devices_golden.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from firmware_bridge.ble_emulator import EmulatedBlueZ, PrivateSystemBus
from firmware_bridge.peripherals import PlaybackConfig, make_peripheral
from gaitedge.cli import app
from gaitedge.devices.gatt import LAYOUTS_DIR
from gaitedge.engine import DEFAULT_MODEL, load_engine
from gaitedge.pipeline import Pipeline
from gaitedge.runner import status
from gaitedge.sinks import FanOut
from gaitedge.sources import BleSource, IncompatibleDeviceError
from tests.bundles import make_bundle

pytestmark = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian package 'dbus')"
)
runner = CliRunner()
SPEED = 6.0  # playback speed: a few seconds of data in about a second

# emulated device -> (device type detected, acc tolerance m/s², gyro tolerance rad/s): one
# count of each device's quantisation (Thingy:52: 1/1024 g; CSV: 5 decimals).
DEVICES = {
    "polar": ("polar", 0.0049, 0.0011),
    "metawear": ("metawear", 0.0025, 0.0011),
    "metawear-bmi270": ("metawear", 0.0025, 0.0011),
    "movesense": ("movesense", 1e-5, 1e-6),
    "thingy": ("thingy", 0.0049, 0.0003),
    "science-journal": ("gatt", 1e-5, 1e-6),
    "uart-csv": ("gatt", 1e-4, 1e-6),
}


@pytest.fixture
def bluez():
    with PrivateSystemBus(), EmulatedBlueZ() as emulated:
        yield emulated


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "m.onnx")


def add(bluez, name, hapt, seconds=6.0, **config):
    t, imu, _ = hapt
    n = int(seconds * 50)
    peripheral = make_peripheral(name, t[:n], imu[:n], PlaybackConfig(speed=SPEED, **config))
    return bluez.add_peripheral(peripheral)


async def stream(source, device, *, drops=(), limit_s=12.0):
    """Chunks until the peripheral's recording ended (or stopped) and the host drained it.

    ``drops``: seconds of data flow on a connection after which its link is lost (reported
    after the supervision timeout).
    """
    chunks = []

    async def consume():
        async with source:
            async for chunk in source.chunks():
                chunks.append(chunk)

    async def supervise():
        for k, at in enumerate(drops):
            while sum(c.new_connection for c in chunks) <= k:  # connection k + 1 streams
                await asyncio.sleep(0.02)
            await asyncio.sleep(at)
            device.drop_link(outage_s=0.1)
        while not device.peripheral.stats.finished:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.6)  # the last notifications in flight

    task = asyncio.ensure_future(consume())
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(supervise(), limit_s)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return chunks


@pytest.mark.parametrize("name", list(DEVICES))
def test_each_sensor_streams_what_it_encoded(bluez, hapt_experiment, name):
    kind, acc_tol, gyro_tol = DEVICES[name]
    device = add(bluez, name, hapt_experiment)
    peripheral = device.peripheral
    source = BleSource(device.address, watchdog_s=1.0)
    chunks = asyncio.run(stream(source, device))
    assert source.device_type == kind
    sent = peripheral.stats.samples_sent(peripheral.sensors)
    assert sent > 150 and source.stats.samples == sent, (sent, source.stats.samples)
    assert source.stats.lost_frames == 0 and source.stats.decoder_drops == {}
    imu = np.concatenate([c.imu for c in chunks])
    first = min(set.intersection(*(peripheral.stats.sent[s] for s in peripheral.sensors)))
    expected = peripheral.samples(first, first + len(imu))
    np.testing.assert_allclose(imu[:, :3], expected[:, :3], atol=acc_tol, rtol=1e-6)
    np.testing.assert_allclose(imu[:, 3:], expected[:, 3:], atol=gyro_tol, rtol=1e-6)
    t = np.concatenate([c.t_s for c in chunks])
    # Stream time: the device's own clock where it sends one (Movesense: whole ms per packet).
    np.testing.assert_allclose(np.diff(t), 1 / peripheral.rate_hz, atol=1.1e-3)
    # Vendor profiles know the accelerometer's full scale; a layout file need not say it.
    assert (chunks[0].acc_range_g is None) == (kind == "gatt")


@pytest.mark.parametrize("name", ["polar", "metawear", "movesense"])
def test_one_reconnect_per_drop_and_outages_counted(bluez, hapt_experiment, name, bundle):
    device = add(bluez, name, hapt_experiment, seconds=24.0)
    source = BleSource(device.address, watchdog_s=1.0, max_backoff_s=0.2)
    chunks = asyncio.run(stream(source, device, drops=(0.6, 0.6), limit_s=15.0))
    assert device.stats.link_drops == source.stats.reconnects == 2
    assert source.stats.watchdog_timeouts == 0 and source.stats.device_restarts == 0
    news = [i for i, c in enumerate(chunks) if c.new_connection]
    assert len(news) == 3
    for i in news[1:]:  # the outage is a forward gap in stream time; the timeline goes on
        assert chunks[i].t_s[0] - chunks[i - 1].t_s[-1] > 1.5 / device.peripheral.rate_hz
        assert chunks[i].continued
    # Every sample the device sent on a live link arrived, and nothing else.
    peripheral = device.peripheral
    sent = set.intersection(*(peripheral.stats.sent[s] for s in peripheral.sensors))
    assert source.stats.samples == len(sent)
    # Every sample it made meanwhile is counted: from its own clock (Polar, Movesense) exactly,
    # from the host clock (MetaWear sends no time) within the arrival jitter.
    made = max(sent) - min(sent) + 1 - len(sent)
    assert made > 2 * 0.42 * peripheral.rate_hz * SPEED
    if name == "metawear":
        assert source.stats.lost_samples_inferred == source.stats.lost_samples
        assert abs(source.stats.lost_samples - made) <= max(10, 0.2 * made)
    else:
        assert source.stats.lost_samples == made and source.stats.lost_samples_inferred == 0
    # The status line `listen` prints says what was lost and whether the device restarted.
    pipe = Pipeline(load_engine(bundle), FanOut([]), mount="none")
    for chunk in chunks:
        pipe.process(chunk)
    (row,) = status(pipe, [source])
    assert (row.link.lost_samples, row.link.device_restarts) == (source.stats.lost_samples, 0)
    line = row.line()
    assert f"lost_samples={source.stats.lost_samples} " in line and "device_restarts=0 " in line
    assert f"type={source.device_type} " in line and "reconnects=2 " in line


@pytest.mark.parametrize("outage_speed", [None, 1.0])
def test_an_outage_loses_the_device_time_it_lasts(bluez, hapt_experiment, outage_speed):
    """Played 6x faster than real time, a device whose clock runs at the wall clock's pace
    through an outage (``outage_speed=1``, as a real one does) loses as many seconds of
    samples as the outage lasted on the wall clock; by default its clock runs on at 6x."""
    device = add(bluez, "polar", hapt_experiment, seconds=24.0, outage_speed=outage_speed)
    source = BleSource(device.address, watchdog_s=1.0, max_backoff_s=0.2)
    chunks, marks = [], {}

    async def run():
        async def consume():
            async with source:
                async for chunk in source.chunks():
                    if chunk.new_connection and "dropped" in marks:
                        marks.setdefault("back", asyncio.get_running_loop().time())
                    chunks.append(chunk)

        task = asyncio.ensure_future(consume())
        while not chunks:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        marks["dropped"] = asyncio.get_running_loop().time()
        device.drop_link(outage_s=0.1)
        while "back" not in marks:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(run(), 15.0))
    peripheral = device.peripheral
    sent = sorted(set.intersection(*(peripheral.stats.sent[s] for s in peripheral.sensors)))
    lost_s = (len(range(sent[0], sent[-1] + 1)) - len(sent)) / peripheral.rate_hz
    wall_s = marks["back"] - marks["dropped"]  # drop to the first chunk of the new connection
    assert wall_s > 0.42  # at least BlueZ's supervision timeout
    speed = SPEED if outage_speed is None else outage_speed
    # The device clock ran at `speed` through the outage; slack: the notification lost on the
    # dead link and the wait for the next notification boundary when streaming starts again.
    slack_s = 2 * peripheral.samples_per_notification / peripheral.rate_hz + 0.05
    assert 0.6 * speed * wall_s < lost_s < speed * wall_s + slack_s, (lost_s, wall_s)


def test_lost_notifications_are_counted_from_the_sensor_clock(bluez, hapt_experiment):
    device = add(bluez, "movesense", hapt_experiment, drop_rate=0.1, seed=4)
    source = BleSource(device.address, watchdog_s=1.0)
    asyncio.run(stream(source, device))
    stats = device.peripheral.stats
    sent = stats.sent["imu"]
    lost = {i for i in stats.lost.get("imu", set()) if min(sent) < i < max(sent)}
    assert len(lost) >= 8 and source.stats.lost_frames == len(lost)


def test_metawear_stream_that_stops_silently_is_reconnected(bluez, hapt_experiment):
    device = add(bluez, "metawear", hapt_experiment, seconds=30.0, stall_after_s=3.0)
    source = BleSource(device.address, watchdog_s=0.5, max_backoff_s=0.2)

    async def run():
        chunks = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.5):
                async with source:
                    async for chunk in source.chunks():
                        chunks.append(chunk)
        return chunks

    chunks = asyncio.run(run())
    assert source.stats.watchdog_timeouts >= 1 and source.stats.reconnects >= 1
    assert device.peripheral.stats.stalls >= 2  # set up again after the reconnect, streamed
    assert sum(c.new_connection for c in chunks) >= 2


def test_scan_lists_each_supported_sensor_with_its_type(bluez, hapt_experiment):
    for name in ("polar", "metawear", "movesense", "thingy", "science-journal"):
        add(bluez, name, hapt_experiment)
    result = runner.invoke(app, ["scan", "--timeout", "0.5"])
    assert result.exit_code == 0, result.output
    kinds = [line.split()[1] for line in result.stdout.strip().splitlines()]
    assert sorted(kinds) == ["gatt", "metawear", "movesense", "polar", "thingy"]


def test_sensor_without_gyroscope_runs_the_shipped_acc_bundle_or_is_refused(bluez, hapt_experiment):
    """A Polar H10 (no gyroscope) streams to the shipped accelerometer-only bundle, named in
    the status line; with a --model that needs the gyroscope it is refused in one line before
    anything is started."""
    device = add(bluez, "polar-h10", hapt_experiment)
    result = runner.invoke(app, ["listen", "--ble", device.address, "--duration", "5"])
    assert result.exit_code == 0, result.output
    status_lines = [line for line in result.output.splitlines() if " windows=" in line]
    assert "model=gaitedge-acc@" in status_lines[-1] and "type=polar" in status_lines[-1]
    assert int(status_lines[-1].split(" windows=")[1].split()[0]) > 0, status_lines[-1]
    device = add(bluez, "polar-h10", hapt_experiment)
    args = ["listen", "--ble", device.address, "--duration", "5", "--model", str(DEFAULT_MODEL)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "Polar H10" in result.output and "no gyroscope" in result.output
    assert "--model was given" in result.output and "Traceback" not in result.output
    assert device.peripheral.stats.writes == []  # refused before anything was started


def test_forced_device_type_and_a_layout_file(bluez, hapt_experiment, tmp_path):
    polar_device = add(bluez, "polar", hapt_experiment)

    async def connect(source):
        async with source:
            pass

    with pytest.raises(IncompatibleDeviceError, match="not a thingy device"):
        asyncio.run(connect(BleSource(polar_device.address, device_type="thingy")))
    uart = add(bluez, "uart-csv", hapt_experiment, seconds=30.0)
    layout = json.loads((LAYOUTS_DIR / "nordic_uart_csv.json").read_text())
    (tmp_path / "board.json").write_text(json.dumps(layout | {"name": "my-board"}))
    out = tmp_path / "live.csv"
    args = ["listen", "--ble", uart.address, "--gatt-layout", str(tmp_path / "board.json")]
    args += ["--duration", "4", "--record", str(out), "-q"]  # the shipped model
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) > 100
    bad = runner.invoke(app, ["listen", "--ble", uart.address, "--device-type", "fitbit"])
    assert bad.exit_code == 2 and "unknown --device-type 'fitbit'" in bad.output


def test_demo_with_a_vendor_sensor(tmp_path):
    model = make_bundle(tmp_path / "m.onnx")
    args = ["demo", "--device", "movesense", "--model", str(model), "--duration", "3", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["device_type"] == "movesense" and summary["windows"] > 0
