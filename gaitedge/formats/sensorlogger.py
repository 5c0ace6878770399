"""Sensor Logger (Kelvin Choi; iOS, Android, Apple Watch): the zip of one CSV per sensor, the
unzipped folder, a single CSV, or the JSON export.

Facts (``awesome-sensor-logger``: README, UNITS.md, CROSSPLATFORM.md; shared/reference
vendor-formats.md §A1), each honoured here:

* One CSV per sensor, the sensor named by the file: ``time,seconds_elapsed,z,y,x`` (z first:
  read by name). ``time`` is UTC epoch nanoseconds, the clock (:func:`_ns_to_s`: epoch seconds
  within 1.2e-7 s); ``seconds_elapsed`` (may be negative) is not.
* ``Accelerometer.csv`` is acceleration **without gravity** on both platforms. Android writes
  ``TotalAcceleration.csv`` (with gravity); on iOS ``Gravity.csv`` is added back. An iOS export
  with neither has the raw ``AccelerometerUncalibrated.csv`` (g on iOS) as total acceleration.
* iOS signs acceleration and gravity opposite to Android (flat, screen up: gravity -z on iOS)
  unless ``Metadata.csv`` says ``standardisation`` true; without that column the ``platform``
  decides; without ``Metadata.csv`` the platform is inferred from what the export holds
  (:func:`_infer_convention`). m/s² (g = 9.80665); gyroscope rad/s, one sign on both.
* Apple Watch ``WristMotion.csv``: one wide CSV (``rotationRateX..``, ``gravityX..``,
  ``accelerationX..``; gravity and acceleration in g unless standardised, CoreMotion's sign).
* JSON: one array of records, every value a string, grouped by ``sensor``.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

import numpy as np

from gaitedge.formats import table as tables
from gaitedge.formats.base import (
    Container,
    Export,
    FormatError,
    SensorKind,
    Series,
    StreamedExport,
)
from gaitedge.formats.join import (
    Convention,
    SeriesStream,
    make_series,
    streamed_export,
)
from gaitedge.formats.table import Table, iter_tables, parse_table

NAME = "sensorlogger"
TITLE = "Sensor Logger (Kelvin Choi; iOS, Android, Apple Watch): zip, folder, CSV or JSON export"
NEEDS = (
    "Gyroscope.csv with TotalAcceleration.csv (Android) or Accelerometer.csv + Gravity.csv (iOS); "
    "or WristMotion.csv (Apple Watch); or the JSON export of the same"
)
HINTS = {
    SensorKind.ACC: "enable Accelerometer and Gravity (iOS) or Total Acceleration (Android) "
    "in Sensor Logger and record again",
    SensorKind.GRAVITY: "enable Gravity (iOS) or Total Acceleration (Android) in Sensor Logger "
    "and record again",
    SensorKind.GYRO: "enable Gyroscope in Sensor Logger and record again",
}

# The sensor files this reader uses (the sensor is the file name) and the header they start with.
MOTION = ("TotalAcceleration", "Accelerometer", "Gravity", "AccelerometerUncalibrated")
GYROS = ("Gyroscope", "GyroscopeUncalibrated")
WATCH = "WristMotion"
SENSORS = (*MOTION, *GYROS, WATCH)
HEADER_START = "time,seconds_elapsed,"
XYZ = ("x", "y", "z")
_WATCH_COLUMNS = {
    "gyro": ("rotationRateX", "rotationRateY", "rotationRateZ"),
    "gravity": ("gravityX", "gravityY", "gravityZ"),
    "linear": ("accelerationX", "accelerationY", "accelerationZ"),
}
# A second set beside the usual files: ``Accelerometer2.csv`` (a second phone's, renamed).
_SUFFIXED = re.compile(rf"^({'|'.join(SENSORS)})(.+)$", re.IGNORECASE)
# Median |acceleration| below this is in g (~1), above it m/s² (~9.8): a factor 9.8 apart.
G_OR_M_S2_SPLIT = 3.0
# CoreMotion delivers acceleration, gravity and rotation rate in one device-motion update; an
# Android sensor reports its own events (Pixel 6: 12 % of stamps shared by chance).
SHARED_STAMPS_IOS = 0.9
# Gyroscope values on one grid (a raw sensor's steps) this often: Android's, whatever the stamps.
RAW_STEPS_SHARE = 0.95


@dataclass(frozen=True)
class _Sheet:
    """One sensor's rows: its epoch ns stamps and the value columns by name."""

    name: str
    where: str
    ns: np.ndarray  # [N] epoch ns as the app's float64 (see _ns_to_s)
    table: Table
    first_elapsed_s: float | None  # seconds_elapsed of row 1
    member: str | None = None  # the CSV member (None: a JSON group)

    @property
    def t_s(self) -> np.ndarray:
        return _ns_to_s(self.ns)

    def xyz(self, columns: tuple[str, str, str] = XYZ) -> np.ndarray:
        """[N, 3] by name (the files write z, y, x; parsed in the order asked: a view then)."""
        at = [self.table.index(c) for c in columns]
        if at == list(range(at[0], at[0] + 3)):
            return self.table.data[:, at[0] : at[0] + 3]
        return self.table.data[:, at]

    def median_norm(self, columns: tuple[str, str, str] = XYZ) -> float:
        return float(np.median(np.linalg.norm(self.xyz(columns), axis=1))) if len(self.ns) else 0.0


