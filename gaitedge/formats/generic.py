"""Any other CSV, read through a layout the user gives once and may remember by name.

A generic CSV is never guessed (:func:`detect` is always None): ``--layout VALUE`` names it
(``--format csv`` implied; beside another ``--format`` it is refused), and the layout says what
every column is. ``VALUE`` is one of

* a **layout string**: shell-style words ``KEY=VALUE`` (quote a value that holds spaces)::

      time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:deg/s
      time="Time (s)":s acc="X (m/s^2)","Y (m/s^2)","Z (m/s^2)":m/s^2 ...

* a **layout file** (``walk.json``): a JSON object with the same keys, each value either the
  string the layout string would hold or its structured form (``{"columns": [...], "unit": "g",
  "file": "acc.csv"}``, ``{"column": "ts", "unit": "ms"}``): the structured form takes column
  names that hold a comma;
* the **name** of a layout remembered with :func:`save_layout` (``--save-layout NAME``), kept in
  ``$GAITEDGE_LAYOUTS`` or ``~/.config/gaitedge/layouts.json`` (``$XDG_CONFIG_HOME`` honoured).

Keys (a value that is a word list is ``X,Y,Z:UNIT``: three columns in x, y, z order, then the
unit after the last colon)::

    time=COLUMN:UNIT     the time column; UNIT s, ms, us or ns (epoch or any clock)
    rate_hz=HZ           no time column: row i is at i / HZ seconds (instead of time=)
    acc=X,Y,Z:UNIT       acceleration with gravity; UNIT m/s^2, g or mg
    linacc=X,Y,Z:UNIT    acceleration without gravity (instead of acc=); needs gravity=
    gravity=X,Y,Z:UNIT   the gravity vector, added back to linacc= (only with linacc=)
    gyro=X,Y,Z:UNIT      rotation rate; UNIT rad/s or deg/s (required: the model needs it)
    sign=android|ios     android (default, canonical): flat, screen up reads +9.81 m/s² on z;
                         ios: CoreMotion's sign, acceleration and gravity are negated
    file=NAME            the file of a zip or folder to read (default: its only CSV)
    acc_file=NAME        one file per sensor (a homemade logger, phyphox): the acceleration's
    gyro_file=NAME       (acc= or linacc=), the gyroscope's and the gravity's file; each file
    gravity_file=NAME    has its own time column, named by time= (or rows at rate_hz=)
    delimiter=comma|semicolon|tab   default: sniffed from the header line
    decimal=point|comma             default: a comma when the delimiter is not and the data
                                    hold one
    skip=N               lines before the header (a title, ``sep=;``)
    header=yes|no        no: the file has no header line; columns are then #N

A COLUMN is a header name (case-insensitive) or ``#N``, the N-th column counted from 1 (the only
way to name one in a file with ``header=no``). Units are spelled as ``gaitedge.units`` knows
them (``m/s2``, ``G``, ``dps`` ... are accepted and stored in the spellings above).

A row whose three cells of one sensor are all empty (or ``NaN``) has no sample of that sensor (a
logger that interleaves sensors row by row): it is left out of that sensor and counted in the
rules ``inspect`` shows. One or two empty cells of three, text in a number column, a column the
file lacks: refused with the file (and line).
"""

from __future__ import annotations

import enum
import json
import math
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, NoReturn

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
    EditedHead,
    Table,
    iter_tables,
    parse_table,
    sniff_delimiter,
    split_header,
)
from gaitedge.private import write_private
from gaitedge.units import (
    AccelUnit,
    GyroUnit,
    check_gravity_scale,
    parse_accel_unit,
    parse_gyro_unit,
)

if TYPE_CHECKING:
    from gaitedge.formats import ReadOptions

NAME = "csv"
TITLE = "any other CSV, read through a column layout (--layout, remembered with --save-layout)"
NEEDS = (
    "--layout 'time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:deg/s' (keys: time|rate_hz, acc|linacc"
    "+gravity, gyro, sign, file|acc_file+gyro_file, delimiter, decimal, skip, header), a layout"
    " .json, or a name saved with --save-layout"
)

