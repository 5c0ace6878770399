"""SensorLog (Bernd Thomas; iOS and watchOS): one wide CSV, one row per logging tick.

The column names carry their units (vendor-formats.md §A5): ``loggingTime(txt)``,
``accelerometerTimestamp_sinceReboot(s)``, ``accelerometerAccelerationX(G)`` (raw, with gravity),
``gyroTimestamp_sinceReboot(s)``, ``gyroRotationX(rad/s)``, ``motionTimestamp_sinceReboot(s)``,
``motionUserAccelerationX(G)`` (without gravity), ``motionGravityX(G)``,
``motionRotationRateX(rad/s)``, text columns such as ``identifierForVendor(txt)`` and
``motionAttitudeReferenceFrame(txt)``; which columns and in what order depends on what was
enabled. Older exports have no units in the names (the wild set ``sensorlog_ios-steady-unitless``:
``loggingTime`` is then epoch seconds as a number): the documented units apply (G, rad/s).

* Acceleration: the raw accelerometer (with gravity) when logged, else CoreMotion's user
  acceleration plus its gravity. Rotation rate: the raw gyroscope (``gyroRotation``) when logged,
  else ``motionRotationRate``. Columns are read by name; only these (and their clocks) are parsed.
* Each sensor on its own ``*Timestamp_sinceReboot(s)`` clock (CoreMotion uptime) when every chosen
  sensor has one, else all on ``loggingTime``. A tick that repeats a sensor's previous sample (same
  stamp, same values) is that sample again, not a new one: left out and counted.
* CoreMotion signs acceleration and gravity the other way round from Android (-1 G on z lying
  flat, screen up): negated; the gyroscope keeps its sign.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath

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
from gaitedge.formats.join import Convention, SeriesStream, make_series, streamed_export
from gaitedge.formats.table import (
    iter_tables,
    parse_table,
    sniff_delimiter,
    split_header,
    step_back,
)

NAME = "sensorlog"
TITLE = "SensorLog (iOS, watchOS) wide CSV"
NEEDS = (
    "one CSV with accelerometerAcceleration* (or motionUserAcceleration* + motionGravity*) and "
    "gyroRotation* (or motionRotationRate*) columns, with or without units in the names"
)
HINTS = {
    SensorKind.GYRO: "in SensorLog, enable the gyroscope (or Device Motion) and log again",
    SensorKind.ACC: "in SensorLog, enable the accelerometer (or Device Motion) and log again",
    SensorKind.GRAVITY: "in SensorLog, log Device Motion (its gravity) or the accelerometer",
}

_CELL = re.compile(r"^(?P<name>[^()]+?)\s*(?:\((?P<unit>[^()]*)\))?$")
_DOCUMENTED_UNIT = {"acc": "G", "gyro": "rad/s"}


@dataclass(frozen=True)
class _Source:
    """One sensor as SensorLog logs it: three axis columns and the clock they are stamped on."""

    kind: SensorKind
    stem: str  # column names without the axis letter
    clock: str
    unit_kind: str  # "acc" or "gyro"
    said: str


_ACC_RAW = _Source(
    SensorKind.ACC,
    "accelerometerAcceleration",
    "accelerometerTimestamp_sinceReboot",
    "acc",
    "the raw accelerometer (accelerometerAcceleration*, with gravity)",
)
_USER_ACC = _Source(
    SensorKind.LINEAR_ACC,
    "motionUserAcceleration",
    "motionTimestamp_sinceReboot",
    "acc",
    "Device Motion's user acceleration (motionUserAcceleration*, without gravity)",
)
_GRAVITY = _Source(
    SensorKind.GRAVITY, "motionGravity", "motionTimestamp_sinceReboot", "acc", "motionGravity*"
)
_GYRO_RAW = _Source(
    SensorKind.GYRO,
    "gyroRotation",
    "gyroTimestamp_sinceReboot",
    "gyro",
    "the raw gyroscope (gyroRotation*)",
)
_ROTATION = _Source(
    SensorKind.GYRO,
    "motionRotationRate",
    "motionTimestamp_sinceReboot",
    "gyro",
    "Device Motion's rotation rate (motionRotationRate*, bias-corrected)",
)


def _columns(header: list[str]) -> dict[str, tuple[str, str | None]]:
    """name -> (the header cell as written, its unit or None)."""
    out = {}
    for cell in header:
        m = _CELL.match(cell)
        if m:
            out[m.group("name")] = (cell, m.group("unit"))
    return out


def _is_sensorlog(first_line: str) -> bool:
    names = _columns(split_header(first_line, sniff_delimiter(first_line)))
    return "loggingTime" in names and any(
        f"{s.stem}X" in names for s in (_ACC_RAW, _USER_ACC, _GYRO_RAW, _ROTATION)
    )


def _candidates(container: Container) -> list[str]:
    out = []
    for name in container.names:
        head = container.head(name, 8192).splitlines()
        if head and _is_sensorlog(head[0]):
            out.append(name)
    return out


def detect(container: Container) -> str | None:
    found = _candidates(container)
    if found:
        return f"SensorLog header (loggingTime, ...) in {PurePosixPath(found[0]).name}"
    return None


def _has(cols: dict, source: _Source) -> bool:
    return all(f"{source.stem}{a}" in cols for a in "XYZ")


def _choose(cols: dict) -> list[_Source]:
    chosen = []
    if _has(cols, _ACC_RAW):
        chosen.append(_ACC_RAW)
    elif _has(cols, _USER_ACC) and _has(cols, _GRAVITY):
        chosen += [_USER_ACC, _GRAVITY]
    elif _has(cols, _USER_ACC):
        chosen.append(_USER_ACC)  # refused by the join: no gravity to add back
    if _has(cols, _GYRO_RAW):
        chosen.append(_GYRO_RAW)
    elif _has(cols, _ROTATION):
        chosen.append(_ROTATION)
    return chosen


def _logging_time(text: str, delimiter: str, cell: str, where: str) -> np.ndarray:
    """``loggingTime(txt)`` (``2017-06-23 15:42:42.144 +0200``) as epoch seconds, row by row."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader)
    i = [h.strip() for h in header].index(cell)
    out = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        out.append(_parse_date(row[i] if i < len(row) else "", f"{where}:{line}"))
    return np.array(out)


