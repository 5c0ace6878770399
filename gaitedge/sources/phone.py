"""Phones over the network: what the HTTP, MQTT and phyphox sources share.

Sensor Logger (Kelvin Choi) pushes one JSON message per batch period, over HTTP POST or MQTT,
the same schema on both (``awesome-sensor-logger`` PUSHING.md and UNITS.md; shared/reference
vendor-formats.md §A1)::

    {"messageId": 0, "sessionId": "...", "deviceId": "...",
     "payload": [{"name": "accelerometer", "time": 1698501144401773000,
                  "values": {"x": ..., "y": ..., "z": ...}}, ...]}

* ``messageId`` counts up per message; messages may arrive out of order (HTTP requests race,
  MQTT is QoS 0): :class:`Reorder` puts them back in order within a bounded window, counts the
  ones that come too late and the ids that never come (lost).
* ``sessionId`` is one recording; ``deviceId`` one phone: each phone is one device.
* ``name`` is the sensor in lower case (``accelerometer``, ``totalacceleration``, ``gravity``,
  ``gyroscope``, ...), ``time`` UTC epoch ns, values nested under ``values`` (no
  ``seconds_elapsed``); Android adds ``accuracy``. Other sensors (location, battery) are skipped.
* Units, sign and gravity are the files' (``gaitedge.formats.sensorlogger``): acceleration
  without gravity plus gravity, or total acceleration; iOS signs acceleration opposite to
  Android unless standardised. A push carries no Metadata.csv, so the platform is inferred as the
  file reader infers it for an export without one, from the first batch.
* The sensors are joined onto one timeline as ``gaitedge.formats.join`` joins a file's, as the
  samples arrive (:class:`InterpJoin`, :class:`ImuJoin`): the faster sensor's stamps, the other
  interpolated within the span both cover, instants inside the other's holes left out.

Stream time follows the device sources' rule (``gaitedge.sources.frames``): the phone's own
clock within a session, a new session placed at the host time elapsed since the first sample
(a segment break), and the host-vs-phone clock fitted by the one :class:`ClockModel`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import numpy as np

from gaitedge.formats.base import SensorKind
from gaitedge.formats.join import Convention, _interp_onto, make_series
from gaitedge.sources.base import SampleChunk, SourceStats
from gaitedge.sources.device import SourceError
from gaitedge.sources.frames import ClockModel

log = logging.getLogger(__name__)

TOTAL = "totalacceleration"  # Android: with gravity
LINEAR = "accelerometer"  # both platforms: without gravity
GRAVITY = "gravity"
RAW = "accelerometeruncalibrated"  # g on iOS (unstandardised), m/s² on Android
GYRO = "gyroscope"
GYRO_RAW = "gyroscopeuncalibrated"
MOTION = (TOTAL, LINEAR, GRAVITY, RAW, GYRO, GYRO_RAW)
# The file reader's names for the same sensors (its rules are reused through them).
FILE_NAMES = {
    TOTAL: "TotalAcceleration",
    LINEAR: "Accelerometer",
    GRAVITY: "Gravity",
    RAW: "AccelerometerUncalibrated",
    GYRO: "Gyroscope",
    GYRO_RAW: "GyroscopeUncalibrated",
}
# Batches before a phone without gravity (or without a gyroscope) is refused: the first batch
# of a session may lack a slower sensor.
DECIDE_MESSAGES = 3
# A payload larger than this is not a phone's batch (10 s of every motion sensor at 500 Hz is
# ~3 MB of JSON).
MAX_BODY_BYTES = 8 * 1024 * 1024


class PushError(ValueError):
    """A push message that is not Sensor Logger's schema; the message says what is wrong."""


@dataclass(frozen=True)
class PushMessage:
    """One decoded push message: the motion sensors' readings, by lower-case name.

    Attributes:
        sensors: name -> (epoch ns [N] int64, values [N, 3] float64 as sent: x, y, z).
        skipped: readings of sensors this runtime does not use (location, battery, ...).
    """

    message_id: int
    session_id: str
    device_id: str
    sensors: dict[str, tuple[np.ndarray, np.ndarray]]
    skipped: int = 0


