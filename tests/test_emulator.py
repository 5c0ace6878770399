"""The device emulator: what it sends equals the recording, faults show up where they should."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import serial

from firmware_bridge import (
    DeviceInfo,
    Message,
    SampleFrame,
    StreamDecoder,
    TimestampUnwrapper,
    frame_to_si,
    frames_lost,
    scale_per_count,
)
from firmware_bridge.emulator import (
    EmulatedSerialDevice,
    Emulator,
    EmulatorConfig,
    mounting_from_axis_map,
)
from gaitedge.recording import Recording, RecordingWriter, read_recording

RATE_HZ = 100.0


def _synthetic(n: int, rate_hz: float = RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """[N] times and [N, 6] samples: walking-like accel around 1 g and a gyro swing."""
    t = np.arange(n) / rate_hz
    phase = 2 * np.pi * 1.8 * t
    imu = np.column_stack(
        [np.sin(phase), 0.5 * np.cos(phase), 9.81 + 3 * np.sin(2 * phase)]
        + [2.0 * np.sin(phase + k) for k in range(3)]
    )
    return t, imu


@pytest.fixture
def recording(tmp_path: Path) -> Recording:
    """Two seconds at 100 Hz, through the foundation's CSV writer and reader."""
    path = tmp_path / "walk.csv"
    with RecordingWriter(path) as writer:
        writer.write(*_synthetic(200))
    return read_recording(path)


def _decode_all(emulator: Emulator) -> tuple[list[Message], StreamDecoder]:
    decoder = StreamDecoder()
    return decoder.feed(b"".join(p for _, p in emulator.packets())), decoder


def _frames(messages: list[Message]) -> list[SampleFrame]:
    return [m for m in messages if isinstance(m, SampleFrame)]