def _parse_date(text: str, where: str) -> float:
    for fmt in ("%Y-%m-%d %H:%M:%S.%f %z", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(text.strip(), fmt).timestamp()
        except ValueError:
            continue
    raise FormatError(f"{where}: loggingTime {text!r} is not a date SensorLog writes")


def _first_row(text: str, delimiter: str, cell: str) -> str:
    lines = text.splitlines()
    if len(lines) < 2:
        return ""
    header = split_header(lines[0], delimiter)
    row = next(csv.reader([lines[1]], delimiter=delimiter), [])
    i = header.index(cell)
    return row[i].strip() if i < len(row) else ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Plan:
    """How :func:`_read` read the file: what a stream reads again, block by block."""

    name: str
    delimiter: str
    cols: dict[str, tuple[str, str | None]]
    chosen: list[_Source]
    wanted: list[str]
    own_clocks: bool
    logging_cell: str


def read(container: Container, options) -> Export:
    return _read(container)[0]


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The CSV block by block (memory bounded by a few blocks), every decision taken as
    :func:`read` takes it, on the file's first block."""
    head, plan = _read(container, head_only=True)
    where = container.where(plan.name)
    streams = [
        SeriesStream(s.kind, f"{where} ({s.stem}*)", _pieces(container, plan, s))
        for s in plan.chosen
    ]
    return streamed_export(head, streams, str(container.path), options, HINTS)


def _read(container: Container, head_only: bool = False) -> tuple[Export, _Plan]:
    found = _candidates(container)
    if not found:
        raise FormatError(f"{container.path}: no SensorLog CSV (loggingTime, ... header)")
    if len(found) > 1:
        raise FormatError(
            f"{container.path}: {len(found)} SensorLog files ({', '.join(found)}); give one of them"
        )
    name = found[0]
    where = container.where(name)
    text = (
        container.read_head_text(name, tables.BLOCK_BYTES)
        if head_only
        else container.read_text(name)
    )
    first = text.split("\n", 1)[0]
    delimiter = sniff_delimiter(first)
    cols = _columns(split_header(first, delimiter))
    chosen = _choose(cols)
    with_units = any(unit for _, unit in cols.values())
    rules = [f"SensorLog export {'with' if with_units else 'without'} units in the column names"]
    own_clocks = all(s.clock in cols for s in chosen)
    logging_cell = cols["loggingTime"][0]
    first_logging = _first_row(text, delimiter, logging_cell)
    logging_is_text = not _is_number(first_logging)  # loggingTime(txt), or a date without unit
    wanted = [cols[f"{s.stem}{a}"][0] for s in chosen for a in "XYZ"]
    if own_clocks:
        wanted += [cols[s.clock][0] for s in chosen]
    if not logging_is_text:
        wanted.append(logging_cell)
    wanted = list(dict.fromkeys(wanted))
    plan = _Plan(name, delimiter, cols, chosen, wanted, own_clocks, logging_cell)
    table = parse_table(text, where, delimiter=delimiter, usecols=wanted)
    at = {c: i for i, c in enumerate(wanted)}
    if logging_is_text:
        logging = None if own_clocks else _logging_time(text, delimiter, logging_cell, where)
        start_epoch = _parse_date(first_logging, f"{where}:2") if first_logging else None
    else:
        logging = table.data[:, at[logging_cell]]
        start_epoch = float(logging[0]) if len(logging) else None
    if own_clocks:
        rules.append("time: each sensor's own *Timestamp_sinceReboot clock (CoreMotion uptime)")
    else:
        rules.append("time: loggingTime for every sensor (one has no *Timestamp_sinceReboot)")
    export = Export(format=NAME, series=[], rules=rules, start_epoch_s=start_epoch)
    for source in chosen:
        t = table.data[:, at[cols[source.clock][0]]] if own_clocks else logging
        export.series.append(_series(source, cols, table, at, t, where, own_clocks, rules))
    if any(s.kind is not SensorKind.GYRO for s in chosen):
        rules.append(
            "sign: CoreMotion reads -1 G on z lying flat, screen up; acceleration and gravity "
            "negated to Android's convention, rotation rate unchanged"
        )
    return export, plan


def _unit(source: _Source, cols: dict, where: str, rules: list[str]) -> str:
    """The unit of a sensor's three columns (the documented one when the names carry none)."""
    units = {cols[f"{source.stem}{a}"][1] for a in "XYZ"}
    if len(units) > 1:
        raise FormatError(f"{where}: {source.stem}X..Z have different units: {units}")
    unit = units.pop()
    if unit is None:
        unit = _DOCUMENTED_UNIT[source.unit_kind]
        rules.append(f"{source.stem}*: no unit in the names; SensorLog's documented {unit}")
    return unit


def _text_clock(container: Container, plan: _Plan, where: str) -> Iterator[float]:
    """``loggingTime(txt)`` row by row as :func:`_logging_time` reads it, as the file streams
    (beside the numbers' blocks: one date per row they hold)."""
    with container.open(plan.name) as f:
        text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=plan.delimiter)
        header = next(reader)
        i = [h.strip() for h in header].index(plan.logging_cell)
        for line, row in enumerate(reader, start=2):
            if row:
                yield _parse_date(row[i] if i < len(row) else "", f"{where}:{line}")