def parse_push(body: bytes | str) -> PushMessage:
    """A push body (HTTP POST or MQTT payload) -> :class:`PushMessage`; PushError if malformed."""
    if len(body) > MAX_BODY_BYTES:
        raise PushError(f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, nested or digits past
        # what Python parses (such a body got no answer: the connection was dropped)
        raise PushError(f"not JSON: {str(exc)[:120]}") from exc
    if not isinstance(doc, dict):
        raise PushError("expected a JSON object with messageId, sessionId, deviceId, payload")
    missing = [k for k in ("messageId", "sessionId", "deviceId", "payload") if k not in doc]
    if missing:
        raise PushError(f"no {', '.join(missing)} (keys: {', '.join(map(str, doc))})")
    message_id = doc["messageId"]
    if isinstance(message_id, bool) or not isinstance(message_id, int) or message_id < 0:
        raise PushError(f"messageId {message_id!r} is not a non-negative integer")
    payload = doc["payload"]
    if not isinstance(payload, list):
        raise PushError("payload is not a list of readings")
    readings: dict[str, list[dict]] = {}
    skipped = 0
    for i, reading in enumerate(payload):
        name = reading.get("name") if isinstance(reading, dict) else None
        if not isinstance(name, str):
            raise PushError(f"payload[{i}] has no sensor name")
        name = name.lower()
        if name not in MOTION:
            skipped += 1
            continue
        readings.setdefault(name, []).append(reading)
    sensors = {}
    for name, rows in readings.items():
        try:  # one batch of one sensor in two numpy calls; the slow path names a bad reading
            ns = np.array([r["time"] for r in rows], dtype=np.int64)
            xyz = np.array([(v["x"], v["y"], v["z"]) for r in rows for v in (r["values"],)], float)
            ok = bool(np.isfinite(xyz).all()) and not any(type(r["time"]) is str for r in rows)
        except (KeyError, TypeError, ValueError, OverflowError):
            ok = False
        if not ok:  # reading by reading: the first malformed one is named (PushError)
            parsed = [
                _motion_row(reading, i, name)
                for i, reading in enumerate(payload)
                if str(reading.get("name", "")).lower() == name
            ]  # (payload's indices: the message names the reading)
            ns = np.array([r[0] for r in parsed], dtype=np.int64)
            xyz = np.array([r[1:] for r in parsed], float).reshape(-1, 3)
        order = np.argsort(ns, kind="stable")  # in time order within the batch
        sensors[name] = (ns[order], xyz[order])
    return PushMessage(
        message_id, str(doc["sessionId"]), str(doc["deviceId"]), sensors, skipped=skipped
    )


def _motion_row(reading: dict, i: int, name: str) -> tuple[int, float, float, float]:
    stamp, values = reading.get("time"), reading.get("values")
    if (
        isinstance(stamp, bool)
        or not isinstance(stamp, (int, float))
        or not -(2**63) <= stamp < 2**63  # NaN included (no comparison holds)
    ):
        raise PushError(f"payload[{i}] ({name}): time {stamp!r} is not epoch ns")
    if not isinstance(values, dict):
        raise PushError(f"payload[{i}] ({name}): no values object")
    try:
        xyz = tuple(float(values[k]) for k in ("x", "y", "z"))
    except (KeyError, TypeError, ValueError) as exc:
        raise PushError(f"payload[{i}] ({name}): values need numeric x, y, z ({exc})") from exc
    if not np.isfinite(xyz).all():
        raise PushError(f"payload[{i}] ({name}): a non-finite value")
    return int(stamp), *xyz


class Reorder:
    """Push messages of one session back in ``messageId`` order, within a bounded window.

    A message is released as soon as every earlier id has been; a missing id is waited for
    until the oldest held message has waited ``wait_s`` or ``window`` messages are held, then
    counted lost. A message whose id was already passed is late (counted, dropped: its samples
    would go back in time). The first id of a session is the smallest seen within ``wait_s``.
    """

    def __init__(self, window: int = 16, wait_s: float = 1.0) -> None:
        self.window, self.wait_s = window, wait_s
        self.expected: int | None = None
        self.held: dict[int, tuple[object, float]] = {}  # id -> (item, host time held since)
        self.lost = 0
        self.late = 0
        self.duplicates = 0

    def add(self, message_id: int, item: object, now: float) -> list:
        if self.expected is not None and message_id < self.expected:
            self.late += 1
            return []
        if message_id in self.held:
            self.duplicates += 1
            return []
        self.held[message_id] = (item, now)
        return self.release(now)

    def release(self, now: float, everything: bool = False) -> list:
        """What may go now (``everything``: the session ended, nothing more will come)."""
        out = []
        while self.held:
            first = min(self.held)
            waited = now - min(since for _, since in self.held.values())
            overdue = everything or waited >= self.wait_s or len(self.held) > self.window
            if self.expected is None:
                if not overdue:
                    break
                self.expected = first
            if first != self.expected:
                if not overdue:
                    break
                self.lost += first - self.expected
            out.append(self.held.pop(first)[0])
            self.expected = first + 1
        return out

    def deadline(self) -> float | None:
        """Host time at which a held message is released however it stands, or None."""
        if not self.held:
            return None
        return min(since for _, since in self.held.values()) + self.wait_s


class InterpJoin:
    """``primary``'s stamps as the timeline, ``secondary`` interpolated onto them: the file
    join's rule (``join._interp_onto``: within the secondary's span, not inside its holes)
    applied as samples arrive. A primary sample waits until the secondary has one at or after
    it. Each sensor's stamps are first repaired as the file join repairs them (the chain's
    :class:`~gaitedge.preprocess.TimestampRepair`: tied and batched stamps spread, backward
    jitter tied, a clock stepping back carried on; its newest run held until a later stamp),
    so none is lost: a phone stamping at 50 ms lost two samples in three here. What the repair
    changed is counted in ``repaired``; a stamp still not increasing is dropped (``tied``)."""

    HISTORY = 64  # secondary samples kept: the hole rule's median interval is taken over them

    def __init__(self, repair: bool = True) -> None:
        from gaitedge.preprocess import TimestampRepair

        self._t = [np.empty(0), np.empty(0)]  # primary, secondary
        self._x = [np.empty((0, 3)), np.empty((0, 3))]
        self._repair = [TimestampRepair(), TimestampRepair()] if repair else []
        self.left_out = 0  # outside the secondary's span or inside its holes
        self.tied = 0

    @property
    def repaired(self) -> dict[str, int]:
        """Stamps the repair changed, both sensors: ``tied`` (ties, batches and backward
        jitter), ``clock_resets`` and ``outliers`` (lone glitched stamps)."""
        stats = [r.stats for r in self._repair]
        return {
            "tied": sum(s.tied + s.backward_jitter for s in stats),
            "clock_resets": sum(s.clock_resets for s in stats),
            "outliers": sum(s.outliers for s in stats),
        }

    def add(self, which: int, t: np.ndarray, x: np.ndarray) -> None:
        """``which``: 0 primary, 1 secondary; ``t`` [N] seconds as the phone stamped them
        (repaired here), ``x`` [N, C]."""
        if len(t) and self._repair:
            t, x = self._repair[which].process(np.asarray(t, np.float64), np.asarray(x, np.float64))
        self._append(which, t, x)

    def flush(self) -> None:
        """The end of the session: the samples each repair holds back join the rest."""
        for which, repair in enumerate(self._repair):
            self._append(which, *repair.flush())

    def _append(self, which: int, t: np.ndarray, x: np.ndarray) -> None:
        if not len(t):
            return
        last = self._t[which][-1] if len(self._t[which]) else -np.inf
        keep = np.diff(np.concatenate([[last], t])) > 0
        keep &= np.maximum.accumulate(np.concatenate([[last], t]))[1:] == t
        self.tied += int((~keep).sum())
        self._t[which] = np.concatenate([self._t[which], t[keep]])
        self._x[which] = np.concatenate([self._x[which], x[keep]])

    def pop(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t [M], primary [M, C], secondary at t [M, C']) for every primary sample now
        decided."""
        (pt, st), (px, sx) = self._t, self._x
        n = int(np.searchsorted(pt, st[-1], side="right")) if len(st) else 0
        if n == 0:
            return np.empty(0), px[:0], sx[:0]
        t, xp = pt[:n], px[:n]
        xs, ok = _interp_onto(t, st, sx)
        self.left_out += int((~ok).sum())
        self._t[0], self._x[0] = pt[n:], px[n:]
        nxt = pt[n] if len(pt) > n else st[-1]
        start = min(int(np.searchsorted(st, nxt, side="right")) - 1, len(st) - self.HISTORY)
        start = max(start, 0)
        self._t[1], self._x[1] = st[start:], sx[start:]
        return t[ok], xp[ok], xs[ok]


class ImuJoin:
    """Acceleration and rotation rate onto one timeline: the faster sensor's stamps (decided
    on the first ``decide_samples`` of each, as the file join decides on the whole file)."""

    def __init__(self, decide_samples: int = 32, repair: bool = True) -> None:
        self.decide_samples = decide_samples
        self.repair = repair  # the stamps repaired before the join (InterpJoin)
        self._early: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"acc": [], "gyro": []}
        self.join: InterpJoin | None = None
        self.acc_is_timeline: bool | None = None
        self.rate_hz = 0.0  # the timeline's

    def add(self, sensor: str, t: np.ndarray, x: np.ndarray) -> None:
        if self.join is None:
            self._early[sensor].append((t, x))
            self._decide()
            return
        self.join.add(0 if (sensor == "acc") == self.acc_is_timeline else 1, t, x)

    def _decide(self) -> None:
        ts = {
            k: np.concatenate([t for t, _ in v]) if v else np.empty(0)
            for k, v in self._early.items()
        }
        if min(len(t) for t in ts.values()) < self.decide_samples:
            return
        # The mean interval over the span: a median of the intervals is 0 where the phone
        # stamps coarsely (runs of tied stamps), and the faster sensor would go unseen.
        acc_dt, gyro_dt = ((ts[k][-1] - ts[k][0]) / (len(ts[k]) - 1) for k in ("acc", "gyro"))
        self.acc_is_timeline, self.join = acc_dt <= gyro_dt, InterpJoin(self.repair)
        early, self._early = self._early, {}
        for sensor, parts in early.items():
            for t, x in parts:
                self.add(sensor, t, x)

    def flush(self) -> None:
        """The end of the session (:meth:`InterpJoin.flush`)."""
        if self.join is not None:
            self.join.flush()

    def pop(self) -> tuple[np.ndarray, np.ndarray]:
        """(t [M], imu [M, 6]: acc m/s², gyro rad/s) decided so far."""
        if self.join is None:
            return np.empty(0), np.empty((0, 6))
        t, xp, xs = self.join.pop()
        acc, gyro = (xp, xs) if self.acc_is_timeline else (xs, xp)
        if len(t) > 1:
            self.rate_hz = 1.0 / float(np.median(np.diff(t)))
        return t, np.hstack([acc, gyro])


class StreamClock:
    """Stream time for one phone: its own clock within a session; a new session starts at the
    host time elapsed since the very first sample (``FrameAssembler``'s rule), so the pause
    between recordings is a gap and a segment break. ``clock`` fits host vs phone."""

    def __init__(self) -> None:
        self.clock = ClockModel()
        self._origin_host_s: float | None = None
        self.new_session()

    def new_session(self) -> None:
        self._t0: float | None = None
        self._offset_s = 0.0
        self.new_connection = True

    def stream_s(self, device_s: np.ndarray, host_rx_s: float) -> np.ndarray:
        """Seconds on the phone's clock (its epoch, or an experiment's time) -> stream time."""
        if self._t0 is None:
            self._t0 = float(device_s[0])
            if self._origin_host_s is None:
                self._origin_host_s = host_rx_s
            self._offset_s = host_rx_s - self._origin_host_s
        return self._offset_s + (device_s - self._t0)

    def chunk(self, device: str, t_s: np.ndarray, imu: np.ndarray, host_rx_s: float, **kw):
        self.clock.add(float(t_s[-1]), host_rx_s)
        chunk = SampleChunk(device, t_s, imu, host_rx_s, new_connection=self.new_connection, **kw)
        self.new_connection = False
        return chunk


def emit(
    imu: ImuJoin, stats, clock: StreamClock, device: str, host_rx_s: float, **kw
) -> list[SampleChunk]:
    """What a phone's joined sensors have ready, counted and put on stream time as one chunk
    (none when nothing is ready): the one exit of the HTTP, MQTT and phyphox phone paths."""
    t, x = imu.pop()
    if not len(t):
        return []
    stats.chunks += 1
    stats.samples += len(t)
    stats.rate_hz = imu.rate_hz or stats.rate_hz
    return [clock.chunk(device, clock.stream_s(t, host_rx_s), x, host_rx_s, **kw)]


@dataclass
class _Decided:
    """How one session's acceleration is made, decided from its first batches."""

    acc: str  # TOTAL, LINEAR (+ GRAVITY) or RAW
    acc_unit: str
    gyro: str
    convention: Convention
    why: list[str] = field(default_factory=list)


class PhoneStream:
    """One phone (``deviceId``): push messages of its sessions -> SampleChunks.

    Args:
        device: the device name chunks carry (the phone's ``deviceId``).
        stats: this phone's link counters (``lost_frames`` counts lost messages).
        convention: force a sign convention (None: inferred as for an export without
            Metadata.csv).
    """

    def __init__(
        self,
        device: str,
        stats: SourceStats,
        *,
        reorder_window: int = 16,
        reorder_wait_s: float = 1.0,
        convention: Convention | None = None,
    ) -> None:
        self.device = device
        self.stats = stats
        self.convention = convention
        self._reorder_args = (reorder_window, reorder_wait_s)
        self.clock = StreamClock()
        self.session_id: str | None = None
        self.stale_sessions: set[str] = set()
        self.late = 0
        self._start_session(None)

    def _start_session(self, session_id: str | None) -> None:
        if self.session_id is not None:
            self.stale_sessions.add(self.session_id)
        self.session_id = session_id
        self.reorder = Reorder(*self._reorder_args)
        self.imu = ImuJoin()
        self.gravity = InterpJoin()
        self.decided: _Decided | None = None
        self._pending: list[tuple[PushMessage, float]] = []
        self._ns0: int | None = None
        self._lost_seen = 0
        self.clock.new_session()

    def add(self, msg: PushMessage, host_rx_s: float, now: float) -> list[SampleChunk]:
        if msg.session_id in self.stale_sessions:
            self._count("late_message")
            return []
        out: list[SampleChunk] = []
        if msg.session_id != self.session_id:
            if self.session_id is not None:
                out += self.expire(now, everything=True)
                log.info("%s: new session %s", self.device, msg.session_id)
            self._start_session(msg.session_id)
        late = self.reorder.late
        released = self.reorder.add(msg.message_id, (msg, host_rx_s), now)
        if self.reorder.late > late:
            self._count("late_message")
        return out + self._feed(released)

    @property
    def repaired(self) -> dict[str, int] | None:
        """What the repair of each sensor's stamps changed before their join
        (:attr:`InterpJoin.repaired`), or None before the join is decided."""
        return None if self.imu.join is None else self.imu.join.repaired

    def expire(self, now: float, everything: bool = False) -> list[SampleChunk]:
        """Messages whose wait is over (or all of them: the session ended, and the samples
        the joins' timestamp repair held back with them)."""
        chunks = self._feed(self.reorder.release(now, everything=everything))
        if everything and self.decided is not None:
            if self.decided.acc == LINEAR:
                self.gravity.flush()
                t, lin, grav = self.gravity.pop()
                self.imu.add("acc", t, lin + grav)
            self.imu.flush()
            chunks += emit(self.imu, self.stats, self.clock, self.device, now)
        return chunks

    def _count(self, reason: str, n: int = 1) -> None:
        self.stats.decoder_drops[reason] = self.stats.decoder_drops.get(reason, 0) + n

    def _feed(self, released: list) -> list[SampleChunk]:
        chunks = [c for msg, host_rx_s in released for c in self._decode(msg, host_rx_s)]
        new_lost, self._lost_seen = self.reorder.lost - self._lost_seen, self.reorder.lost
        if new_lost:
            self.stats.lost_frames += new_lost
            if chunks:
                chunks[0] = replace(chunks[0], lost_frames=new_lost)
        return chunks

    def _decode(self, msg: PushMessage, host_rx_s: float) -> list[SampleChunk]:
        if self.decided is None:
            self._pending.append((msg, host_rx_s))
            self.decided = self._decide()
            if self.decided is None:
                return []
            pending, self._pending = self._pending, []
            return [c for m, h in pending for c in self._samples(m, h)]
        return self._samples(msg, host_rx_s)

    def _decide(self) -> _Decided | None:
        from gaitedge.formats.sensorlogger import HINTS

        seen = {name for m, _ in self._pending for name in m.sensors}
        acc = next((a for a in (TOTAL, LINEAR, RAW) if a in seen), None)
        if acc == LINEAR and GRAVITY not in seen and RAW in seen:
            acc = RAW
        gyro = next((g for g in (GYRO, GYRO_RAW) if g in seen), None)
        ready = acc is not None and gyro is not None and (acc != LINEAR or GRAVITY in seen)
        if not ready:
            if len(self._pending) < DECIDE_MESSAGES:
                return None
            if gyro is None:
                raise SourceError(
                    f"phone {self.device}: pushes no gyroscope; the model needs both (6 axes) "
                    f"and is never fed zeros; {HINTS[SensorKind.GYRO]}"
                )
            kind = SensorKind.ACC if acc is None else SensorKind.GRAVITY
            raise SourceError(
                f"phone {self.device}: pushes "
                + (
                    "no accelerometer"
                    if acc is None
                    else "acceleration without gravity and no gravity"
                )
                + f"; {HINTS[kind]}"
            )
        convention, why = _infer_convention(self._pending)
        if self.convention is not None:
            convention, why = self.convention, f"{self.convention.value} sign, as asked"
        unit = "m/s^2"
        if acc == RAW:
            unit = _raw_unit(self._pending)
        log.info("%s: acceleration from %s (%s); sign: %s", self.device, acc, unit, why)
        return _Decided(acc, unit, gyro, convention, [why])

    def _samples(self, msg: PushMessage, host_rx_s: float) -> list[SampleChunk]:
        d = self.decided
        if self._ns0 is None:
            firsts = [int(ns[0]) for ns, _ in msg.sensors.values() if len(ns)]
            if not firsts:
                return []
            self._ns0 = min(firsts)

        def series(name: str, kind: SensorKind, unit: str = "m/s^2"):
            ns, xyz = msg.sensors.get(name, (np.empty(0, np.int64), np.empty((0, 3))))
            t = (ns - self._ns0) * 1e-9  # exact in int64 before the one rounding
            s = make_series(kind, t, xyz, unit=unit, where=name, convention=d.convention)
            return s.t_s, s.xyz

        if d.acc == LINEAR:
            self.gravity.add(0, *series(LINEAR, SensorKind.LINEAR_ACC))
            self.gravity.add(1, *series(GRAVITY, SensorKind.GRAVITY))
            t, lin, grav = self.gravity.pop()
            self.imu.add("acc", t, lin + grav)
        else:
            self.imu.add("acc", *series(d.acc, SensorKind.ACC, d.acc_unit))
        self.imu.add("gyro", *series(d.gyro, SensorKind.GYRO, "rad/s"))
        return emit(self.imu, self.stats, self.clock, self.device, host_rx_s, seq=msg.message_id)


def _file_view(pending: list[tuple[PushMessage, float]]):
    """The first batches as the file reader's sensor source, so its platform rules apply."""
    from gaitedge.formats.sensorlogger import _Sheet, _Source
    from gaitedge.formats.table import Table

    joined: dict[str, list] = {}
    for msg, _ in pending:
        for name, (ns, xyz) in msg.sensors.items():
            joined.setdefault(name, []).append((ns, xyz))
    sheets = {}
    for name, parts in joined.items():
        ns = np.concatenate([p[0] for p in parts]).astype(np.float64)
        xyz = np.concatenate([p[1] for p in parts])
        table = Table(["x", "y", "z"], xyz, f"push:{name}", 1, ",", ".")
        sheets[FILE_NAMES[name].lower()] = _Sheet(FILE_NAMES[name], f"push:{name}", ns, table, None)
    names = {k: FILE_NAMES_BY_LOWER[k] for k in sheets}
    return _Source(names, lambda s: sheets[s.lower()], [(k, k) for k in sheets]), sheets


FILE_NAMES_BY_LOWER = {v.lower(): v for v in FILE_NAMES.values()}


def _infer_convention(pending: list[tuple[PushMessage, float]]) -> tuple[Convention, str]:
    from gaitedge.formats.sensorlogger import _infer_convention as infer

    source, _ = _file_view(pending)
    convention, why = infer(source)
    return convention, why.replace("no Metadata.csv", "a push (no Metadata.csv)")


def _raw_unit(pending: list[tuple[PushMessage, float]]) -> str:
    from gaitedge.formats.sensorlogger import _unit_from_data

    _, sheets = _file_view(pending)
    return _unit_from_data(sheets[RAW])[0]


class PhoneHub:
    """Base of the push sources (HTTP, MQTT): receivers enqueue ``(body or PushMessage, host
    time)`` from their own threads; :meth:`chunks` is the one consumer. Each phone is a device:
    its chunks carry its ``deviceId`` and its counters are in ``phones[deviceId].stats``.

    Subclasses start and stop their receiver in ``_start`` / ``_stop``.
    """

    def __init__(
        self,
        device: str,
        *,
        reorder_window: int = 16,
        reorder_wait_s: float = 1.0,
        queue_size: int = 1024,
        convention: Convention | None = None,
    ) -> None:
        self.device = device
        self.stats = SourceStats()
        self.phones: dict[str, PhoneStream] = {}
        self.queue_overflows = 0
        self._options = {
            "reorder_window": reorder_window,
            "reorder_wait_s": reorder_wait_s,
            "convention": convention,
        }
        self._queue_size = queue_size
        self._queue: asyncio.Queue | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def devices(self) -> dict[str, PhoneStream]:
        """The phones heard so far, by device name; each has its own ``stats``."""
        return self.phones

    async def _start(self) -> None:
        raise NotImplementedError

    async def _stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> PhoneHub:
        self._queue = asyncio.Queue(self._queue_size)
        self._loop = asyncio.get_running_loop()
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop()

    def put_threadsafe(self, item: object) -> None:
        """From a receiver thread: enqueue ``(body or PushMessage, host_rx_s)``."""
        self._loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.queue_overflows += 1
            self.count("queue_overflow")

    def count(self, reason: str, n: int = 1) -> None:
        """A message refused before it reached a phone (bad body, unauthorised, ...)."""
        if reason == "unauthorised" and not self.stats.decoder_drops.get(reason):
            log.warning("%s: a request without the token was refused (401)", self.device)
        self.stats.decoder_drops[reason] = self.stats.decoder_drops.get(reason, 0) + n

    def refused_line(self) -> str | None:
        """One line for the end of a session: the messages refused before they reached a
        phone (no phone's status line counts them), or None."""
        drops = {k: v for k, v in self.stats.decoder_drops.items() if v}
        if not drops:
            return None
        shown = ", ".join(f"{k} {v}" for k, v in sorted(drops.items()))
        return f"{self.device}: {sum(drops.values())} messages refused before any phone: {shown}"

    async def _next(self) -> object | None:
        deadlines = [d for p in self.phones.values() if (d := p.reorder.deadline()) is not None]
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        getter = asyncio.ensure_future(self._queue.get())
        try:
            done, _ = await asyncio.wait({getter}, timeout=timeout)
        finally:
            if not getter.done():
                getter.cancel()
        return getter.result() if done else None

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        while True:
            item = await self._next()
            now = time.monotonic()
            out: list[SampleChunk] = []
            if item is not None:
                out += self._add(*item, now)
            for phone in self.phones.values():
                out += phone.expire(now)
            for chunk in out:
                yield chunk
            self._sum_stats()

    def _add(self, body: bytes | PushMessage, host_rx_s: float, now: float) -> list[SampleChunk]:
        if isinstance(body, PushMessage):
            msg = body
        else:
            try:
                msg = parse_push(body)
            except PushError as exc:
                self.count("bad_message")
                log.warning("%s: push message refused: %s", self.device, exc)
                return []
        phone = self.phones.get(msg.device_id)
        if phone is None:
            log.info("%s: phone %s connected", self.device, msg.device_id)
            phone = PhoneStream(msg.device_id, SourceStats(), **self._options)
            self.phones[msg.device_id] = phone
        return phone.add(msg, host_rx_s, now)

    def _sum_stats(self) -> None:
        s = self.stats
        phones = [p.stats for p in self.phones.values()]
        s.chunks = sum(p.chunks for p in phones)
        s.samples = sum(p.samples for p in phones)
        s.lost_frames = sum(p.lost_frames for p in phones)
        s.rate_hz = max((p.rate_hz for p in phones), default=0.0)
