"""phyphox (RWTH Aachen) exports, Android and iOS: CSV and Excel.

What the app writes (``DataExport.java`` on Android, ``ExperimentExportSet.swift`` and
``ExperimentExport.swift`` on iOS; ``vendor-formats.md`` §A2):

* a zip of one ``<set>.csv`` per export set plus ``meta/device.csv`` and ``meta/time.csv``, the
  folder it unzips to (named after the experiment), or one set's CSV on its own. A simple
  experiment's sets are ``Accelerometer``, ``Gyroscope``, ``Linear Acceleration`` (Android) or
  ``Linear Accelerometer`` (iOS), ``Gravity`` (iOS); the built-in experiments write one sensor to
  ``Raw Data.csv``. Users rename files (``Accelerometer_2.csv``), so a set is recognised by its
  header (a quoted ``"Time (s)"`` and the sensor's columns), its file name only deciding what the
  header leaves open (iOS writes ``"X (m/s^2)"`` for acceleration with and without g alike).
* five dialects: comma / tab / semicolon with a decimal point, tab / semicolon with a decimal
  comma (``table.parse_table`` sniffs each file); one export is written in one dialect.
* quoted headers with units (Android ``"Acceleration x (m/s^2)"``, ``"Gyroscope x (rad/s)"``; iOS
  ``"X (m/s^2)"``, ``"X (rad/s)"``, ``"Gravity X (m/s^2)"``); numbers like ``3.674579167E-2``; a
  column shorter than the others padded at the end with ``NaN`` (Android) or empty cells (iOS).
* ``Time (s)``: seconds since the experiment started, one time column per sensor (not
  co-sampled), the first row not 0 and possibly negative. ``meta/time.csv`` maps it to the wall
  clock: each ``START`` row gives the experiment time and the Unix time at which a run began.
* Android's sign convention on both platforms (iOS multiplies CoreMotion's g by -9.81), m/s² and
  rad/s.
* the Excel export (the export dialog's first choice): a sheet per set plus ``Metadata Device``
  and ``Metadata Time``, read as the CSVs they stand for (``gaitedge.formats.workbook``).
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np

from gaitedge.formats import table as table_module
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
    Table,
    iter_tables,
    parse_table,
    sniff_delimiter,
    split_header,
    step_back,
)
from gaitedge.units import STANDARD_GRAVITY_M_S2, parse_accel_unit, parse_gyro_unit

NAME = "phyphox"
TITLE = (
    "phyphox (RWTH Aachen, Android and iOS): CSV export in any of its five dialects, or the "
    "Excel export (.xlsx, the older .xls)"
)
NEEDS = (
    "Accelerometer.csv (or Linear Acceleration/Accelerometer.csv + Gravity.csv) and "
    "Gyroscope.csv of one simple experiment: the zip, its folder; meta/time.csv optional; or "
    "the Excel workbook with those sheets"
)
_SIMPLE = (
    "in phyphox, create a simple experiment (+, 'Simple experiment') with Accelerometer and "
    "Gyroscope ticked and export it as CSV (the zip); built-in experiments such as "
    "'Acceleration with g' record one sensor ('Raw Data.csv')"
)
HINTS = {
    SensorKind.ACC: _SIMPLE,
    SensorKind.GYRO: _SIMPLE,
    SensorKind.GRAVITY: (
        "tick Accelerometer (acceleration with g) in the simple experiment, or on iOS "
        "Gravity next to Linear Accelerometer, and export the zip"
    ),
}

# phyphox on iOS writes CoreMotion's acceleration (in g) times this (ExperimentSensorInput.swift:
# ``private let kG = -9.81``): the sign makes it Android's convention, the 9.81 is not standard
# gravity, so its m/s² are 9.81/9.80665 (0.034 %) too large.
IOS_G_M_S2 = 9.81
# A step back in a sensor's own time larger than this is not jitter: two runs in one file.
MAX_STEP_BACK_S = 1.0
# An acceleration set whose kind neither header nor file name tells (an iOS ``"X (m/s^2)"`` file
# renamed ``data.csv``): with gravity when its median magnitude is above half a g.
_WITH_G_MIN_M_S2 = 0.5 * STANDARD_GRAVITY_M_S2

_TIME = "time (s)"
_CELL = re.compile(r"^(?P<label>.*?)\s*\((?P<unit>[^()]*(?:\([^()]*\))?[^()]*)\)$")
_AXIS = re.compile(r"^(?:(?P<prefix>.*\S)\s+)?(?P<axis>[xyzXYZ])$")
_KIND_WORDS = {
    SensorKind.ACC: "acceleration (with g)",
    SensorKind.LINEAR_ACC: "linear acceleration (without g)",
    SensorKind.GRAVITY: "gravity",
    SensorKind.GYRO: "rotation rate",
}
_DIALECTS = {",": "comma", ";": "semicolon", "\t": "tab"}


@dataclass(frozen=True)
class _Set:
    """One sensor's time, x, y and z columns in one file (found from its header)."""

    member: str
    kind: SensorKind
    time: int
    axes: tuple[int, int, int]
    unit: str
    kind_from: str  # "header", "file name" or "data"
    ios_header: bool  # iOS's simple-experiment header ("X (m/s^2)", "Gravity X (m/s^2)")