def _refuse_step_back(
    t: np.ndarray,
    table,
    rows: np.ndarray,
    where: str,
    source: _Source,
    before: float | None = None,
) -> None:
    """Refuse a sensor's step back of more than 0.5 s (rows out of order, or two logs in one
    file), naming its line (``rows``: each stamp's row of ``table``; ``before``: the previous
    block's last stamp)."""
    found = step_back(t, 0.5, before)
    if found is not None:
        i, previous = found
        raise FormatError(
            f"{where}:{table.line_of(int(rows[i]))}: {source.stem}* time goes back "
            f"{previous - t[i]:.3f} s (rows out of order, or two logs in one file)"
        )


def _pieces(container: Container, plan: _Plan, source: _Source) -> Iterator[Series]:
    """One sensor block by block, as :func:`_series` makes it of the whole file: rows without
    a value left out, a step back refused (its line named), a repeated tick left out (compared
    across the blocks' edges too)."""
    where = container.where(plan.name)
    unit = _unit(source, plan.cols, where, [])
    at = {c: i for i, c in enumerate(plan.wanted)}
    clock = plan.cols[source.clock][0] if plan.own_clocks else plan.logging_cell
    axes = [at[plan.cols[f"{source.stem}{a}"][0]] for a in "XYZ"]
    last_t, last_x = None, None
    dates = None if clock in at else _text_clock(container, plan, where)
    with container.open(plan.name) as f:
        for table in iter_tables(f, where, delimiter=plan.delimiter, usecols=plan.wanted):
            n = len(table.data)
            t = table.data[:, at[clock]] if dates is None else np.fromiter(dates, float, n)
            xyz = table.data[:, axes]
            keep = np.isfinite(xyz).all(axis=1) & np.isfinite(t)
            rows = np.flatnonzero(keep)
            t, xyz = t[keep], xyz[keep]
            if not len(t):
                continue
            _refuse_step_back(t, table, rows, where, source, last_t)
            with_last = last_t is not None
            tt = np.concatenate([[last_t], t]) if with_last else t
            if plan.own_clocks:
                xx = np.concatenate([last_x[None], xyz]) if with_last else xyz
                again = (np.diff(tt) == 0) & (np.diff(xx, axis=0) == 0).all(axis=1)
                again = again if with_last else np.concatenate([[False], again])
                last_t, last_x = t[-1], xyz[-1]
                t, xyz = t[~again], xyz[~again]
            else:
                last_t = t[-1]
            yield make_series(
                source.kind,
                t,
                xyz,
                unit=unit,
                where=f"{where} ({source.stem}*)",
                convention=Convention.IOS,
            )
    if dates is not None:
        dates.close()


