"""Sources: replay pacing, serial through a real pty from the device emulator (BLE: test_ble.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
import pytest

from firmware_bridge import (
    DeviceInfo,
    SampleFrame,
    StreamDecoder,
    counts_to_si,
    si_to_counts,
)
from firmware_bridge.emulator import EmulatedSerialDevice, Emulator, EmulatorConfig, PtyPort
from gaitedge.recording import Recording
from gaitedge.sources import DeviceSource, ReplaySource, SerialSource, SourceError
from gaitedge.sources.base import SourceStats
from gaitedge.sources.frames import ClockModel, FrameAssembler


def recording(seconds: float = 4.0, rate_hz: float = 50.0) -> Recording:
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    imu = np.column_stack(
        [np.sin(t), np.cos(t), 9.8 + 0 * t, 0.1 * np.sin(3 * t), 0 * t, 0.2 + 0 * t]
    )
    return Recording(t, imu)


async def collect(source, limit_s: float = 10.0, until=None):
    chunks = []

    async def run():
        async with source:
            async for chunk in source.chunks():
                chunks.append(chunk)
                if until is not None and until(chunks):
                    return

    # Time is up, or the device went away for good: either way, return what arrived.
    with contextlib.suppress(TimeoutError, SourceError):
        await asyncio.wait_for(run(), limit_s)
    return chunks


def test_replay_is_paced_without_drift():
    rec = recording(2.0)
    start = time.monotonic()
    chunks = asyncio.run(collect(ReplaySource(recording=rec, speed=4.0, tick_s=0.02)))
    elapsed = time.monotonic() - start
    t = np.concatenate([c.t_s for c in chunks])
    np.testing.assert_allclose(t, rec.timestamp_s)
    assert 0.45 <= elapsed <= 0.9, elapsed  # 2 s of data at 4x
    assert chunks[0].new_connection and not chunks[1].new_connection


def test_paced_replay_cuts_the_same_chunks_however_the_consumer_keeps_up():
    """Paced chunks are fixed slices of the recording's time, so a replay says the same on
    every run: a consumer that stalls now and then (a slow machine) gets the same chunks, the
    ones it fell behind on at once; a stamp that steps back still goes, with its slice."""
    rec = recording(2.0)
    rec.timestamp_s[60:63] = rec.timestamp_s[40]  # a clock that stepped back 0.4 s, briefly

    async def run(stall_every: int) -> list[tuple[float, int]]:
        got, source = [], ReplaySource(recording=rec, speed=4.0, tick_s=0.02)
        async with source:
            async for chunk in source.chunks():
                got.append((float(chunk.t_s[0]), len(chunk.t_s)))
                if stall_every and len(got) % stall_every == 0:
                    time.sleep(0.05)  # blocks the loop, as a slow pipeline does
        return got

    steady = asyncio.run(run(0))
    assert asyncio.run(run(3)) == steady
    assert sum(n for _, n in steady) == len(rec)
    sizes = [n for _, n in steady]
    assert sizes.count(4) >= len(sizes) - 2  # 0.08 s of 50 Hz a slice
    assert sizes[14] == 7  # the stepped-back stamps went with the slice of the newest before


def test_replay_fast_yields_everything_in_big_chunks():
    rec = recording(60.0)
    chunks = asyncio.run(collect(ReplaySource(recording=rec, fast=True, fast_chunk_samples=1000)))
    assert [len(c.t_s) for c in chunks] == [1000, 1000, 1000]


def expected_si(rec: Recording, emulator: Emulator) -> np.ndarray:
    return counts_to_si(si_to_counts(rec.imu, emulator.info), emulator.info)


def test_serial_source_reads_the_emulator_over_a_real_pty():
    rec = recording(3.0)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(speed=4.0, samples_per_frame=5))
    with EmulatedSerialDevice(emulator) as device:
        source = SerialSource(device.path, watchdog_s=1.0, max_reconnects=1)
        chunks = asyncio.run(
            collect(source, until=lambda cs: sum(len(c.t_s) for c in cs) >= len(rec))
        )
    t = np.concatenate([c.t_s for c in chunks])
    imu = np.concatenate([c.imu for c in chunks])
    np.testing.assert_allclose(t, rec.timestamp_s, atol=2e-6)
    np.testing.assert_array_equal(imu, expected_si(rec, emulator))
    assert source.stats.lost_frames == 0 and chunks[0].new_connection


def test_serial_source_counts_dropped_and_corrupted_frames():
    rec = recording(4.0)
    cfg = EmulatorConfig(speed=8.0, samples_per_frame=2, drop_rate=0.05, corrupt_rate=2e-3, seed=3)
    emulator = Emulator(rec.timestamp_s, rec.imu, cfg)
    with EmulatedSerialDevice(emulator) as device:
        source = SerialSource(device.path, watchdog_s=0.5, max_reconnects=1)
        chunks = asyncio.run(collect(source, limit_s=3.0))
    got = sum(len(c.t_s) for c in chunks)
    assert emulator.stats.frames_dropped > 0 and emulator.stats.bytes_corrupted > 0
    lost_by_seq = sum(c.lost_frames for c in chunks)
    # Every frame that did not arrive is a sequence gap, except any before the first frame
    # received or after the last one.
    made = emulator.stats.frames_made
    unseen_ends = chunks[0].seq + (made - 1 - chunks[-1].seq)
    assert lost_by_seq + unseen_ends == made - got // 2
    assert lost_by_seq >= emulator.stats.frames_dropped
    t = np.concatenate([c.t_s for c in chunks])
    assert (np.diff(t) > 0).all()


@pytest.mark.parametrize("kind", ["random", "text"])
def test_a_port_sending_no_valid_frame_is_said_so_once(caplog, kind):
    """A port that sends bytes but never a frame (another device's text, a wrong baud rate):
    `listen` printed nothing at all, not even a status line. One warning after the watchdog's
    time, naming the bytes, what they are counted as, and what to check."""
    import random
    import threading

    port, stop = PtyPort(), threading.Event()
    rng = random.Random(7)

    def send() -> None:
        while not stop.is_set():
            junk = bytes(rng.randrange(256) for _ in range(64))
            port.write(junk if kind == "random" else b"ax=0.01,ay=9.81,az=0.2\r\n" * 3)
            time.sleep(0.02)

    writer = threading.Thread(target=send, daemon=True)
    writer.start()
    try:
        with caplog.at_level("WARNING", logger="gaitedge.sources.device"):
            source = SerialSource(port.path, watchdog_s=0.5, max_reconnects=1)
            chunks = asyncio.run(collect(source, limit_s=2.0))
    finally:
        stop.set()
        writer.join()
    assert chunks == []
    told = [r.getMessage() for r in caplog.records if "no valid frame" in r.getMessage()]
    assert len(told) == 1, told
    assert told[0].startswith(f"{port.path}: ") and "another baud rate or firmware" in told[0]
    # its status row shows the link and what it counted (the port had no row at all)
    from gaitedge.engine import load_engine
    from gaitedge.pipeline import Pipeline
    from gaitedge.runner import status
    from gaitedge.sinks import FanOut

    (row,) = status(Pipeline(load_engine(None), FanOut([])), [source])
    assert row.device == port.path and row.windows == 0 and row.link.corrupt > 0
    assert (
        row.line().startswith(f"[{port.path}] t=0.0s ")
        and f"corrupt={row.link.corrupt}" in row.line()
    )


def test_unplugged_port_reconnects_then_gives_up_clearly():
    rec = recording(10.0)
    emulator = Emulator(rec.timestamp_s, rec.imu, EmulatorConfig(disconnect_after_s=1.0, speed=2.0))
    with EmulatedSerialDevice(emulator) as device:
        source = SerialSource(device.path, watchdog_s=0.5, max_reconnects=2, max_backoff_s=0.1)

        async def run():
            async with source:
                async for _ in source.chunks():
                    pass

        with pytest.raises(SourceError, match="reconnect attempts failed"):
            asyncio.run(asyncio.wait_for(run(), 10.0))


def test_unplug_and_replug_at_the_same_path_resumes_the_stream(tmp_path):
    """A device node that vanishes and comes back (like /dev/ttyACM0 across a USB replug): a
    symlink to one pty, then, after that pty closes, to a fresh pty with a fresh emulator."""
    rec = recording(1.0)
    link = tmp_path / "ttyACM0"
    # Real time: stream time after a reconnect continues from host time, which a sped-up
    # device clock would overtake.
    config = EmulatorConfig(speed=1.0, samples_per_frame=5)
    first = EmulatedSerialDevice(Emulator(rec.timestamp_s, rec.imu, config), linger_s=0.3)
    second = EmulatedSerialDevice(Emulator(rec.timestamp_s, rec.imu, config))
    link.symlink_to(first.path)
    source = SerialSource(str(link), watchdog_s=1.0, max_reconnects=20, max_backoff_s=0.1)
    n = len(rec)

    def wait_for(condition) -> None:
        deadline = time.monotonic() + 10.0
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    def replug():
        # Each device starts streaming once the port is open, so its first DeviceInfo is read.
        wait_for(lambda: source._thread is not None)
        first.start()
        first.wait(10.0)  # the first device sent everything and closed its port: unplugged
        link.unlink()
        time.sleep(0.3)  # the node is gone for a while; reconnect attempts fail meanwhile
        link.symlink_to(second.path)
        wait_for(lambda: source.stats.reconnects == 1)
        second.start()

    async def run():
        replugger = asyncio.create_task(asyncio.to_thread(replug))
        chunks = await collect(source, until=lambda cs: sum(len(c.t_s) for c in cs) >= 2 * n)
        await replugger
        return chunks

    try:
        chunks = asyncio.run(run())
    finally:
        for device in (first, second):
            if device._thread.ident is not None:  # started
                device.stop()
    starts = [i for i, c in enumerate(chunks) if c.new_connection]
    assert len(starts) == 2 and starts[0] == 0 and source.stats.reconnects == 1
    before = np.concatenate([c.imu for c in chunks[: starts[1]]])
    after = np.concatenate([c.imu for c in chunks[starts[1] :]])
    want = expected_si(rec, first.emulator)
    np.testing.assert_array_equal(before, want)  # nothing lost on either side of the outage
    np.testing.assert_array_equal(after, want)
    t = np.concatenate([c.t_s for c in chunks])
    gap = chunks[starts[1]].t_s[0] - chunks[starts[1] - 1].t_s[-1]
    assert (np.diff(t) > 0).all() and gap > 0.3  # the outage is a gap in stream time


def test_a_port_in_use_is_refused_not_shared():
    rec = recording(2.0)
    with EmulatedSerialDevice(Emulator(rec.timestamp_s, rec.imu)) as device:

        async def run():
            async with SerialSource(device.path), SerialSource(device.path):
                pass

        with pytest.raises(SourceError, match=f"cannot open serial port {device.path}.*lock"):
            asyncio.run(run())


def test_closing_does_not_block_the_event_loop():
    """The reader thread is joined off the loop: a 0.4 s read timeout (a slow driver) must not
    stall a timer task running beside the close."""
    import serial

    def slow_port(url, **kwargs):
        return serial.serial_for_url(url, **{**kwargs, "timeout": 0.4})

    async def run():
        ticks = []

        async def tick():
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        source = SerialSource(device.path, serial_factory=slow_port)
        await source.__aenter__()
        await asyncio.sleep(0.05)  # the reader is now inside a 0.4 s read: no data is coming
        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.02)
        start = time.monotonic()
        await source.__aexit__(None, None, None)
        closed_s = time.monotonic() - start
        await asyncio.sleep(0.03)  # a tick after the close shows any stall
        ticker.cancel()
        return closed_s, float(np.diff(ticks).max())

    device = PtyPort()  # a port that stays silent
    try:
        closed_s, longest_tick_gap_s = asyncio.run(run())
    finally:
        device.close()
    assert closed_s > 0.1  # the close did wait for the reader...
    assert longest_tick_gap_s < 0.1  # ...without stalling the loop (it used to block ~0.4 s)


def test_missing_port_is_a_clear_error():
    async def run():
        async with SerialSource("/dev/does-not-exist"):
            pass

    with pytest.raises(SourceError, match="cannot open serial port /dev/does-not-exist"):
        asyncio.run(run())


def test_assembler_waits_for_device_info_and_continues_time_across_reconnects():
    info = DeviceInfo(
        device_id=1, sample_rate_millihz=50_000, accel_range_g=16, gyro_range_dps=2000
    )
    stats = SourceStats()
    asm = FrameAssembler("dev", stats)
    frame = lambda seq, ts: SampleFrame(seq, ts, np.ones((2, 6), np.int16))  # noqa: E731
    assert asm.add(frame(0, 0), 100.0) == []  # no DeviceInfo yet: kept
    (first,) = asm.add(info, 100.0)
    np.testing.assert_allclose(first.t_s, [0.0, 0.02])
    (second,) = asm.add(frame(3, 120_000), 100.2)  # seq 1 and 2 lost
    assert second.lost_frames == 2 and stats.lost_frames == 2
    assert asm.add(frame(3, 120_000), 100.2) == []  # duplicate frame ignored
    asm.reset()  # reconnect 4.8 s later; the device restarted (seq and clock at 0 again)
    (third,) = asm.add(frame(0, 0), 105.0)
    # A new timeline after the last sample (0.14 s) by the host time passed; nothing counted.
    assert third.new_connection and not third.continued and stats.device_restarts == 1
    assert third.t_s[0] == pytest.approx(0.14 + 4.8) and stats.lost_frames == 2


def test_clock_model_fits_drift():
    clock = ClockModel()
    device = np.arange(0, 20, 0.1)
    for d in device:
        clock.add(d, 1000.0 + d * (1 + 200e-6) + 0.003)
    offset, drift = clock.fit()
    assert drift * 1e6 == pytest.approx(200, abs=1)
    assert offset == pytest.approx(1000.003, abs=1e-6)


class _EndlessDevice(DeviceSource):
    """A link whose queue is never empty (a busy device), decoding to nothing."""

    async def _connect(self):
        for _ in range(200_000):
            self._put((b"\x00", 0.0))

    async def _disconnect(self):
        pass

    def _decode(self, payload):
        return []

    def _decoder_stats(self):
        return StreamDecoder().stats


def test_stopping_a_busy_stream_is_never_swallowed(tmp_path):
    """`--duration` must stop a device whose data never pauses (no lost cancellation)."""
    from gaitedge.engine import DEFAULT_MODEL
    from gaitedge.runner import open_pipeline, stream

    source = _EndlessDevice(
        "busy", watchdog_s=5.0, max_backoff_s=1.0, max_reconnects=1, queue_size=300_000
    )
    pipe = open_pipeline(DEFAULT_MODEL, None)
    start = time.monotonic()
    asyncio.run(asyncio.wait_for(stream(pipe, source, duration_s=0.3), 20.0))
    assert time.monotonic() - start < 5.0
