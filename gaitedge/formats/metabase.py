"""MbientLab MetaBase CSVs (MetaMotion / MetaWear boards): one CSV per sensor per device.

Three dialects, told apart by the header (sources: ``mbientlab/MetaWear-MetaBase-iOS-macOS-App``,
``MetaWear-Android-MetaBase-App``, ``MetaWear-Swift-Combine-SDK``; vendor-formats.md §B1)::

    iOS/macOS   epoc (ms),timestamp (-0800),elapsed (s),x-axis (g),y-axis (g),z-axis (g)
    Android     epoch (ms),time (-13:00),elapsed (s),x-axis (deg/s),y-axis (deg/s),z-axis (deg/s)
    MetaBase 5  Epoch,Timestamp (-0800),Elapsed (s),X,Y,Z   (also Epoch,Elapsed (s),X,Y,Z and
                Epoch,X,Y,Z: the date columns are the user's choice in the SDK's table)

* The sensor is in the file name (``..._C42732BE255C_Accelerometer_12.500Hz_1.4.4.csv``, plain
  ``Accelerometer.csv``, or MetaBase 5's ``Gyroscope <date>.csv``); the iOS and Android headers
  also carry the unit, MetaBase 5's do not (accelerometer g, gyroscope deg/s).
* Time is the first column: epoch **ms** (iOS, Android) or epoch **seconds** with 3 decimals
  (MetaBase 5). The second column is local time as text (dots on iOS, colons on Android): not
  read. Rows of one packed notification share a stamp; the join spreads them back to the
  previous stamp.
* The Bosch IMU reads +1 g on the axis that points up (Android's convention; the wild exports:
  a sensor on the lower back reads y = +0.95 g standing): no sign change.
* Several devices in one folder (the MAC address in the names): ``--device`` picks one.
"""

from __future__ import annotations

import re
from collections import defaultdict
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
from gaitedge.formats.table import iter_tables, parse_table, split_header

NAME = "metabase"
TITLE = "MbientLab MetaBase CSVs (MetaMotion; iOS/macOS, Android and MetaBase 5 dialects)"
NEEDS = (
    "the device's Accelerometer and Gyroscope CSVs as MetaBase exports them (g, deg/s; an "
    "Accelerometer CSV alone runs on the accelerometer-only model); --device picks one of "
    "several boards"
)
HINTS = {
    SensorKind.GYRO: "in MetaBase, enable the Gyroscope next to the Accelerometer and export "
    "both CSVs",
}

# dialect -> (header pattern, seconds per unit of the time column)
_DIALECTS = {
    "MetaBase iOS/macOS": (re.compile(r"^epoc \(ms\),timestamp \([^)]*\),elapsed \(s\),"), 1e-3),
    "MetaBase Android": (re.compile(r"^epoch \(ms\),time \([^)]*\),elapsed \(s\),"), 1e-3),
    # MetaBase 5 writes the SDK's table: Epoch, then the date columns chosen (local time,
    # elapsed; MetaWear-Swift-Combine-SDK MWDataTable), then X, Y, Z.
    "MetaBase 5": (
        re.compile(
            r"^Epoch,(?:Timestamp \([^)]*\),Elapsed \(s\),|(?:Timestamp \([^)]*\),)?"
            r"(?:Elapsed \(s\),)?(?=X,Y,Z\s*$))"
        ),
        1.0,
    ),
}
_SENSORS = {"accelerometer": SensorKind.ACC, "gyroscope": SensorKind.GYRO}
_DEFAULT_UNIT = {SensorKind.ACC: "g", SensorKind.GYRO: "deg/s"}
# The sensor in a file name (MetaBase's sensor names), with Android's rate and firmware after it.
_SENSOR_IN_NAME = re.compile(
    r"(?:^|[_ ])(?P<sensor>Accelerometer|Gyroscope|Magnetometer|Gravity|Linear ?Acceleration"
    r"|Euler ?Angles|Quaternion|Orientation|Pressure|Temperature|Humidity|Illuminance"
    r"|Ambient ?Light|Step ?Counter|Step ?Detector|Color)"
    r"(?:_(?P<rate>\d+(?:\.\d+)?)Hz)?(?:_(?P<firmware>\d+(?:\.\d+)+))?(?=$|[_ ])",
    re.IGNORECASE,
)
_MAC = re.compile(r"(?<![0-9A-Fa-f])(?:[0-9A-F]{12}|(?:[0-9A-F]{2}[:-]){5}[0-9A-F]{2})(?![0-9A-F])")
_AXIS = re.compile(r"^(?P<axis>[xyz])(?:-axis \((?P<unit>[^)]*)\))?$", re.IGNORECASE)


