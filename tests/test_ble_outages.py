"""Losses counted through link outages (issue 22 item 5).

A device's sequence number and clock run on while its link is down; the host keeps both across
a reconnect and counts every sample the device made meanwhile, or says the device restarted.
First the assemblers on their own (synthetic frames, vendor payloads from the emulated
peripherals), then end to end through bleak's real BlueZ backend against the emulated BlueZ:
a signalled drop (reported after the supervision timeout), a silent one (never reported: the
watchdog notices) and a device restart.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

import numpy as np
import pytest

from bench.ble import lost_samples_total
from firmware_bridge import DeviceInfo, SampleFrame
from firmware_bridge.ble_emulator import emulated_bluez
from firmware_bridge.emulator import Emulator, EmulatorConfig
from firmware_bridge.peripherals import make_peripheral
from gaitedge.devices import make_profile
from gaitedge.devices.movesense import REFERENCE
from gaitedge.devices.stream import DeviceAssembler
from gaitedge.sources import BleSource
from gaitedge.sources.base import SourceStats
from gaitedge.sources.frames import FrameAssembler

RATE = 50.0
INFO = DeviceInfo(device_id=7, sample_rate_millihz=50_000, accel_range_g=16, gyro_range_dps=2000)


def frame(seq: int, n: int = 3) -> SampleFrame:
    """Frame ``seq`` of a device sending ``n`` samples a frame from boot (clock wraps too)."""
    return SampleFrame(seq % 65536, round(seq * n / RATE * 1e6) % 2**32, np.ones((n, 6), np.int16))


def feed(asm: FrameAssembler, seqs, n: int = 3, t0: float = 1000.0) -> list:
    """Frames arriving when their last sample is taken (host clock = device clock + t0)."""
    return [c for s in seqs for c in asm.add(frame(s, n), t0 + (s + 1) * n / RATE)]


def test_an_outage_is_counted_sample_for_sample_and_stream_time_goes_on():
    stats = SourceStats()
    asm = FrameAssembler("dev", stats)
    asm.add(INFO, 1000.0)
    before = feed(asm, range(100))  # 6 s: the clock fit has data
    asm.reset()  # the link dropped; the device made frames 100..139 meanwhile
    asm.add(INFO, 1008.5)
    after = feed(asm, range(140, 150))
    first = after[0]
    assert first.new_connection and first.continued
    assert first.lost_frames == 40 and first.lost_samples == 120
    assert stats.lost_samples == 120 and stats.lost_frames == 40 and stats.device_restarts == 0
    # Stream time stays on the device clock: the outage is a gap of exactly what was lost.
    assert first.t_s[0] - before[-1].t_s[-1] == pytest.approx(121 / RATE)


def test_an_outage_longer_than_the_counter_and_clock_wraps():
    stats = SourceStats()
    asm = FrameAssembler("dev", stats)
    asm.add(INFO, 1000.0)
    feed(asm, range(100), n=1)
    asm.reset()
    gone = 80 * 60 * 50  # 80 minutes at 50 Hz, one sample a frame: 3.7 seq wraps, 1.1 clock wraps
    (first,) = feed(asm, [100 + gone], n=1)
    assert first.continued and first.lost_frames == first.lost_samples == gone
    assert stats.device_restarts == 0


def test_a_restarted_device_is_told_apart(caplog):
    stats = SourceStats()
    asm = FrameAssembler("dev", stats)
    asm.add(INFO, 1000.0)
    before = feed(asm, range(100))
    asm.reset()
    caplog.set_level(logging.WARNING)
    # Back 2 s later, but counting from boot again: sequence number and clock start over.
    (first,) = [c for s in (2, 3) for c in asm.add(frame(s), 1008.0 + s * 0.06)][:1]
    assert first.new_connection and not first.continued and stats.device_restarts == 1
    assert stats.lost_samples == 0  # what it made before rebooting cannot be counted
    assert first.t_s[0] > before[-1].t_s[-1]  # a new timeline, after the old one
    assert "restarted" in caplog.text
    # Another device at that address (another device id) is no continuation either.
    asm.reset()
    asm.add(DeviceInfo(8, 50_000, 16, 2000), 1010.0)
    (other,) = asm.add(frame(54), 1010.0 + 0.06)
    assert not other.continued and stats.device_restarts == 2


def test_a_frame_repeated_at_a_reconnect_is_not_a_restart():
    stats = SourceStats()
    asm = FrameAssembler("dev", stats)
    asm.add(INFO, 1000.0)
    feed(asm, range(100))
    asm.reset()
    assert asm.add(frame(99), 1006.5) == []
    (first,) = feed(asm, [120])
    assert first.continued and first.lost_samples == 60 and stats.device_restarts == 0


def movesense_payloads(hapt, start: int, stop: int) -> list[tuple[str, bytes]]:
    t, imu, _ = hapt
    peripheral = make_peripheral("movesense", t[:600], imu[:600])
    peripheral.reference = REFERENCE
    peripheral.start_sensor("imu")
    return [peripheral.encode(i, i + 4)[0][:2] for i in range(start, stop, 4)]


def test_a_vendor_clock_counts_its_outage_and_tells_a_restart(hapt_experiment):
    profile = make_profile("movesense")
    stats = SourceStats()
    asm = DeviceAssembler("dev", stats, profile.rate_hz)
    rate = profile.rate_hz

    def add(payloads, start):
        out = []
        for k, (uuid, payload) in enumerate(payloads):
            host = 500.0 + (start + 4 * k + 4) / rate
            out += [c for s in profile.decode(uuid, payload) for c in asm.add(s, host)]
        return out

    before = add(movesense_payloads(hapt_experiment, 0, 160), 0)
    asm.reset()  # 52 samples (13 notifications) made while the link was down
    profile.reset()
    after = add(movesense_payloads(hapt_experiment, 212, 240), 212)
    assert after[0].continued and after[0].lost_samples == 52 and stats.lost_samples == 52
    assert after[0].t_s[0] - before[-1].t_s[-1] == pytest.approx(53 / rate, abs=2e-3)
    asm.reset()  # the sensor rebooted: its clock starts over
    profile.reset()
    restarted = add(movesense_payloads(hapt_experiment, 0, 8), 400)
    assert not restarted[0].continued and stats.device_restarts == 1
    assert stats.lost_samples == 52 and restarted[0].t_s[0] > after[-1].t_s[-1]


def test_a_device_without_time_has_its_outage_inferred_from_the_host_clock():
    stats = SourceStats()
    asm = DeviceAssembler("dev", stats, RATE)
    from gaitedge.devices.base import Samples

    for i in range(150):
        asm.add(Samples(np.ones((1, 6))), 100.0 + i / RATE)
    asm.reset()
    (chunk,) = asm.add(Samples(np.ones((1, 6))), 100.0 + 199 / RATE)  # 49 made meanwhile
    assert chunk.continued and chunk.lost_samples == 49
    assert stats.lost_samples_inferred == stats.lost_samples == 49


def test_the_chain_bridges_a_short_outage_and_breaks_at_a_long_one(hapt_experiment):
    """A continued reconnect is a gap the chain treats by its max_gap_s rule, as a loss on a
    live link; a restart starts a new segment."""
    from gaitedge.engine import DEFAULT_MODEL, load_engine
    from gaitedge.pipeline import Pipeline
    from gaitedge.sinks import FanOut

    t, imu, _ = hapt_experiment
    em = Emulator(t[:1500], imu[:1500], EmulatorConfig(samples_per_frame=5))
    frames = [m for _, m in em.messages() if isinstance(m, SampleFrame)]
    stats = SourceStats()
    asm = FrameAssembler("dev", stats)
    asm.add(em.info, 0.0)
    pipe = Pipeline(load_engine(DEFAULT_MODEL), FanOut([]), mount="none")
    chain = None

    def deliver(fs):
        nonlocal chain
        for f in fs:
            for chunk in asm.add(f, f.timestamp_us * 1e-6 + 0.1):
                pipe.process(chunk)
        chain = pipe.devices["dev"].chain

    deliver(frames[:100])
    asm.reset()  # 0.5 s lost: under max_gap_s, bridged
    deliver(frames[105:200])
    assert chain.stats.segments == 1 and chain.stats.bridged_gaps >= 1
    asm.reset()  # 2 s lost: over max_gap_s, a new segment, on the same timeline
    deliver(frames[220:300])
    assert chain.stats.segments == 2
    assert stats.lost_samples == 5 * (5 + 20) and stats.device_restarts == 0


# End to end: bleak's BlueZ backend against the emulated BlueZ.

needs_dbus = pytest.mark.skipif(
    shutil.which("dbus-daemon") is None, reason="needs dbus-daemon (Debian package 'dbus')"
)


def stream_through(action, *, at: int = 10, after: int = 15, **source_options):
    """Stream an emulated device; ``action(device)`` at the 10th chunk; stop ``after`` chunks
    into the next connection. Returns (device, source, chunks)."""
    t = np.arange(3000) / RATE
    imu = np.column_stack([np.sin(t), np.cos(t), 9.8 + 0 * t, 0.1 * t, 0 * t, 0.2 + 0 * t])
    with emulated_bluez() as bluez:
        device = bluez.add_device(Emulator(t, imu, EmulatorConfig(loop=True)), mtu=47)
        source = BleSource(device.address, max_backoff_s=0.2, **source_options)

        async def run():
            chunks = []
            async with source:
                async for chunk in source.chunks():
                    chunks.append(chunk)
                    if len(chunks) == at:
                        action(device)
                    starts = [i for i, c in enumerate(chunks) if c.new_connection]
                    if len(starts) > 1 and len(chunks) - starts[1] >= after:
                        return chunks

        chunks = asyncio.run(asyncio.wait_for(run(), 20.0))
    return device, source, chunks


def reconnect_at(chunks) -> int:
    return next(i for i, c in enumerate(chunks) if i and c.new_connection)


@needs_dbus
@pytest.mark.parametrize("silent", [False, True], ids=["signalled", "silent"])
def test_samples_made_during_a_drop_are_counted_exactly(silent):
    device, source, chunks = stream_through(
        lambda d: d.drop_link(outage_s=0.3, silent=silent), watchdog_s=0.5
    )
    received = {c.seq: len(c.t_s) for c in chunks}
    total = lost_samples_total(device.stats.made, received)
    assert total >= 0.42 * RATE  # at least the supervision timeout or the watchdog
    assert source.stats.lost_samples == total and source.stats.lost_frames * 3 == total
    i = reconnect_at(chunks)
    first, previous = chunks[i], chunks[i - 1]
    assert first.continued and first.lost_samples == total and source.stats.device_restarts == 0
    assert first.t_s[0] - previous.t_s[-1] == pytest.approx((total + 1) / RATE, abs=1e-5)
    assert source.stats.reconnects == 1 and device.stats.link_drops == 1
    # A silent drop was never reported: the watchdog noticed and the host disconnected (then
    # once more at the end of the stream).
    assert source.stats.watchdog_timeouts == int(silent) and device.stats.silent_drops == silent
    assert device.stats.host_disconnects == int(silent) + 1


@needs_dbus
def test_a_device_restart_is_detected_over_ble(caplog):
    caplog.set_level(logging.WARNING, logger="gaitedge.sources.frames")
    # Up 2.4 s when it reboots: its clock goes back.
    device, source, chunks = stream_through(lambda d: d.restart(outage_s=0.2), at=40)
    first = chunks[reconnect_at(chunks)]
    assert device.stats.restarts == 1 and source.stats.device_restarts == 1
    assert not first.continued and first.seq < 20  # streaming from its first frames again
    assert source.stats.lost_samples == 0
    assert "restarted" in caplog.text