# --- detection -------------------------------------------------------------------------------


def detect(container: Container) -> str | None:
    """A member whose first line has a quoted ``"Time (s)"`` and a phyphox sensor column, or a
    ``meta/time.csv`` with phyphox's event header."""
    for name in _csv_members(container):
        if _is_meta(name):
            continue
        try:
            found, _ = _sets_of(container, name)
        except FormatError:  # a phyphox header with a column missing: read() says which
            return f'{name}: quoted "Time (s)" header with sensor columns'
        if found:
            return f'{name}: quoted "Time (s)" header with {_KIND_WORDS[found[0].kind]} columns'
    for name in _meta(container, "time.csv"):
        first = container.head(name, 512).splitlines()[:1]
        if first and first[0].startswith('"event"') and '"experiment time"' in first[0]:
            return f"{name}: phyphox's START/PAUSE time references"
    return None


def _csv_members(container: Container) -> list[str]:
    return [n for n in container.names if n.lower().endswith(".csv")]


# The Excel export's sheets for meta/device.csv and meta/time.csv (gaitedge.formats.workbook).
_META_SHEETS = {"device.csv": "metadata device.csv", "time.csv": "metadata time.csv"}


def _is_meta(name: str) -> bool:
    path = PurePosixPath(name)
    if len(path.parts) == 1 and name.lower() in _META_SHEETS.values():
        return True
    return len(path.parts) > 1 and path.parent.name.lower() == "meta"


def _meta(container: Container, basename: str) -> list[str]:
    names = [n for n in container.find(basename) if _is_meta(n)]
    return names or [n for n in container.names if n.lower() == _META_SHEETS[basename]]


def _header_line(container: Container, name: str) -> str | None:
    """The first line when it looks like a phyphox header: a ``"Time (s)"`` cell, quoted as
    phyphox writes it or not (a spreadsheet that re-saved the file took the quotes off)."""
    lines = container.head(name, 2048).splitlines()
    if not lines:
        return None
    line = lines[0].lstrip("\ufeff")
    if '"time (s)"' in line.lower():
        return line
    if "time (s)" not in line.lower():
        return None
    cells = [c.strip().strip('"').lower() for c in split_header(line, sniff_delimiter(line))]
    return line if _TIME in cells else None


def _sets_of(container: Container, name: str) -> tuple[list[_Set], list[str]]:
    """The sensor sets a member's header holds, and the columns it leaves out (named)."""
    line = _header_line(container, name)
    if line is None:
        return [], []
    header = [_unguard(c) for c in split_header(line, sniff_delimiter(line))]
    return _classify(header, name, container.where(name))


