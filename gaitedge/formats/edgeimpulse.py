"""Edge Impulse CSV: what Arduino and ESP boards write for the Edge Impulse uploader
(``edgeimpulse/example-data-collection-csv``; vendor-formats.md §B6)::

    timestamp,accX,accY,accZ,gyrX,gyrY,gyrZ
    0,4.220828473773600,1.8800472920291100,-16.89228981323240,...

* ``timestamp`` first, in **ms from 0**; one row per reading.
* The CSV carries no units. Edge Impulse's own firmware declares the axes it samples as
  ``{"accX", "m/s2"}`` ... and ``{"gyrX", "dps"}`` ... (``sensor_aq_payload_info`` in e.g.
  ``firmware-arduino-nano-33-ble-sense``, values from the g reading times 9.80665): m/s² and
  deg/s, read by name. A file whose median |acc| is about 1 (g) or 1000 (mg) is refused rather
  than read ten times off.
* The firmware reads the IMU as the chip reports it (+1 g on the axis pointing up, Android's
  convention): no sign change.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

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
from gaitedge.formats.table import iter_tables, parse_table, sniff_delimiter, split_header
from gaitedge.units import check_gravity_scale

NAME = "edgeimpulse"
TITLE = "Edge Impulse CSV (timestamp in ms, accX..accZ, gyrX..gyrZ)"
NEEDS = (
    "one CSV with timestamp (ms), accX,accY,accZ (m/s², as Edge Impulse firmware writes) and "
    "gyrX,gyrY,gyrZ (deg/s)"
)
HINTS = {
    SensorKind.GYRO: "sample the gyroscope too (gyrX, gyrY, gyrZ in deg/s, as Edge Impulse's "
    "inertial firmware does) and export again",
}

_ACC = ("accX", "accY", "accZ")
_GYRO = ("gyrX", "gyrY", "gyrZ")


def _header(container: Container, name: str) -> list[str] | None:
    lines = container.head(name, 2048).splitlines()
    if not lines:
        return None
    header = split_header(lines[0], sniff_delimiter(lines[0]))
    low = [h.lower() for h in header]
    if low and low[0] == "timestamp" and all(a.lower() in low for a in _ACC):
        return header
    return None


def detect(container: Container) -> str | None:
    for name in container.names:
        if _header(container, name):
            return (
                f"Edge Impulse header (timestamp, accX, accY, accZ) in {PurePosixPath(name).name}"
            )
    return None


def read(container: Container, options) -> Export:
    return _read(container)[0]


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The CSV block by block (memory bounded by a few blocks); the units judged, as
    :func:`read` judges them, on the first block."""
    head, (name, wanted) = _read(container, head_only=True)
    where = container.where(name)
    n = len(wanted) // 3  # 1 sensor, or 2

    def pieces(k: int) -> Iterator[Series]:
        kind, unit, cols = _SENSORS[k]
        with container.open(name) as f:
            for table in iter_tables(f, where, usecols=wanted):
                t = table.data[:, 0] * 1e-3
                xyz = table.data[:, 1 + 3 * k : 4 + 3 * k]
                yield make_series(kind, t, xyz, unit=unit, where=f"{where} ({cols})")

    streams = [
        SeriesStream(_SENSORS[k][0], f"{where} ({_SENSORS[k][2]})", pieces(k)) for k in range(n)
    ]
    return streamed_export(head, streams, str(container.path), options, HINTS)


def _read(container: Container, head_only: bool = False) -> tuple[Export, tuple[str, list[str]]]:
    """The export, and the file and columns it was read from; ``head_only``: the first block."""
    found = [(n, h) for n in container.names if (h := _header(container, n))]
    if not found:
        raise FormatError(f"{container.path}: no Edge Impulse CSV (timestamp,accX,accY,accZ)")
    if len(found) > 1:
        names = ", ".join(n for n, _ in found)
        raise FormatError(f"{container.path}: {len(found)} Edge Impulse CSVs ({names}); give one")
    name, header = found[0]
    where = container.where(name)
    low = [h.lower() for h in header]
    has_gyro = all(g.lower() in low for g in _GYRO)
    wanted = ["timestamp", *_ACC, *(_GYRO if has_gyro else ())]
    text = container.read_head(name, tables.BLOCK_BYTES) if head_only else container.read_text(name)
    table = parse_table(text, where, usecols=wanted)
    t = table.data[:, 0] * 1e-3
    rules = ["time: timestamp, ms from the start"]
    unused = [h for h in header if h.lower() not in {w.lower() for w in wanted}]
    if unused:
        rules.append(f"columns not read: {', '.join(unused)}")
    acc = table.data[:, 1:4]
    try:
        check_gravity_scale(acc, where)
    except ValueError as exc:
        unit = "g" if "like g" in exc.args[0] else "mg"
        gyro = " gyro=gyrX,gyrY,gyrZ:deg/s" if has_gyro else ""
        raise FormatError(
            f"{exc.args[0].split(';')[0]}; Edge Impulse firmware writes m/s², this file looks "
            f"like {unit} (a sketch of its own): --format csv --layout 'time=timestamp:ms "
            f"acc=accX,accY,accZ:{unit}{gyro}' reads it (check the gyroscope's unit: deg/s "
            "or rad/s)"
        ) from exc
    series = [make_series(SensorKind.ACC, t, acc, unit="m/s^2", where=f"{where} (accX..accZ)")]
    rules.append(
        "units: none in the file; Edge Impulse firmware's m/s² (acc) and deg/s (gyr); "
        "sign as the chip reads it (+1 g up), unchanged"
    )
    if has_gyro:
        series.append(
            make_series(
                SensorKind.GYRO, t, table.data[:, 4:7], unit="deg/s", where=f"{where} (gyrX..gyrZ)"
            )
        )
    return Export(format=NAME, series=series, rules=rules), (name, wanted)


# kind, unit, the columns in words: the order of ``wanted`` after the time.
_SENSORS = [
    (SensorKind.ACC, "m/s^2", "accX..accZ"),
    (SensorKind.GYRO, "deg/s", "gyrX..gyrZ"),
]