@dataclass(frozen=True)
class _Plan:
    """A series as :meth:`_Source.series` made it from a sheet."""

    kind: SensorKind
    sheet: _Sheet
    columns: tuple[str, str, str]
    unit: str
    where: str
    convention: Convention

    def series(self, ns: np.ndarray, xyz: np.ndarray, whole: float | None = None) -> Series:
        """The series of rows ``ns`` (epoch ns), ``xyz``; ``whole``: the clock's whole seconds
        when these rows are a later block (:func:`_ns_to_s`)."""
        return make_series(
            self.kind,
            _ns_to_s(ns, whole),
            xyz,
            unit=self.unit,
            where=self.where,
            convention=self.convention,
        )

    @property
    def whole_s(self) -> float | None:
        """The whole seconds of the sheet's first stamp, as :func:`_ns_to_s` takes them for the
        whole file (so that its blocks match the whole)."""
        ns = self.sheet.ns
        return float(np.floor(ns[0] / 1e9)) if len(ns) and np.isfinite(ns[0]) else None


class _Source:
    """The sensors of one recording (CSV members of one folder, or JSON groups), parsed when
    first asked for (an unused file costs nothing), and what was used of it."""

    def __init__(
        self,
        names: dict[str, str],
        load: Callable[[str], _Sheet],
        entries: list[tuple[str | None, str]],
        metadata: str | None = None,
    ):
        self.names = names  # lower-case sensor name -> name as written
        self._load = load
        self._cache: dict[str, _Sheet] = {}
        self.entries = entries  # everything the recording holds: (sensor or None, label)
        self.metadata = metadata  # the member Metadata.csv of the same recording
        self.used: set[str] = set()
        self.plans: list[_Plan] = []  # how each series was made, to make it again piece by piece

    def series(
        self,
        kind: SensorKind,
        sheet: _Sheet,
        unit: str,
        columns: tuple[str, str, str] = XYZ,
        where: str | None = None,
        convention: Convention = Convention.ANDROID,
    ) -> Series:
        """One series from a sheet's columns (recorded, so that a stream makes it again)."""
        plan = _Plan(kind, sheet, columns, unit, where or sheet.where, convention)
        self.plans.append(plan)
        if sheet.member is not None:  # a CSV file's rows
            _check_forward(sheet.table, sheet.ns)
        return plan.series(sheet.ns, sheet.xyz(columns))

    def has(self, sensor: str) -> bool:
        return sensor.lower() in self.names

    def get(self, sensor: str) -> _Sheet:
        key = sensor.lower()
        if key not in self._cache:
            self._cache[key] = self._load(self.names[key])
        return self._cache[key]

    def use(self, sensor: str) -> _Sheet:
        self.used.add(sensor.lower())
        return self.get(sensor)

    def unread_rules(self) -> list[str]:
        """What the recording holds that no series came from, in words."""
        unread = [label for key, label in self.entries if key is None or key not in self.used]
        second = [u for u in unread if _is_second_set(PurePosixPath(u.split(" ")[0]).stem)]
        rest = [u for u in unread if u not in second]
        rules = []
        if second:
            rules.append(
                f"not read: {', '.join(second)}: a second set beside the usual files (another "
                "device's or session's, renamed by the user); the un-suffixed set was read"
            )
        if rest:
            rules.append(f"not read ({len(rest)}): {', '.join(rest)}")
        return rules


def _is_second_set(stem: str) -> bool:
    """``Accelerometer2``, ``Gyroscope_2``: a sensor's name with something added (not another
    sensor's name, such as ``AccelerometerUncalibrated``)."""
    return bool(_SUFFIXED.match(stem)) and stem.lower() not in {s.lower() for s in SENSORS}


def detect(container: Container) -> str | None:
    if container.kind == "file" and _looks_like_json(container):
        return "a JSON array of records with sensor, time and seconds_elapsed"
    found = _sensor_members(container)
    if not found:
        return None
    shown = ", ".join(sorted({PurePosixPath(n).name for n in found}))
    return f"{shown} with Sensor Logger's header time,seconds_elapsed,..."


