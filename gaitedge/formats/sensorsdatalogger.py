"""Sensors Data Logger (Pyojin Kim's Android app, with which the RoNIN dataset was recorded):
one space-separated text file per sensor (``IMUSession.java``, ``fio/FileStreamer.java``;
vendor-formats.md §A4)::

    # Created at Mon Aug 12 13:16:15 PDT 2019 in Burnaby Canada
    4240911748748 -0.000473 -0.003398 -0.002045

* ``acce.txt`` is ``TYPE_ACCELEROMETER`` (m/s² with gravity, Android's sign), ``gyro.txt``
  ``TYPE_GYROSCOPE`` (rad/s); without ``acce.txt``, ``linacce.txt`` + ``gravity.txt`` (the
  fused split) give the acceleration. The other files (``*_uncalib``, ``*_bias``, ``magnet``,
  ``rv``, ``game_rv``, ``magnetic_rv``, ``step``, ``pressure``, ``acce_calib``) are not read.
* Every file opens with the ``# Created at ...`` line; a row is ``SensorEvent.timestamp`` then
  the values ``%.6f``, each after a space, and a space before the newline.
* Time: nanoseconds on Android's boot clock (``elapsedRealtimeNanos``), **not** Unix time: read
  as seconds since boot, the same clock in every file (the join lines the sensors up on it);
  the export holds no wall clock (the comment's date is when the file was created, to the
  second, in the phone's zone: not read).
* ``SENSOR_DELAY_GAME`` (~50 Hz), each sensor on its own stamps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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
    pick_one,
)
from gaitedge.formats.join import SeriesStream, make_series, streamed_export
from gaitedge.formats.table import EditedHead, iter_tables

NAME = "sensorsdatalogger"
TITLE = (
    "Sensors Data Logger (Android; the RoNIN dataset's logger): acce.txt, gyro.txt, "
    "space-separated, ns since boot"
)
NEEDS = (
    "acce.txt (or linacce.txt + gravity.txt) and gyro.txt of one recording folder (or its "
    "zip); --device picks one of several folders"
)
HINTS = {
    SensorKind.GYRO: "the app writes gyro.txt beside acce.txt: give the whole recording folder",
    SensorKind.GRAVITY: "give the whole recording folder (acce.txt, or gravity.txt beside "
    "linacce.txt)",
}

# file name -> (what it holds, its unit)
_FILES = {
    "acce.txt": (SensorKind.ACC, "m/s^2"),
    "linacce.txt": (SensorKind.LINEAR_ACC, "m/s^2"),
    "gravity.txt": (SensorKind.GRAVITY, "m/s^2"),
    "gyro.txt": (SensorKind.GYRO, "rad/s"),
}
_ROW = re.compile(r"^\d{6,} -?\d+\.\d+ -?\d+\.\d+ -?\d+\.\d+ ?$")
# The header the parser reads in place of the comment: the trailing space is a fifth, empty
# column (never read).
_HEADER = "t x y z end"
_COLUMNS = ["t", "x", "y", "z"]
# A larger step back of one file's stamps is refused (rows out of order, or two recordings).
MAX_STEP_BACK_S = 0.5


def _first_row(container: Container, name: str) -> tuple[bool, str | None]:
    """(whether the file opens with a ``#`` line, its first data line)."""
    lines = container.head(name, 1024).splitlines()
    comment = bool(lines) and lines[0].startswith("#")
    rows = [line for line in lines if line.strip() and not line.startswith("#")]
    return comment, rows[0] if rows else None


def _sensor_files(container: Container) -> dict[str, dict[str, str]]:
    """Recording folder -> {file name: member} for the files this reader reads."""
    out: dict[str, dict[str, str]] = {}
    for name in container.names:
        path = PurePosixPath(name)
        if path.name.lower() in _FILES:
            out.setdefault(str(path.parent), {})[path.name.lower()] = name
    return out


def detect(container: Container) -> str | None:
    for folder in _sensor_files(container).values():
        for base, name in sorted(folder.items()):
            _, row = _first_row(container, name)
            if row is not None and _ROW.match(row):
                return f"{base}: Sensors Data Logger rows (ns since boot, x, y, z)"
    return None


def _blocks(container: Container, name: str, head_only: bool = False) -> Iterator[tables.Table]:
    """A file's rows block by block (the first block only with ``head_only``), the ``#`` line
    read as the header (line numbers as in the file); a file without it gets the header
    written in above its first row."""
    where = container.where(name)
    comment, _ = _first_row(container, name)
    with container.open(name) as f:
        stream = EditedHead(f, 0, _HEADER, replace=comment)
        last = None
        try:
            for table in iter_tables(
                stream, where, delimiter=" ", usecols=_COLUMNS, int_columns=("t",)
            ):
                t = table.data[:, 0]
                table.check_forward(t * 1e-9, MAX_STEP_BACK_S, last)
                last = float(t[-1]) * 1e-9 if len(t) else last
                yield table
                if head_only:
                    return
        except FormatError as exc:
            if comment:  # the header took the comment's place: the file's own lines
                raise
            raise tables.own_line(exc, where, 1) from exc


def _series(kind: SensorKind, unit: str, data: np.ndarray, where: str) -> Series:
    t = data[:, 0] * 1e-9  # ns since boot
    return make_series(kind, t, data[:, 1:4], unit=unit, where=where)


def _plan(container: Container, options) -> tuple[list[tuple[str, SensorKind, str]], list[str]]:
    """The files to read as (member, kind, unit), and the rules."""
    wanted = {"acce.txt", "linacce.txt", "gyro.txt"}
    folders = {k: v for k, v in _sensor_files(container).items() if set(v) & wanted}
    if not folders:
        raise FormatError(f"{container.path}: no acce.txt or gyro.txt (Sensors Data Logger)")
    key = pick_one(sorted(folders), options.device, "recordings", container.path)
    files = folders[key]
    use = ["acce.txt"] if "acce.txt" in files else ["linacce.txt", "gravity.txt"]
    use = [f for f in use if f in files] + (["gyro.txt"] if "gyro.txt" in files else [])
    plan = [(files[f], *_FILES[f]) for f in use]
    rules = [
        "time: SensorEvent.timestamp, ns on the phone's boot clock (not Unix time): seconds "
        "since boot, no wall clock in the export",
        "units: m/s² (acce: with gravity; linacce + gravity: joined), rad/s; Android's sign, kept",
    ]
    if "acce.txt" not in files and "linacce.txt" in files:
        rules.append("acce.txt absent: linacce.txt + gravity.txt")
    folder = [n for n in container.names if str(PurePosixPath(n).parent) == key]
    unread = sorted(PurePosixPath(n).name for n in folder if n not in {m for m, _, _ in plan})
    if unread:
        rules.append(f"not read: {', '.join(unread)}")
    return plan, rules


def read(container: Container, options) -> Export:
    plan, rules = _plan(container, options)
    series = []
    for name, kind, unit in plan:
        blocks = [b.data for b in _blocks(container, name)]
        if not blocks:
            raise FormatError(f"{container.where(name)}: no rows")
        data = np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
        series.append(_series(kind, unit, data, container.where(name)))
    return Export(format=NAME, series=series, rules=rules)


def read_chunks(container: Container, options) -> StreamedExport | None:
    """Each file block by block (memory bounded by a few blocks), joined as they stream."""
    plan, rules = _plan(container, options)
    head = Export(format=NAME, series=[], rules=rules)
    for name, kind, unit in plan:
        first = next(_blocks(container, name, head_only=True), None)
        if first is None:
            raise FormatError(f"{container.where(name)}: no rows")
        head.series.append(_series(kind, unit, first.data, container.where(name)))

    def pieces(name: str, kind: SensorKind, unit: str) -> Iterator[Series]:
        for table in _blocks(container, name):
            yield _series(kind, unit, table.data, container.where(name))

    streams = [
        SeriesStream(kind, container.where(name), pieces(name, kind, unit))
        for name, kind, unit in plan
    ]
    return streamed_export(head, streams, str(container.path), options, HINTS)
