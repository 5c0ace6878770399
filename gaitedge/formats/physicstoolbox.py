"""Physics Toolbox Sensor Suite (Vieyra Software; Android, iOS): the CSV its Multi Record tool
writes, and the single-sensor tools' files (vendor-formats.md §A3: no vendor source; the facts
come from users' exports and third-party readers)::

    time,gFx,gFy,gFz,ax,ay,az,wx,wy,wz,...
    0.078756,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,...
    0.123827,-0.0488,0.3217,1.0039,0.0000,0.0000,0.0000,0.0000,0.0000,0.0000,...

* Multi Record writes one wide row each time a sensor reports; every other sensor's columns
  hold its last value, and ``0.0000`` on all three axes before its first. So, per sensor, the
  rows before its first report are left out, and so is a row that repeats its previous values
  exactly (the held sample, not a new one): counted in the rules.
* ``gFx..gFz``: the g-force meter, acceleration with gravity in g, Android's sign (lying flat,
  screen up: gFz +1; the first rows above). ``wx..wz``: the gyroscope in rad/s. ``ax..az``:
  linear acceleration (m/s², without gravity), which cannot give the model what it was trained
  on with no gravity beside it: refused, naming the g-force meter. Columns are read by name;
  the others (pressure, magnetometer, Azimuth, Latitude, ...) are not parsed.
* ``time``: seconds from the start of the recording. (iOS builds write the local date and time
  instead, ``2018-10-03 17:23:55.4640``, with CoreMotion's sign left undocumented: refused with a
  layout to use, rather than read with a sign guessed.)
* Dialects: comma or semicolon, decimal point or comma (a European locale), a delimiter ending
  every line, a blank first line.
* The single-sensor tools (``time,gFx,gFy,gFz,TgF``, ``time,wx,wy,wz``, ``time,ax,ay,az,atotal``)
  record one sensor at a time: two such files are two recordings, never joined into one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
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
from gaitedge.formats.join import SeriesStream, make_series, streamed_export
from gaitedge.formats.table import (
    iter_tables,
    parse_table,
    sniff_delimiter,
    split_header,
)

NAME = "physicstoolbox"
TITLE = "Physics Toolbox Sensor Suite (Vieyra; Android): Multi Record CSV"
NEEDS = (
    "one Multi Record CSV with time (s), the g-force meter (gFx,gFy,gFz: g, with gravity) and "
    "the gyroscope (wx,wy,wz: rad/s), in any of its dialects"
)
HINTS = {
    SensorKind.GYRO: "in Physics Toolbox, tick the gyroscope in Multi Record beside the g-Force "
    "Meter and record again",
    SensorKind.ACC: "in Physics Toolbox, tick the g-Force Meter in Multi Record beside the "
    "gyroscope and record again",
    SensorKind.GRAVITY: "in Physics Toolbox, tick the g-Force Meter (gFx..gFz, with gravity) in "
    "Multi Record instead of the linear accelerometer and record again",
}


@dataclass(frozen=True)
class _Sensor:
    kind: SensorKind
    columns: tuple[str, str, str]
    unit: str
    said: str


_GFORCE = _Sensor(SensorKind.ACC, ("gFx", "gFy", "gFz"), "g", "the g-force meter (gFx..gFz)")
_LINEAR = _Sensor(
    SensorKind.LINEAR_ACC, ("ax", "ay", "az"), "m/s^2", "the linear accelerometer (ax..az)"
)
_GYRO = _Sensor(SensorKind.GYRO, ("wx", "wy", "wz"), "rad/s", "the gyroscope (wx..wz)")
# Marks of the single-sensor tools' files beside the axes (the total of the three).
_TOTALS = ("tgf", "gftotal", "atotal")


@dataclass(frozen=True)
class _File:
    """One Physics Toolbox file as its head shows it."""

    name: str
    header_line: int  # 0, or 1 after a blank first line
    delimiter: str
    header: list[str]
    sensors: list[_Sensor]

    @property
    def multi(self) -> bool:
        """Written by Multi Record (several sensors on each row, held between reports): any
        column beyond the time, the axes read and a single tool's total."""
        own = {self.header[0], *(c for s in self.sensors for c in s.columns)}
        return any(h not in own and h.lower() not in _TOTALS for h in self.header)

    def wanted(self) -> list[str]:
        return [self.header[0]] + [c for s in self.sensors for c in s.columns]