@dataclass(frozen=True)
class _File:
    name: str  # the member
    dialect: str
    header: list[str]
    sensor: str  # as the file name (or the unit) says it
    kind: SensorKind | None  # None: a sensor the model does not read
    device: str  # the name with the sensor (and rate, firmware) taken out
    rate_in_name: str | None
    firmware: str | None


def _dialect(first_line: str) -> str | None:
    return next((d for d, (pat, _) in _DIALECTS.items() if pat.match(first_line)), None)


def _first_line(container: Container, name: str) -> str:
    lines = container.head(name, 512).splitlines()
    return lines[0] if lines else ""


def _sensor_of(name: str, header: list[str]) -> tuple[str, str, str | None, str | None]:
    """(sensor, device key, rate, firmware) from a file name; the unit in the header when the
    name says no sensor (a user's rename)."""
    stem = PurePosixPath(name).stem
    folder = str(PurePosixPath(name).parent)
    found = list(_SENSOR_IN_NAME.finditer(stem))
    if found:
        m = found[-1]
        device = (stem[: m.start()] + stem[m.end() :]).strip("_ ")
        device = device if folder == "." else f"{folder}/{device}"
        return m.group("sensor"), device, m.group("rate"), m.group("firmware")
    units = {m.group("unit") for m in map(_AXIS.match, header) if m and m.group("unit")}
    by_unit = {"g": "Accelerometer", "deg/s": "Gyroscope"}
    sensor = by_unit.get(next(iter(units)), stem) if len(units) == 1 else stem
    return sensor, ("" if folder == "." else folder), None, None


def _metabase_files(container: Container) -> list[_File]:
    out = []
    for name in container.names:
        if not name.lower().endswith(".csv"):
            continue
        first = _first_line(container, name)
        dialect = _dialect(first)
        if dialect is None:
            continue
        header = split_header(first, ",")
        sensor, device, rate, firmware = _sensor_of(name, header)
        kind = _SENSORS.get(sensor.lower())
        out.append(_File(name, dialect, header, sensor, kind, device, rate, firmware))
    return out


def detect(container: Container) -> str | None:
    for name in container.names:
        if name.lower().endswith(".csv"):
            dialect = _dialect(_first_line(container, name))
            if dialect:
                return f"{dialect} header in {PurePosixPath(name).name}"
    return None


def _label(device: str) -> str:
    mac = _MAC.search(device)
    return mac.group(0) if mac else (device or "(unnamed)")


def _listed(devices: list[str]) -> tuple[str, str]:
    """The devices in words (each by its MAC address; by its whole file-name part when one
    board made several recordings), and what they are: devices, or recordings of one."""
    labels = [_label(d) for d in devices]
    if len(set(labels)) == len(labels):
        return ", ".join(labels), f"{len(devices)} devices"
    shown = ", ".join(d or "(unnamed)" for d in devices)
    if len(set(labels)) == 1:
        return shown, f"{len(devices)} recordings of one device ({labels[0]})"
    return shown, f"{len(devices)} recordings"


