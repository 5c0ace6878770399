"""BLE end to end: bleak's real BlueZ backend against the emulated BlueZ on a private D-Bus.

Nothing of bleak is faked: ``firmware_bridge.ble_emulator`` serves ``org.bluez`` (the one
boundary this machine lacks is the radio), fed by the device emulator. Real adapters: see
test_hardware.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from firmware_bridge import SERVICE_UUID, counts_to_si, si_to_counts
from firmware_bridge.ble_emulator import EmulatedBlueZ, PrivateSystemBus
from firmware_bridge.emulator import Emulator, EmulatorConfig
from gaitedge.cli import app
from gaitedge.recording import Recording
from gaitedge.sources import BleSource, IncompatibleDeviceError, SourceError, scan
from tests.bundles import make_bundle

pytestmark = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian package 'dbus')"
)
runner = CliRunner()


def recording(seconds: float = 6.0, rate_hz: float = 50.0) -> Recording:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    imu = np.column_stack(
        [np.sin(t), np.cos(t), 9.8 + 0 * t, 0.1 * np.sin(3 * t), 0.01 * t, 0.2 + 0 * t]
    )
    return Recording(t, imu)


def emulator(rec: Recording, **config) -> Emulator:
    return Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(**config))


def sent_si(rec: Recording, em: Emulator) -> np.ndarray:
    """[N, 6] what the device sends, back in SI units (the int16 counts are the truth)."""
    return counts_to_si(si_to_counts(rec.imu, em.info), em.info)


@pytest.fixture
def bus():
    with PrivateSystemBus() as private_bus:
        yield private_bus


@pytest.fixture
def bluez(bus):
    with EmulatedBlueZ() as emulated:
        yield emulated


async def collect(source, *, samples: int | None = None, limit_s: float = 10.0):
    chunks = []

    async def run():
        async with source:
            async for chunk in source.chunks():
                chunks.append(chunk)
                if samples is not None and sum(len(c.t_s) for c in chunks) >= samples:
                    return

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), limit_s)
    return chunks


def test_scan_lists_gaitedge_devices_strongest_first(bluez):
    rec = recording()
    near = bluez.add_device(emulator(rec, loop=True, device_id=1), rssi=-40)
    far = bluez.add_device(emulator(rec, loop=True, device_id=2), rssi=-80)
    bluez.add_device(emulator(rec, loop=True), gaitedge_service=False, name="headphones")
    found = asyncio.run(scan(0.5))
    assert [(d.address, d.name) for d in found] == [
        (near.address, "gaitedge-00000001"),
        (far.address, "gaitedge-00000002"),
    ]
    result = runner.invoke(app, ["scan", "--timeout", "0.5"])
    assert result.exit_code == 0, result.output
    assert near.address in result.stdout and "headphones" not in result.stdout


@pytest.mark.parametrize("notify_acquire", [False, True], ids=["StartNotify", "AcquireNotify"])
def test_ble_stream_is_what_the_device_sent_value_for_value(bluez, notify_acquire):
    rec = recording()
    em = emulator(rec, drift_ppm=300.0)
    device = bluez.add_device(em, mtu=100)  # (100 - 3 - 7) // 12 = 7 samples per notification
    source = BleSource(device.address, watchdog_s=1.0, notify_acquire=notify_acquire)
    chunks = asyncio.run(collect(source, samples=150))
    assert source.mtu == 100 and source.samples_per_notification == 7
    assert {len(c.t_s) for c in chunks} == {7}
    # The device streamed before the host subscribed: what arrived is a contiguous stretch,
    # starting at a frame boundary that its sequence number names.
    start = chunks[0].seq * 7
    imu = np.concatenate([c.imu for c in chunks])
    np.testing.assert_array_equal(imu, sent_si(rec, em)[start : start + len(imu)])
    # Stream time: each frame's device timestamp (its clock runs 300 ppm fast), then the
    # nominal sample period within the frame.
    for chunk in chunks:
        first = (rec.timestamp_s[chunk.seq * 7] - rec.timestamp_s[start]) * (1 + 300e-6)
        np.testing.assert_allclose(chunk.t_s, first + np.arange(7) / 50.0, atol=2e-6)
    assert source.stats.lost_frames == 0 and device.stats.start_notifies == 1


def test_transient_connect_aborts_are_retried(bluez):
    """BlueZ's le-connection-abort-by-local: bleak and bleak-retry-connector retry it."""
    device = bluez.add_device(emulator(recording(), loop=True))
    device.fail_next_connects(2)
    source = BleSource(device.address, watchdog_s=1.0)
    chunks = asyncio.run(collect(source, samples=20))
    assert chunks and device.stats.aborted_connects == 2 and device.stats.connects == 1


def test_soak_one_reconnect_per_drop_nothing_lost_between_drops(bus):
    from bench.ble import soak

    result = soak(drops=6, silent_drops=2, seed=3, watchdog_s=0.5)
    details = result["details"]
    assert result["drops"] == result["reconnects"] == 8 and result["silent_drops"] == 2
    assert result["lost_samples_outside_outages"] == 0 and details["frames_sent"] > 50
    assert details["frames_received_not_sent"] == 0
    # Every sample the device made over the outages is counted by the host, exactly.
    assert result["lost_samples_counted"] == result["lost_samples_total"] > 0
    # Re-subscribed on every connection; the watchdog fired for the silent drops only.
    assert details["subscriptions"] == details["device_connects"] == 9
    assert details["watchdog_timeouts"] == 2 and details["device_restarts_seen"] == 0
    # Each outage is a forward gap in stream time, longer than a sample period.
    assert details["min_stream_gap_s"] > 2 / 50
    assert 0 < result["median_reconnect_s"] <= result["p95_reconnect_s"] < 2.0
    # A signalled loss is known after the supervision timeout, a silent one after the watchdog.
    assert result["reconnect_from_last_sample_p50_s"] > 0.42
    assert result["silent_reconnect_from_last_sample_p50_s"] > 0.5