def _to_si(frames: list[SampleFrame], info: DeviceInfo) -> tuple[np.ndarray, np.ndarray]:
    unwrap = TimestampUnwrapper()
    parts = [frame_to_si(f, info, unwrap.unwrap(f.timestamp_us)) for f in frames]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_frames_reproduce_the_recording_within_quantisation(recording: Recording) -> None:
    emulator = Emulator.from_recording(recording, EmulatorConfig(samples_per_frame=3))
    messages, decoder = _decode_all(emulator)
    assert messages[0] == emulator.info and emulator.info.sample_rate_millihz == 100_000
    frames = _frames(messages)
    assert [f.seq for f in frames] == list(range(len(recording) // 3))
    t, imu = _to_si(frames, emulator.info)
    n = len(t)
    assert n == len(recording) - len(recording) % 3
    np.testing.assert_allclose(t, recording.timestamp_s[:n], atol=1e-6)
    assert np.all(np.abs(imu - recording.imu[:n]) <= scale_per_count(emulator.info) / 2 + 1e-9)
    assert decoder.stats.dropped_total == 0


def test_dropped_frames_show_as_sequence_gaps(recording: Recording) -> None:
    cfg = EmulatorConfig(samples_per_frame=1, drop_rate=0.1, seed=3)
    emulator = Emulator.from_recording(recording, cfg)
    frames = _frames(_decode_all(emulator)[0])
    seqs = [-1, *(f.seq for f in frames), emulator.stats.frames_made]
    assert 5 < emulator.stats.frames_dropped < 40
    assert sum(frames_lost(a, b) for a, b in itertools.pairwise(seqs)) == (
        emulator.stats.frames_dropped
    )


def test_corrupted_bytes_never_pass_as_samples(recording: Recording) -> None:
    clean = {f.seq: f for f in _frames(_decode_all(Emulator.from_recording(recording))[0])}
    emulator = Emulator.from_recording(recording, EmulatorConfig(corrupt_rate=3e-3, seed=5))
    messages, decoder = _decode_all(emulator)
    frames = _frames(messages)
    assert emulator.stats.bytes_corrupted > 0
    assert decoder.stats.dropped_total > 0
    assert len(frames) < len(clean)
    assert all(f == clean[f.seq] for f in frames)


def test_same_seed_same_faults(recording: Recording) -> None:
    cfg = EmulatorConfig(corrupt_rate=1e-2, drop_rate=0.2, seed=11)
    emulator = Emulator.from_recording(recording, cfg)
    assert list(emulator.packets()) == list(emulator.packets())


def test_drift_stretches_device_time(recording: Recording) -> None:
    cfg = EmulatorConfig(samples_per_frame=1, drift_ppm=500.0)
    frames = _frames(_decode_all(Emulator.from_recording(recording, cfg))[0])
    last = recording.timestamp_s[len(frames) - 1]
    assert frames[-1].timestamp_us == round(last * 1e6 * 1.0005)


def test_loop_continues_time_and_sequence_numbers(recording: Recording) -> None:
    cfg = EmulatorConfig(samples_per_frame=5, loop=True, duration_s=5.0)
    emulator = Emulator.from_recording(recording, cfg)
    frames = _frames(_decode_all(emulator)[0])
    assert sum(len(f.samples) for f in frames) == 500
    assert [f.seq for f in frames] == list(range(100))
    steps = np.diff([f.timestamp_us for f in frames])
    np.testing.assert_allclose(steps, 50_000, atol=1)  # 5 samples at 100 Hz, across the loop


def test_device_clock_wrap_unwraps_to_even_steps(recording: Recording) -> None:
    cfg = EmulatorConfig(samples_per_frame=2, timestamp_start_us=2**32 - 300_000)
    frames = _frames(_decode_all(Emulator.from_recording(recording, cfg))[0])
    raw = [f.timestamp_us for f in frames]
    assert min(raw) < 1_000_000 < 2**32 - 1_000_000 < max(raw)  # it did wrap
    unwrap = TimestampUnwrapper()
    np.testing.assert_allclose(np.diff([unwrap.unwrap(t) for t in raw]), 20_000, atol=1)


def test_device_info_is_repeated(recording: Recording) -> None:
    cfg = EmulatorConfig(info_interval_s=0.5)
    messages = _decode_all(Emulator.from_recording(recording, cfg))[0]
    assert sum(isinstance(m, DeviceInfo) for m in messages) == 4


def _read_until_closed(port: serial.Serial, timeout_s: float) -> tuple[bytes, float]:
    """Everything a host reads until the device goes away: (bytes, seconds)."""
    chunks, start = [], time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            # Asking only for what is waiting keeps bytes from being held inside a read call
            # that the disconnect then aborts.
            chunks.append(port.read(port.in_waiting or 1))
        except serial.SerialException:  # the device closed its end
            break
    return b"".join(chunks), time.monotonic() - start


def _play_over_pty(emulator: Emulator) -> tuple[bytes, float]:
    device = EmulatedSerialDevice(emulator)
    with serial.Serial(device.path, timeout=0.05) as port, device:
        return _read_until_closed(port, timeout_s=5.0)


def test_streams_over_a_pty_at_the_true_rate() -> None:
    t, imu = _synthetic(50)  # 0.5 s
    emulator = Emulator(t, imu, EmulatorConfig(samples_per_frame=5))
    data, elapsed_s = _play_over_pty(emulator)
    assert StreamDecoder().feed(data) == [m for _, m in emulator.messages()]
    assert 0.4 < elapsed_s < 2.0


def test_disconnect_closes_the_port_mid_stream() -> None:
    t, imu = _synthetic(100)
    cfg = EmulatorConfig(samples_per_frame=2, loop=True, disconnect_after_s=0.3)
    emulator = Emulator(t, imu, cfg)
    data, elapsed_s = _play_over_pty(emulator)
    frames = _frames(StreamDecoder().feed(data))
    assert emulator.stats.disconnected
    assert elapsed_s < 2.0
    # At most 0.3 s of 2-sample frames at 100 Hz (fewer if this busy machine starves the
    # thread), in order, and nothing of the looped seconds after the disconnect.
    assert 0 < len(frames) <= 16
    assert [f.seq for f in frames] == list(range(len(frames)))


def test_cli_prints_the_pty_and_streams_the_recording(tmp_path: Path) -> None:
    path = tmp_path / "walk.csv"
    with RecordingWriter(path) as writer:
        writer.write(*_synthetic(100))
    cmd = [sys.executable, "-m", "firmware_bridge.emulator", str(path), "--speed", "4"]
    cmd += [
        "--samples-per-frame",
        "4",
        "--drop-rate",
        "0.2",
        "--seed",
        "1",
        "--info-interval",
        "0.1",
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        first = proc.stdout.readline().split()
        assert first[0] == "PTY" and first[1].startswith("/dev/")
        with serial.Serial(first[1], timeout=0.05) as port:
            data, _ = _read_until_closed(port, timeout_s=10.0)
        assert proc.wait(timeout=10) == 0
    messages = StreamDecoder().feed(data)
    frames = _frames(messages)
    # 25 frames made, a fifth dropped, a few perhaps sent before the port was opened.
    assert 5 < len(frames) < 25
    assert all(a.seq < b.seq for a, b in itertools.pairwise(frames))
    assert any(isinstance(m, DeviceInfo) for m in messages)


def test_declared_mounting_reaches_the_host(recording: Recording) -> None:
    emulator = Emulator.from_recording(recording, EmulatorConfig(mounting="-y,x,z"))
    messages, decoder = _decode_all(emulator)
    infos = [m for m in messages if isinstance(m, DeviceInfo)]
    assert infos and all(i.mounting == (-2, 1, 3) for i in infos)
    assert infos[0].mounting_axis_map == "-y,x,z" and infos[0].protocol_minor == 2
    assert decoder.stats.dropped_total == 0
    plain = Emulator.from_recording(recording, EmulatorConfig())
    assert plain.info.mounting is None and plain.info.mounting_axis_map is None


@pytest.mark.parametrize(
    ("axis_map", "expected"),
    [("x,y,z", (1, 2, 3)), ("-y,x,z", (-2, 1, 3)), (" -Z , -y,-x", (-3, -2, -1))],
)
def test_mounting_from_axis_map(axis_map: str, expected: tuple[int, int, int]) -> None:
    assert mounting_from_axis_map(axis_map) == expected


@pytest.mark.parametrize("axis_map", ["y,x,z", "x,x,z", "x,y", "up,y,z"])
def test_emulator_refuses_a_mounting_that_is_no_rotation(axis_map: str) -> None:
    with pytest.raises(ValueError, match="axis map"):
        EmulatorConfig(mounting=axis_map)


def test_cli_declares_a_mounting_and_refuses_a_mirrored_one(tmp_path: Path) -> None:
    path = tmp_path / "walk.csv"
    with RecordingWriter(path) as writer:
        writer.write(*_synthetic(50))
    cmd = [sys.executable, "-m", "firmware_bridge.emulator", str(path), "--speed", "4"]
    cmd += ["--info-interval", "0.05", "--mounting", "z,-y,x"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        first = proc.stdout.readline().split()
        with serial.Serial(first[1], timeout=0.05) as port:
            data, _ = _read_until_closed(port, timeout_s=10.0)
        assert proc.wait(timeout=10) == 0
    infos = [m for m in StreamDecoder().feed(data) if isinstance(m, DeviceInfo)]
    assert infos and {i.mounting_axis_map for i in infos} == {"z,-y,x"}
    bad = subprocess.run([*cmd[:-1], "y,x,z"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2
    assert "error:" in bad.stderr and "mirrors" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_refuses_a_bad_file_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,recording\n")
    cmd = [sys.executable, "-m", "firmware_bridge.emulator", str(bad)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