def _pick_device(container: Container, files: list[_File], wanted: str | None) -> str:
    devices = sorted({f.device for f in files if f.kind is not None})
    if not devices:
        names = ", ".join(PurePosixPath(f.name).name for f in files)
        raise FormatError(
            f"{container.path}: MetaBase files but no Accelerometer or Gyroscope among them "
            f"({names})"
        )
    if wanted is not None:
        chosen = [d for d in devices if wanted.lower() in d.lower()]
        exact = [d for d in devices if wanted.lower() == d.lower()]
        chosen = exact or chosen
        if len(chosen) != 1:
            listed, _ = _listed(devices)
            why = "matches none" if not chosen else "matches several"
            raise FormatError(
                f"{container.path}: --device {wanted!r} {why} of: {listed} (any part of one "
                "of these names picks it)"
            )
        return chosen[0]
    if len(devices) > 1:
        listed, what = _listed(devices)
        raise FormatError(
            f"{container.path}: MetaBase files of {what}: {listed}; give --device with (a part "
            "of) one of these names"
        )
    return devices[0]


def _columns(container: Container, f: _File) -> tuple[list[str], str]:
    """The columns read (time, x, y, z by header name) and the file's unit."""
    where = container.where(f.name)
    axes: dict[str, tuple[str, str | None]] = {}
    for h in f.header[1:]:  # after the time: local time and elapsed (when written), x, y, z
        m = _AXIS.match(h)
        if m:
            axes[m.group("axis").lower()] = (h, m.group("unit"))
    if set(axes) != {"x", "y", "z"}:
        raise FormatError(f"{where}: expected x, y and z columns, header: {f.header}")
    units = {u for _, u in axes.values()}
    if len(units) != 1:
        raise FormatError(f"{where}: the axes have different units: {sorted(map(str, units))}")
    unit = units.pop() or _DEFAULT_UNIT[f.kind]  # MetaBase 5: no unit in the header
    if unit.lower() != _DEFAULT_UNIT[f.kind]:
        raise FormatError(f"{where}: a {f.sensor} file in {unit!r}, not {_DEFAULT_UNIT[f.kind]}")
    return [f.header[0], axes["x"][0], axes["y"][0], axes["z"][0]], unit


def _read_one(
    container: Container, f: _File, head_only: bool = False
) -> tuple[np.ndarray, np.ndarray, str, int]:
    """(epoch s, [N, 3] as written, unit, rows that repeat the previous stamp); ``head_only``:
    the file's first block only (a streamed read's decisions)."""
    where = container.where(f.name)
    usecols, unit = _columns(container, f)
    text = (
        container.read_head(f.name, tables.BLOCK_BYTES)
        if head_only
        else container.read_text(f.name)
    )
    table = parse_table(text, where, delimiter=",", usecols=usecols)
    if len(table.data) < 2:
        raise FormatError(f"{where}: {len(table.data)} rows; a recording needs more")
    t = table.data[:, 0] * _DIALECTS[f.dialect][1]
    table.check_forward(t)
    ties = int((np.diff(t) == 0).sum())
    return t, table.data[:, 1:], unit, ties


def _pieces(container: Container, f: _File) -> Iterator[Series]:
    """One file block by block, as :func:`_read_one` reads it whole."""
    where = container.where(f.name)
    usecols, unit = _columns(container, f)
    scale, before = _DIALECTS[f.dialect][1], None
    with container.open(f.name) as stream:
        for table in iter_tables(stream, where, delimiter=",", usecols=usecols):
            t = table.data[:, 0] * scale
            table.check_forward(t, before=before)
            before = t[-1]
            yield make_series(f.kind, t, table.data[:, 1:], unit=unit, where=where)


def read_chunks(container: Container, options) -> StreamedExport | None:
    """The device's files block by block, joined as they stream (memory bounded by a few
    blocks); every decision taken as :func:`read` takes it, on the files' first blocks."""
    head, used = _read(container, options, head_only=True)
    streams = [SeriesStream(f.kind, container.where(f.name), _pieces(container, f)) for f in used]
    return streamed_export(head, streams, str(container.path), options, HINTS)