def read(container: Container, options) -> Export:
    if container.kind == "file" and _looks_like_json(container):
        source = _json_source(container, _json_runs(container))
    else:
        source = _csv_source(container)
    return _export(container, options, source)


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The CSV export piece by piece (``gaitedge.formats.open_chunks``): every decision
    :func:`read` makes (files, sign, units) taken on each file's first block, checked by the
    join on those blocks, then each file read block by block and joined as it streams; memory
    is bounded by a few blocks however long the recording; the JSON export likewise, a block of
    each sensor's records at a time. None (read whole) when the opening blocks alone cannot be
    joined (sensors that start far apart)."""
    if container.kind == "file" and _looks_like_json(container):
        runs = _json_runs(container)
        source = _json_source(container, runs, head_only=True)
        pieces = functools.partial(_json_pieces, container, runs)
    else:
        source = _csv_source(container, head_only=True)
        pieces = functools.partial(_pieces, container)
    head = _export(container, options, source)
    streams = [SeriesStream(p.kind, p.where, pieces(p)) for p in source.plans]
    return streamed_export(head, streams, str(container.path), options, HINTS)


def _pieces(container: Container, plan: _Plan) -> Iterator[Series]:
    """A planned series, block by block from its file."""
    sheet, whole = plan.sheet, plan.whole_s
    columns = ["time", *plan.columns]
    before = None  # the previous block's last stamp
    with container.open(sheet.member) as f:
        for table in iter_tables(
            f, container.where(sheet.member), usecols=columns, int_columns=("time",)
        ):
            ns = table.data[:, 0]
            _check_forward(table, ns, before)
            before = float(ns[-1]) if len(ns) else before
            yield plan.series(ns, table.data[:, 1:4], whole)


# A file's `time` may step back by jitter (the join's repair absorbs it), not by more.
MAX_STEP_BACK_S = 0.5


def _check_forward(table: Table, ns: np.ndarray, before: float | None = None) -> None:
    """Refuse a step back in a file's ``time`` (epoch ns) of more than
    :data:`MAX_STEP_BACK_S`, naming its line: one glitched stamp (a row 100 s ahead) read as
    a clock reset cut the joined recording to the stretch before it, silently."""
    why = "a glitched stamp, rows out of order, or two recordings in one file"
    table.check_forward(ns, MAX_STEP_BACK_S, before, unit_s=1e-9, why=why)


def _json_pieces(
    container: Container, runs: dict[str, list[_Run]], plan: _Plan
) -> Iterator[Series]:
    """A planned series of the JSON export, block by block from its sensor's records."""
    sensor, whole = plan.sheet.name, plan.whole_s
    for index, records in _json_blocks(container, runs[sensor]):
        sheet = _json_sheet(index, records, sensor, container.where(container.names[0]))
        yield plan.series(sheet.ns, sheet.xyz(plan.columns), whole)


def _export(container: Container, options, source: _Source) -> Export:
    meta, meta_rules = _metadata(container, source.metadata)
    export = Export(format=NAME, series=[], rules=list(meta_rules))
    device = (options.device or "").lower() or None
    has_phone = any(source.has(s) for s in (*MOTION, *GYROS))
    if device not in (None, "phone", "watch"):
        raise FormatError(
            f"{container.path}: --device {options.device!r}: a Sensor Logger export has the "
            "phone's sensors and WristMotion.csv (the watch): give --device phone or watch"
        )
    if source.has(WATCH) and (device == "watch" or not has_phone):
        _read_watch(source, meta, export)
        if has_phone:
            export.rules.append("the phone's sensor files not read (--device watch)")
    else:
        if device == "watch":
            raise FormatError(f"{container.path}: --device watch, but no WristMotion.csv")
        _read_phone(source, meta, export)
        if source.has(WATCH):
            export.rules.append("WristMotion.csv (the watch) not read; --device watch reads it")
    export.rules.extend(source.unread_rules())
    export.rules.append(
        "clock: `time` (UTC epoch ns) as epoch seconds; `seconds_elapsed` (negative for "
        "samples buffered before Start) not used; columns read by name (files write z,y,x)"
    )
    return export


# --- the phone -----------------------------------------------------------------------------


def _read_phone(source: _Source, meta: dict[str, str], export: Export) -> None:
    convention, why = _convention(source, meta)
    export.rules.append(f"sign: {why}")
    acc = _acceleration(source, convention, export)
    export.series.extend(acc)
    gyro_name = next((g for g in GYROS if source.has(g)), None)
    if gyro_name is not None:
        gyro = source.use(gyro_name)
        export.series.append(source.series(SensorKind.GYRO, gyro, "rad/s"))
        if gyro_name != "Gyroscope":
            export.rules.append(f"rotation rate: {gyro.name} (no calibrated Gyroscope.csv)")
    first = gyro_name or next((s for s in MOTION if source.has(s)), None)
    if first is not None:
        export.start_epoch_s = _start_epoch_s(meta, source.get(first))


