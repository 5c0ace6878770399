"""Movesense (Suunto) sensors: the ``Meas`` JSON of IMU6/IMU9 packets (Showcase / DataLogger
export), and the Showcase app's recordings, one per sensor, as raw JSON lines or as CSV.

Facts (Movesense API ``meas/acc.yaml``, ``gyro.yaml``, ``imu.yaml``; Suunto's
MovesenseShowcase-iOS ``Recorder.swift``, ``RecorderFileJson.swift``, ``CsvEncodingTests``;
shared/reference vendor-formats.md §B4), each honoured here:

* ``{"Meas":{"IMU9":[{"ArrayAcc":[{x,y,z}...],"ArrayGyro":[...],"ArrayMagn":[...],
  "Timestamp":ms}, ...]}}``: one packet per notification, acc and gyro sharing its stamp
  (``IMU6``: acc + gyro; ``IMU6m``: acc + magnetometer, no gyroscope; ``Acc``/``Gyro``: one
  sensor each, on their own packets).
* Showcase recordings: ``<start>_<serial>_acc_stream.json`` holds lines
  ``{"acc":{"Timestamp":ms,"ArrayAcc":[...]}}`` (``gyro_stream``: ``{"gyroscope":{...,
  "ArrayGyro":[...]}}``); their CSV conversion ``..._acc_stream.csv`` is ``timestamp,x,y,z`` with
  the stamp only on each packet's first row. The header is the same for acc and gyro: the sensor
  is the file name's ``acc`` / ``gyro``.
* ``Timestamp`` is the sensor's uptime in ms of the packet's **first** sample (acc.yaml: "Local
  timestamp of first measurement"). The sensor's clock and its sampling clock differ (the
  nominal 104 Hz runs at ~107 Hz by the stamps), so samples are spread at the rate the stamps
  imply: the mean interval over packets without a gap.
* Units: acceleration m/s², gyroscope deg/s. Sign: specific force, as Android: a MEMS
  accelerometer at rest reads +g on the axis pointing up (the API says only "m/s^2"; Suunto's
  own test vector reads z = +9.93, the wild IMU9 log z = -9.63: the same sensor lying either way
  up, not two conventions). No flip; the gyroscope is right-handed about the same axes (pinned on
  the wild log).
"""

from __future__ import annotations

import codecs
import collections
import contextlib
import dataclasses
import functools
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

import numpy as np

from gaitedge.formats import table as _table
from gaitedge.formats.base import (
    Container,
    Export,
    FormatError,
    SensorKind,
    Series,
    StreamedExport,
    pick_one,
)
from gaitedge.formats.join import SeriesStream, make_series, streamed_export
from gaitedge.formats.table import BLOCK_BYTES, EditedHead, iter_tables, read_full

NAME = "movesense"
TITLE = "Movesense (Suunto): Meas IMU6/IMU9 JSON, or Showcase recordings (JSON stream or CSV)"
NEEDS = (
    "an IMU6 or IMU9 Meas JSON; or one sensor's Showcase recordings of acc and gyro "
    "(..._acc_stream.json/.csv + ..._gyro_stream.json/.csv)"
)
HINTS = {
    SensorKind.ACC: "record the accelerometer too (IMU6, IMU9, or Acc beside Gyro)",
    SensorKind.GYRO: "subscribe to IMU6 or IMU9 (IMU6m has no gyroscope), or record Gyro beside "
    "Acc in the Showcase app",
}

