"""Play a recording as a wearable device over a pseudo-terminal, with injectable faults.

Library use (in-process, e.g. from tests or ``gaitedge demo``)::

    emulator = Emulator(read_recording("walk.csv"), EmulatorConfig(drop_rate=0.01, seed=1))
    with EmulatedSerialDevice(emulator) as device:
        port = serial.Serial(device.path)   # reads exactly what firmware would send
        ...

Command line (prints ``PTY /dev/pts/N`` as its first line, then streams)::

    python -m firmware_bridge.emulator walk.csv --samples-per-frame 4 --corrupt-rate 1e-3

Faults model the real link: ``corrupt_rate`` flips bytes on the wire, ``drop_rate`` loses whole
sample frames (their sequence numbers are skipped, as when a UART buffer overflows),
``jitter_ms`` delays each write, ``drift_ppm`` makes the device clock run fast or slow in the
timestamps, and ``disconnect_after_s`` closes the port mid-stream.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import sys
import termios
import threading
import time
import tty
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from firmware_bridge.convert import si_to_counts
from firmware_bridge.protocol import (
    MAX_SAMPLES_PER_FRAME,
    SEQ_MODULUS,
    TIMESTAMP_MODULUS_US,
    DeviceInfo,
    Message,
    SampleFrame,
    encode_serial,
)
from gaitedge.mounting import parse_axis_map  # the one parser of axis maps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulated device behaves; every fault is off by default.

    Attributes:
        samples_per_frame: samples batched into one frame (1..MAX_SAMPLES_PER_FRAME).
        speed: playback speed; 2.0 streams twice as fast (device timestamps are unchanged).
        loop: restart the recording at its end, with time and sequence numbers continuing.
        duration_s: stop after this much stream time (None: the recording, or forever if loop).
        corrupt_rate: probability of each byte on the wire being replaced by another value.
        drop_rate: probability of a sample frame never being sent.
        jitter_ms: each write is delayed by a uniform 0..jitter_ms (timestamps unaffected).
        drift_ppm: device clock error; +100 makes device time run 100 ppm fast.
        disconnect_after_s: close the port after this much stream time.
        info_interval_s: a DeviceInfo message is sent at start and then this often.
        timestamp_start_us: device clock at the first sample (set near 2**32 to test the wrap).
        device_id, accel_range_g, gyro_range_dps: what the DeviceInfo message reports.
        mounting: the mounting the DeviceInfo message declares, as an axis map such as
            ``"-y,x,z"`` (body x = -sensor y, ...); None declares none (the host estimates it).
            Only declared: the recording's samples are sent as they are.
        seed: seeds the fault generator, for reproducible runs.
    """

    samples_per_frame: int = 4
    speed: float = 1.0
    loop: bool = False
    duration_s: float | None = None
    corrupt_rate: float = 0.0
    drop_rate: float = 0.0
    jitter_ms: float = 0.0
    drift_ppm: float = 0.0
    disconnect_after_s: float | None = None
    info_interval_s: float = 1.0
    timestamp_start_us: int = 0
    device_id: int = 0x6A17ED6E
    accel_range_g: int = 16
    gyro_range_dps: int = 2000
    mounting: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.samples_per_frame <= MAX_SAMPLES_PER_FRAME:
            raise ValueError(f"samples_per_frame must be 1..{MAX_SAMPLES_PER_FRAME}")
        if not self.speed > 0:
            raise ValueError("speed must be positive")
        for name in ("corrupt_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1]")
        if self.mounting is not None:
            mounting_from_axis_map(self.mounting)  # MountingError (a ValueError) if invalid


def mounting_from_axis_map(axis_map: str) -> tuple[int, int, int]:
    """``"-y,x,z"`` -> ``DeviceInfo.mounting`` ``(-2, 1, 3)``: signed 1-based sensor axes.

    Raises:
        gaitedge.mounting.MountingError: not three axes, an axis twice, or mirrored axes.
    """
    rot = parse_axis_map(axis_map)  # [3, 3] signed permutation, body = rot @ sensor
    x, y, z = (int(row.sum()) * (int(np.abs(row).argmax()) + 1) for row in rot)
    return x, y, z