def _acceleration(source: _Source, convention: Convention, export: Export) -> list[Series]:
    """Acceleration with gravity, or without gravity plus gravity: TotalAcceleration.csv,
    else Accelerometer.csv + Gravity.csv, else AccelerometerUncalibrated.csv, else
    Accelerometer.csv alone (the join refuses it, naming what to enable)."""
    if source.has("TotalAcceleration"):
        total = source.use("TotalAcceleration")
        export.rules.append(f"acceleration: {total.name} (with gravity)")
        return [source.series(SensorKind.ACC, total, "m/s^2", convention=convention)]
    if source.has("Accelerometer") and source.has("Gravity"):
        linear, gravity = source.use("Accelerometer"), source.use("Gravity")
        return [
            source.series(SensorKind.LINEAR_ACC, linear, "m/s^2", convention=convention),
            source.series(SensorKind.GRAVITY, gravity, "m/s^2", convention=convention),
        ]
    if source.has("AccelerometerUncalibrated"):
        raw = source.use("AccelerometerUncalibrated")
        unit, why = _unit_from_data(raw)
        export.rules.append(
            f"acceleration: {raw.name} (raw, with gravity; no Gravity.csv or "
            f"TotalAcceleration.csv), in {why}"
        )
        return [source.series(SensorKind.ACC, raw, unit, convention=convention)]
    if source.has("Accelerometer"):
        linear = source.use("Accelerometer")
        return [source.series(SensorKind.LINEAR_ACC, linear, "m/s^2", convention=convention)]
    return []


def _unit_from_data(sheet: _Sheet, columns: tuple[str, str, str] = XYZ) -> tuple[str, str]:
    norm = sheet.median_norm(columns)
    if norm < G_OR_M_S2_SPLIT:
        return "g", f"g (median |a| {norm:.2f}; iOS writes g unless standardised)"
    return "m/s^2", f"m/s² (median |a| {norm:.2f})"


def _convention(source: _Source, meta: dict[str, str]) -> tuple[Convention, str]:
    """The sign convention of acceleration and gravity, and why."""
    standardised = meta.get("standardisation", "").strip().lower()
    platform = meta.get("platform", "").strip().lower()
    if standardised == "true":
        return Convention.ANDROID, "Metadata.csv standardisation true: Android's sign, kept"
    if platform == "android":
        return Convention.ANDROID, "Metadata.csv platform android: Android's sign, kept"
    if platform == "ios":
        if standardised == "false":
            why = "standardisation false"
        else:
            why = "no standardisation column (before 1.29: never standardised)"
        return Convention.IOS, f"Metadata.csv platform ios, {why}: iOS sign, acceleration negated"
    return _infer_convention(source)


def _infer_convention(source: _Source) -> tuple[Convention, str]:
    """The sign convention of an export without Metadata.csv, from what it holds.

    Gravity's own sign cannot tell: an iPhone lying screen up reads like an Android phone lying
    screen down. What can: TotalAcceleration.csv (Android only); the unit of the raw
    AccelerometerUncalibrated.csv (g only on iOS unstandardised; m/s² means Android's frame);
    acceleration and rotation-rate stamps shared almost all (CoreMotion's one device-motion
    update) or mostly not (Android's separate sensor events).
    """
    if source.has("TotalAcceleration"):
        return Convention.ANDROID, (
            "no Metadata.csv; platform android inferred (TotalAcceleration.csv: Android only): "
            "Android's sign, kept"
        )
    if source.has("AccelerometerUncalibrated"):
        unit, _ = _unit_from_data(source.get("AccelerometerUncalibrated"))
        if unit == "g":
            return Convention.IOS, (
                "no Metadata.csv; iOS inferred (AccelerometerUncalibrated.csv in g: iOS, not "
                "standardised): iOS sign, acceleration negated"
            )
        return Convention.ANDROID, (
            "no Metadata.csv; AccelerometerUncalibrated.csv in m/s² (Android, or iOS "
            "standardised): Android's sign, kept"
        )
    acc = next((s for s in ("Accelerometer", "Gravity") if source.has(s)), None)
    if acc is not None and source.has("Gyroscope"):
        a, g = source.get(acc), source.get("Gyroscope")
        shared = len(np.intersect1d(a.ns, g.ns)) / max(min(len(a.ns), len(g.ns)), 1)
        step = _raw_steps(g.xyz())
        if shared >= SHARED_STAMPS_IOS and step is not None:
            return Convention.ANDROID, (
                f"no Metadata.csv; android inferred: {g.name}'s values are whole multiples of "
                f"{step:.6g} rad/s (a raw sensor's steps, as Android reports them; CoreMotion's "
                f"are not), although it shares {shared:.0%} of its stamps with {a.name}: "
                "Android's sign, kept"
            )
        if shared >= SHARED_STAMPS_IOS:
            extra = ", Gravity and no TotalAcceleration" if source.has("Gravity") else ""
            return Convention.IOS, (
                f"no Metadata.csv; iOS inferred ({a.name} and {g.name} share {shared:.0%} "
                f"of their stamps: one CoreMotion update{extra}); 'Standardise Units & Frames' "
                "taken as off (the default): iOS sign, acceleration negated"
            )
        return Convention.ANDROID, (
            f"no Metadata.csv; android inferred ({a.name} and {g.name} share {shared:.0%} "
            "of their stamps: separate sensor events): Android's sign, kept"
        )
    return Convention.ANDROID, "no Metadata.csv and nothing to infer the platform from: kept"