CSV_HEADER = "timestamp,x,y,z"
ACC_UNIT, GYRO_UNIT = "m/s^2", "deg/s"
MEAS_KEYS = {"imu9": ("ArrayAcc", "ArrayGyro"), "imu6": ("ArrayAcc", "ArrayGyro")}
MEAS_KEYS |= {"imu6m": ("ArrayAcc", None), "acc": ("ArrayAcc", None), "gyro": (None, "ArrayGyro")}
STREAM_KEYS = {"acc": (SensorKind.ACC, "ArrayAcc"), "gyroscope": (SensorKind.GYRO, "ArrayGyro")}
STREAM_KEYS["gyro"] = STREAM_KEYS["gyroscope"]
STAMP_WRAP_MS = 2**32  # uint32 ms uptime wraps after 49.7 days
GAP_TOLERANCE = 0.25  # a packet interval off the median by more than this is a gap
_NAME_TOKENS = {"acc": SensorKind.ACC, "gyro": SensorKind.GYRO, "gyroscope": SensorKind.GYRO}
_OTHER_TOKENS = {"ecg", "hr", "heartrate", "magn", "temperature", "imu"}
_LEAD_STREAM = re.compile(r'^\s*\{\s*"(acc|gyroscope|gyro)"\s*:\s*\{')
_WHITE = re.compile(r"[ \t\n\r]*")
# Packets decoded at a time when a JSON file is read (~8 samples each; ~10 MB of decoded JSON
# objects at a time): memory per block, not per file.
PACKETS_PER_BLOCK = 1024
# Samples of each sensor the streamed read checks the join on before it streams.
HEAD_SAMPLES = 4096
# A JSON value (one packet) that still fails with this much text after it is wrong, not cut.
MAX_VALUE_CHARS = 1 << 20


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Packets:
    """One sensor's packets as a file holds them (the whole file, or one block of it).

    Attributes:
        kind: acc or gyro.
        stamps_ms: [P] sensor uptime of each packet's first sample.
        counts: [P] samples per packet.
        xyz: [sum(counts), 3] as written.
        where: the file.
        refs: [P] where each packet is: its line (``ref_label`` ``":"``) or its number in the
            Meas array (``": Meas/IMU9 packet "``).
    """

    kind: SensorKind
    stamps_ms: np.ndarray
    counts: np.ndarray
    xyz: np.ndarray
    where: str
    refs: np.ndarray
    ref_label: str = ":"

    def locate(self, k: int) -> str:
        """Packet ``k`` in a message: ``file:LINE`` or ``file: Meas/KEY packet N``."""
        return f"{self.where}{self.ref_label}{int(self.refs[k])}"


def _concat(blocks: list[Packets]) -> Packets:
    """A file's blocks as one :class:`Packets`."""
    if len(blocks) == 1:
        return blocks[0]
    first = blocks[0]
    return Packets(
        first.kind,
        np.concatenate([b.stamps_ms for b in blocks]),
        np.concatenate([b.counts for b in blocks]),
        np.concatenate([b.xyz for b in blocks]),
        first.where,
        np.concatenate([b.refs for b in blocks]),
        first.ref_label,
    )


def _vectors(items: object, what: str) -> list[tuple]:
    if not isinstance(items, list):
        raise FormatError(f"{what}: expected a list of {{x, y, z}}")
    try:
        return [(v["x"], v["y"], v["z"]) for v in items]
    except (KeyError, TypeError) as exc:
        raise FormatError(f"{what}: a sample without x, y and z") from exc


def _numbers(rows: list[tuple], where: str) -> np.ndarray:
    """[N, 3] float64 of JSON numbers; a string or null among them is refused (numpy would turn
    "1.5" into 1.5)."""
    if not rows:
        return np.empty((0, 3))
    arr = np.array(rows)  # numbers only: int64 or float64, one C-level pass
    if arr.dtype.kind in "if":
        return arr.astype(np.float64)
    for i, row in enumerate(rows):
        if not all(type(v) in (int, float) for v in row):
            raise FormatError(f"{where}: sample {i + 1}: {list(row)} is not three numbers")
    return arr.astype(np.float64)


def _stamp(packet: dict, what: str) -> int:
    stamp = packet.get("Timestamp") if isinstance(packet, dict) else None
    if not isinstance(stamp, int) or isinstance(stamp, bool) or stamp < 0:
        raise FormatError(f"{what}: no integer Timestamp (got {stamp!r})")
    return stamp


class _JsonText:
    """A JSON document read from a byte stream a block at a time: each value (a packet) decoded
    by ``json``'s own decoder, the objects and arrays around them walked here. Memory: a block
    of text however long the file; errors name the line and column a whole-document parse
    would."""

    def __init__(self, stream: IO[bytes], where: str) -> None:
        self._stream, self.where = stream, where
        self._utf8 = codecs.getincrementaldecoder("utf-8-sig")()
        self._decoder = json.JSONDecoder()
        self.buf, self.pos, self.eof = "", 0, False
        self._line0, self._col0 = 1, 0  # buf[0]'s line, and the characters before it on it

    def _more(self) -> bool:
        """Read the next block (dropping what was consumed); False at the end."""
        if self.eof:
            return False
        data = read_full(self._stream, BLOCK_BYTES)
        try:
            text = self._utf8.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise self._error("not UTF-8 text", len(self.buf), what="") from exc
        if not data:  # the end: positions in the buffer stay as they are
            self.eof = True
            return False
        done = self.buf[: self.pos]
        lines = done.count("\n")
        self._line0 += lines
        self._col0 = len(done) - done.rfind("\n") - 1 if lines else self._col0 + len(done)
        self.buf, self.pos = self.buf[self.pos :] + text, 0
        return True

    def _error(self, msg: str, pos: int, what: str = "not JSON: ") -> FormatError:
        before = self.buf[:pos]
        lines = before.count("\n")
        column = (pos - before.rfind("\n") - 1 if lines else self._col0 + pos) + 1
        return FormatError(f"{self.where}:{self._line0 + lines}: {what}{msg} (column {column})")

    def peek(self) -> str:
        """The next character after white space ("" at the end)."""
        while True:
            self.pos = _WHITE.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def take(self, chars: str) -> str:
        """The next character, one of ``chars``."""
        c = self.peek()
        if not c or c not in chars:
            said = " or ".join(repr(x) for x in chars)
            raise self._error(f"Expecting {said}", self.pos)
        self.pos += 1
        return c

    def value(self) -> object:
        """The next JSON value, decoded."""
        self.peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                # Cut by the block's end, or wrong: a packet is far shorter than a block.
                if len(self.buf) - self.pos < MAX_VALUE_CHARS and self._more():
                    continue
                raise self._error(exc.msg, exc.pos) from None
            if end == len(self.buf) and self._more():
                continue  # a number at the block's end may go on ("12" of "125")
            self.pos = end
            return value

    def items(self, close: str) -> Iterator[None]:
        """Steps through an object's members or an array's items (the opening character
        taken): one step per member, the caller reading it."""
        if self.peek() == close:
            self.pos += 1
            return
        while True:
            yield None
            if self.take("," + close) == close:
                return