_ACCEL_SPELLING = {AccelUnit.M_S2: "m/s^2", AccelUnit.G: "g", AccelUnit.MG: "mg"}
_GYRO_SPELLING = {GyroUnit.RAD_S: "rad/s", GyroUnit.DEG_S: "deg/s"}
_DELIMITERS = {"comma": ",", "semicolon": ";", "tab": "\t"}
_DECIMALS = {"point": ".", "comma": ","}
_INDEX = re.compile(r"^#(\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_KEYS = (
    "time", "rate_hz", "acc", "linacc", "gravity", "gyro", "sign", "file", "acc_file",
    "gyro_file", "gravity_file", "delimiter", "decimal", "skip", "header",
)  # fmt: skip
# Epoch seconds after 2001-09-09 are read as epoch time; after 2096 the unit must be wrong.
_EPOCH_MIN_S = 1e9
_EPOCH_MAX_S = 4e9
# A rate outside this range means the time unit is wrong (ms read as s gives 0.05 Hz).
_RATE_RANGE_HZ = (1.0, 20_000.0)


class LayoutError(FormatError):
    """A layout that cannot be used; the message names where the layout came from."""


class TimeUnit(str, enum.Enum):
    """The unit of a time column."""

    S = "s"
    MS = "ms"
    US = "us"
    NS = "ns"

    @property
    def seconds(self) -> float:
        return {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[self.value]


@dataclass(frozen=True)
class Axes:
    """Three columns of one sensor.

    Attributes:
        columns: x, y, z: header names or ``#N`` (1-based position).
        unit: as the layout grammar spells it (``m/s^2``, ``g``, ``mg``, ``rad/s``, ``deg/s``).
        file: the member of a zip or folder holding them; None: the layout's one file.
    """

    columns: tuple[str, str, str]
    unit: str
    file: str | None = None


@dataclass(frozen=True)
class Layout:
    """What every column of a CSV is (see the module docstring for the grammar).

    Attributes:
        acc: acceleration columns, with gravity unless ``acc_with_gravity`` is False.
        gyro: rotation-rate columns.
        time_column: the time column (name or ``#N``), or None with ``rate_hz``.
        time_unit: the time column's unit.
        rate_hz: the sample rate of a file without a time column.
        acc_with_gravity: False: ``acc`` is linear acceleration and ``gravity`` is added back.
        gravity: gravity columns (only with ``acc_with_gravity=False``).
        sign: the file's sign convention for acceleration and gravity.
        delimiter: ``,``, ``;`` or a tab; None: sniffed.
        decimal: ``.`` or ``,``; None: sniffed.
        skip_lines: lines before the header (or before the data with ``has_header=False``).
        has_header: False: no header line, columns are ``#N``.
    """

    acc: Axes
    gyro: Axes
    time_column: str | None = None
    time_unit: TimeUnit | None = None
    rate_hz: float | None = None
    acc_with_gravity: bool = True
    gravity: Axes | None = None
    sign: Convention = Convention.ANDROID
    delimiter: str | None = None
    decimal: str | None = None
    skip_lines: int = 0
    has_header: bool = True

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise LayoutError(problem)

    def sensors(self) -> list[tuple[SensorKind, Axes]]:
        """Each sensor the layout reads, with its columns."""
        first = SensorKind.ACC if self.acc_with_gravity else SensorKind.LINEAR_ACC
        out = [(first, self.acc), (SensorKind.GYRO, self.gyro)]
        if self.gravity is not None:
            out.append((SensorKind.GRAVITY, self.gravity))
        return out

    def to_dict(self) -> dict:
        """The structured JSON form (what :func:`save_layout` stores)."""
        out: dict = {}
        if self.time_column is not None:
            out["time"] = {"column": self.time_column, "unit": self.time_unit.value}
        else:
            out["rate_hz"] = self.rate_hz
        for key, axes in (
            ("acc" if self.acc_with_gravity else "linacc", self.acc),
            ("gravity", self.gravity),
            ("gyro", self.gyro),
        ):
            if axes is not None:
                out[key] = {"columns": list(axes.columns), "unit": axes.unit}
                if axes.file is not None:
                    out[key]["file"] = axes.file
        out["sign"] = self.sign.value
        if self.delimiter is not None:
            out["delimiter"] = _word(_DELIMITERS, self.delimiter)
        if self.decimal is not None:
            out["decimal"] = _word(_DECIMALS, self.decimal)
        if self.skip_lines:
            out["skip"] = self.skip_lines
        if not self.has_header:
            out["header"] = "no"
        return out

    @classmethod
    def from_dict(cls, data: dict, where: str = "layout") -> Layout:
        """A layout from its JSON object (values structured or as in the layout string)."""
        if not isinstance(data, dict):
            raise LayoutError(f"{where}: a layout is a JSON object, not {type(data).__name__}")
        return _build(data, where)

    def __str__(self) -> str:
        return self.to_string()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, where: str = "layout") -> Layout:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LayoutError(f"{where}:{exc.lineno}: not JSON: {exc.msg}") from exc
        return cls.from_dict(data, where)

    def to_string(self) -> str:
        """The one-line layout string, the default sign left out (column names holding a comma
        need the JSON form)."""
        items = []
        for key, value in self.to_dict().items():
            if isinstance(value, dict) and "columns" in value:
                items.append(f"{key}={','.join(value['columns'])}:{value['unit']}")
                if "file" in value:
                    items.append(f"{'acc' if key == 'linacc' else key}_file={value['file']}")
            elif isinstance(value, dict):
                items.append(f"{key}={value['column']}:{value['unit']}")
            else:
                items.append(f"{key}={value:.15g}" if key == "rate_hz" else f"{key}={value}")
        return " ".join(_quoted(i) for i in items if i != "sign=android")