def read(container: Container, options) -> Export:
    return _read(container, options)[0]


def _refuse_unread_accelerometer(container: Container, files: list[_File]) -> None:
    """The export has no accelerometer MetaBase reads: a CSV named ``..._Accelerometer...``
    beside the others that is empty or has another header is named (the join said only 'no
    accelerometer in this metabase export')."""
    read = {f.name for f in files}
    for name in container.names:
        stem = PurePosixPath(name).stem
        found = list(_SENSOR_IN_NAME.finditer(stem))
        if name in read or not name.lower().endswith(".csv") or not found:
            continue
        if found[-1].group("sensor") != "Accelerometer":
            continue
        first = _first_line(container, name)
        why = "is empty" if not first.strip() else f"has the header {first[:60]!r}, not MetaBase's"
        raise FormatError(
            f"{container.where(name)}: {why} (epoch, timestamp, elapsed, x-axis ...): the "
            "accelerometer cannot be read; export it again from MetaBase"
        )


def _read(container: Container, options, head_only: bool = False) -> tuple[Export, list[_File]]:
    """The export, and the files its series came from."""
    files = _metabase_files(container)
    if not files:
        raise FormatError(f"{container.path}: no MetaBase CSV (epoch, timestamp, elapsed header)")
    device = _pick_device(container, files, options.device)
    mine = [f for f in files if f.device == device]
    rules = []
    dialects = {f.dialect for f in mine}
    if len(dialects) > 1:
        said = "; ".join(f"{PurePosixPath(f.name).name}: {f.dialect}" for f in mine)
        raise FormatError(f"{container.path}: mixed MetaBase dialects ({said}); export again")
    rules.append(f"format: {dialects.pop()} (header {mine[0].header[0]!r})")
    others = [f for f in files if f.device != device]
    if others:
        rules.append(
            f"device {_label(device)}; {len(others)} file(s) of other devices left out "
            f"({', '.join(sorted({_label(f.device) for f in others}))})"
        )
    by_kind: dict[SensorKind, list[_File]] = defaultdict(list)
    for f in mine:
        if f.kind is None:
            rules.append(f"{PurePosixPath(f.name).name} left out: the model reads acceleration")
        else:
            by_kind[f.kind].append(f)
    if SensorKind.ACC not in by_kind:  # a file named for it that is not MetaBase's: say which
        _refuse_unread_accelerometer(container, files)
    export = Export(format=NAME, series=[], rules=rules, device=_label(device))
    used: list[_File] = []
    for kind, group in by_kind.items():
        if len(group) > 1:
            names = ", ".join(container.where(f.name) for f in group)
            raise FormatError(f"{container.path}: {len(group)} {group[0].sensor} files ({names})")
        f = group[0]
        used.append(f)
        t, xyz, unit, ties = _read_one(container, f, head_only)
        where = container.where(f.name)
        export.series.append(make_series(kind, t, xyz, unit=unit, where=where))
        rate = (len(t) - 1) / (t[-1] - t[0]) if t[-1] > t[0] else float("nan")
        said = f"{f.sensor}: {len(t)} rows, {rate:.3g} Hz, {unit}"
        if f.rate_in_name:
            said += f" (file name: {f.rate_in_name} Hz, firmware {f.firmware or '?'})"
        if f.dialect == "MetaBase 5":
            said += " (MetaBase 5 headers carry no unit: the sensor's)"
        rules.append(said)
        if ties:
            rules.append(
                f"{f.sensor}: {ties} rows share the previous row's stamp (packed notifications); "
                "the join spreads each run back to the stamp before it"
            )
    rules.append(
        "sign: the MetaWear IMU reads +1 g on the axis pointing up (Android's): unchanged; "
        "time: the epoch column"
    )
    if export.series:
        export.start_epoch_s = float(min(s.t_s[0] for s in export.series))
    return export, used