def _meas_items(doc: _JsonText, seen: dict[str, bool]) -> Iterator[tuple[str, int, object]]:
    """(key, number from 1, packet) for every item of every array in the document's ``Meas``
    object, in file order; ``seen``: each Meas key, and whether its value is an array."""
    no_meas = FormatError(f'{doc.where}: no "Meas" object (a Movesense Meas JSON holds one)')
    if doc.peek() != "{":
        raise no_meas
    doc.take("{")
    found = False
    for _ in doc.items("}"):
        key = doc.value()
        doc.take(":")
        if key != "Meas" or doc.peek() != "{":
            doc.value()
            continue
        found = True
        doc.take("{")
        for _ in doc.items("}"):
            name = doc.value()
            doc.take(":")
            seen[str(name)] = doc.peek() == "["
            if not seen[str(name)]:
                doc.value()
                continue
            doc.take("[")
            for number, _ in enumerate(doc.items("]"), start=1):
                yield str(name), number, doc.value()
    if doc.peek():
        raise doc._error("Extra data", doc.pos)
    if not found or not seen:
        raise no_meas


def _meas_blocks(
    stream: IO[bytes], where: str, seen: dict[str, bool], keys: set[str] | None = None
) -> Iterator[tuple[str, dict[SensorKind, Packets]]]:
    """A Meas JSON's packets a block at a time: (key, its sensors' packets) for the keys this
    reader takes (``keys``: only these)."""
    pending: dict[str, list[tuple[int, object]]] = {}
    for key, number, packet in _meas_items(_JsonText(stream, where), seen):
        if key.lower() not in MEAS_KEYS or (keys is not None and key not in keys):
            continue
        block = pending.setdefault(key, [])
        block.append((number, packet))
        if len(block) == PACKETS_PER_BLOCK:
            yield key, _meas_block(key, pending.pop(key), where)
    for key, block in pending.items():
        yield key, _meas_block(key, block, where)


def _meas_block(key: str, items: list[tuple[int, object]], where: str) -> dict:
    arrays = MEAS_KEYS[key.lower()]
    out = {}
    for kind, array in zip((SensorKind.ACC, SensorKind.GYRO), arrays, strict=True):
        if array is not None:
            out[kind] = _meas_packets(items, key, array, kind, where)
    acc, gyro = out.get(SensorKind.ACC), out.get(SensorKind.GYRO)
    if None not in arrays and not np.array_equal(acc.counts, gyro.counts):
        k = int(np.argmax(acc.counts != gyro.counts))
        raise FormatError(
            f"{acc.locate(k)}: {acc.counts[k]} acc samples but {gyro.counts[k]} gyro samples"
        )
    return out


def _meas_packets(
    items: list[tuple[int, object]], key: str, array: str, kind: SensorKind, where: str
) -> Packets:
    stamps, counts, rows = [], [], []
    for number, packet in items:
        what = f"{where}: Meas/{key} packet {number}"
        stamps.append(_stamp(packet, what))
        vec = _vectors(packet.get(array), f"{what} {array}")
        counts.append(len(vec))
        rows.extend(vec)
    return Packets(
        kind,
        np.array(stamps, dtype=np.int64),
        np.array(counts, dtype=np.int64),
        _numbers(rows, f"{where}: Meas/{key} {array}"),
        where,
        np.array([n for n, _ in items], dtype=np.int64),
        f": Meas/{key} packet ",
    )