def _quoted(word: str) -> str:
    """``word`` as one shell-style word: double-quoted where it holds a space or a quote (so
    the whole layout can still be given inside single quotes)."""
    if not any(c in word for c in " \t\"'\\"):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _word(words: dict[str, str], char: str) -> str:
    return next(w for w, c in words.items() if c == char)


def _problem(layout: Layout) -> str | None:
    """What makes a layout unusable, in words, or None."""
    if (layout.time_column is None) == (layout.rate_hz is None):
        return "give either a time column (time=COLUMN:s|ms|us|ns) or rate_hz=HZ, not both"
    if (layout.time_column is None) != (layout.time_unit is None):
        return "a time column needs its unit: time=COLUMN:s|ms|us|ns"
    if layout.rate_hz is not None and not (math.isfinite(layout.rate_hz) and layout.rate_hz > 0):
        return f"rate_hz must be a positive number of Hz, not {layout.rate_hz!r}"
    if not layout.acc_with_gravity and layout.gravity is None:
        return (
            "linacc= is acceleration without gravity; name the gravity columns too "
            "(gravity=X,Y,Z:UNIT): the model needs acceleration with gravity"
        )
    if layout.acc_with_gravity and layout.gravity is not None:
        return "gravity= is only read with linacc= (acc= already holds gravity)"
    for kind, axes in layout.sensors():
        if len(axes.columns) != 3 or any(not c for c in axes.columns):
            return f"{_key(kind)}= needs three columns x,y,z, got {list(axes.columns)}"
        known = _GYRO_SPELLING if kind is SensorKind.GYRO else _ACCEL_SPELLING
        if axes.unit not in known.values():
            return f"{_key(kind)}= unit {axes.unit!r} is not one of {', '.join(known.values())}"
    columns = [c for _, a in layout.sensors() for c in a.columns]
    columns += [layout.time_column] if layout.time_column else []
    named: dict[tuple[str | None, str], str] = {}  # (file, column) -> the role that named it
    roles = [(_key(k), a.file, c) for k, a in layout.sensors() for c in a.columns]
    if layout.time_column:
        # The time column is every file's: a sensor column of any file may not be it.
        roles = [("time", a.file, layout.time_column) for _, a in layout.sensors()] + roles
    for role, file, c in roles:
        key = (file, c.lower())
        if key in named and not (role == named[key] == "time"):
            said = role if named[key] == role else f"{named[key]} and {role}"
            return (
                f"column {c} is named twice ({said}): each column is one axis of one sensor "
                "(a long-format file, one sensor per row in the same x,y,z columns, needs one "
                "file per sensor: acc_file= and gyro_file=)"
            )
        named[key] = role
    for c in columns:
        m = _INDEX.match(c)
        if m and int(m.group(1)) < 1:
            return f"column {c} does not exist: columns are counted from #1"
        if not m and not layout.has_header:
            return f"header=no: name columns by position (#1, #2, ...), not {c!r}"
    if layout.delimiter not in (None, *_DELIMITERS.values()):
        return f"delimiter {layout.delimiter!r} is not one of {', '.join(_DELIMITERS)}"
    if layout.decimal not in (None, "."):
        if layout.decimal != ",":
            return f"decimal {layout.decimal!r} is not one of {', '.join(_DECIMALS)}"
        if layout.delimiter == ",":
            return "decimal=comma needs a delimiter other than comma (semicolon or tab)"
    if layout.skip_lines < 0:
        return f"skip must be 0 or more lines, not {layout.skip_lines}"
    return None


def _key(kind: SensorKind) -> str:
    return {
        SensorKind.ACC: "acc",
        SensorKind.LINEAR_ACC: "linacc",
        SensorKind.GRAVITY: "gravity",
        SensorKind.GYRO: "gyro",
    }[kind]


