"""What every emulated vendor peripheral shares: its GATT table, recording playback, counters.

A peripheral plays a recording on its own clock from the moment it is created (in a thread,
drift-free pacing as ``firmware_bridge.emulator``), answers the host's reads and writes as the
vendor's firmware does, and encodes the samples of every sensor the host started into that
firmware's notifications. ``firmware_bridge.ble_emulator.EmulatedBlueZ.add_peripheral`` serves
it on the emulated BlueZ; samples made while nothing is subscribed are not sent.

The encoders here are written from the vendors' documents and pinned by the vendors' bytes
(``firmware_bridge/vectors/devices.json``), never derived from gaitedge's decoders.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gaitedge.datasets import render_rate


@dataclass(frozen=True)
class CharSpec:
    uuid: str
    flags: tuple[str, ...]  # BlueZ's: read, write, write-without-response, notify, indicate


@dataclass(frozen=True)
class ServiceSpec:
    uuid: str
    chars: tuple[CharSpec, ...]


@dataclass(frozen=True)
class PlaybackConfig:
    """How the emulated peripheral plays its recording; every fault is off by default.

    Attributes:
        speed: playback speed (2.0: twice as fast; the device's own clock is unchanged).
        loop: restart the recording at its end.
        stall_after_s: after this much streaming on a connection the device stops notifying
            while the link stays up (MetaWear's known field problem); a new connection revives it.
        drop_rate: probability of each data notification being lost on air.
        seed: for the fault generator.
        start_on_command: the recording starts when the host first starts a sensor (a
            measurement that begins on command), not when the device is created.
        outage_speed: how fast the device clock runs while its link is lost (from the drop
            until the host starts streaming again). None: at ``speed``. 1.0: at the wall
            clock's pace, as a real device's clock runs through an outage: played faster than
            real time, a reconnect that takes 0.8 s of wall time then loses 0.8 s of samples,
            not ``speed`` times as much.
    """

    speed: float = 1.0
    loop: bool = False
    stall_after_s: float | None = None
    drop_rate: float = 0.0
    seed: int | None = None
    start_on_command: bool = False
    outage_speed: float | None = None


@dataclass
class PeripheralStats:
    """What the peripheral did, to check a host's counts against."""

    writes: list[bytes] = field(default_factory=list)  # every write the host made, in order
    notifications: int = 0  # data notifications that went out on a live, subscribed link
    dropped: int = 0  # data notifications lost on air (drop_rate)
    not_sent: int = 0  # made while nobody was subscribed
    stalls: int = 0
    finished: bool = False  # the recording ended (no loop)
    sent: dict[str, set[int]] = field(default_factory=dict)  # sensor -> sample indices sent
    lost: dict[str, set[int]] = field(default_factory=dict)  # sensor -> indices lost on air

    def samples_sent(self, sensors: tuple[str, ...]) -> int:
        """Samples whose every sensor went out (the ones a host can pair and use)."""
        sets = [self.sent.get(s, set()) for s in sensors]
        return len(set.intersection(*sets)) if sets else 0


# (characteristic uuid, payload, sensor name, sample indices it carries)
Notification = tuple[str, bytes, str, range]


class Peripheral:
    """Base of the emulated peripherals; subclasses set the class attributes and implement
    :meth:`read`, :meth:`write` and :meth:`encode`.

    Attributes:
        name: the advertised name.
        advertised_uuids: service UUIDs in the advertisement.
        services: the GATT table served on connection.
        rate_hz: the device's sample rate (the recording is re-rendered to it).
        sensors: the streams a sample needs to be complete (``acc``, ``gyro``, or one ``imu``).
        samples_per_notification: samples made before :meth:`encode` is asked for a block.
    """

    name = "peripheral"
    advertised_uuids: tuple[str, ...] = ()
    services: tuple[ServiceSpec, ...] = ()
    rate_hz = 50.0
    sensors: tuple[str, ...] = ("imu",)
    samples_per_notification = 1

    def __init__(
        self, timestamp_s: np.ndarray, imu: np.ndarray, config: PlaybackConfig | None = None
    ) -> None:
        self.config = config or PlaybackConfig()
        t = np.asarray(timestamp_s, dtype=np.float64)
        source_hz = 1.0 / float(np.median(np.diff(t)))
        if abs(source_hz - self.rate_hz) > 1e-6 * self.rate_hz:
            imu = render_rate(np.asarray(imu), source_hz, self.rate_hz)
        self.imu = np.asarray(imu, dtype=np.float64)  # [N, 6] m/s², rad/s at rate_hz
        self.stats = PeripheralStats()
        self.streaming: dict[str, int] = {}  # sensor -> first sample index it streams from
        self.position = 0  # samples taken so far (the device clock, in samples)
        self._send: Callable[[str, bytes, Callable[[], None]], None] | None = None
        self._lock = threading.Lock()
        self._rng = np.random.default_rng(self.config.seed)
        self._stream_start: int | None = None  # where streaming began on this connection
        self._link_lost = False  # from a link loss until the host streams again

    def read(self, uuid: str) -> bytes:
        raise NotImplementedError

    def write(self, uuid: str, data: bytes) -> None:
        """A host write; answers go out through :meth:`reply`."""
        raise NotImplementedError

    def encode(self, start: int, stop: int) -> list[Notification]:
        """The notifications for samples ``start..stop`` of every started sensor."""
        raise NotImplementedError

    def samples(self, start: int, stop: int) -> np.ndarray:
        """[stop - start, 6] of the recording (looped), by device sample index."""
        return self.imu[np.arange(start, stop) % len(self.imu)]

    def connected(self, send: Callable[[str, bytes, Callable[[], None]], None]) -> None:
        """A host connected: ``send(uuid, payload, on_sent)`` notifies on the emulator's loop."""
        with self._lock:
            self._send = send

    def disconnected(self) -> None:
        """The link is gone: the firmware stops its measurements."""
        with self._lock:
            self._send = None
            self.streaming.clear()
            self._stream_start = None

    def link_lost(self) -> None:
        """The radio link was lost (the host learns it later, or never): the outage begins."""
        self._link_lost = True

    def start_sensor(self, sensor: str) -> None:
        """Stream ``sensor`` from the next notification boundary on (device clock)."""
        spn = self.samples_per_notification
        self._link_lost = False
        with self._lock:
            first = -(-self.position // spn) * spn
            self.streaming[sensor] = first
            if self._stream_start is None:
                self._stream_start = first

    def stop_sensor(self, sensor: str) -> None:
        with self._lock:
            self.streaming.pop(sensor, None)

    def reply(self, uuid: str, payload: bytes) -> None:
        """A response or indication on ``uuid`` (not a data notification)."""
        send = self._send
        if send is not None:
            send(uuid, payload, lambda: None)

    def play(self, stop: threading.Event) -> None:
        """The device clock: take samples at ``rate_hz * speed``, notify what is streaming."""
        cfg, spn = self.config, self.samples_per_notification
        n = len(self.imu)
        clock, last = 0.0, time.monotonic()  # device seconds since the recording started
        while not stop.is_set():
            now = time.monotonic()
            speed = self._clock_speed()
            clock, last = clock + (now - last) * speed, now
            if cfg.start_on_command and self.position == 0 and not self.streaming:
                clock = 0.0
                stop.wait(0.01)
                continue
            due = int(self.rate_hz * clock)
            if due < self.position + spn:
                stop.wait(min((self.position + spn - due) / (self.rate_hz * speed), 0.05))
                continue
            if not cfg.loop and self.position + spn > n:
                self.stats.finished = True
                return
            block = (self.position, self.position + spn)
            with self._lock:
                self.position += spn
                send, stalled = self._send, self._stalled()
                notes = self.encode(*block) if send is not None and not stalled else []
            for uuid, payload, sensor, indices in notes:
                if cfg.drop_rate and self._rng.random() < cfg.drop_rate:
                    self.stats.dropped += 1
                    self.stats.lost.setdefault(sensor, set()).update(indices)
                    continue
                send(uuid, payload, self._on_sent(sensor, indices))

    def _clock_speed(self) -> float:
        outage = self.config.outage_speed
        return outage if outage is not None and self._link_lost else self.config.speed

    def _stalled(self) -> bool:
        stall = self.config.stall_after_s
        if stall is None or self._stream_start is None:
            return False
        if self.position - self._stream_start < stall * self.rate_hz:
            return False
        if self.streaming:
            self.stats.stalls += 1
            self.streaming.clear()  # silent from now on, link up: until the next connection
        return True

    def _on_sent(self, sensor: str, indices: range) -> Callable[[], None]:
        def sent() -> None:
            self.stats.notifications += 1
            self.stats.sent.setdefault(sensor, set()).update(indices)

        return sent

    def streams(self, sensor: str, start: int) -> bool:
        """Whether ``sensor`` streams the block starting at ``start``."""
        first = self.streaming.get(sensor)
        return first is not None and start >= first
