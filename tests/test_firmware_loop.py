"""Firmware in the loop: the reference application on QEMU's mps2-an386 (Cortex-M4), its UART on
a pty, heard by the real serial source; the device's decisions equal ``gaitedge replay``'s.

A held-out SisFall fall trial (subject SA08) is quantised to the device's int16 counts, played
by the firmware through semihosting, and run through the generated C library on the emulated
CPU; the firmware sends device info, sample frames and result frames (protocol 1.2) over its
UART. The host listens with ``SerialSource`` and a shadowing pipeline, and replays the same
counts (in SI units) with ``gaitedge replay``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from firmware_bridge.convert import counts_to_si
from gaitedge import datasets as ds
from tests.conftest import ORT_AVX512, missing

SUBJECT = "sisfall:SA08"  # held out of training


@pytest.fixture(scope="module")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            missing(
                f"{tool} is not installed (apt-get install gcc-arm-none-eabi "
                "libnewlib-arm-none-eabi qemu-system-arm)"
            )
    from firmware_bridge.firmware_loop import build_firmware
    from gaitedge.engine import DEFAULT_MODEL

    return build_firmware(DEFAULT_MODEL, tmp_path_factory.mktemp("fw"))


def _listen(elf: Path, imu_bin: bytes, workdir: Path, alerts: Path, timeout_s: float = 120):
    """The firmware under QEMU, heard by SerialSource through a shadowing pipeline (what
    ``gaitedge listen --serial PTY --shadow`` runs): (pipeline status, source stats, counts)."""
    from firmware_bridge.firmware_loop import FirmwareDevice
    from gaitedge.runner import SinkOptions, open_pipeline, stream
    from gaitedge.sources import SerialSource

    async def run(device: FirmwareDevice, pipe) -> tuple[int, int, int]:
        source = SerialSource(device.path, watchdog_s=30.0)
        task = asyncio.ensure_future(stream(pipe, source))
        started = asyncio.ensure_future(asyncio.to_thread(device.start_when_opened, 30.0))
        await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():  # the source ended before the device started: say why
            started.cancel()
            task.result()
            raise AssertionError("the stream ended before the device started")
        await started
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:  # until the host has every frame the firmware says it sent
            done = device.done()
            k = source.stats
            if done is not None and (k.samples, k.results) == (done[0], done[2]):
                break
            assert loop.time() < deadline, (done, k)
            assert not task.done(), task.exception()
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        pipe.finish(source.device)  # what the host chain held back at the end
        return done, source.stats

    with (
        FirmwareDevice(elf, imu_bin, workdir) as device,
        open_pipeline(None, SinkOptions(alerts_jsonl=alerts), shadow=True) as pipe,
    ):
        done, stats = asyncio.run(run(device, pipe))
        status = pipe.device_status()
    return status, stats, done


def _alerts(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_device_decisions_equal_replay_and_the_shadow_agrees(
    firmware: Path, sisfall_dir: Path, tmp_path: Path
) -> None:
    from firmware_bridge.firmware_loop import DeviceSetup, imu_file
    from gaitedge.cli import app
    from gaitedge.recording import Recording, write_recording

    rec = next(r for r in ds.sisfall_recordings(sisfall_dir.parent, [SUBJECT]) if r.is_fall)
    assert rec.rate_hz == 50.0
    setup = DeviceSetup()
    imu_bin, counts = imu_file(rec.imu, setup)
    status, stats, (samples, frames, results) = _listen(
        firmware, imu_bin, tmp_path, tmp_path / "device.jsonl"
    )
    assert samples == len(rec.imu) and frames == -(-samples // setup.samples_per_frame)
    assert stats.lost_frames == stats.lost_results == 0 and not stats.decoder_drops
    # The same counts, in SI units, replayed by the host (the mounting the device declares).
    csv = tmp_path / "excerpt.csv"
    t = np.arange(len(counts)) / rec.rate_hz
    write_recording(csv, Recording(t, counts_to_si(counts, setup.info)))
    replayed = CliRunner().invoke(
        app,
        ["replay", str(csv), "--fast", "--mount", "x,y,z", "--quiet",
         "--alerts-jsonl", str(tmp_path / "replay.jsonl")],
    )  # fmt: skip
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout.strip().splitlines()[-1])["windows"] == results

    device, host = _alerts(tmp_path / "device.jsonl"), _alerts(tmp_path / "replay.jsonl")
    assert {a["type"] for a in host} == {"activity", "fall"}
    assert len(device) == len(host)
    for d, h in zip(device, host, strict=True):
        for key in ("type", "label", "t", "t_event", "confirmed_by"):
            assert d.get(key) == h.get(key), (key, d, h)
        # 16-bit probabilities on the wire (and ORT's AVX2 rounding: tests/conftest.py)
        assert d["p"] == pytest.approx(h["p"], abs=2e-4 if ORT_AVX512 else 5e-3)
        assert d.get("impact_g", 0) == pytest.approx(h.get("impact_g", 0), abs=0.011)
    (row,) = status
    assert row.decisions == "device" and row.windows == results
    assert row.shadow == {
        "windows": results, "disagreements": 0, "class_disagreements": 0,
        "alert_disagreements": 0, "device_only": 0, "host_only": 0,
    }  # fmt: skip


def test_the_device_sees_its_reader_without_taking_the_lock(monkeypatch):
    """``FirmwareDevice.reader_attached`` reads ``/proc/locks``: a probe that took the pty's
    lock itself, even for a moment, made the serial source's exclusive open that fell in that
    moment fail, and a first open that fails ends the listen (one CI run lost the test so)."""
    import fcntl
    import os
    import pty

    import serial

    from firmware_bridge.firmware_loop import FirmwareDevice

    if not os.path.exists("/proc/locks"):
        pytest.skip("no /proc/locks (not Linux)")
    main, follower = pty.openpty()
    device = FirmwareDevice.__new__(FirmwareDevice)  # the probe needs only the pty's path
    device.path = os.ttyname(follower)
    monkeypatch.setattr(fcntl, "flock", lambda *a: pytest.fail("the probe took a lock"))
    try:
        assert not device.reader_attached()
        monkeypatch.undo()  # pyserial's exclusive open takes its flock
        port = serial.Serial(device.path, exclusive=True)
        monkeypatch.setattr(fcntl, "flock", lambda *a: pytest.fail("the probe took a lock"))
        assert device.reader_attached()
        port.close()
        assert not device.reader_attached()
    finally:
        os.close(main)
        os.close(follower)
