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

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from gaitedge.formats.base import Container, Export, FormatError, SensorKind, pick_one
from gaitedge.formats.join import make_series
from gaitedge.formats.table import parse_table

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


@dataclass(frozen=True)
class Packets:
    """One sensor's packets as a file holds them.

    Attributes:
        kind: acc or gyro.
        stamps_ms: [P] sensor uptime of each packet's first sample.
        counts: [P] samples per packet.
        xyz: [sum(counts), 3] as written.
        where: the file; locate: packet index -> where it is (``file:LINE`` or packet number).
    """

    kind: SensorKind
    stamps_ms: np.ndarray
    counts: np.ndarray
    xyz: np.ndarray
    where: str
    locate: Callable[[int], str]


# --- parsing ------------------------------------------------------------------------------------


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


def parse_meas(text: str, where: str) -> tuple[str, dict[SensorKind, Packets], list[str]]:
    """A ``{"Meas": {...}}`` JSON: (the measurement name, its packets per sensor, what else it
    held)."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(
            f"{where}:{exc.lineno}: not JSON: {exc.msg} (column {exc.colno})"
        ) from exc
    meas = doc.get("Meas") if isinstance(doc, dict) else None
    if not isinstance(meas, dict) or not meas:
        raise FormatError(f'{where}: no "Meas" object (a Movesense Meas JSON holds one)')
    out: dict[SensorKind, Packets] = {}
    extra, used = [], []
    for key, packets in meas.items():
        arrays = MEAS_KEYS.get(key.lower())
        if arrays is None or not isinstance(packets, list):
            extra.append(key)
            continue
        used.append(key)
        for kind, array in zip((SensorKind.ACC, SensorKind.GYRO), arrays, strict=True):
            if array is None:
                continue
            if kind in out:
                raise FormatError(f"{where}: Meas holds {kind.value} twice ({', '.join(used)})")
            out[kind] = _meas_packets(packets, key, array, kind, where)
        if key.lower() == "imu9":
            extra.append("IMU9 ArrayMagn")
        acc, gyro = out.get(SensorKind.ACC), out.get(SensorKind.GYRO)
        if None not in arrays and not np.array_equal(acc.counts, gyro.counts):
            k = int(np.argmax(acc.counts != gyro.counts))
            raise FormatError(
                f"{acc.locate(k)}: {acc.counts[k]} acc samples but {gyro.counts[k]} gyro samples"
            )
    return "+".join(used), out, extra


def _meas_packets(packets: list, key: str, array: str, kind: SensorKind, where: str) -> Packets:
    stamps, counts, rows = [], [], []
    for k, packet in enumerate(packets):
        what = f"{where}: Meas/{key} packet {k + 1}"
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
        lambda k: f"{where}: Meas/{key} packet {k + 1}",
    )


def parse_stream(text: str, where: str) -> Packets:
    """A Showcase raw recording: one ``{"acc"|"gyroscope": {"Timestamp", "Array..."}}`` per
    line."""
    stamps, counts, rows, lines = [], [], [], []
    kind = None
    for n, line in enumerate(text.splitlines(), start=1):
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
            raise FormatError(f"{where}:{n}: a {key!r} event; this reader takes acc and gyroscope")
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
    if kind is None:
        raise FormatError(f"{where}: no events")
    return Packets(
        kind,
        np.array(stamps, dtype=np.int64),
        np.array(counts, dtype=np.int64),
        _numbers(rows, where),
        where,
        lambda k: f"{where}:{lines[k]}",
    )


def parse_csv(text: str, where: str, kind: SensorKind) -> Packets:
    """A Showcase CSV: ``timestamp,x,y,z``, the stamp only on each packet's first row.

    x, y, z go through :func:`parse_table`; the stamp column, empty on most rows, is read here
    (as numbers its empty cells would send every such row down the table's careful path)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if header.lower() != CSV_HEADER:
        raise FormatError(f"{where}:1: header {header!r}, expected {CSV_HEADER}")
    table = parse_table(text, where, delimiter=",", decimal=".", usecols=["x", "y", "z"])
    xyz = table.data  # [N, 3] by name
    if not len(xyz):
        raise FormatError(f"{where}: no rows after the header")
    empty = ~np.isfinite(xyz).all(axis=1)
    if empty.any():
        r = int(np.argmax(empty))
        raise FormatError(f"{where}:{table.line_of(r)}: x, y or z is empty")
    lines = text.splitlines()[table.first_line - 1 : table.first_line - 1 + len(xyz)]
    cells = [line.partition(",")[0].strip() for line in lines]
    first = np.array([r for r, cell in enumerate(cells) if cell], dtype=np.int64)
    if not len(first) or first[0] != 0:
        raise FormatError(
            f"{where}:{table.line_of(0)}: the first row has no timestamp (each packet's first "
            "row carries it)"
        )
    bad = [r for r in first if not cells[r].isdigit()]
    if bad:
        raise FormatError(
            f"{where}:{table.line_of(bad[0])}: timestamp {cells[bad[0]]!r} is not ms of uptime"
        )
    counts = np.diff(np.append(first, len(xyz)))
    return Packets(
        kind,
        np.array([int(cells[r]) for r in first], dtype=np.int64),
        counts,
        xyz,
        where,
        lambda k: f"{where}:{table.line_of(int(first[k]))}",
    )


def spread(p: Packets) -> tuple[np.ndarray, float, int, bool]:
    """Sample times (s of sensor uptime) of a sensor's packets: each packet's samples from its
    stamp at the mean sample interval of the packets without a gap after them.

    Returns:
        [N] times, the rate in Hz, the number of gaps, and whether the uptime wrapped.

    Raises:
        FormatError: one packet only (no rate), or a stamp not after the previous one.
    """
    stamps = p.stamps_ms.copy()
    back = np.diff(stamps) < -STAMP_WRAP_MS // 2
    wrapped = bool(back.any())
    stamps[1:] += np.cumsum(back) * STAMP_WRAP_MS
    if len(stamps) < 2:
        raise FormatError(f"{p.where}: one packet only; its sample rate cannot be told")
    step = np.diff(stamps)
    if (step <= 0).any():
        k = int(np.argmax(step <= 0)) + 1
        raise FormatError(
            f"{p.locate(k)}: Timestamp {p.stamps_ms[k]} ms is not after the previous packet's "
            f"{p.stamps_ms[k - 1]} ms (time goes back: a restarted sensor, or files of two "
            "recordings?)"
        )
    if (p.counts == 0).any():
        k = int(np.argmax(p.counts == 0))
        raise FormatError(f"{p.locate(k)}: a packet without samples")
    per_sample = step / p.counts[:-1]  # [P-1] ms
    normal = np.abs(per_sample / np.median(per_sample) - 1) <= GAP_TOLERANCE
    dt_ms = step[normal].sum() / p.counts[:-1][normal].sum()
    starts = np.repeat(np.cumsum(p.counts) - p.counts, p.counts)
    index = np.arange(int(p.counts.sum())) - starts  # sample index within its packet
    t = (np.repeat(stamps, p.counts) + index * dt_ms) / 1000.0
    return t, 1000.0 / dt_ms, int((~normal).sum()), wrapped


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


def read(container: Container, options) -> Export:
    meas, streams, csvs = _classify(container)
    rules: list[str] = []
    if meas and (streams or csvs):
        raise FormatError(
            f"{container.path}: both a Meas JSON ({meas[0]}) and Showcase recordings "
            f"({(streams + csvs)[0]}); give one of them"
        )
    if meas:
        name = pick_one(meas, options.device, "Meas JSON files", container.path)
        what, packets, extra = parse_meas(container.read_text(name), container.where(name))
        rules.append(f"Meas/{what} packets of {container.where(name)}")
        rules += [f"{e} not used" for e in extra]
    else:
        packets = {}
        for kind, (name, form) in _showcase_files(container, streams, csvs, options, rules).items():
            text, where = container.read_text(name), container.where(name)
            packets[kind] = (
                parse_stream(text, where) if form == "stream" else parse_csv(text, where, kind)
            )
    export = Export(format=NAME, series=[], rules=rules)
    for kind in (SensorKind.ACC, SensorKind.GYRO):
        if kind not in packets:
            continue
        p = packets[kind]
        t, rate, gaps, wrapped = spread(p)
        unit = ACC_UNIT if kind is SensorKind.ACC else GYRO_UNIT
        export.series.append(make_series(kind, t, p.xyz, unit=unit, where=p.where))
        rules.append(
            f"{kind.value}: {len(p.counts)} packets of {int(np.median(p.counts))} samples, "
            f"stamped at their first sample (sensor uptime, ms); spread at the {rate:.2f} Hz the "
            "stamps imply" + (f"; {gaps} gaps between packets kept" if gaps else "")
        )
        if wrapped:
            rules.append(f"{kind.value}: the uptime stamps wrapped at 2^32 ms; unwrapped")
    rules += [
        "time: the sensor's uptime (no wall clock in the file)",
        "units: acceleration m/s², rotation rate deg/s (Movesense API)",
        "sign: specific force as the Movesense accelerometer reports it (+9.81 m/s² on the axis "
        "pointing up at rest, as Android); no flip",
    ]
    if SensorKind.GYRO not in packets and SensorKind.ACC in packets:
        rules.append("no gyroscope in this export")
    return export