def _raw_steps(xyz: np.ndarray, n: int = 2000) -> float | None:
    """The step when (nearly) every nonzero value of the first ``n`` rows is a whole multiple
    of one (a raw sensor's least significant bit times its sensitivity), else None.

    Android delivers the gyroscope's readings as the chip's counts times its sensitivity (a
    public Sensor Logger export, Android by its sensor: every value a multiple of 7.63581e-5
    rad/s, ST's 4.375 mdps); CoreMotion's rotation rate is filtered and bias-corrected (the
    iOS exports in the wild set: 0.1 % of values on any such grid). Calibrated Android
    gyroscopes subtract a bias and fall off the grid too: the test can tell Android, never
    iOS."""
    v = np.abs(xyz[:n].ravel())
    v = v[np.isfinite(v) & (v > 0)]
    if len(v) < 50:
        return None
    for k in (1, 2, 3, 4, 5, 8):  # the smallest value may be several steps
        q = v.min() / k
        r = v / q
        if np.median(r) < 1e5 and np.mean(np.abs(r - np.round(r)) < 1e-4) >= RAW_STEPS_SHARE:
            return float(q)
    return None


# --- the watch -----------------------------------------------------------------------------


def _read_watch(source: _Source, meta: dict[str, str], export: Export) -> None:
    sheet = source.use(WATCH)
    standardised = meta.get("standardisation", "").strip().lower() == "true"
    if standardised:
        convention, why = Convention.ANDROID, "Metadata.csv standardisation true: Android's sign"
    elif meta.get("platform", "").strip().lower() == "android":
        convention, why = Convention.ANDROID, "Metadata.csv platform android (Wear OS): kept"
    else:
        convention, why = (
            Convention.IOS,
            "Apple Watch (CoreMotion), not standardised: iOS sign, acceleration negated",
        )
    unit, unit_why = _unit_from_data(sheet, _WATCH_COLUMNS["gravity"])
    export.rules.append(f"sign: {why}")
    export.rules.append(
        f"gravity and acceleration: {WATCH}.csv in {unit_why.replace('|a|', '|g|')}"
    )
    for kind, cols in (
        (SensorKind.LINEAR_ACC, "linear"),
        (SensorKind.GRAVITY, "gravity"),
        (SensorKind.GYRO, "gyro"),
    ):
        columns = _WATCH_COLUMNS[cols]
        export.series.append(
            source.series(
                kind,
                sheet,
                "rad/s" if kind is SensorKind.GYRO else unit,
                columns,
                where=f"{sheet.where} ({columns[0][:-1]}X..Z)",
                convention=convention,
            )
        )
    export.start_epoch_s = _start_epoch_s(meta, sheet)


# --- containers, files and parsing ---------------------------------------------------------


def _sensor_members(container: Container) -> list[str]:
    """Members named like a Sensor Logger sensor file that start with its header."""
    names = [n for n in container.names if _sensor_of(n) is not None]
    return [n for n in names if _header_ok(container.head(n, 256))]


def _sensor_of(name: str) -> str | None:
    """The sensor a member's name says: ``Gyroscope.csv``, or a name the user put something
    before (``Back0626WristMotion.csv``: the longest sensor name it ends with); None."""
    path = PurePosixPath(name)
    if path.suffix.lower() != ".csv":
        return None
    stem = path.stem.lower()
    ends = [s for s in SENSORS if stem.endswith(s.lower())]
    return max(ends, key=len) if ends else None


def _header_ok(head: str) -> bool:
    return head.lstrip().lower().startswith(HEADER_START)


def _csv_source(container: Container, head_only: bool = False) -> _Source:
    """The CSV members of the export's one recording; ``head_only``: each sheet parsed from its
    file's first block only (the decisions of a streamed read)."""
    members = _sensor_members(container)
    if not members:
        raise FormatError(
            f"{container.path}: no Sensor Logger sensor file (Accelerometer.csv, Gyroscope.csv, "
            "... starting with time,seconds_elapsed)"
        )
    folders = sorted({str(PurePosixPath(n).parent) for n in members})
    if len(folders) > 1:
        raise FormatError(
            f"{container.path}: holds several Sensor Logger recordings ({', '.join(folders)}); "
            "give one of them"
        )
    in_folder = [n for n in container.names if str(PurePosixPath(n).parent) == folders[0]]
    # A sensor's file by its exact name (its header checked when parsed: a file re-saved in
    # another dialect is named then), or by a name with a prefix and Sensor Logger's header.
    exact = {f"{s}.csv".lower() for s in SENSORS}
    files = [n for n in in_folder if PurePosixPath(n).name.lower() in exact]
    files += [n for n in members if n in in_folder and n not in files]
    by_sensor: dict[str, str] = {}
    for n in files:
        key = _sensor_of(n).lower()
        if key in by_sensor:
            both = sorted(PurePosixPath(m).name for m in files if _sensor_of(m).lower() == key)
            shown = ", ".join(both[:4]) + (f", ... ({len(both)} files)" if len(both) > 4 else "")
            raise FormatError(
                f"{container.path}: holds several {_sensor_of(n)} files ({shown}): several "
                "recordings, renamed; give one recording's files (a folder or zip of its own, "
                "or its one CSV)"
            )
        by_sensor[key] = n
    empty = [n for n in in_folder if not container.head(n, 16)]
    names = {
        s.lower(): s
        for s in SENSORS
        if s.lower() in by_sensor and by_sensor[s.lower()] not in empty
    }
    metadata = next((n for n in in_folder if PurePosixPath(n).name.lower() == "metadata.csv"), None)
    sensor_of = {n: k for k, n in by_sensor.items() if n not in empty}
    entries = [
        (sensor_of.get(n), PurePosixPath(n).name + (" (0 bytes)" if n in empty else ""))
        for n in sorted(in_folder, key=lambda n: PurePosixPath(n).name)
        if n != metadata
    ]

    def load(sensor: str) -> _Sheet:
        return _parse_csv(container, by_sensor[sensor.lower()], sensor, head_only)

    return _Source(names, load, entries, metadata)