@dataclass
class EmulatorStats:
    """What the emulated device did, for checking a decoder's counts against."""

    frames_made: int = 0
    frames_dropped: int = 0
    infos_sent: int = 0
    bytes_corrupted: int = 0
    bytes_written: int = 0
    bytes_overrun: int = 0  # not written because the port's buffer was full
    disconnected: bool = False


class RecordingLike(Protocol):
    """What the emulator needs of a ``gaitedge.recording.Recording``."""

    timestamp_s: np.ndarray  # [N] seconds
    imu: np.ndarray  # [N, 6] m/s² and rad/s


class Emulator:
    """A recording replayed as the messages and serial bytes a device would produce.

    Args:
        timestamp_s: [N] sample times in seconds (e.g. ``Recording.timestamp_s``).
        imu: [N, 6] samples in m/s² and rad/s (e.g. ``Recording.imu``).
        config: device behaviour and faults.
    """

    def __init__(
        self, timestamp_s: np.ndarray, imu: np.ndarray, config: EmulatorConfig | None = None
    ) -> None:
        self.config = config or EmulatorConfig()
        self.timestamp_s = np.asarray(timestamp_s, dtype=np.float64) - timestamp_s[0]
        if len(self.timestamp_s) < 2:
            raise ValueError("a recording needs at least two samples to have a rate")
        rate_hz = 1.0 / float(np.median(np.diff(self.timestamp_s)))
        m = self.config.mounting
        self.info = DeviceInfo(
            device_id=self.config.device_id,
            sample_rate_millihz=round(rate_hz * 1000),
            accel_range_g=self.config.accel_range_g,
            gyro_range_dps=self.config.gyro_range_dps,
            mounting=None if m is None else mounting_from_axis_map(m),
        )
        self.counts = si_to_counts(imu, self.info)  # [N, 6] int16
        self.stats = EmulatorStats()
        self._rng = np.random.default_rng(self.config.seed)

    @classmethod
    def from_recording(
        cls, recording: RecordingLike, config: EmulatorConfig | None = None
    ) -> Emulator:
        """From a ``gaitedge.recording.Recording`` (anything with timestamp_s and imu)."""
        return cls(recording.timestamp_s, recording.imu, config)

    def _device_timestamp_us(self, loop_index: int, i: int) -> int:
        period_s = self.timestamp_s[-1] + 1.0 / self.info.sample_rate_hz
        true_s = loop_index * period_s + self.timestamp_s[i]
        device_us = round(true_s * 1e6 * (1.0 + self.config.drift_ppm * 1e-6))
        return (self.config.timestamp_start_us + device_us) % TIMESTAMP_MODULUS_US

    def messages(self) -> Iterator[tuple[int, Message]]:
        """Fault-free (samples taken so far, message) pairs, in the order a device sends them.

        The first number is when the message is ready, in samples since the start: a frame is
        ready once its last sample has been taken. Samples at the end of the recording that do
        not fill a frame are not sent.
        """
        cfg, n = self.config, len(self.counts)
        rate_hz = self.info.sample_rate_hz
        limit = round(cfg.duration_s * rate_hz) if cfg.duration_s is not None else None
        info_every = max(1, round(cfg.info_interval_s * rate_hz))
        taken, seq, next_info, loop_index = 0, 0, 0, 0
        while True:
            for i in range(0, n - n % cfg.samples_per_frame, cfg.samples_per_frame):
                if limit is not None and taken + cfg.samples_per_frame > limit:
                    return
                if taken >= next_info:
                    yield taken, self.info
                    next_info += info_every
                samples = self.counts[i : i + cfg.samples_per_frame]
                taken += cfg.samples_per_frame
                yield taken, SampleFrame(seq, self._device_timestamp_us(loop_index, i), samples)
                seq = (seq + 1) % SEQ_MODULUS
            loop_index += 1
            if not cfg.loop:
                return

    def packets(
        self, encode: Callable[[Message], bytes] = encode_serial
    ) -> Iterator[tuple[int, bytes]]:
        """(samples taken so far, serial packet) with drops and corruption applied.

        ``encode`` turns a message into what goes on the link: a serial packet by default,
        ``protocol.encode`` for the payload of one BLE notification.

        Each call starts afresh: new ``stats``, and the fault generator re-seeded, so a run with
        a seed is reproducible.
        """
        self.stats = EmulatorStats()
        self._rng = np.random.default_rng(self.config.seed)
        for taken, message in self.messages():
            if isinstance(message, SampleFrame):
                self.stats.frames_made += 1
                if self._rng.random() < self.config.drop_rate:
                    self.stats.frames_dropped += 1
                    continue
            else:
                self.stats.infos_sent += 1
            yield taken, self._corrupt(encode(message))

    def _corrupt(self, packet: bytes) -> bytes:
        if not self.config.corrupt_rate:
            return packet
        data = np.frombuffer(packet, np.uint8).copy()
        hit = np.flatnonzero(self._rng.random(len(data)) < self.config.corrupt_rate)
        data[hit] ^= self._rng.integers(1, 256, len(hit)).astype(np.uint8)
        self.stats.bytes_corrupted += len(hit)
        return data.tobytes()

    def play(
        self,
        write: Callable[[bytes], int | None],
        stop: threading.Event | None = None,
        encode: Callable[[Message], bytes] = encode_serial,
    ) -> EmulatorStats:
        """Write the packets at the true sample rate (times ``speed``) until done or stopped.

        Pacing is drift-free: a packet goes out once ``int(rate_hz * elapsed)`` samples are
        due, measured from one start time, so a late write is caught up, not accumulated.
        ``write`` returns the bytes it accepted (None: all of them); ``encode`` is as in
        :meth:`packets`.
        """
        cfg = self.config
        rate_hz = self.info.sample_rate_hz * cfg.speed
        stop = stop or threading.Event()
        start = time.monotonic()
        for ready, packet in self.packets(encode):
            while not stop.is_set():
                elapsed = time.monotonic() - start
                if (
                    cfg.disconnect_after_s is not None
                    and elapsed * cfg.speed >= cfg.disconnect_after_s
                ):
                    self.stats.disconnected = True
                    return self.stats
                due = int(rate_hz * elapsed) - ready
                if due >= 0:
                    break
                stop.wait(min(-due / rate_hz, 0.05))  # short naps keep stop responsive
            if stop.is_set():
                break
            if cfg.jitter_ms:
                stop.wait(self._rng.uniform(0.0, cfg.jitter_ms) / 1000.0)
            accepted = write(packet)
            accepted = len(packet) if accepted is None else accepted
            self.stats.bytes_written += accepted
            self.stats.bytes_overrun += len(packet) - accepted
        return self.stats


