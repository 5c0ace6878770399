"""ActiGraph: ActiLife's RAW CSV export and ``.gt3x`` files, recognised and read as what they are:
an accelerometer without a gyroscope (vendor-formats.md §B3), which the 6-axis model refuses in
one line rather than being fed zeros.

ActiLife CSV: a 10-line banner (``------------ Data File Created By ActiGraph GT3X+ ActiLife v6.13.4
Firmware v2.5.0 date format M/d/yyyy at 30 Hz ...``, ``Start Time 11:55:00``, ``Start Date
12/20/2021``, ...), then ``Accelerometer X,Accelerometer Y,Accelerometer Z`` in g with no time
column: sample i is at start + i / rate. ``.gt3x``: a zip of ``info.txt`` and ``log.bin``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np

from gaitedge.formats.base import Container, Export, FormatError, SensorKind
from gaitedge.formats.join import make_series
from gaitedge.formats.table import parse_table

NAME = "actigraph"
TITLE = "ActiGraph ActiLife RAW CSV (accelerometer only) and .gt3x (recognised, then refused)"
NEEDS = (
    "an ActiLife CSV with its 10-line banner (no gyroscope: replayed on the accelerometer-only "
    "model); a .gt3x is recognised and refused"
)
HINTS = {
    SensorKind.GYRO: "ActiGraph GT3X+/wGT3X-BT record no gyroscope: record with a 6-axis IMU "
    "(or replay without --model: the shipped accelerometer-only model runs it)"
}

_BANNER = "Data File Created By ActiGraph"
_FORMATS = {"M/d/yyyy": "%m/%d/%Y", "d/MM/yyyy": "%d/%m/%Y", "dd/MM/yyyy": "%d/%m/%Y"}


def detect(container: Container) -> str | None:
    if container.find("log.bin") and container.find("info.txt"):
        return ".gt3x (info.txt + log.bin)"
    if any(_BANNER in _first_line(container, n) for n in container.names):
        return "ActiLife banner line"
    return None


def _first_line(container: Container, name: str) -> str:
    lines = container.head(name, 512).splitlines()
    return lines[0] if lines else ""


def read(container: Container, options) -> Export:
    if container.find("log.bin"):
        raise FormatError(
            f"{container.path}: an ActiGraph .gt3x holds an accelerometer only (no gyroscope); "
            "the model needs accelerometer and gyroscope (6 axes) and is never fed zeros"
        )
    name = next(n for n in container.names if _BANNER in _first_line(container, n))
    where = container.where(name)
    text = container.read_text(name)
    banner = text.splitlines()[:10]
    rate = re.search(r"at (\d+(?:\.\d+)?) Hz", banner[0])
    date_format = re.search(r"date format (\S+)", banner[0])
    start_time = next((ln.split()[-1] for ln in banner if ln.startswith("Start Time")), None)
    start_date = next((ln.split()[-1] for ln in banner if ln.startswith("Start Date")), None)
    if not (rate and date_format and start_time and start_date):
        raise FormatError(f"{where}: the ActiLife banner lacks the rate, date format or start")
    pattern = _FORMATS.get(date_format.group(1))
    if pattern is None:
        raise FormatError(f"{where}:1: unknown date format {date_format.group(1)!r}")
    try:
        start = datetime.strptime(f"{start_date} {start_time}", f"{pattern} %H:%M:%S")
    except ValueError as exc:
        raise FormatError(f"{where}: start date/time: {exc}") from exc
    axes = ["Accelerometer X", "Accelerometer Y", "Accelerometer Z"]
    # by name: ActiLife may add a text Timestamp column (and others: Lux, steps ...)
    table = parse_table(text, where, header_line=10, usecols=axes)
    xyz = table.columns(axes)
    # Local time of the device, no zone in the file: read as if UTC (said in the rules).
    t0 = start.replace(tzinfo=timezone.utc).timestamp()
    t = t0 + np.arange(len(xyz)) / float(rate.group(1))
    acc = make_series(SensorKind.ACC, t, xyz, unit="g", where=where)
    return Export(
        format=NAME,
        series=[acc],
        rules=[f"no time column: sample i at the banner's start + i / {rate.group(1)} Hz"],
        start_epoch_s=t0,
    )