def _has(low: list[str], sensor: _Sensor) -> bool:
    return all(c.lower() in low for c in sensor.columns)


def _look(container: Container, name: str) -> _File | None:
    lines = container.head(name, 4096).splitlines()
    at = next((i for i, line in enumerate(lines[:2]) if line.strip()), None)
    if at is None:
        return None
    delimiter = sniff_delimiter(lines[at])
    header = split_header(lines[at], delimiter)
    low = [h.lower() for h in header]
    if not low or low[0] != "time":
        return None
    if not (_has(low, _GFORCE) or _has(low, _GYRO) or (_has(low, _LINEAR) and "atotal" in low)):
        return None
    acc = _GFORCE if _has(low, _GFORCE) else _LINEAR if _has(low, _LINEAR) else None
    sensors = [s for s in (acc, _GYRO if _has(low, _GYRO) else None) if s is not None]
    # Read by name: the header as written, in the order of each sensor's columns.
    byname = {h.lower(): h for h in header}
    sensors = [
        _Sensor(s.kind, tuple(byname[c.lower()] for c in s.columns), s.unit, s.said)
        for s in sensors
    ]
    return _File(name, at, delimiter, header, sensors)


def _files(container: Container) -> list[_File]:
    return [f for n in container.names if (f := _look(container, n)) is not None]


def detect(container: Container) -> str | None:
    found = _files(container)
    if found:
        f = found[0]
        kind = "Multi Record" if f.multi else "single-sensor"
        name = PurePosixPath(f.name).name
        return f"Physics Toolbox {kind} header (time, {f.header[1]}, ...) in {name}"
    return None


def _one(container: Container) -> _File:
    found = _files(container)
    if not found:
        raise FormatError(f"{container.path}: no Physics Toolbox CSV (time,gFx,.. or time,wx,..)")
    if len(found) > 1:
        names = ", ".join(PurePosixPath(f.name).name for f in found)
        raise FormatError(
            f"{container.path}: {len(found)} Physics Toolbox files ({names}); each is a recording "
            "of its own (the single-sensor tools record one sensor at a time): give one, or "
            "record the g-Force Meter and the gyroscope together with Multi Record"
        )
    return found[0]


def read(container: Container, options) -> Export:
    return _read(container)[0]


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The CSV block by block (memory bounded by a few blocks), every row left out as
    :func:`read` leaves it out, across the blocks' edges too."""
    head, f = _read(container, head_only=True)
    where = container.where(f.name)
    streams = [
        SeriesStream(s.kind, f"{where} ({s.columns[0]}..)", _pieces(container, f, k))
        for k, s in enumerate(f.sensors)
    ]
    return streamed_export(head, streams, str(container.path), options, HINTS)


def _parse(container: Container, f: _File, head_only: bool):
    where = container.where(f.name)
    text = (
        container.read_head(f.name, tables.BLOCK_BYTES)
        if head_only
        else container.read_bytes(f.name)
    )
    try:
        return parse_table(
            text, where, delimiter=f.delimiter, header_line=f.header_line, usecols=f.wanted()
        )
    except FormatError as exc:
        first = text.decode("utf-8", errors="replace").splitlines()[f.header_line + 1 :][:1]
        cell = first[0].split(f.delimiter)[0].strip() if first else ""
        if cell and "column 1 is not a number" in str(exc) and (":" in cell or "-" in cell[1:]):
            axes = ",".join(f.sensors[0].columns)
            raise FormatError(
                f"{where}:{f.header_line + 2}: time {cell!r} is a date and time (Physics "
                "Toolbox on iOS), whose sign convention is not documented; convert the time to "
                "seconds and read it with "
                f"--format csv --layout 'time={f.header[0]}:s acc={axes}:g sign=ios' (or "
                "sign=android), checking gravity's direction against the phone's"
            ) from exc
        raise