def _parse_csv(container: Container, member: str, sensor: str, head_only: bool = False) -> _Sheet:
    """One sensor file: the header checked (every file of an export is in the app's one
    dialect: a file in another was re-saved by something else), values by name, time exact."""
    where = container.where(member)
    # A folder's file is parsed from disk by polars; a zip member is inflated into memory (a
    # streamed read's first block only: never the rest of the member).
    local = container.local_path(member)
    if head_only:
        source = data = container.read_head(member, tables.BLOCK_BYTES)
    elif local is not None:
        source = local
        with local.open("rb") as f:
            data = f.read(tables.HEAD_BYTES)  # the header and the first row
    else:
        source = data = container.read_bytes(member)
    header_line = data[: data.find(b"\n")].decode("utf-8-sig", errors="replace").strip()
    if not _header_ok(header_line):
        raise FormatError(
            f"{where}:1: header {header_line[:80]!r} is not Sensor Logger's "
            "time,seconds_elapsed,... as the export's other files are (mixed dialects: re-saved "
            "by a spreadsheet?); export the recording again"
        )
    columns = [c for cols in _WATCH_COLUMNS.values() for c in cols] if sensor == WATCH else XYZ
    # seconds_elapsed is not parsed (a fifth of the work): only its first value is wanted.
    table = parse_table(source, where, usecols=["time", *columns], int_columns=("time",))
    ns = table.data[:, 0]
    return _Sheet(PurePosixPath(member).name, where, ns, table, _first_elapsed(data), member)


def _first_elapsed(data: bytes) -> float | None:
    """``seconds_elapsed`` of the first row (the second cell of line 2), or None."""
    start = data.find(b"\n") + 1
    end = data.find(b"\n", start)
    try:
        return float(data[start : end if end >= 0 else len(data)].split(b",")[1])
    except (IndexError, ValueError):
        return None


def _ns_to_s(ns: np.ndarray, whole: float | None = None) -> np.ndarray:
    """Epoch ns to epoch seconds within half a float64 step (1.2e-7 s in 2024).

    The app is JavaScript: ``time`` is a float64 printed with its shortest round-trip digits
    padded with zeros (hence the ``...00`` endings), so parsing it as float64 gets the app's
    number back exactly. The whole seconds of the first stamp are taken out exactly (a
    multiple of 1e9 ns is one of the 256 ns step at 1e18, and the difference is exact) before
    the one rounding; ``ns / 1e9`` would round twice. ``whole``: those whole seconds when
    ``ns`` is a later block of a file (its first stamp's, so that blocks match the whole).
    """
    ns = np.asarray(ns, dtype=np.float64)
    if whole is None and (not len(ns) or not np.isfinite(ns[0])):
        return ns * 1e-9
    whole = np.floor(ns[0] / 1e9) if whole is None else whole
    out = ns - whole * 1e9  # the same three steps, in place after the first
    out *= 1e-9
    out += whole
    return out


def _metadata(container: Container, member: str | None) -> tuple[dict[str, str], list[str]]:
    """``Metadata.csv`` (a header and one row; often no final newline) as lower-case keys."""
    if member is None:
        return {}, []
    rows = [r for r in csv.reader(io.StringIO(container.read_text(member))) if r]
    if len(rows) < 2:
        return {}, [f"{container.where(member)}: no values row; ignored"]
    meta = {k.strip().lower(): v.strip() for k, v in zip(rows[0], rows[1], strict=False)}
    facts = [f"{k} {meta[k]}" for k in ("platform", "appversion", "device name") if k in meta]
    return meta, [f"Metadata.csv: {', '.join(facts)}"] if facts else []


def _start_epoch_s(meta: dict[str, str], sheet: _Sheet) -> float | None:
    """The Start tap: Metadata.csv's ``recording epoch time`` (ms), else a row's ``time`` less
    its ``seconds_elapsed``."""
    try:
        return float(meta["recording epoch time"]) / 1e3
    except (KeyError, ValueError):
        pass
    if not len(sheet.ns) or sheet.first_elapsed_s is None:
        return None
    return float(sheet.t_s[0] - sheet.first_elapsed_s)