def _series(source, cols, table, at, t, where, own_clock, rules):
    """One chosen sensor, its empty ticks and repeated samples left out (and counted)."""
    cells = [cols[f"{source.stem}{a}"] for a in "XYZ"]
    unit = _unit(source, cols, where, rules)
    xyz = table.data[:, [at[c] for c, _ in cells]]
    keep = np.isfinite(xyz).all(axis=1) & np.isfinite(t)
    if (~keep).any():
        rules.append(f"{source.stem}*: {int((~keep).sum())} rows without a value left out")
    rows = np.flatnonzero(keep)
    t, xyz = t[keep], xyz[keep]
    _refuse_step_back(t, table, rows, where, source)
    if own_clock and len(t) > 1:
        again = np.concatenate(
            [[False], (np.diff(t) == 0) & (np.diff(xyz, axis=0) == 0).all(axis=1)]
        )
        if again.any():
            rules.append(
                f"{source.stem}*: {int(again.sum())} ticks repeat the sample before "
                "(logged faster than the sensor): left out"
            )
        t, xyz = t[~again], xyz[~again]
    rules.append(f"{source.kind.value}: {source.said}, {unit}")
    # CoreMotion's sign on acceleration and gravity; make_series never negates a gyroscope.
    return make_series(
        source.kind, t, xyz, unit=unit, where=f"{where} ({source.stem}*)", convention=Convention.IOS
    )