def _unguard(cell: str) -> str:
    """phyphox's formula-injection guard puts ``'`` before a name starting with = + - @."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] in ("=", "+", "-", "@") else cell


def _classify(header: list[str], member: str, where: str) -> tuple[list[_Set], list[str]]:
    """Group a header's columns into sensor sets: each ``Time (s)`` column owns the axis
    columns after it (a simple experiment has one per file); columns of other sensors
    (magnetometer, ``Absolute ...``) are returned as left out."""
    stem = PurePosixPath(member).stem.lower()
    groups: dict[tuple[int, SensorKind, str], dict[str, int]] = {}
    meta: dict[tuple[int, SensorKind, str], tuple[str, str, bool]] = {}
    left_out: list[str] = []
    times = [i for i, h in enumerate(header) if h.lower() == _TIME]
    if not times:
        return [], []
    for i, cell in enumerate(header):
        if i in times:
            continue
        parsed = _column(cell, stem)
        if parsed is None:
            left_out.append(cell)
            continue
        kind, kind_from, axis, unit, prefix, ios = parsed
        owner = max((t for t in times if t < i), default=times[0])
        key = (owner, kind, prefix)
        groups.setdefault(key, {})[axis] = i
        meta[key] = (unit, kind_from, ios)
    sets = []
    for key, axes in groups.items():
        owner, kind, _ = key
        missing = [a for a in "xyz" if a not in axes]
        if missing:
            raise FormatError(
                f"{where}: {_KIND_WORDS[kind]} columns without {', '.join(missing)} "
                f"(header: {header})"
            )
        unit, kind_from, ios = meta[key]
        sets.append(
            _Set(member, kind, owner, (axes["x"], axes["y"], axes["z"]), unit, kind_from, ios)
        )
    return sets, left_out


def _column(cell: str, stem: str) -> tuple[SensorKind, str, str, str, str, bool] | None:
    """(kind, how the kind was told, axis, unit, prefix, iOS header style) of a sensor axis
    column, or None for any other column."""
    m = _CELL.match(cell)
    a = _AXIS.match(m["label"].strip()) if m else None
    if a is None:
        return None
    prefix, axis, unit = (a["prefix"] or "").lower(), a["axis"], m["unit"].strip()
    # iOS's simple experiment writes "X (m/s^2)", "Gravity X (m/s^2)"; Android "Acceleration x".
    ios = prefix in ("", "gravity") and axis.isupper()
    if _is_unit(parse_gyro_unit, unit):
        kind, told = SensorKind.GYRO, "header"
    elif not _is_unit(parse_accel_unit, unit):
        return None  # magnetometer (µT), location, pressure ...
    elif "linear" in prefix:
        kind, told = SensorKind.LINEAR_ACC, "header"
    elif "gravity" in prefix:
        kind, told = SensorKind.GRAVITY, "header"
    elif prefix == "acceleration":
        kind, told = SensorKind.ACC, "header"
    elif prefix:
        return None
    # iOS's "X (m/s^2)" is written for acceleration with and without g: the set's name tells.
    elif "linear" in stem:
        kind, told = SensorKind.LINEAR_ACC, "file name"
    elif "grav" in stem:
        kind, told = SensorKind.GRAVITY, "file name"
    elif "acc" in stem:
        kind, told = SensorKind.ACC, "file name"
    else:
        kind, told = SensorKind.ACC, "data"
    return kind, told, axis.lower(), unit, prefix, ios


def _is_unit(parse, unit: str) -> bool:
    try:
        parse(unit)
    except ValueError:
        return False
    return True


# --- reading ---------------------------------------------------------------------------------


def read(container: Container, options) -> Export:
    """The accelerometer (or linear acceleration + gravity) and gyroscope sets of one phyphox
    export, in canonical units and sign, on the wall clock when ``meta/time.csv`` gives it."""
    return _read(container)[0]


def read_chunks(container: Container, options) -> StreamedExport | None:
    """Each set's file block by block (memory bounded by a few blocks), every decision as
    :func:`read` takes it, on each file's first block (a set whose kind the data decide: its
    first block's median)."""
    head, plan = _read(container, head_only=True)
    streams = [
        SeriesStream(series.kind, series.where, _pieces(container, s, series, plan))
        for s, series in zip(plan.chosen, head.series, strict=True)
    ]
    return streamed_export(head, streams, str(container.path), options, HINTS)