def _unit(kind: SensorKind, text: str, where: str) -> str:
    """The grammar's spelling of a unit, or LayoutError listing the ones accepted."""
    gyro = kind is SensorKind.GYRO
    known = _GYRO_SPELLING if gyro else _ACCEL_SPELLING
    try:
        spelled = known.get((parse_gyro_unit if gyro else parse_accel_unit)(text, where))
    except ValueError:
        spelled = None
    if spelled is None:
        raise LayoutError(
            f"{where}: {_key(kind)}= unit {text!r} is not one of {', '.join(known.values())}"
        )
    return spelled


def _axes(kind: SensorKind, value: object, where: str, file: str | None) -> Axes:
    key = _key(kind)
    if isinstance(value, dict):
        unknown = set(value) - {"columns", "unit", "file"}
        if unknown or not isinstance(value.get("columns"), list) or "unit" not in value:
            raise LayoutError(
                f'{where}: {key} is {{"columns": [X, Y, Z], "unit": UNIT[, "file": NAME]}}'
            )
        columns, unit = [str(c).strip() for c in value["columns"]], str(value["unit"])
        file = value.get("file", file)
    elif isinstance(value, str) and ":" in value:
        cols, unit = value.rsplit(":", 1)
        columns = [c.strip() for c in cols.split(",")]
    else:
        raise LayoutError(f"{where}: {key}={value} needs its unit: {key}=X,Y,Z:UNIT")
    if len(columns) != 3 or not all(columns):
        raise LayoutError(f"{where}: {key}= needs three columns x,y,z, got {columns}")
    return Axes(tuple(columns), _unit(kind, unit, where), file)


def _time(value: object, where: str) -> tuple[str, TimeUnit]:
    if isinstance(value, dict) and set(value) == {"column", "unit"}:
        column, unit = str(value["column"]), str(value["unit"])
    elif isinstance(value, str) and ":" in value:
        column, unit = value.rsplit(":", 1)
    else:
        raise LayoutError(f"{where}: time={value} needs its unit: time=COLUMN:s|ms|us|ns")
    try:
        return column.strip(), TimeUnit(unit.strip().lower())
    except ValueError:
        raise LayoutError(f"{where}: time unit {unit!r} is not one of s, ms, us, ns") from None


def _choice(words: dict[str, str], key: str, value: object, where: str) -> str:
    text = str(value).strip().lower()
    if text in words:
        return words[text]
    if text in words.values() or (key == "delimiter" and value == "\t"):
        return str(value)
    raise LayoutError(f"{where}: {key}={value} is not one of {', '.join(words)}")


def _build(items: dict, where: str) -> Layout:
    """A layout from its keys (string values as in the layout string, or structured)."""
    unknown = [k for k in items if k not in _KEYS]
    if unknown:
        raise LayoutError(f"{where}: unknown key {unknown[0]!r}; keys: {', '.join(_KEYS)}")
    if "acc" in items and "linacc" in items:
        raise LayoutError(f"{where}: give acc= (with gravity) or linacc= (without), not both")
    acc_key = "linacc" if "linacc" in items else "acc"
    for needed in (acc_key, "gyro"):
        if needed not in items:
            raise LayoutError(
                f"{where}: no {needed}= (the model needs acceleration and rotation rate): "
                "e.g. acc=ax,ay,az:g gyro=gx,gy,gz:deg/s"
            )
    kwargs: dict = {}
    if "time" in items:
        kwargs["time_column"], kwargs["time_unit"] = _time(items["time"], where)
    if "rate_hz" in items:
        try:
            kwargs["rate_hz"] = float(items["rate_hz"])
        except (TypeError, ValueError):
            raise LayoutError(f"{where}: rate_hz={items['rate_hz']} is not a number") from None
    default_file = items.get("file")
    acc_kind = SensorKind.ACC if acc_key == "acc" else SensorKind.LINEAR_ACC
    kwargs["acc"] = _axes(acc_kind, items[acc_key], where, items.get("acc_file", default_file))
    kwargs["acc_with_gravity"] = acc_key == "acc"
    kwargs["gyro"] = _axes(
        SensorKind.GYRO, items["gyro"], where, items.get("gyro_file", default_file)
    )
    if "gravity" in items:
        kwargs["gravity"] = _axes(
            SensorKind.GRAVITY, items["gravity"], where, items.get("gravity_file", default_file)
        )
    elif "gravity_file" in items:
        raise LayoutError(f"{where}: gravity_file= without gravity= columns")
    if "sign" in items:
        try:
            kwargs["sign"] = Convention(str(items["sign"]).strip().lower())
        except ValueError:
            raise LayoutError(f"{where}: sign={items['sign']} is not android or ios") from None
    if "delimiter" in items:
        kwargs["delimiter"] = _choice(_DELIMITERS, "delimiter", items["delimiter"], where)
    if "decimal" in items:
        kwargs["decimal"] = _choice(_DECIMALS, "decimal", items["decimal"], where)
    if "skip" in items:
        skip = str(items["skip"]).strip()
        if not skip.isdigit():
            raise LayoutError(f"{where}: skip={items['skip']} is not a number of lines (0, 1, ...)")
        kwargs["skip_lines"] = int(skip)
    if "header" in items:
        header = str(items["header"]).strip().lower()
        if header not in ("yes", "no", "true", "false"):
            raise LayoutError(f"{where}: header={items['header']} is not yes or no")
        kwargs["has_header"] = header in ("yes", "true")
    try:
        return Layout(**kwargs)
    except LayoutError as exc:
        raise LayoutError(f"{where}: {exc}") from None