def _meas_export(
    blocks: Iterable[tuple[str, dict[SensorKind, Packets]]],
    seen: dict[str, bool],
    where: str,
    use: Callable[[Packets], None],
) -> tuple[str, dict[SensorKind, str], list[str]]:
    """A Meas JSON's blocks, each sensor's handed to ``use``: (the keys used, each sensor's
    key, what else it held). A sensor found under two keys is refused."""
    key_of: dict[SensorKind, str] = {}
    for key, block in blocks:
        for kind, p in block.items():
            if key_of.setdefault(kind, key) != key:
                raise FormatError(f"{where}: Meas holds {kind.value} twice ({key_of[kind]}, {key})")
            use(p)
    used = [k for k in seen if seen[k] and k.lower() in MEAS_KEYS]
    extra = [k for k in seen if k not in used]
    extra += ["IMU9 ArrayMagn" for k in used if k.lower() == "imu9"]
    return "+".join(used), key_of, extra


def parse_meas(text: str, where: str) -> tuple[str, dict[SensorKind, Packets], list[str]]:
    """A ``{"Meas": {...}}`` JSON: (the measurement name, its packets per sensor, what else it
    held)."""
    seen: dict[str, bool] = {}
    by_kind: dict[SensorKind, list[Packets]] = collections.defaultdict(list)
    blocks = _meas_blocks(io.BytesIO(text.encode()), where, seen)
    what, _, extra = _meas_export(blocks, seen, where, lambda p: by_kind[p.kind].append(p))
    return what, {kind: _concat(b) for kind, b in by_kind.items()}, extra