@dataclass(frozen=True)
class _Plan:
    chosen: list[_Set]
    rescale: float
    starts: list[tuple[float, float]]


def _pieces(container: Container, s: _Set, made: Series, plan: _Plan) -> Iterator[Series]:
    """One set block by block, as :func:`_series` makes it of the whole file: rows padded at
    the end (empty or NaN cells) left out, an incomplete row before a complete one and a step
    back refused with their lines; ``made``: the series the first block gave (its kind)."""
    where = container.where(s.member)
    columns = [s.time, *s.axes]
    before, pending = None, None  # pending: the first incomplete row not yet judged
    with container.open(s.member) as f:
        for table in iter_tables(f, where):
            cols = table.data[:, columns]
            complete = np.isfinite(cols).all(axis=1)
            if complete.any():
                last = int(np.flatnonzero(complete)[-1]) + 1
                if pending is None and not complete[:last].all():
                    row = int(np.argmin(complete[:last]))
                    col = columns[int(np.argmin(np.isfinite(cols[row])))]
                    pending = (table.line_of(row), table.header[col])
                if pending is not None:
                    raise FormatError(
                        f"{where}:{pending[0]}: {pending[1]!r} is empty or NaN before the "
                        "last row (phyphox pads a short column only at the end)"
                    )
                t, xyz = cols[:last, 0], cols[:last, 1:]
                _refuse_step_back(t, table, where, before)
                before = t[-1]
                if made.kind is not SensorKind.GYRO:
                    xyz = xyz * plan.rescale
                piece = make_series(made.kind, t, xyz, unit=s.unit, where=where)
                yield _on_wall_clock(piece, plan.starts) if plan.starts else piece
                complete, cols = complete[last:], cols[last:]
                table = dataclasses.replace(table, first_line=table.first_line + last)
            if len(cols) and pending is None:
                row = 0  # every row left is incomplete: judged when a complete one follows
                col = columns[int(np.argmin(np.isfinite(cols[row])))]
                pending = (table.line_of(row), table.header[col])


def _read(container: Container, head_only: bool = False) -> tuple[Export, _Plan]:
    rules: list[str] = []
    chosen = _choose(_scan(container, rules), container, rules)
    device = _device(container)
    platform, rescale = _platform(device, chosen, rules)
    tables: dict[str, Table] = {}
    series: list[Series] = []
    for s in chosen:
        if s.member not in tables:
            text = (
                container.read_head_text(s.member, table_module.BLOCK_BYTES)
                if head_only
                else container.read_text(s.member)
            )
            tables[s.member] = parse_table(text, container.where(s.member))
        series.append(_series(s, tables[s.member], container, rescale, rules))
    times = _meta(container, "time.csv")
    starts, time_dialect = _time_refs(container, times[0]) if times else ([], None)
    _check_dialects(tables, time_dialect, container)
    plan = _Plan(chosen, rescale, starts)
    if tables:
        if container.kind == "workbook":  # gaitedge.formats.workbook: its sheets as CSVs
            how = f"Excel (.{container.workbook}), a sheet per set"
        else:
            how = _dialect(next(iter(tables.values())))
        rules.insert(0, f"phyphox {platform} export; {how}")
    rules.append(
        "sign: as written: phyphox writes Android's convention on both platforms (flat, screen "
        "up: +9.8 m/s² on z; on iOS it multiplies CoreMotion's g by -9.81); m/s² and rad/s "
        "as the headers say"
    )
    if not starts:
        why = "its meta/time.csv has no START row" if times else "no meta/time.csv"
        rules.append(
            f"time: 'Time (s)', seconds since the experiment started ({why}: no wall clock)"
        )
        return Export(NAME, series, rules, start_epoch_s=None, device=device.get("")), plan
    rules.append(
        "time: 'Time (s)' (seconds since the experiment started) put on the wall clock, Unix "
        f"seconds, from {container.where(times[0])} (START at {starts[0][1]:.3f})"
        + (
            f"; {len(starts)} runs (paused, resumed), each from its START"
            if len(starts) > 1
            else ""
        )
    )
    series = [_on_wall_clock(s, starts) for s in series]
    return Export(NAME, series, rules, start_epoch_s=starts[0][1], device=device.get("")), plan