def _read(container: Container, head_only: bool = False) -> tuple[Export, _File]:
    f = _one(container)
    where = container.where(f.name)
    table = _parse(container, f, head_only)
    t = table.data[:, 0]
    table.check_forward(t)  # every row: one may be a report of a sensor not read
    kind = "Multi Record" if f.multi else "single-sensor tool"
    rules = [f"Physics Toolbox {kind} CSV; time: seconds from the start"]
    series = []
    for k, sensor in enumerate(f.sensors):
        xyz = table.data[:, 1 + 3 * k : 4 + 3 * k]
        keep, leading, held = _samples(xyz, f.multi, None)
        if leading:
            rules.append(f"{sensor.columns[0]}..: {leading} rows before its first report left out")
        if held:
            rules.append(
                f"{sensor.columns[0]}..: {held} rows repeat its previous values (held while "
                "another sensor reported): left out"
            )
        rows = np.flatnonzero(keep)
        rules.append(f"{sensor.kind.value}: {sensor.said}, {sensor.unit}")
        series.append(
            make_series(
                sensor.kind,
                t[rows],
                xyz[rows],
                unit=sensor.unit,
                where=f"{where} ({sensor.columns[0]}..)",
            )
        )
    if any(s.kind is SensorKind.ACC for s in f.sensors):
        rules.append("sign: Android's (+1 g up on the g-force meter), unchanged")
    wanted = set(f.wanted())
    unused = [h for h in f.header if h not in wanted]
    if unused:
        rules.append(f"columns not read: {', '.join(unused)}")
    return Export(format=NAME, series=series, rules=rules), f


def _samples(
    xyz: np.ndarray, multi: bool, last: np.ndarray | None, started: bool = False
) -> tuple[np.ndarray, int, int]:
    """Which rows are the sensor's own samples: not before its first report (all three 0 or
    empty) and, in a Multi Record file, not repeating the row before (``last``: the previous
    block's last row, None at the file's start; ``started``: the sensor reported in an earlier
    block). Returns (keep, rows before the first report, held rows)."""
    finite = np.isfinite(xyz).all(axis=1)
    reported = finite & (xyz != 0).any(axis=1)
    before = np.zeros(len(xyz), bool) if started else ~np.logical_or.accumulate(reported)
    keep = finite & ~before
    held = np.zeros(len(xyz), bool)
    if multi and len(xyz):
        previous = np.empty_like(xyz)
        previous[0] = np.nan if last is None else last
        previous[1:] = xyz[:-1]
        held = keep & (xyz == previous).all(axis=1)
        keep &= ~held
    return keep, int(before.sum()), int(held.sum())


def _pieces(container: Container, f: _File, k: int) -> Iterator[Series]:
    """Sensor ``k`` block by block, as :func:`_read` makes it of the whole file."""
    where = container.where(f.name)
    sensor = f.sensors[k]
    last_xyz, last_t, started = None, None, False  # the previous block's last row and time
    with container.open(f.name) as stream:
        for table in iter_tables(
            stream, where, delimiter=f.delimiter, header_line=f.header_line, usecols=f.wanted()
        ):
            t = table.data[:, 0]
            table.check_forward(t, before=last_t)
            last_t = float(t[-1])
            xyz = table.data[:, 1 + 3 * k : 4 + 3 * k]
            keep, before, _ = _samples(xyz, f.multi, last_xyz, started)
            started = started or before < len(xyz)
            last_xyz = xyz[-1].copy()
            rows = np.flatnonzero(keep)
            if not len(rows):
                continue
            yield make_series(
                sensor.kind,
                t[rows],
                xyz[rows],
                unit=sensor.unit,
                where=f"{where} ({sensor.columns[0]}..)",
            )