def _stream_blocks(stream: IO[bytes], where: str) -> Iterator[Packets]:
    """A Showcase raw recording, one ``{"acc"|"gyroscope": {"Timestamp", "Array..."}}`` per
    line, a block of lines at a time."""
    kind = None
    stamps, counts, rows, lines = [], [], [], []
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline=None)
    n = 0
    try:
        for n, line in enumerate(text, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FormatError(f"{where}:{n}: not JSON: {exc.msg} (column {exc.colno})") from exc
            if not isinstance(event, dict) or len(event) != 1:
                raise FormatError(f'{where}:{n}: expected one {{"acc"|"gyroscope": {{...}}}}')
            ((key, body),) = event.items()
            if key not in STREAM_KEYS:
                raise FormatError(
                    f"{where}:{n}: a {key!r} event; this reader takes acc and gyroscope"
                )
            this, array = STREAM_KEYS[key]
            if kind is None:
                kind = this
            elif this is not kind:
                raise FormatError(f"{where}:{n}: a {key} event in a {kind.value} recording")
            stamps.append(_stamp(body, f"{where}:{n}"))
            vec = _vectors(body.get(array), f"{where}:{n}: {array}")
            counts.append(len(vec))
            rows.extend(vec)
            lines.append(n)
            if len(lines) == PACKETS_PER_BLOCK:
                yield _stream_packets(kind, stamps, counts, rows, lines, where)
                stamps, counts, rows, lines = [], [], [], []
    except UnicodeDecodeError as exc:
        raise FormatError(f"{where}:{n + 1}: not UTF-8 text") from exc
    if kind is None:
        raise FormatError(f"{where}: no events")
    if lines:
        yield _stream_packets(kind, stamps, counts, rows, lines, where)


def _stream_packets(kind, stamps, counts, rows, lines, where) -> Packets:
    return Packets(
        kind,
        np.array(stamps, dtype=np.int64),
        np.array(counts, dtype=np.int64),
        _numbers(rows, where),
        where,
        np.array(lines, dtype=np.int64),
    )


def parse_stream(text: str, where: str) -> Packets:
    """A Showcase raw recording: one ``{"acc"|"gyroscope": {"Timestamp", "Array..."}}`` per
    line."""
    return _concat(list(_stream_blocks(io.BytesIO(text.encode()), where)))


def _csv_blocks(stream: IO[bytes], where: str, kind: SensorKind) -> Iterator[Packets]:
    """A Showcase CSV, ``timestamp,x,y,z`` with the stamp only on each packet's first row, a
    block of rows at a time (whole packets: a packet cut by a block's end goes with the next).

    The numbers go through :func:`iter_tables`, the stamp column as a sparse integer column
    (its empty cells are not errors)."""
    header = stream.readline().decode("utf-8-sig", errors="replace").strip()
    if header.lower() != CSV_HEADER:
        raise FormatError(f"{where}:1: header {header!r}, expected {CSV_HEADER}")
    tables = iter_tables(
        EditedHead(stream, 0, CSV_HEADER),
        where,
        delimiter=",",
        decimal=".",
        usecols=["timestamp", "x", "y", "z"],
        int_columns=("timestamp",),
        sparse=("timestamp",),
        # Its rows are short (~30 bytes): a quarter of a block holds as many samples as the
        # other formats' blocks do.
        block_bytes=max(_table.BLOCK_BYTES // 4, 1),
    )
    held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # stamp, xyz, lines
    for table in tables:
        values = table.data
        lines = table.first_line + np.arange(len(values))
        if held is None:
            if np.isnan(values[0, 0]):
                raise FormatError(
                    f"{where}:{lines[0]}: the first row has no timestamp (each packet's first "
                    "row carries it)"
                )
            stamp, xyz = values[:, 0], values[:, 1:]
        else:
            stamp = np.concatenate([held[0], values[:, 0]])
            xyz = np.concatenate([held[1], values[:, 1:]])
            lines = np.concatenate([held[2], lines])
        empty = ~np.isfinite(xyz).all(axis=1)
        if empty.any():
            raise FormatError(f"{where}:{lines[int(np.argmax(empty))]}: x, y or z is empty")
        first = np.flatnonzero(~np.isnan(stamp))
        s = stamp[first]
        bad = (s < 0) | (s != np.floor(s)) | (s >= 2**63)
        if bad.any():
            k = int(first[np.argmax(bad)])
            raise FormatError(
                f"{where}:{lines[k]}: timestamp {float(stamp[k])!r} is not ms of uptime"
            )
        last = first[-1]  # the last packet may go on in the next block
        if last:
            yield _csv_packets(kind, stamp, xyz, lines, first[:-1], last, where)
        held = (stamp[last:], xyz[last:], lines[last:])
    if held is None:
        raise FormatError(f"{where}: no rows after the header")
    stamp, xyz, lines = held
    yield _csv_packets(kind, stamp, xyz, lines, np.array([0]), len(stamp), where)


def _csv_packets(kind, stamp, xyz, lines, first, end, where) -> Packets:
    """The packets whose first rows are ``first``, the last of them ending at row ``end``."""
    return Packets(
        kind,
        stamp[first].astype(np.int64),
        np.diff(np.append(first, end)),
        np.ascontiguousarray(xyz[:end]),
        where,
        lines[first],
    )


def parse_csv(text: str, where: str, kind: SensorKind) -> Packets:
    """A Showcase CSV: ``timestamp,x,y,z``, the stamp only on each packet's first row."""
    return _concat(list(_csv_blocks(io.BytesIO(text.encode()), where, kind)))


# --- sample times -------------------------------------------------------------------------------


class _Clock:
    """A sensor's packet stamps, block after block: unwrapped (uint32 ms of uptime) and checked
    forward; the intervals and the samples before each for :class:`_Tally`."""

    def __init__(self) -> None:
        self.offset, self.wrapped = 0, False
        self._last: tuple[int, int, int] | None = None  # raw stamp, unwrapped, samples

    def unwrap(self, p: Packets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """([P] unwrapped stamps, the intervals into each packet after the first one seen,
        the samples of the packet before each interval)."""
        raw = p.stamps_ms
        if not len(raw):
            return raw, raw, raw
        prev_raw = raw[0] if self._last is None else self._last[0]
        back = np.diff(raw, prepend=prev_raw) < -STAMP_WRAP_MS // 2
        stamps = raw + self.offset + np.cumsum(back) * STAMP_WRAP_MS
        self.offset += int(back.sum()) * STAMP_WRAP_MS
        self.wrapped |= bool(back.any())
        if self._last is None:
            steps, before, raw_before = np.diff(stamps), p.counts[:-1], raw[:-1]
            into = 1  # steps[j] is the interval into packet j + 1
        else:
            steps = np.diff(stamps, prepend=self._last[1])
            before = np.concatenate([[self._last[2]], p.counts[:-1]])
            raw_before, into = np.concatenate([[self._last[0]], raw[:-1]]), 0
        if (steps <= 0).any():
            j = int(np.argmax(steps <= 0))
            raise FormatError(
                f"{p.locate(j + into)}: Timestamp {raw[j + into]} ms is not after the previous "
                f"packet's {raw_before[j]} ms (time goes back: a restarted sensor, or files of "
                "two recordings?)"
            )
        if (p.counts == 0).any():
            k = int(np.argmax(p.counts == 0))
            raise FormatError(f"{p.locate(k)}: a packet without samples")
        self._last = (int(raw[-1]), int(stamps[-1]), int(p.counts[-1]))
        return stamps, steps, before


class _Tally:
    """The rate a sensor's stamps imply, gathered block by block without a value kept per
    packet: each (interval, samples before it) pair counted (a few hundred distinct pairs)."""

    def __init__(self) -> None:
        self.pairs: collections.Counter = collections.Counter()
        self.sizes: collections.Counter = collections.Counter()  # samples per packet

    def add(self, p: Packets, steps: np.ndarray, before: np.ndarray) -> None:
        if len(steps):
            pairs, n = np.unique(np.stack([steps, before], axis=1), axis=0, return_counts=True)
            self.pairs.update(dict(zip(map(tuple, pairs.tolist()), n.tolist(), strict=True)))
        self.sizes.update(dict(zip(*np.unique(p.counts, return_counts=True), strict=True)))

    @property
    def packets(self) -> int:
        return sum(self.sizes.values())

    def rate(self, where: str) -> tuple[float, int]:
        """(ms per sample: the mean interval over the packets without a gap after them, the
        number of gaps), as a whole-file ``np.median`` over the intervals would give them."""
        if not self.pairs:
            raise FormatError(f"{where}: one packet only; its sample rate cannot be told")
        pairs = np.array(list(self.pairs), dtype=np.int64)
        n = np.array(list(self.pairs.values()), dtype=np.int64)
        per_sample = pairs[:, 0] / pairs[:, 1]  # [K] ms
        median = _weighted_median(per_sample, n)
        normal = np.abs(per_sample / median - 1) <= GAP_TOLERANCE
        dt_ms = (pairs[:, 0] * n)[normal].sum() / (pairs[:, 1] * n)[normal].sum()
        return float(dt_ms), int(n[~normal].sum())

    def median_size(self) -> int:
        sizes = np.array(list(self.sizes), dtype=np.int64)
        return int(_weighted_median(sizes, np.array(list(self.sizes.values()))))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """``np.median`` of ``values`` each repeated ``weights`` times."""
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[order])
    total = int(cum[-1])
    lo = v[np.searchsorted(cum, (total - 1) // 2, side="right")]
    hi = v[np.searchsorted(cum, total // 2, side="right")]
    return float(np.mean(np.array([lo, hi]))) if total % 2 == 0 else float(lo)


def _times(stamps: np.ndarray, counts: np.ndarray, dt_ms: float) -> np.ndarray:
    """[N] seconds: each packet's samples from its (unwrapped) stamp, ``dt_ms`` apart."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    index = np.arange(int(counts.sum())) - starts  # sample index within its packet
    return (np.repeat(stamps, counts) + index * dt_ms) / 1000.0


def spread(p: Packets) -> tuple[np.ndarray, float, int, bool]:
    """Sample times (s of sensor uptime) of a sensor's packets: each packet's samples from its
    stamp at the mean sample interval of the packets without a gap after them.

    Returns:
        [N] times, the rate in Hz, the number of gaps, and whether the uptime wrapped.

    Raises:
        FormatError: one packet only (no rate), or a stamp not after the previous one.
    """
    clock, tally = _Clock(), _Tally()
    stamps, steps, before = clock.unwrap(p)
    tally.add(p, steps, before)
    dt_ms, gaps = tally.rate(p.where)
    return _times(stamps, p.counts, dt_ms), 1000.0 / dt_ms, gaps, clock.wrapped


# --- which files --------------------------------------------------------------------------------


def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", PurePosixPath(name).stem.lower()) if t]


def _recording_key(name: str) -> str:
    """A Showcase file's recording: its name without the sensor and ``stream`` tokens."""
    keep = [t for t in _tokens(name) if t not in _NAME_TOKENS and t not in _OTHER_TOKENS]
    keep = [t for t in keep if t != "stream"]
    return str(PurePosixPath(name).parent / "_".join(keep))


def _is_csv(head: str) -> bool:
    lines = head.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip().lower() != CSV_HEADER:
        return False
    return any(line.startswith(",") for line in lines[2:-1])


def _classify(container: Container) -> tuple[list[str], list[str], list[str]]:
    """(Meas JSONs, Showcase JSON streams, Showcase CSVs) in the container."""
    meas, streams, csvs = [], [], []
    for name in container.names:
        head = container.head(name, 2048)
        stripped = head.lstrip("\ufeff \t\r\n")
        if stripped.startswith("{") and '"Meas"' in head[:200] and '"Array' in head:
            meas.append(name)
        elif _LEAD_STREAM.match(head) and '"Timestamp"' in head:
            streams.append(name)
        elif _is_csv(head):
            csvs.append(name)
    return meas, streams, csvs


def detect(container: Container) -> str | None:
    meas, streams, csvs = _classify(container)
    if meas:
        return f'{meas[0]}: a "Meas" JSON of Movesense packets (ArrayAcc, Timestamp)'
    if streams:
        return f'{streams[0]}: Movesense Showcase JSON lines ({{"acc"|"gyroscope": ...}})'
    if csvs:
        return f"{csvs[0]}: {CSV_HEADER} with the stamp on each packet's first row (Showcase)"
    return None


def _showcase_files(
    container: Container, streams: list[str], csvs: list[str], options, rules: list[str]
) -> dict[SensorKind, tuple[str, str]]:
    """Per sensor, (member, 'stream'|'csv') of one Showcase recording."""
    by_rec: dict[str, dict[SensorKind, list[tuple[str, str]]]] = {}
    for name, form in [(n, "stream") for n in streams] + [(n, "csv") for n in csvs]:
        kinds = {_NAME_TOKENS[t] for t in _tokens(name) if t in _NAME_TOKENS}
        if form == "stream":
            key = _LEAD_STREAM.match(container.head(name, 64)).group(1)
            kinds = {STREAM_KEYS[key][0]}
        if len(kinds) != 1:
            if any(t in _OTHER_TOKENS for t in _tokens(name)):
                rules.append(f"{name} not used (not acc or gyro)")
                continue
            raise FormatError(
                f"{container.where(name)}: cannot tell acc from gyro: the Showcase names its "
                "CSVs ..._acc_stream.csv and ..._gyro_stream.csv (both have the header "
                f"{CSV_HEADER})"
            )
        by_rec.setdefault(_recording_key(name), {}).setdefault(kinds.pop(), []).append((name, form))
    key = pick_one(sorted(by_rec), options.device, "Showcase recordings", container.path)
    chosen: dict[SensorKind, tuple[str, str]] = {}
    for kind, files in by_rec[key].items():
        files.sort(key=lambda f: f[1] != "stream")  # the JSON stream first: full precision
        if len([f for f in files if f[1] == files[0][1]]) > 1:
            raise FormatError(
                f"{container.path}: several {kind.value} files of one recording: "
                f"{', '.join(f[0] for f in files)}"
            )
        chosen[kind] = files[0]
        for other, _ in files[1:]:
            rules.append(
                f"{other} not read: the same recording's JSON stream {files[0][0]} was (full "
                "precision)"
            )
    for other_key in sorted(by_rec):
        if other_key != key:
            rules.append(f"recording {other_key} not read (--device chose {key})")
    return chosen


# --- read ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sensor:
    """One sensor of the export: a fresh pass over its packets (block by block), and the
    sample interval the whole file's stamps imply."""

    kind: SensorKind
    where: str
    blocks: Callable[[], Iterator[Packets]]
    dt_ms: float

    @property
    def unit(self) -> str:
        return ACC_UNIT if self.kind is SensorKind.ACC else GYRO_UNIT


def _file_blocks(container: Container, name: str, form: str, kind: SensorKind):
    where = container.where(name)
    with container.open(name) as f:
        yield from _stream_blocks(f, where) if form == "stream" else _csv_blocks(f, where, kind)


def _meas_file_blocks(container: Container, name: str, key: str, kind: SensorKind):
    for block in _meas_file_block_pairs(container, name, key):
        yield block[kind]


class _SharedPass:
    """Both sensors of one Meas key (IMU6, IMU9: acceleration and rotation rate in the same
    packets) from one decode per pass: the first sensor to ask starts a pass over the file,
    the other's stream of that pass is kept for it (``itertools.tee``: the blocks one stream is
    ahead of the other stay buffered, a few while the join takes the two side by side). Each
    pass decodes the JSON once where a pass per sensor decoded it twice."""

    def __init__(self, container: Container, name: str, key: str) -> None:
        self._open = functools.partial(_meas_file_block_pairs, container, name, key)
        self._waiting: dict[SensorKind, Iterator[Packets]] = {}

    def blocks(self, kind: SensorKind) -> Iterator[Packets]:
        if kind in self._waiting:
            return self._waiting.pop(kind)
        mine, theirs = itertools.tee(self._open(), 2)
        other = SensorKind.GYRO if kind is SensorKind.ACC else SensorKind.ACC
        self._waiting = {other: (block[other] for block in theirs)}
        return (block[kind] for block in mine)


def _meas_file_block_pairs(container: Container, name: str, key: str):
    with container.open(name) as f:
        for _, block in _meas_blocks(f, container.where(name), {}, {key}):
            yield block


def _survey(container: Container, options, keep: bool = False) -> tuple[list[_Sensor], list[str]]:
    """The export's sensors and the rules applied, from one pass over every packet (each
    checked: a bad one is refused here, before any sample is used). ``keep``: the packets are
    kept, and each sensor's ``blocks`` hands them out again (the whole read: one pass)."""
    meas, streams, csvs = _classify(container)
    rules: list[str] = []
    if meas and (streams or csvs):
        raise FormatError(
            f"{container.path}: both a Meas JSON ({meas[0]}) and Showcase recordings "
            f"({(streams + csvs)[0]}); give one of them"
        )
    tallies: dict[SensorKind, tuple[_Clock, _Tally]] = {}
    kept: dict[SensorKind, list[Packets]] = collections.defaultdict(list)

    def tally(p: Packets) -> None:
        clock, counted = tallies.setdefault(p.kind, (_Clock(), _Tally()))
        _, steps, before = clock.unwrap(p)
        counted.add(p, steps, before)
        if keep:
            kept[p.kind].append(p)

    sources: dict[SensorKind, tuple[str, Callable[[], Iterator[Packets]]]] = {}
    if meas:
        name = pick_one(meas, options.device, "Meas JSON files", container.path)
        where, seen = container.where(name), {}
        with container.open(name) as f:
            blocks = ((key, block) for key, block in _meas_blocks(f, where, seen))
            what, key_of, extra = _meas_export(blocks, seen, where, tally)
        rules.append(f"Meas/{what} packets of {where}")
        rules += [f"{e} not used" for e in extra]
        shared = len(key_of) == 2 and len(set(key_of.values())) == 1
        pass_ = _SharedPass(container, name, next(iter(key_of.values()))) if shared else None
        for kind, key in key_of.items():
            if pass_ is not None:  # IMU6 / IMU9: one decode per pass for both sensors
                blocks = functools.partial(pass_.blocks, kind)
            else:
                blocks = functools.partial(_meas_file_blocks, container, name, key, kind)
            sources[kind] = (where, blocks)
    else:
        for kind, (name, form) in _showcase_files(container, streams, csvs, options, rules).items():
            blocks = functools.partial(_file_blocks, container, name, form, kind)
            for p in blocks():
                tally(dataclasses.replace(p, kind=kind))
            sources[kind] = (container.where(name), blocks)
    sensors = []
    for kind in (SensorKind.ACC, SensorKind.GYRO):
        if kind not in sources:
            continue
        where, blocks = sources[kind]
        if keep:
            blocks = functools.partial(iter, kept[kind])
        clock, counted = tallies[kind]
        dt_ms, gaps = counted.rate(where)
        sensors.append(_Sensor(kind, where, blocks, dt_ms))
        rules.append(
            f"{kind.value}: {counted.packets} packets of {counted.median_size()} samples, "
            f"stamped at their first sample (sensor uptime, ms); spread at the "
            f"{1000.0 / dt_ms:.2f} Hz the stamps imply"
            + (f"; {gaps} gaps between packets kept" if gaps else "")
        )
        if clock.wrapped:
            rules.append(f"{kind.value}: the uptime stamps wrapped at 2^32 ms; unwrapped")
    rules += [
        "time: the sensor's uptime (no wall clock in the file)",
        "units: acceleration m/s², rotation rate deg/s (Movesense API)",
        "sign: specific force as the Movesense accelerometer reports it (+9.81 m/s² on the axis "
        "pointing up at rest, as Android); no flip",
    ]
    if SensorKind.GYRO not in sources and SensorKind.ACC in sources:
        rules.append("no gyroscope in this export")
    return sensors, rules


def _pieces(sensor: _Sensor) -> Iterator[Series]:
    """A sensor's series a block of packets at a time (the second pass)."""
    clock = _Clock()
    for p in sensor.blocks():
        stamps, _, _ = clock.unwrap(p)
        t = _times(stamps, p.counts, sensor.dt_ms)
        yield make_series(sensor.kind, t, p.xyz, unit=sensor.unit, where=sensor.where)


def read(container: Container, options) -> Export:
    sensors, rules = _survey(container, options, keep=True)
    export = Export(format=NAME, series=[], rules=rules)
    for sensor in sensors:
        p = _concat(list(sensor.blocks()))
        stamps, _, _ = _Clock().unwrap(p)
        t = _times(stamps, p.counts, sensor.dt_ms)
        export.series.append(make_series(sensor.kind, t, p.xyz, unit=sensor.unit, where=p.where))
    return export


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The export in two passes, each block by block (memory bounded by a block of packets
    however long the recording): the first checks every packet and finds the rate the whole
    file's stamps imply (as :func:`read`), the second hands out the samples, the sensors'
    files joined as they stream."""
    sensors, rules = _survey(container, options)
    head = Export(format=NAME, series=[], rules=rules)
    for sensor in sensors:
        with contextlib.closing(_pieces(sensor)) as pieces:
            first = next(pieces)
        cut = slice(0, HEAD_SAMPLES)
        head.series.append(dataclasses.replace(first, t_s=first.t_s[cut], xyz=first.xyz[cut]))
    streams = [SeriesStream(s.kind, s.where, _pieces(s)) for s in sensors]
    return streamed_export(head, streams, str(container.path), options, HINTS)