def _scan(container: Container, rules: list[str]) -> dict[SensorKind, list[_Set]]:
    """Every sensor set the export's headers hold, by kind; what is not one is named in
    ``rules`` (other sensors' files, other columns)."""
    by_kind: dict[SensorKind, list[_Set]] = {}
    ignored: list[str] = []
    for name in container.names:
        if _is_meta(name):
            continue
        sets, left_out = _sets_of(container, name) if name.lower().endswith(".csv") else ([], [])
        if not sets:
            ignored.append(name)
        elif left_out:
            rules.append(f"{name}: columns not used: {', '.join(left_out)}")
        for s in sets:
            by_kind.setdefault(s.kind, []).append(s)
    if ignored:
        rules.append(f"not sensor sets the model uses, left out: {', '.join(ignored)}")
    return by_kind


def _choose(
    by_kind: dict[SensorKind, list[_Set]], container: Container, rules: list[str]
) -> list[_Set]:
    """One set per kind the model needs; several candidates for one kind are refused."""
    for kind, sets in by_kind.items():
        if len(sets) > 1:
            names = ", ".join(s.member for s in sets)
            raise FormatError(
                f"{container.path}: {len(sets)} {_KIND_WORDS[kind]} sets ({names}): more than one "
                "export here? give one export's zip or folder"
            )
    one = {k: v[0] for k, v in by_kind.items()}
    if SensorKind.ACC in one:
        unused = [one[k].member for k in (SensorKind.LINEAR_ACC, SensorKind.GRAVITY) if k in one]
        if unused:
            rules.append(
                f"not used: {', '.join(unused)}: {one[SensorKind.ACC].member} holds acceleration "
                "with g"
            )
        wanted = (SensorKind.ACC, SensorKind.GYRO)
    else:
        wanted = (SensorKind.LINEAR_ACC, SensorKind.GRAVITY, SensorKind.GYRO)
    return [one[k] for k in wanted if k in one]


def _device(container: Container) -> dict[str, str]:
    """``meta/device.csv`` as property -> value (``""`` -> a short device name), or {}."""
    names = _meta(container, "device.csv")
    if not names:
        return {}
    text = container.read_text(names[0])
    lines = text.splitlines()
    if not lines:
        return {}
    rows = csv.reader(lines[1:], delimiter=sniff_delimiter(lines[0]))
    props = {r[0].strip(): r[1].strip() for r in rows if len(r) >= 2}
    brand, model = props.get("deviceBrand", ""), props.get("deviceModel", "")
    props[""] = " ".join(p for p in (brand, model) if p) or "unknown device"
    # where it was read: the zip's meta/device.csv, or the Excel export's sheet
    sheet = PurePosixPath(names[0]).name.lower() == _META_SHEETS["device.csv"]
    props[" from"] = "the Metadata Device sheet" if sheet else "meta/device.csv"
    return props


