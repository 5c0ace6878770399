"""Shimmer3 recordings as Consensys exports them to CSV (vendor-formats.md §B5, the wild export
``shimmer_consensys-fixture`` from ``hpi-dhc/devicely``)::

    "sep=;"
    Shimmer_40AC_Timestamp_Unix_CAL;Shimmer_40AC_Accel_LN_X_CAL;...;Shimmer_40AC_Gyro_X_CAL;...;
    ms;m/(s^2);...;deg/s;...;
    1.595933810034E12;-1.434782608695652;10.0;...;

* An Excel hint first line (``"sep=;"``, ``sep=,`` or a tab), headers prefixed by the device or
  trial (``Shimmer_40AC_``, ``S_SeatHead_``), a units row, a delimiter at the end of every line,
  CRLF. Columns are read by their suffix (``Accel_LN_X_CAL``, ``Gyro_Y_CAL``,
  ``Timestamp_Unix_CAL``), units from the units row.
* Time: ``Timestamp_Unix_CAL``, epoch ms printed like ``1.595933810034E12`` (else
  ``TimestampSync_Unix_CAL``, else the device clock ``Timestamp_CAL``). Stamps repeat where packets
  arrived together: the join spreads them.
* Acceleration: the low-noise accelerometer (``Accel_LN``, ±2 g) when exported, else the
  wide-range one (``Accel_WR``). Falls and jumps go past 2 g: where the low-noise accelerometer
  reaches 1.9 g and the wide-range one was exported too, the wide-range one is read instead.
* Sign: Shimmer's IMU user guide explains the accelerometer as a ball in a box that, at rest,
  presses on the bottom face: it reads +1 g on the axis pointing up, Android's convention; the
  wild fixture (at rest) reads +10.0 m/s² on y (LN) and +8.4 (WR). No sign change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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
    EditedHead,
    iter_tables,
    parse_table,
    sniff_delimiter,
    split_header,
)
from gaitedge.units import STANDARD_GRAVITY_M_S2

NAME = "shimmer"
TITLE = "Shimmer CSV exported by Consensys (or the older ShimmerCapture)"
NEEDS = (
    "a Consensys CSV with ..._Accel_LN_*_CAL (or Accel_WR) and ..._Gyro_*_CAL columns, "
    "a timestamp and the units row; --device picks one of several sensors"
)
HINTS = {
    SensorKind.GYRO: "in Consensys, enable the Gyroscope on the Shimmer3 and export the "
    "calibrated (CAL) channels",
}

_SEP_LINE = re.compile(r'^"?sep=(.)"?\s*$', re.IGNORECASE)
_CHANNEL = re.compile(
    r"^(?P<device>.*?)_?(?P<channel>Accel_LN|Accel_WR|Gyro)_(?P<axis>[XYZ])_CAL$", re.IGNORECASE
)
_CLOCKS = ("Timestamp_Unix_CAL", "TimestampSync_Unix_CAL", "Timestamp_CAL")
_CLOCK = re.compile(r"^(?P<device>.*?)_?(?P<clock>" + "|".join(_CLOCKS) + r")$", re.IGNORECASE)
_DEFAULT_UNITS = {"Accel_LN": "m/(s^2)", "Accel_WR": "m/(s^2)", "Gyro": "deg/s", "clock": "ms"}
LN_LIMIT_M_S2 = 1.9 * STANDARD_GRAVITY_M_S2  # the low-noise accelerometer's ±2 g, with margin
_SECONDS = {"ms": 1e-3, "msecs": 1e-3, "s": 1.0}  # ShimmerCapture writes mSecs


def _layout(text_head: str) -> tuple[int, str]:
    """(index of the header line, delimiter) from the first lines."""
    lines = text_head.splitlines()
    if lines:
        m = _SEP_LINE.match(lines[0])
        if m:
            return 1, m.group(1)
    return 0, sniff_delimiter(lines[0] if lines else "")


def _shimmer_header(container: Container, name: str) -> tuple[int, str, list[str], int] | None:
    """(the header line, the delimiter, the names, rows between the names and the units row:
    0 for Consensys, 1 for ShimmerCapture's RAW/CAL row), or None."""
    head = container.head(name, 16384)
    capture = _capture_header(head)
    if capture is not None:
        return (*capture, 1)
    at, delimiter = _layout(head)
    lines = head.splitlines()
    if len(lines) <= at:
        return None
    header = split_header(lines[at], delimiter)
    if any(_CHANNEL.match(h) for h in header):
        return at, delimiter, header, 0
    return None


# ShimmerCapture (the older desktop app) writes four header rows: the device of each column,
# the channel's name, RAW or CAL, and the unit (``mSecs``, ``m/(sec^2)``, ``deg/sec``).
_CAPTURE_CHANNELS = {
    "low noise accelerometer": "Accel_LN",
    "wide range accelerometer": "Accel_WR",
    "accelerometer": "Accel_LN",  # Shimmer2r: one accelerometer
    "gyroscope": "Gyro",
}


def _capture_header(head: str) -> tuple[int, str, list[str]] | None:
    """A ShimmerCapture CSV's names as Consensys would write them (``Shimmer_Accel_WR_X_CAL``,
    ``Shimmer_Timestamp_CAL``; its RAW columns named ``RAW_<n>``, never read): header line 1
    (replaced by these names when parsed), then the RAW/CAL row and the units row."""
    lines = head.splitlines()
    if len(lines) < 4:
        return None
    delimiter = sniff_delimiter(lines[1])
    devices, names, kinds = (split_header(lines[i], delimiter) for i in range(3))
    if not kinds or {k.upper() for k in kinds} - {"RAW", "CAL"} or len(names) != len(kinds):
        return None
    devices = devices + [""] * (len(names) - len(devices))
    header = []
    for i, (device, channel, kind) in enumerate(zip(devices, names, kinds, strict=True)):
        m = re.match(r"^(?P<name>.*?)\s+(?P<axis>[XYZ])$", channel.strip(), re.IGNORECASE)
        chan = _CAPTURE_CHANNELS.get(m["name"].lower()) if m else None
        if kind.upper() != "CAL":
            header.append(f"RAW_{i}")
        elif chan is not None:
            header.append(f"{device}_{chan}_{m['axis'].upper()}_CAL")
        elif channel.strip().lower() == "timestamp":
            header.append(f"{device}_Timestamp_CAL")
        else:
            header.append(f"CAL_{i}")
    if not any(_CHANNEL.match(h) for h in header):
        return None
    return 1, delimiter, header


def detect(container: Container) -> str | None:
    for name in container.names:
        found = _shimmer_header(container, name)
        if found:
            if found[3]:
                return f"ShimmerCapture CSV (device, channel, RAW/CAL and units rows) in {name}"
            sep = "a sep= line, " if found[0] else ""
            return f"Consensys CSV ({sep}..._Accel/Gyro_*_CAL columns) in {name}"
    return None


def _channels(header: list[str]) -> dict[str, dict[str, dict[str, int]]]:
    """device prefix -> channel (Accel_LN, Accel_WR, Gyro, clock) -> axis or clock -> column."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    for i, h in enumerate(header):
        m = _CHANNEL.match(h)
        if m:
            chan = next(
                c for c in ("Accel_LN", "Accel_WR", "Gyro") if c.lower() == m["channel"].lower()
            )
            out.setdefault(m["device"], {}).setdefault(chan, {})[m["axis"].upper()] = i
            continue
        m = _CLOCK.match(h)
        if m:
            clock = next(c for c in _CLOCKS if c.lower() == m["clock"].lower())
            out.setdefault(m["device"], {}).setdefault("clock", {})[clock] = i
    return out


def _pick_device(where: str, devices: dict, wanted: str | None) -> str:
    names = sorted(d for d, ch in devices.items() if set(ch) - {"clock"})
    if wanted is not None:
        chosen = [d for d in names if wanted.lower() in d.lower()]
        if len(chosen) != 1:
            why = "matches none" if not chosen else "matches several"
            raise FormatError(f"{where}: --device {wanted!r} {why} of: {', '.join(names)}")
        return chosen[0]
    if len(names) > 1:
        raise FormatError(
            f"{where}: {len(names)} Shimmer devices in one file ({', '.join(names)}); "
            "give --device with one of them"
        )
    return names[0]


@dataclass(frozen=True)
class _Plan:
    """How :func:`_read` read the file: what a stream reads again, block by block."""

    name: str
    where: str
    delimiter: str
    header_line: int
    units_rows: int
    usecols: list[str]
    clock_scale: float
    series: list[tuple[SensorKind, str, str, list[int]]]  # kind, unit, where, table columns
    capture: bool = False  # ShimmerCapture: its names line is read as ``header``
    header: tuple[str, ...] = ()


def read(container: Container, options) -> Export:
    return _read(container, options)[0]


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The CSV block by block (memory bounded by a few blocks), every decision as :func:`read`
    takes it: the header and units on the first block; whether the low-noise accelerometer
    reaches its range (then the wide-range one is read) on a first pass over the whole file."""
    head, plan = _read(container, options, head_only=True)
    if plan.accel_choice is not None:
        head, plan = _read(container, options, head_only=True, accel=_choose_accel(container, plan))
    p = plan.plan

    def pieces(kind: SensorKind, unit: str, where: str, cols: list[int]) -> Iterator[Series]:
        before = None
        with container.open(p.name) as f:
            for table in _blocks(f, p):
                t = table.data[:, 0] * p.clock_scale
                table.check_forward(t, before=before)
                before = t[-1]
                yield make_series(kind, t, table.data[:, cols], unit=unit, where=where)

    streams = [SeriesStream(k, w, pieces(k, u, w, c)) for k, u, w, c in p.series]
    return streamed_export(head, streams, str(container.path), options, HINTS)


def _blocks(f, p: _Plan) -> Iterator:
    """The file's blocks (ShimmerCapture's: its channel-names line read as the names made
    unique, as :func:`_read` parses it)."""
    if p.capture:
        f = EditedHead(f, p.header_line, p.delimiter.join(p.header), replace=True)
    return iter_tables(
        f,
        p.where,
        delimiter=p.delimiter,
        header_line=p.header_line,
        skip_after_header=p.units_rows,
        usecols=p.usecols,
    )


def _choose_accel(container: Container, plan) -> str:
    """Accel_LN or Accel_WR for the whole file, as :func:`_accelerometer` chooses on it: a pass
    over the low-noise accelerometer's columns only."""
    p, (cols, to_m_s2) = plan.plan, plan.accel_choice
    with container.open(p.name) as f:
        for table in _blocks(f, p):
            if (np.abs(table.data[:, cols] * to_m_s2) >= LN_LIMIT_M_S2).any():
                return "Accel_WR"
    return "Accel_LN"


@dataclass(frozen=True)
class _Read:
    plan: _Plan
    # (the low-noise accelerometer's table columns, its factor to m/s²) when the choice
    # between it and the wide-range one depends on the whole file; None when made.
    accel_choice: tuple[list[int], float] | None


def _read(
    container: Container, options, head_only: bool = False, accel: str | None = None
) -> tuple[Export, _Read]:
    found = [(n, h) for n in container.names if (h := _shimmer_header(container, n))]
    if not found:
        raise FormatError(f"{container.path}: no Consensys CSV (..._Accel_*_CAL columns)")
    if len(found) > 1:
        names = ", ".join(n for n, _ in found)
        raise FormatError(f"{container.path}: {len(found)} Consensys CSVs ({names}); give one")
    name, (at, delimiter, header, extra) = found[0]
    where = container.where(name)
    text = (
        container.read_head_text(name, tables.BLOCK_BYTES)
        if head_only
        else container.read_text(name)
    )
    if extra:  # ShimmerCapture: its names row read as the Consensys-style names (same lines)
        rows = text.split("\n", at + 1)
        rows[at] = delimiter.join(header)
        text = "\n".join(rows)
    lines = text.splitlines()
    units_at = at + 1 + extra
    units_row = split_header(lines[units_at], delimiter) if len(lines) > units_at else []
    has_units = bool(units_row) and not _numeric(units_row[0])
    devices = _channels(header)
    device = _pick_device(where, devices, options.device)
    chans = devices[device]
    app = "ShimmerCapture" if extra else "Consensys"
    rules = [f"{app} CSV, delimiter {delimiter!r}, device {device or '(no prefix)'}"]
    if not has_units:
        rules.append("no units row: Consensys' calibrated units (m/(s^2), deg/s, ms)")
    clock = next((c for c in _CLOCKS if c in chans.get("clock", {})), None)
    if clock is None:
        raise FormatError(f"{where}: no {device}_Timestamp_Unix_CAL (or Timestamp_CAL) column")
    wanted = {"clock": [chans["clock"][clock]]}
    for chan in ("Accel_LN", "Accel_WR", "Gyro"):
        if chan in chans:
            if set(chans[chan]) != set("XYZ"):
                raise FormatError(f"{where}: {device}_{chan} lacks an axis ({sorted(chans[chan])})")
            wanted[chan] = [chans[chan][a] for a in "XYZ"]
    order = [i for cols in wanted.values() for i in cols]
    usecols = [header[i] for i in order]
    table = parse_table(
        text,
        where,
        delimiter=delimiter,
        header_line=at,
        skip_after_header=(1 if has_units else 0) + extra,
        usecols=usecols,
    )
    columns = {k: [order.index(i) for i in cols] for k, cols in wanted.items()}
    data = {k: table.data[:, cols] for k, cols in columns.items()}

    def unit(col: int, default: str) -> str:
        return units_row[col].strip() if has_units and col < len(units_row) else default

    clock_unit = unit(chans["clock"][clock], "ms").lower()
    if clock_unit not in _SECONDS:
        raise FormatError(f"{where}: {header[chans['clock'][clock]]} in {clock_unit!r}, not ms")
    t = data["clock"][:, 0] * _SECONDS[clock_unit]
    table.check_forward(t)
    rules.append(f"time: {header[chans['clock'][clock]]} ({clock_unit})")
    ties = int((np.diff(t) == 0).sum())
    if ties:
        rules.append(f"{ties} rows repeat the previous stamp; the join spreads them")
    export = Export(format=NAME, series=[], rules=rules, device=device or None)
    if "Unix" in clock and len(t):
        export.start_epoch_s = float(t[0])
    made: list[tuple[SensorKind, str, str, list[int]]] = []
    acc = _accelerometer(data, chans, unit, rules, accel)
    if acc is not None:
        chan, values = acc
        u = unit(wanted[chan][0], _DEFAULT_UNITS[chan])
        w = f"{where} ({device}_{chan})"
        export.series.append(make_series(SensorKind.ACC, t, values, unit=u, where=w))
        made.append((SensorKind.ACC, u, w, columns[chan]))
    if "Gyro" in data:
        u = unit(wanted["Gyro"][0], _DEFAULT_UNITS["Gyro"])
        w = f"{where} ({device}_Gyro)"
        export.series.append(make_series(SensorKind.GYRO, t, data["Gyro"], unit=u, where=w))
        made.append((SensorKind.GYRO, u, w, columns["Gyro"]))
    rules.append("sign: the Shimmer3 reads +1 g on the axis pointing up (Android's): unchanged")
    plan = _Plan(
        name,
        where,
        delimiter,
        at,
        (1 if has_units else 0) + extra,
        usecols,
        _SECONDS[clock_unit],
        made,
        capture=bool(extra),
        header=tuple(header),
    )
    choice = None
    if head_only and accel is None and "Accel_LN" in data and "Accel_WR" in data:
        ln_unit = unit(chans["Accel_LN"]["X"], "m/(s^2)")
        choice = (columns["Accel_LN"], STANDARD_GRAVITY_M_S2 if ln_unit == "g" else 1.0)
    return export, _Read(plan, choice)


def _accelerometer(data, chans, unit, rules, forced: str | None = None):
    """(channel, values) of the accelerometer to read, the choice said in ``rules``;
    ``forced``: the choice made on the whole file already (a streamed read)."""
    if "Accel_LN" not in data and "Accel_WR" not in data:
        return None
    if forced is not None:
        rules.append(f"acceleration: {forced}, chosen on the whole file")
        return forced, data[forced]
    if "Accel_LN" not in data:
        rules.append("acceleration: the wide-range accelerometer (Accel_WR; no Accel_LN exported)")
        return "Accel_WR", data["Accel_WR"]
    ln = data["Accel_LN"]
    if "Accel_WR" in data:
        to_m_s2 = 1.0 if unit(chans["Accel_LN"]["X"], "m/(s^2)") != "g" else STANDARD_GRAVITY_M_S2
        at_limit = int((np.abs(ln * to_m_s2) >= LN_LIMIT_M_S2).any(axis=1).sum())
        if at_limit:
            rules.append(
                f"acceleration: the wide-range accelerometer (Accel_WR): the low-noise one "
                f"reaches its ±2 g range in {at_limit} samples"
            )
            return "Accel_WR", data["Accel_WR"]
    rules.append(
        "acceleration: the low-noise accelerometer (Accel_LN)"
        + (", within its ±2 g range; Accel_WR not read" if "Accel_WR" in data else "")
    )
    return "Accel_LN", ln


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