# --- JSON ----------------------------------------------------------------------------------

# A record's sensor (the scan that finds each sensor's run of records without decoding them).
_SENSOR_KEY = re.compile(rb'"sensor"\s*:\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class _Run:
    """Consecutive records of one sensor in the JSON array: from the ``{`` of its first
    (byte ``start``, the file's 0-based line ``line``, the array's record ``index``) to the
    next run's first (``stop``; None: the end of the file, the array's ``]``)."""

    sensor: str
    start: int
    line: int
    index: int
    count: int = 0
    stop: int | None = None


def _looks_like_json(container: Container) -> bool:
    head = container.head(container.names[0], 2048).lstrip()
    return head.startswith("[") and '"sensor"' in head and '"seconds_elapsed"' in head


def _json_runs(container: Container) -> dict[str, list[_Run]]:
    """Each sensor's runs of records, in order, from one pass over the bytes (no record
    decoded: a run's records are counted by their ``"sensor"`` keys, and the next run found by
    the first record of another sensor)."""
    name = container.names[0]
    runs: list[_Run] = []
    token, back = b'"sensor"', 256  # back: bytes kept before `done` (a record's "{" is there)
    pos, line, buffer, done, raw = 0, 0, b"", 0, None  # pos, line: of buffer[0]
    with container.open(name) as f:
        while True:
            more = tables.read_full(f, tables.BLOCK_BYTES)
            buffer += more
            safe = max(0, len(buffer) - 1024) if more else len(buffer)  # a match may go past
            while True:
                m = (_SENSOR_KEY if raw is None else _other_sensor(raw)).search(buffer, done)
                whole = m is not None and m.end() <= safe
                # The run's records before the next run, or before `safe` (a key cut there is
                # counted in the next round).
                end = m.start() if m is not None else safe
                if runs:
                    runs[-1].count += buffer.count(token, done, end)
                    done = end if m is not None else max(done, safe - len(token) + 1)
                if not whole:
                    break
                start = buffer.rfind(b"{", 0, m.start())
                if start < 0:
                    raise FormatError(
                        f"{container.where(name)}: not valid JSON near byte "
                        f"{pos + m.start()}: a sensor outside a record"
                    )
                index = runs[-1].index + runs[-1].count if runs else 0
                if runs:
                    runs[-1].stop = pos + start
                at_line = line + buffer.count(b"\n", 0, start)
                raw = m.group(1)
                runs.append(_Run(_json_string(raw), pos + start, at_line, index, count=1))
                done = m.end()
            if not more:
                by_sensor: dict[str, list[_Run]] = {}
                for run in runs:
                    by_sensor.setdefault(run.sensor, []).append(run)
                return by_sensor
            keep = max(0, done - back)
            line += buffer.count(b"\n", 0, keep)
            pos, buffer, done = pos + keep, buffer[keep:], done - keep


@functools.lru_cache(maxsize=64)
def _other_sensor(raw: bytes) -> re.Pattern:
    """A record's sensor key with a sensor other than ``raw``."""
    return re.compile(rb'"sensor"\s*:\s*"(?!' + re.escape(raw) + rb'")((?:[^"\\]|\\.)*)"')


def _json_string(raw: bytes) -> str:
    try:
        return str(json.loads(b'"' + raw + b'"'))
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _json_records(
    stream: IO[bytes], where: str, run: _Run, block_bytes: int | None = None
) -> Iterator[tuple[int, list[dict]]]:
    """A run's records, block by block (each block's whole records decoded by ``json`` in one
    call), as (the array's index of the first, records); a stream positioned at the run's
    start.

    The run ends with the next run's leading comma, or with the array's ``]`` (the last run);
    anything else there, or a block that is not valid JSON, is refused naming the line."""
    block_bytes = block_bytes or tables.BLOCK_BYTES // 4  # decoded records weigh ~5x their text
    left = None if run.stop is None else run.stop - run.start
    closing = b"]" if run.stop is None else b","
    buffer, line, index, first = b"", run.line, run.index, True
    while True:
        n = block_bytes if left is None else min(block_bytes, left)
        more = tables.read_full(stream, n) if n > 0 else b""
        if left is not None:
            left -= len(more)
        buffer += more
        if more:
            cut = buffer.rfind(b"}") + 1  # records are flat: every } ends one
            if cut == 0:
                continue
            segment, buffer = buffer[:cut], buffer[cut:]
        else:
            segment, buffer = buffer, b""
        body = segment.lstrip()
        at = line + segment[: len(segment) - len(body)].count(b"\n")  # lines before body
        body = body.rstrip()
        if not more:  # the run's end: its closing comma, or the array's ]
            if not body.endswith(closing):
                found = body[-20:].decode("utf-8", errors="replace")
                end = at + body.count(b"\n") + 1
                raise FormatError(
                    f"{where}:{end}: not valid JSON: expected "
                    f"{closing.decode()!r} after the last record, found {found!r} (a truncated "
                    "export?)"
                )
            body = body[: -len(closing)].rstrip()
        if not first and body:
            if not body.startswith(b","):
                raise FormatError(f"{where}:{at + 1}: not valid JSON: Expecting ',' delimiter")
            body = b" " + body[1:]
        records = _json_loads(b"[" + body + b"]", where, at) if body else []
        try:
            sensors = {str(rec["sensor"]) for rec in records}
        except (TypeError, KeyError, IndexError):
            sensors = set()
        if records and sensors != {run.sensor}:
            k = next(k for k, r in enumerate(records) if _json_sensor(r) != run.sensor)
            raise FormatError(f"{where}: record {index + k + 1} has no sensor")
        if records:
            yield index, records
        index, line, first = index + len(records), line + segment.count(b"\n"), False
        if not more:
            return


def _json_loads(data: bytes, where: str, line: int) -> list:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{where}:{line + exc.lineno}: not valid JSON: {exc.msg}") from exc
    except UnicodeDecodeError as exc:  # json.loads decodes bytes itself
        at = line + data[: exc.start].count(b"\n") + 1
        raise FormatError(
            f"{where}:{at}: not UTF-8 text (byte {data[exc.start]:#04x}); is this the file the "
            "app exported?"
        ) from exc


def _json_sensor(record: object) -> str | None:
    value = record.get("sensor") if isinstance(record, dict) else None
    return None if value is None else str(value)


def _json_blocks(
    container: Container, runs: list[_Run], head_only: bool = False
) -> Iterator[tuple[int, list[dict]]]:
    """The records of a sensor's runs in order, block by block (``head_only``: its first
    block only)."""
    name = container.names[0]
    where = container.where(name)
    for run in runs:
        with container.open(name) as f:
            f.seek(run.start)
            for block in _json_records(f, where, run):
                yield block
                if head_only:
                    return


def _json_source(
    container: Container, by_sensor: dict[str, list[_Run]], head_only: bool = False
) -> _Source:
    """The JSON export: one array of records, every value a string, grouped by ``sensor``
    (read sensor by sensor from its runs, :func:`_json_runs`, a block of records at a time:
    never the whole array as objects; ``head_only``: each sensor's first block, the decisions
    of a streamed read)."""
    where = container.where(container.names[0])
    if not by_sensor:
        raise FormatError(f"{where}: expected a JSON array of records with a sensor each")
    wanted = {s.lower(): s for s in SENSORS}
    names = {k.lower(): k for k in by_sensor if k.lower() in wanted}
    entries = [
        (k.lower() if k.lower() in wanted else None, f"{k} ({sum(r.count for r in v)} records)")
        for k, v in by_sensor.items()
    ]

    def load(sensor: str) -> _Sheet:
        blocks = _json_blocks(container, by_sensor[sensor], head_only)
        sheets = [_json_sheet(index, records, sensor, where) for index, records in blocks]
        return _joined_sheets(sheets)

    return _Source(names, load, entries)


def _joined_sheets(sheets: list[_Sheet]) -> _Sheet:
    """A sensor's sheets of consecutive blocks as one (they share its keys)."""
    first = sheets[0]
    if len(sheets) == 1:
        return first
    for sheet in sheets[1:]:
        if sheet.table.header != first.table.header:
            raise FormatError(
                f"{sheet.where}: records with keys {sheet.table.header}, earlier ones "
                f"{first.table.header}"
            )
    data = np.concatenate([s.table.data for s in sheets])
    table = Table(first.table.header, data, first.where, 1, ",", ".")
    ns = np.concatenate([s.ns for s in sheets])
    return _Sheet(first.name, first.where, ns, table, first.first_elapsed_s)


def _json_sheet(index: int, records: list[dict], sensor: str, where: str) -> _Sheet:
    """One sensor's records (the array's ``index`` of the first): numpy parses each key's
    strings in one call; a record it refuses is found and named."""
    first = records[0]
    at = f"{where} ({sensor})"
    wanted = [c for cols in _WATCH_COLUMNS.values() for c in cols] if sensor == WATCH else XYZ
    missing = [c for c in ("time", *wanted) if c not in first]
    if missing:
        raise FormatError(f"{at}: no key {', '.join(missing)} (keys: {', '.join(first)})")
    header = [*wanted, *(["seconds_elapsed"] if "seconds_elapsed" in first else [])]
    columns = []
    for key in ["time", *header]:
        try:
            columns.append(np.array([rec[key] for rec in records], dtype=np.float64))
        except (KeyError, ValueError, TypeError) as exc:
            k = next(k for k, rec in enumerate(records) if not _is_number(rec.get(key)))
            raise FormatError(f"{where}: record {index + k + 1} ({sensor}): {key}: {exc}") from exc
    ns, data = columns[0], np.stack(columns[1:], axis=1)  # [N], [N, len(header)]
    table = Table(header, data, at, 1, ",", ".")
    elapsed = float(data[0, -1]) if header[-1] == "seconds_elapsed" else None
    return _Sheet(sensor, at, ns, table, elapsed)


def _is_number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True