def _platform(device: dict[str, str], chosen: list[_Set], rules: list[str]) -> tuple[str, float]:
    """The platform (from meta/device.csv, else from iOS's own header style) and the factor
    that turns the file's acceleration into m/s² of standard gravity."""
    brand, model = device.get("deviceBrand", ""), device.get("deviceModel", "")
    if brand or model:
        ios = brand.lower() == "apple" or model.lower().startswith(("iphone", "ipad", "ipod"))
        told = f"{device[' from']} says {device['']} ({'iOS' if ios else 'Android'})"
    elif any(s.ios_header for s in chosen if s.kind is not SensorKind.GYRO):
        ios, told = True, "iOS (its simple experiment's header, 'X (m/s^2)')"
    else:
        rules.append(
            "units: m/s² as written (platform not told: no meta/device.csv, and headers both "
            "apps write; if an iPhone wrote it, its 9.81 per g reads 0.034 % high)"
        )
        return "(platform not told)", 1.0
    if ios:
        rules.append(
            f"units: {told}: phyphox wrote CoreMotion's g x 9.81; acceleration rescaled by "
            f"{STANDARD_GRAVITY_M_S2}/{IOS_G_M_S2} to m/s² of standard gravity"
        )
        return "iOS", STANDARD_GRAVITY_M_S2 / IOS_G_M_S2
    rules.append(f"units: {told}: m/s² as written")
    return "Android", 1.0


def _refuse_step_back(t: np.ndarray, table: Table, where: str, before: float | None = None) -> None:
    """Refuse a step back of more than :data:`MAX_STEP_BACK_S` (two runs in one file), naming
    its line (``before``: the previous block's last stamp)."""
    found = step_back(t, MAX_STEP_BACK_S, before)
    if found is not None:
        i, previous = found
        raise FormatError(
            f"{where}:{table.line_of(i)}: time goes back from {previous:.6f} s to {t[i]:.6f} s "
            "(two runs in one file?)"
        )


def _series(
    s: _Set, table: Table, container: Container, rescale: float, rules: list[str]
) -> Series:
    """One set's samples: trailing padding trimmed (counted), holes and steps back refused."""
    where = container.where(s.member)
    cols = table.data[:, [s.time, *s.axes]]  # [N, 4]
    complete = np.isfinite(cols).all(axis=1)
    n_rows = len(cols)
    last = int(np.flatnonzero(complete)[-1]) + 1 if complete.any() else 0
    if not complete[:last].all():
        row = int(np.argmin(complete[:last]))
        col = [s.time, *s.axes][int(np.argmin(np.isfinite(cols[row])))]
        raise FormatError(
            f"{where}:{table.line_of(row)}: {table.header[col]!r} is empty or NaN before the "
            "last row (phyphox pads a short column only at the end)"
        )
    if last < n_rows:
        rules.append(
            f"{s.member}: {n_rows - last} trailing row(s) with empty/NaN cells (a column shorter "
            "than the others, padded by phyphox) left out"
        )
    t, xyz = cols[:last, 0], cols[:last, 1:]
    _refuse_step_back(t, table, where)
    n_still = int((np.diff(t) <= 0).sum())
    if n_still:
        rules.append(
            f"{s.member}: {n_still} stamp(s) that do not increase, repaired as the live chain does"
        )
    kind = s.kind
    if s.kind_from == "data" and len(xyz):
        median = float(np.median(np.linalg.norm(xyz, axis=1)))
        kind = SensorKind.ACC if median >= _WITH_G_MIN_M_S2 else SensorKind.LINEAR_ACC
        rules.append(
            f"{s.member}: neither header nor file name says with or without g; median "
            f"|a| = {median:.2f} m/s² -> {_KIND_WORDS[kind]}"
        )
    elif s.kind_from == "file name":
        rules.append(f"{s.member}: {_KIND_WORDS[kind]}, from the file name (header 'X (m/s^2)')")
    if kind is not SensorKind.GYRO:
        xyz = xyz * rescale
    return make_series(kind, t, xyz, unit=s.unit, where=where)