def parse_layout(text: str, where: str = "layout") -> Layout:
    """A layout from its one-line string (see the module docstring).

    Raises:
        LayoutError: a malformed word, an unknown or repeated key, a missing sensor or unit, an
            unknown unit, sign, delimiter ...; the message starts with ``where``.
    """
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise LayoutError(f"{where}: {exc} in {text!r}") from None
    if not words:
        raise LayoutError(f"{where}: empty layout; e.g. {NEEDS.split(' (')[0]}")
    items: dict[str, str] = {}
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key or not value:
            raise LayoutError(f"{where}: {word!r} is not KEY=VALUE")
        if key in items:
            raise LayoutError(f"{where}: {key}= given twice")
        items[key] = value
    return _build(items, where)


def layouts_file() -> Path:
    """``$GAITEDGE_LAYOUTS``, else ``layouts.json`` in the user's config folder."""
    if os.environ.get("GAITEDGE_LAYOUTS"):
        return Path(os.environ["GAITEDGE_LAYOUTS"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "gaitedge" / "layouts.json"


def _stored(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LayoutError(f"{path}: not a readable layouts file: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("layouts"), dict):
        raise LayoutError(f'{path}: not a layouts file (expected {{"layouts": {{NAME: ...}}}})')
    return data["layouts"]


def list_layouts() -> dict[str, Layout]:
    """The remembered layouts by name (an absent file holds none)."""
    path = layouts_file()
    return {
        name: Layout.from_dict(data, f"{path}: layout {name!r}")
        for name, data in sorted(_stored(path).items())
    }


def save_layout(name: str, layout: Layout | str) -> Path:
    """Remember ``layout`` (a Layout, or anything :func:`load_layout` takes) as ``name``.

    The file is written whole to a temporary file beside it and renamed over it, so a reader
    never sees half of it; it is readable by its owner only (0600): layouts name a user's files.

    Returns:
        the layouts file.
    """
    if not _NAME.match(name) or name.lower().endswith(".json"):
        raise LayoutError(
            f"layout name {name!r}: use letters, digits, '_', '-', '.' (not ending in .json)"
        )
    if isinstance(layout, str):
        layout = load_layout(layout)
    path = layouts_file()
    stored = _stored(path)
    stored[name] = layout.to_dict()
    text = json.dumps({"layouts": dict(sorted(stored.items()))}, indent=1, ensure_ascii=False)
    return write_private(path, text + "\n")


def load_layout(value: str) -> Layout:
    """A layout from what ``--layout`` was given: a layout string (it holds ``=``), a layout
    file, or the name of a remembered layout.

    Raises:
        LayoutError: a malformed layout, a missing file, an unknown name (the known ones listed).
    """
    value = value.strip()
    if "=" in value:
        return parse_layout(value)
    path = Path(value).expanduser()
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise LayoutError(f"{path}: cannot read the layout file: {exc}") from exc
        return Layout.from_json(text, str(path))
    if path.suffix.lower() == ".json" or "/" in value or os.sep in value:
        raise LayoutError(f"{path}: no such layout file")
    store = layouts_file()
    stored = _stored(store)
    if value not in stored:
        known = ", ".join(sorted(stored)) or "none yet"
        raise LayoutError(
            f"layout {value!r}: not a layout string (KEY=VALUE ...), a file, or a saved name "
            f"(saved in {store}: {known}); save one with --layout '...' --save-layout {value}"
        )
    return Layout.from_dict(stored[value], f"{store}: layout {value!r}")


def detect(container: Container) -> str | None:
    """Never: a generic CSV is read only when ``--format csv --layout`` names it."""
    return None


@dataclass
class _File:
    """One parsed member: its table, where each layout column landed, what it did not read."""

    table: Table
    index: dict[str, int]  # layout column (name or #N) -> column of table.data
    unread: list[str] = field(default_factory=list)
    line_shift: int = 0  # a headerless file is parsed with a header line written in
    delimiter: str = ","  # as found (or as the layout said), for a stream to read it again
    usecols: list[str] = field(default_factory=list)

    def line(self, row: int) -> int:
        return self.table.line_of(row) + self.line_shift

    def column(self, name: str) -> np.ndarray:
        return self.table.data[:, self.index[name]]


def read(container: Container, options: ReadOptions) -> Export:
    """Every sensor the layout names, in canonical units and sign, each on its own clock."""
    return _read(container, options)[0]


def read_chunks(container: Container, options: ReadOptions) -> StreamedExport | None:
    """Each file the layout names block by block (memory bounded by a few blocks), checked as
    :func:`read` checks it on its first block."""
    head, files = _read(container, options, head_only=True)
    layout = load_layout(options.layout)
    streams = [
        SeriesStream(
            kind, container.where(member), _pieces(container, member, f, layout, kind, axes)
        )
        for member, (f, sensors) in files.items()
        for kind, axes in sensors
    ]
    return streamed_export(head, streams, str(container.path), options)


def _pieces(
    container: Container, member: str, f: _File, layout: Layout, kind: SensorKind, axes: Axes
) -> Iterator[Series]:
    """One sensor of one file, block by block, as :func:`_series` makes it of the whole (a
    file without a header is given the ``#1,#2,...`` line :func:`_parse` writes in, and the
    line numbers of refusals are the file's own)."""
    where, rows, ignored = container.where(member), 0, []
    with container.open(member) as stream:
        if layout.has_header:
            source = stream
        else:
            names = f.delimiter.join(f"#{i + 1}" for i in range(len(f.usecols) + len(f.unread)))
            source = EditedHead(stream, layout.skip_lines, names)
        blocks = iter_tables(
            source,
            where,
            delimiter=f.delimiter,
            decimal=layout.decimal,
            header_line=layout.skip_lines,
            usecols=f.usecols,
        )
        while True:
            try:
                table = next(blocks, None)
            except FormatError as exc:
                _raise_own_line(exc, where, layout)
            if table is None:
                return
            block = _File(table, f.index, f.unread, f.line_shift, f.delimiter, f.usecols)
            yield _series(kind, axes, block, layout, ignored, row0=rows, check_time=False)
            rows += len(table.data)


def _read(
    container: Container, options: ReadOptions, head_only: bool = False
) -> tuple[Export, dict[str, tuple[_File, list[tuple[SensorKind, Axes]]]]]:
    """The export, and per file read: how it was parsed and the sensors it gave; ``head_only``:
    each file's first block only (a streamed read's checks)."""
    if not options.layout:
        raise FormatError(
            f"{container.path}: --format csv needs a layout saying what each column is, e.g. "
            "--layout 'time=ts:ms acc=ax,ay,az:g gyro=gx,gy,gz:deg/s' (or a layout .json, or "
            "a name saved with --save-layout)"
        )
    if options.rate_hz is not None:
        raise FormatError(
            f"{container.path}: with --layout, give the rate in the layout (rate_hz=HZ instead "
            "of time=), not --rate-hz"
        )
    layout = load_layout(options.layout)
    export = Export(format=NAME, series=[])
    files: dict[str, tuple[_File, list[tuple[SensorKind, Axes]]]] = {}
    by_member: dict[str, list[tuple[SensorKind, Axes]]] = {}
    for kind, axes in layout.sensors():
        by_member.setdefault(_member(container, axes.file, _key(kind)), []).append((kind, axes))
    for member, sensors in by_member.items():
        file = _parse(container, member, layout, sensors, head_only)
        files[member] = (file, sensors)
        for kind, axes in sensors:
            export.series.append(_series(kind, axes, file, layout, export.rules))
        if file.unread:
            export.rules.append(
                f"{file.table.where}: columns not named by the layout, not read: "
                + ", ".join(file.unread)
            )
    _rules(layout, export, list(by_member))
    others = [n for n in container.names if n not in by_member]
    if others:
        export.rules.append(f"files not named by the layout, not read: {', '.join(others)}")
    _check_scale(layout, export)
    return export, files


def _member(container: Container, name: str | None, role: str) -> str:
    """The member the layout names for ``role`` (or the container's only CSV)."""
    shown = ", ".join(container.names[:8]) + (" ..." if len(container.names) > 8 else "")
    if container.kind == "file":
        if name is None or PurePosixPath(name).name.lower() == container.path.name.lower():
            return container.names[0]
        raise FormatError(
            f"{container.path}: the layout reads {role} from {name!r}; give the folder or zip "
            "that holds it"
        )
    if name is None:
        csvs = [n for n in container.names if n.lower().endswith((".csv", ".tsv", ".txt"))]
        if len(csvs) == 1:
            return csvs[0]
        raise FormatError(
            f"{container.path}: holds {len(csvs)} CSV files ({shown}); name the one to read "
            "in the layout: file=NAME (or acc_file=... gyro_file=...)"
        )
    if name in container.names:
        return name
    found = [] if "/" in name else container.find(name)
    if len(found) == 1:
        return found[0]
    if found:
        raise FormatError(
            f"{container.path}: several files are called {name!r} ({', '.join(found)}); "
            f"name one with its folder in {role}_file="
        )
    raise FormatError(f"{container.path}: no file {name!r} (the layout's {role}); it holds {shown}")


def _parse(
    container: Container,
    member: str,
    layout: Layout,
    sensors: list[tuple[SensorKind, Axes]],
    head_only: bool = False,
) -> _File:
    """Parse the columns ``sensors`` (and the time) read from ``member``, and only those: a text
    column the layout does not name (a label, a local date) is left alone."""
    where = container.where(member)
    text = (
        container.read_head_text(member, tables.BLOCK_BYTES)
        if head_only
        else container.read_text(member)
    )
    lines = text.splitlines()
    skip = layout.skip_lines
    if len(lines) <= skip or not lines[skip].strip():
        what = "the header" if layout.has_header else "data"
        raise FormatError(f"{where}:{skip + 1}: expected {what} here (skip={skip})")
    delimiter = layout.delimiter
    if delimiter is None:  # sniffed here too: the header must be split before parsing
        first = lines[skip]
        delimiter = sniff_delimiter(
            first if layout.has_header or layout.decimal != "," else first.replace(",", "")
        )
    header = split_header(lines[skip], delimiter)
    if not layout.has_header:
        # The parser needs a header line: "#1,#2,..." is written in, and the line numbers of
        # its messages are shifted back so they name the file's own lines.
        header = [f"#{i + 1}" for i in range(len(header))]
        lines.insert(skip, delimiter.join(header))
    wanted = [("time", layout.time_column)] if layout.time_column else []
    wanted += [(_key(kind), c) for kind, axes in sensors for c in axes.columns]
    picked = {c: _resolve(header, c, role, where) for role, c in wanted}
    usecols = list(dict.fromkeys(header[i] for i in picked.values()))
    try:
        table = parse_table(
            "\n".join(lines),
            where,
            delimiter=delimiter,
            decimal=layout.decimal,
            header_line=skip,
            usecols=usecols,
        )
    except FormatError as exc:
        _raise_own_line(exc, where, layout)
    index = {c: usecols.index(header[i]) for c, i in picked.items()}
    unread = [h for h in header if h not in usecols]
    return _File(table, index, unread, 0 if layout.has_header else -1, delimiter, usecols)


def _raise_own_line(exc: FormatError, where: str, layout: Layout) -> NoReturn:
    """Raise a parse refusal naming the file's own line: a headerless file is parsed with a
    header line written in, one line above its first."""
    own = tables.own_line(exc, where, 0 if layout.has_header else 1)
    if own is exc:
        raise exc
    raise own from exc


def _resolve(header: list[str], column: str, role: str, where: str) -> int:
    """The header position of a layout column (a name, case-insensitive, or #N)."""
    m = _INDEX.match(column)
    if m:
        i = int(m.group(1)) - 1
        if i >= len(header):
            raise FormatError(
                f"{where}: the layout's {role} names column {column} but the file has "
                f"{len(header)} columns (header: {header})"
            )
        name = header[i]
    else:
        name = column
    hits = [i for i, h in enumerate(header) if h.lower() == name.lower()]
    if not hits:
        raise FormatError(f"{where}: no column {column!r} (the layout's {role}); header: {header}")
    if len(hits) > 1:
        raise FormatError(
            f"{where}: the header holds {name!r} {len(hits)} times (the layout's {role}); "
            "rename the columns so each is one"
        )
    return hits[0]


def _series(
    kind: SensorKind,
    axes: Axes,
    file: _File,
    layout: Layout,
    rules: list[str],
    row0: int = 0,
    check_time: bool = True,
) -> Series:
    """One sensor of a parsed file (``row0``: the file's row of the table's row 0, when the
    table is a later block of it; ``check_time``: judge the time unit on these rows)."""
    where, role = file.table.where, _key(kind)
    xyz = np.stack([file.column(c) for c in axes.columns], axis=1)  # [N, 3]
    if layout.time_column is not None:
        t_s = file.column(layout.time_column) * layout.time_unit.seconds
    else:
        t_s = (row0 + np.arange(len(xyz))) / layout.rate_hz
    empty = np.isnan(xyz)
    partial = empty.any(axis=1) & ~empty.all(axis=1)
    if partial.any():
        row = int(np.argmax(partial))
        raise FormatError(
            f"{where}:{file.line(row)}: {role} has {int(empty[row].sum())} of 3 cells empty"
        )
    keep = ~empty.all(axis=1)
    no_time = keep & ~np.isfinite(t_s)
    if no_time.any():
        row = int(np.argmax(no_time))
        raise FormatError(f"{where}:{file.line(row)}: {role} has values but no time")
    if not keep.all():
        rules.append(f"{role}: {int((~keep).sum())} rows of {where} without {role} left out")
    t_s, xyz = t_s[keep], xyz[keep]
    if check_time and layout.time_column is not None and len(t_s) > 1:
        _check_time(t_s, layout, where, role)
    return make_series(kind, t_s, xyz, unit=axes.unit, where=where, convention=layout.sign)


def _check_time(t_s: np.ndarray, layout: Layout, where: str, role: str) -> None:
    """Refuse a time unit that cannot be right (the rate or the epoch far off)."""
    dt = np.diff(t_s)
    dt = dt[dt > 0]
    rate_hz = 1.0 / float(np.median(dt)) if len(dt) else math.inf
    lo, hi = _RATE_RANGE_HZ
    said = f"time={layout.time_column}:{layout.time_unit.value}"
    if not lo <= rate_hz <= hi:
        raise FormatError(
            f"{where}: {said} gives {role} {rate_hz:.4g} Hz; is the time unit right "
            "(s, ms, us, ns)?"
        )
    if t_s[0] > _EPOCH_MAX_S:
        raise FormatError(
            f"{where}: {said} starts at {t_s[0]:.4g} s, after the year 2096; is the time unit "
            "right (s, ms, us, ns)?"
        )


def _rules(layout: Layout, export: Export, members: list[str]) -> None:
    """What ``inspect`` shows: the columns, units, time and sign the layout set."""
    rules = export.rules
    for kind, axes in layout.sensors():
        rules.append(f"{_key(kind)}: columns {', '.join(axes.columns)} in {axes.unit} (layout)")
    if layout.time_column is not None:
        starts = [float(s.t_s[0]) for s in export.series if len(s.t_s)]
        if starts and min(starts) >= _EPOCH_MIN_S:
            export.start_epoch_s = min(starts)
            when = datetime.fromtimestamp(min(starts), tz=timezone.utc).isoformat()
            rules.append(
                f"time: column {layout.time_column} in {layout.time_unit.value}, epoch "
                f"(starts {when})"
            )
        else:
            rules.append(f"time: column {layout.time_column} in {layout.time_unit.value}")
    else:
        rules.append(f"time: no column; row i at i / {layout.rate_hz:g} Hz (layout)")
    if layout.sign is Convention.IOS:
        rules.append(
            "sign: ios (layout): acceleration and gravity negated to the canonical sign "
            "(flat, screen up: +9.81 m/s² on z); rotation rate unchanged"
        )
    else:
        rules.append("sign: android (layout): the canonical sign, nothing negated")
    if len(members) > 1:
        rules.append(f"files: {', '.join(members)}, each on its own clock (layout)")


def _check_scale(layout: Layout, export: Export) -> None:
    """Refuse acceleration whose magnitude says the layout's unit is wrong (g read as m/s²)."""
    kind = SensorKind.ACC if layout.acc_with_gravity else SensorKind.GRAVITY
    series = export.get(kind)
    try:
        check_gravity_scale(series.xyz, series.where)
    except ValueError:
        median = float(np.median(np.linalg.norm(series.xyz, axis=1)))
        unit = layout.acc.unit if layout.acc_with_gravity else layout.gravity.unit
        raise FormatError(
            f"{series.where}: median |{_key(kind)}| is {median:.3g} m/s² read as {unit}, not "
            "about 9.8; is the unit in the layout right (m/s^2, g, mg)?"
        ) from None