class PtyPort:
    """A pseudo-terminal whose slave end (``path``) behaves like a device's serial port.

    Both ends are raw (no echo, no newline translation), and the master end is non-blocking:
    when nobody reads, the kernel buffer fills and further bytes are lost, as with a real UART,
    instead of stalling the device's clock.
    """

    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._master)
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)

    def write(self, data: bytes) -> int:
        """Write what the port accepts now; returns the number of bytes written."""
        try:
            return os.write(self._master, data)
        except (BlockingIOError, OSError):
            return 0

    def unread(self) -> int:
        """Bytes written but not yet read by the other end."""
        buf = bytearray(4)
        fcntl.ioctl(self._slave, termios.FIONREAD, buf)
        return int.from_bytes(buf, sys.byteorder)

    def drain(self, timeout_s: float) -> bool:
        """Wait until the reader has taken everything, or the timeout; True if drained."""
        # The kernel moves written bytes to the reader's queue a little later, so an empty
        # queue counts only when seen twice, a poll apart.
        deadline = time.monotonic() + timeout_s
        empty_polls = 0
        while empty_polls < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
            empty_polls = empty_polls + 1 if self.unread() == 0 else 0
        return empty_polls >= 2

    def close(self) -> None:
        """Close both ends: a reader then sees the device disconnect (EIO or end of file)."""
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class EmulatedSerialDevice:
    """Run an Emulator on a PtyPort in a background thread, as a context manager.

    ``path`` is the port to open; the stream starts on ``start()`` (or entering the block), so a
    reader that opens ``path`` first misses nothing. Opening the port later loses what was sent
    before, as with a real device (pyserial also flushes the input buffer on open). Leaving the
    block stops the stream and closes the port.
    After a normal end the port stays open (up to ``drain_timeout_s``) until the reader has
    taken every byte, and ``linger_s`` more; after ``disconnect_after_s`` it closes at once,
    as a device would.
    """

    def __init__(
        self, emulator: Emulator, drain_timeout_s: float = 2.0, linger_s: float = 0.25
    ) -> None:
        self.emulator = emulator
        self.drain_timeout_s = drain_timeout_s
        self.linger_s = linger_s
        self.port = PtyPort()
        self.path = self.port.path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gaitedge-emulator", daemon=True)

    def _run(self) -> None:
        stats = self.emulator.play(self.port.write, self._stop)
        if (
            not stats.disconnected
            and not self._stop.is_set()
            and self.port.drain(self.drain_timeout_s)
        ):
            # A reader blocked in read() with a timeout may hold the last bytes in its own
            # buffer; pyserial drops them if the port vanishes within that same call.
            self._stop.wait(self.linger_s)
        self.port.close()
        log.info("emulator finished: %s", stats)

    def start(self) -> EmulatedSerialDevice:
        self._thread.start()
        return self

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the stream to end; True if it did."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.port.close()

    def __enter__(self) -> EmulatedSerialDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m firmware_bridge.emulator",
        description="Play a recording CSV as a gaitedge device on a pseudo-terminal.",
    )
    p.add_argument("recording", help="recording CSV (gaitedge.recording format)")
    p.add_argument("--rate-hz", type=float, help="sample rate, for files without timestamp_s")
    p.add_argument("--samples-per-frame", type=int, default=EmulatorConfig.samples_per_frame)
    p.add_argument("--speed", type=float, default=1.0, help="playback speed factor")
    p.add_argument("--loop", action="store_true", help="repeat the recording")
    p.add_argument("--duration", type=float, help="stop after this many stream seconds")
    p.add_argument("--corrupt-rate", type=float, default=0.0, help="per-byte probability")
    p.add_argument("--drop-rate", type=float, default=0.0, help="per-frame probability")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="max delay added per write")
    p.add_argument("--drift-ppm", type=float, default=0.0, help="device clock error")
    p.add_argument("--disconnect-after", type=float, help="close the port after S seconds")
    p.add_argument("--info-interval", type=float, default=1.0, help="DeviceInfo period, s")
    p.add_argument("--timestamp-start-us", type=int, default=0, help="device clock at start")
    p.add_argument("--device-id", type=lambda s: int(s, 0), default=EmulatorConfig.device_id)
    p.add_argument("--accel-range-g", type=int, default=EmulatorConfig.accel_range_g)
    p.add_argument("--gyro-range-dps", type=int, default=EmulatorConfig.gyro_range_dps)
    p.add_argument("--mounting", help="declare an axis map such as -y,x,z in DeviceInfo")
    p.add_argument("--seed", type=int, help="seed for the fault generator")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """The command line: parse, build the emulator, print the port, stream."""
    from gaitedge.recording import RecordingError, read_recording  # the foundation's format

    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        recording = read_recording(args.recording, rate_hz=args.rate_hz)
        config = EmulatorConfig(
            samples_per_frame=args.samples_per_frame,
            speed=args.speed,
            loop=args.loop,
            duration_s=args.duration,
            corrupt_rate=args.corrupt_rate,
            drop_rate=args.drop_rate,
            jitter_ms=args.jitter_ms,
            drift_ppm=args.drift_ppm,
            disconnect_after_s=args.disconnect_after,
            info_interval_s=args.info_interval,
            timestamp_start_us=args.timestamp_start_us,
            device_id=args.device_id,
            accel_range_g=args.accel_range_g,
            gyro_range_dps=args.gyro_range_dps,
            mounting=args.mounting,
            seed=args.seed,
        )
        emulator = Emulator.from_recording(recording, config)
    except (RecordingError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = EmulatedSerialDevice(emulator)
    print(f"PTY {device.path}", flush=True)
    device.start()
    try:
        device.wait()
    except KeyboardInterrupt:
        device.stop()
    print(f"done: {emulator.stats}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