# --- meta/ -----------------------------------------------------------------------------------


def _time_refs(
    container: Container, name: str
) -> tuple[list[tuple[float, float]], tuple[str, str]]:
    """``meta/time.csv``'s START rows as (experiment time, Unix seconds), and the file's dialect
    (delimiter, decimal separator)."""
    where = container.where(name)
    lines = container.read_text(name).splitlines()
    if not lines:
        raise FormatError(f"{where}: empty file, expected phyphox's time references")
    delimiter = sniff_delimiter(lines[0])
    header = [h.lower() for h in split_header(lines[0], delimiter)]
    try:
        i_event, i_exp, i_sys = (
            header.index(h) for h in ("event", "experiment time", "system time")
        )
    except ValueError:
        raise FormatError(
            f'{where}:1: expected "event", "experiment time", "system time" (got {header})'
        ) from None
    decimal, starts, previous = ".", [], (-np.inf, -np.inf)
    for n, row in enumerate(csv.reader(lines[1:], delimiter=delimiter), start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            cells = [row[i_exp].strip(), row[i_sys].strip()]
            if delimiter != "," and any("," in c for c in cells):
                decimal, cells = ",", [c.replace(",", ".") for c in cells]
            exp, sys = (float(c) for c in cells)
        except (IndexError, ValueError):
            raise FormatError(
                f"{where}:{n}: not an event, experiment time, system time row"
            ) from None
        if exp < previous[0] or sys < previous[1]:
            raise FormatError(
                f"{where}:{n}: time goes back ({exp} s, Unix {sys} after {previous[0]} s, Unix "
                f"{previous[1]})"
            )
        previous = (exp, sys)
        if row[i_event].strip().upper() == "START":
            starts.append((exp, sys))
    return starts, (delimiter, decimal)


def _on_wall_clock(s: Series, starts: list[tuple[float, float]]) -> Series:
    """Experiment time -> Unix seconds: each sample from the last START at or before it (the
    first START for samples before it: the first stamps may be slightly negative)."""
    exp = np.array([e for e, _ in starts])
    unix = np.array([u for _, u in starts])
    k = np.clip(np.searchsorted(exp, s.t_s, side="right") - 1, 0, len(exp) - 1)
    return Series(s.kind, unix[k] + (s.t_s - exp[k]), s.xyz, s.where, s.unit)


# --- dialects --------------------------------------------------------------------------------


def _dialect(table: Table) -> str:
    point = "decimal comma" if table.decimal == "," else "decimal point"
    return f"CSV ({_DIALECTS.get(table.delimiter, repr(table.delimiter))}, {point})"


def _check_dialects(
    tables: dict[str, Table], time_dialect: tuple[str, str] | None, container: Container
) -> None:
    """One export is written in one dialect (the app's single format choice covers every file
    of the zip, meta/ included). Files in different dialects were not exported together, and
    their times, each relative to its own experiment's start, cannot be joined: refused. A file
    without a data row tells its delimiter but not its decimal separator; only what it tells is
    compared."""
    told = [(name, t.delimiter, t.decimal if len(t.data) else None) for name, t in tables.items()]
    if time_dialect is not None:
        told.append((_meta(container, "time.csv")[0], *time_dialect))
    for name, delim, dec in told[1:]:
        first, delim0, dec0 = told[0]
        if delim != delim0 or (dec is not None and dec0 is not None and dec != dec0):
            a = f"{_DIALECTS.get(delim0)}{', decimal ' + dec0 if dec0 else ''}"
            b = f"{_DIALECTS.get(delim)}{', decimal ' + dec if dec else ''}"
            raise FormatError(
                f"{container.where(name)}: written in another CSV dialect ({b}) than "
                f"{container.where(first)} ({a}): files from different exports? phyphox writes "
                "one export in one dialect; export again and use one zip"
            )