def test_a_watchdog_reconnect_is_one_reconnect(bluez):
    """bleak reports an intentional disconnect too: it must not force a second reconnect."""
    rec = recording(1.0)
    device = bluez.add_device(emulator(rec), mtu=23)  # 1 sample a notification: watchdog 0.3 s
    source = BleSource(device.address, watchdog_s=0.3, max_backoff_s=0.2)
    asyncio.run(collect(source, limit_s=3.0))  # the recording ends after 1 s: silence
    assert source.samples_per_notification == 1
    assert source.stats.watchdog_timeouts >= 3
    # One reconnect per watchdog timeout (the last may still be under way when time is up).
    assert source.stats.reconnects in (
        source.stats.watchdog_timeouts,
        source.stats.watchdog_timeouts - 1,
    )
    # Each watchdog timeout closed the link on purpose, plus the close at the end if connected.
    timeouts = source.stats.watchdog_timeouts
    assert device.stats.host_disconnects in (timeouts, timeouts + 1)


def test_a_device_that_switches_off_is_given_up_clearly(bluez):
    device = bluez.add_device(emulator(recording(), loop=True, disconnect_after_s=0.5))
    source = BleSource(device.address, connect_timeout_s=0.5, max_reconnects=2, max_backoff_s=0.1)

    async def run():
        async with source:
            async for _ in source.chunks():
                pass

    with pytest.raises(SourceError, match="2 reconnect attempts failed"):
        asyncio.run(asyncio.wait_for(run(), 15.0))
    assert device.stats.link_drops == 1


def test_unknown_address_and_foreign_device_are_clear_errors(bluez):
    foreign = bluez.add_device(emulator(recording(), loop=True), gaitedge_service=False)

    async def connect(address):
        async with BleSource(address, scan_timeout_s=0.3):
            pass

    with pytest.raises(SourceError, match=r"BLE device AA:BB:CC:DD:EE:FF not found"):
        asyncio.run(connect("AA:BB:CC:DD:EE:FF"))
    with pytest.raises(IncompatibleDeviceError, match="not a gaitedge device"):
        asyncio.run(connect(foreign.address))
    result = runner.invoke(app, ["listen", "--ble", foreign.address, "--duration", "1"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "not a gaitedge device" in result.output
    assert str(SERVICE_UUID) in result.output and "Traceback" not in result.output


def test_missing_adapter_or_bluez_is_one_line(bus):
    with EmulatedBlueZ(adapter=False):
        result = runner.invoke(app, ["scan", "--timeout", "0.3"])
        assert result.exit_code == 1
        assert result.output == (
            "error: BLE scan failed: no usable Bluetooth adapter (No Bluetooth adapters found.)\n"
        )
    # The bus without BlueZ on it.
    result = runner.invoke(app, ["listen", "--ble", "AA:BB:CC:DD:EE:FF", "--duration", "1"])
    assert result.exit_code == 1
    assert "BlueZ (bluetoothd) is not running" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output


def test_listen_ble_records_two_devices_value_for_value(bluez, tmp_path):
    rec = recording(20.0)
    ems = [emulator(rec, loop=True, device_id=i) for i in (0xA, 0xB)]
    devices = [bluez.add_device(em) for em in ems]
    out = tmp_path / "live.csv"
    args = ["listen", "--model", str(make_bundle(tmp_path / "m.onnx")), "--duration", "3"]
    for device in devices:
        args += ["--ble", device.address]
    result = runner.invoke(app, [*args, "--record", str(out), "-q"])
    assert result.exit_code == 0, result.output
    # Each device's rows are its own stream (its stream time starts at its first sample).
    table = np.loadtxt(out, delimiter=",", skiprows=1, usecols=range(7))
    names = np.loadtxt(out, delimiter=",", skiprows=1, usecols=7, dtype=str)
    for em, device in zip(ems, devices, strict=True):
        rows = names == device.address
        assert rows.sum() > 80, (device.address, rows.sum())  # ~3 s at 50 Hz, minus connecting
        assert (np.diff(table[rows, 0]) > 0).all()
        got, sent = table[rows, 1:], sent_si(rec, em)
        start = int(np.flatnonzero((sent == got[0]).all(axis=1))[0])
        np.testing.assert_array_equal(got, sent[start : start + len(got)])


def test_demo_over_ble(tmp_path):
    env_before = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    model = make_bundle(tmp_path / "m.onnx")
    result = runner.invoke(app, ["demo", "--ble", "--model", str(model), "--duration", "4", "-q"])
    assert result.exit_code == 0, result.output
    assert "gaitedge listen --ble" in result.stdout
    assert '"windows"' in result.stdout.strip().splitlines()[-1]
    assert os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") == env_before  # the private bus is gone
