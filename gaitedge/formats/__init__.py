"""Recordings as apps and wearables export them, read into the one ``Recording``.

One module per app or device family, each with the same four names::

    NAME    the name ``--format`` takes
    TITLE   what it reads, for ``gaitedge formats``
    NEEDS   what the export must hold (files, sensors), for ``gaitedge formats``
    detect(container) -> str | None
            why this container is this format (file names and headers, never the extension
            alone), or None
    read(container, options) -> Export | Recording
            the sensors in canonical units and sign (``gaitedge.formats.join`` turns an Export
            into the Recording)

A new format is one new module and one line in :data:`FORMATS`, nothing else. A module may
also define ``read_chunks(container, options) -> Iterable[Recording] | StreamedExport | None``
(the recording in pieces, memory bounded by a piece: :func:`open_chunks`; None: read this
export whole), and ``LOCAL_CLOCK = True`` when its
stamps are the device's local wall clock (no time zone).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from gaitedge.formats import workbook
from gaitedge.formats.base import (
    Container,
    Export,
    FormatError,
    SensorInfo,
    SensorKind,
    Series,
    SourceInfo,
    StreamedExport,
)
from gaitedge.recording import Recording
from gaitedge.units import GyroScaleCheck

log = logging.getLogger(__name__)

__all__ = [
    "FORMATS",
    "Container",
    "Export",
    "FormatError",
    "FormatInfo",
    "ReadOptions",
    "RecordingStream",
    "SensorInfo",
    "SensorKind",
    "Series",
    "SourceInfo",
    "detect",
    "list_formats",
    "open_chunks",
    "read",
]

# name -> module; detection tries them in this order (gaitedge's own CSV first).
FORMATS: dict[str, str] = {
    "gaitedge": "gaitedge.formats.canonical",
    "sensorlogger": "gaitedge.formats.sensorlogger",
    "phyphox": "gaitedge.formats.phyphox",
    "metabase": "gaitedge.formats.metabase",
    "sensorlog": "gaitedge.formats.sensorlog",
    "axivity": "gaitedge.formats.axivity",
    "movesense": "gaitedge.formats.movesense",
    "shimmer": "gaitedge.formats.shimmer",
    "edgeimpulse": "gaitedge.formats.edgeimpulse",
    "physicstoolbox": "gaitedge.formats.physicstoolbox",
    "sensorsdatalogger": "gaitedge.formats.sensorsdatalogger",
    "actigraph": "gaitedge.formats.actigraph",
    "csv": "gaitedge.formats.generic",
}


@dataclass(frozen=True)
class ReadOptions:
    """What the caller may say about a recording.

    Attributes:
        rate_hz: the sample rate of a file without a time column (gaitedge's seed CSV).
        strict: refuse timestamps that do not strictly increase instead of repairing them.
        device: the device whose rows to read from a multi-device recording.
        layout: a column layout for any other CSV (``gaitedge.formats.generic``): a layout
            string, a layout file, or the name of a remembered one.
        accelerometer_only: an export with an accelerometer and no gyroscope is read as
            acceleration alone ([N, 3], for a model that needs no gyroscope: the runtime's
            accelerometer-only bundle) instead of refused; never padded with zeros.
    """

    rate_hz: float | None = None
    strict: bool = False
    device: str | None = None
    layout: str | None = None
    accelerometer_only: bool = False


@dataclass(frozen=True)
class FormatInfo:
    name: str
    title: str
    needs: str


def _module(name: str) -> ModuleType:
    return importlib.import_module(FORMATS[name])


def list_formats() -> list[FormatInfo]:
    """Every registered format with what it reads and needs."""
    out = []
    for name in FORMATS:
        mod = _module(name)
        out.append(FormatInfo(name, mod.TITLE, mod.NEEDS))
    return out


def detect(container: Container) -> tuple[str, str]:
    """The format of a container and why.

    Raises:
        FormatError: nothing matches (the message lists what was looked at), or two formats
            match (give ``--format``).
    """
    found = []
    for name in FORMATS:
        reason = _module(name).detect(container)
        if reason:
            found.append((name, reason))
    if not found:
        if container.kind == "file" and not container.path.stat().st_size:
            raise FormatError(f"{container.path}: empty file (0 bytes): no recording in it")
        if not container.names:
            raise FormatError(f"{container.path}: empty {container.kind}: no files in it")
        shown = ", ".join(container.names[:8]) + (" ..." if len(container.names) > 8 else "")
        raise FormatError(
            f"{container.path}: not a format gaitedge knows ({shown}); `gaitedge formats` lists "
            "them, and --format csv --layout ... reads any other CSV"
        )
    if len(found) > 1:
        names = ", ".join(f"{n} ({r})" for n, r in found)
        raise FormatError(f"{container.path}: looks like several formats: {names}; give --format")
    return found[0]


def _with_source(rec: Recording, name: str, path: str) -> Recording:
    """A recording read by a format that builds it itself (gaitedge's CSV), said as such."""
    if rec.source is not None:
        return rec
    acc_only = rec.imu.shape[1] == 3  # a canonical CSV of the accelerometer alone
    kind, unit = (
        ("acceleration", "m/s²") if acc_only else ("acceleration + rotation rate", "m/s², rad/s")
    )
    sensor = SensorInfo(kind, path, unit, len(rec), rec.median_rate_hz)
    return dataclasses.replace(rec, source=SourceInfo(name, path, (sensor,), ()))


# What an app shares as one file that a folder may hold alone: a zip, an Excel workbook.
_SHARED_FILES = (".zip", ".xlsx", ".xls")


def _open(path: str | os.PathLike, format: str | None) -> tuple[Container, str]:  # noqa: A002
    """The container to read and its format (:func:`_choose`): ``path`` itself, or for a
    folder that holds the zip (or Excel workbook) an app shared and nothing a format reads
    beside it, that file (logged: the folder a download or a file manager put it in)."""
    container = Container(path)
    try:
        zips = [n for n in container.names if n.lower().endswith(_SHARED_FILES)]
        if container.kind == "folder" and len(zips) == 1:
            names = [format] if format is not None else list(FORMATS)
            if not any(_module(n).detect(container) for n in names if n in FORMATS):
                container.close()
                log.info("%s: reading the file it holds, %s", path, zips[0])
                container = Container(container.path / zips[0])
        kind = workbook.kind_of(container)
        if kind is not None:  # an app's Excel export: its sheets as the CSVs they stand for
            container = workbook.WorkbookContainer(container, kind)
        return container, _choose(container, format)
    except BaseException:
        container.close()
        raise


def _with_layout(format: str | None, options: ReadOptions) -> str | None:  # noqa: A002
    """The format to read as: a layout given means the CSV it describes (``csv``), read with it
    rather than left unused beside a detected format; beside another format it is refused."""
    if options.layout is None or format == "csv":
        return format
    if format is not None:
        raise FormatError(
            f"--layout describes a CSV read as --format csv; it does not apply to --format {format}"
        )
    return "csv"


def _choose(container: Container, format: str | None) -> str:  # noqa: A002 - --format
    """The format to read ``container`` as: ``format`` checked, else the one detected."""
    if format is not None and format not in FORMATS:
        raise FormatError(
            f"unknown format {format!r}; known: {', '.join(FORMATS)} (gaitedge formats)"
        )
    if format is None:
        return detect(container)[0]
    if not _module(format).detect(container) and format != "csv":
        raise FormatError(
            f"{container.path}: does not look like a {format} export "
            f"({_module(format).NEEDS}); leave out --format to detect it"
        )
    return format


def read(
    path: str | os.PathLike,
    *,
    format: str | None = None,  # noqa: A002 - the CLI's --format
    options: ReadOptions | None = None,
) -> Recording:
    """Read a recording as its app exported it: a file, a zip or the unzipped folder.

    Args:
        path: the export.
        format: force a format (a name of :data:`FORMATS`); by default it is detected.
        options: see :class:`ReadOptions`.

    Raises:
        FormatError: an unknown ``format``, an export that is not what ``format`` names, or
            anything the reader refuses; one line naming the file (and line).
    """
    from gaitedge.formats.join import to_recording

    if not str(path).strip():  # Path("") is the working directory, read as an export
        raise FormatError("the recording path is empty")
    options = options or ReadOptions()
    container, name = _open(path, _with_layout(format, options))
    with container:
        mod = _module(name)
        result = mod.read(container, options)
        if isinstance(result, Recording):
            return _in_units(_with_source(result, name, str(container.path)), str(path))
        if options.rate_hz is not None:
            raise FormatError(f"{path}: has its own timestamps; do not also give --rate-hz")
        rec = to_recording(
            result,
            str(container.path),
            strict=options.strict,
            hints=getattr(mod, "HINTS", None),
            accelerometer_only=options.accelerometer_only,
        )
        return _in_units(rec, str(path))


# Samples per chunk when a format is read whole and handed out in pieces.
CHUNK_SAMPLES = 1 << 15


@dataclass
class RecordingStream:
    """A recording as :func:`open_chunks` hands it out: iterate it once for its chunks.

    Attributes:
        format: the format's name (:data:`FORMATS`).
        path: the path the user named.
        streamed: read piece by piece (memory bounded by a piece); False: the format is read
            whole by its ``read`` and then cut into chunks.
        local_clock: the stamps are the device's local wall clock (no time zone).
        start_epoch_s: the recording's start as the export states it, when it does.
        first: the first chunk (read when the stream is opened, so a bad file is refused
            before anything runs).
    """

    format: str
    path: str
    streamed: bool
    local_clock: bool
    start_epoch_s: float | None
    first: Recording
    _rest: Iterator[Recording]
    _container: Container | None = None

    def __iter__(self) -> Iterator[Recording]:
        try:
            yield self.first
            yield from self._rest
        finally:
            self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()

    def __enter__(self) -> RecordingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pieces(rec: Recording, n: int) -> Iterator[Recording]:
    for a in range(0, len(rec), n):
        yield dataclasses.replace(
            rec,
            timestamp_s=rec.timestamp_s[a : a + n],
            imu=rec.imu[a : a + n],
            label=None if rec.label is None else rec.label[a : a + n],
            device_id=None if rec.device_id is None else rec.device_id[a : a + n],
        )


def open_chunks(
    path: str | os.PathLike,
    *,
    format: str | None = None,  # noqa: A002 - the CLI's --format
    options: ReadOptions | None = None,
    chunk_samples: int = CHUNK_SAMPLES,
) -> RecordingStream:
    """:func:`read` in chunks: the same samples, in canonical units, one piece at a time.

    Every format streams (memory bounded by a block however long the recording; separate
    files joined as they stream): gaitedge's CSV, the Axivity ``.cwa``, the CSVs of Sensor
    Logger, phyphox (its Excel export too), MetaBase, SensorLog, Shimmer (Consensys), Edge
    Impulse and Physics Toolbox, Sensors Data Logger's text files, Sensor
    Logger's JSON, Movesense's Meas JSON and Showcase recordings (two passes: the rate its
    stamps imply is the whole file's), and a ``--layout`` CSV. An export a reader declines to
    stream (its first blocks cannot be joined on their own) is read whole and handed out in
    chunks of ``chunk_samples``.

    Raises:
        FormatError: as :func:`read`, when the stream is opened (the first chunk is read
            then); ``RecordingError`` for a bad row further on, while iterating.
    """
    options = options or ReadOptions()
    container, name = _open(path, _with_layout(format, options))
    try:
        mod = _module(name)
        read_chunks = getattr(mod, "read_chunks", None)
        own_rule = name in ("gaitedge", "csv")  # the canonical CSV takes it; a layout says why not
        if read_chunks is not None and options.rate_hz is not None and not own_rule:
            raise FormatError(f"{path}: has its own timestamps; do not also give --rate-hz")
        chunks = None if read_chunks is None else read_chunks(container, options)
        if chunks is None:  # read whole (a reader may decline to stream one kind of export)
            container.close()
            rec = read(container.path, format=name, options=options)
            start = getattr(rec.source, "start_epoch_s", None)
            rest, container, streamed = _pieces(rec, chunk_samples), None, False
        elif isinstance(chunks, StreamedExport):
            rest, start = iter(_checked(chunks.chunks, str(path))), chunks.start_epoch_s
            streamed = True
        else:
            rest, start, streamed = iter(_checked(chunks, str(path))), None, True
        first = next(rest, None)
        if first is None:
            raise FormatError(f"{path}: no samples")
    except BaseException:
        container.close()
        raise
    local = getattr(mod, "LOCAL_CLOCK", False)
    return RecordingStream(name, str(Path(path)), streamed, local, start, first, rest, container)


def _checked(chunks: Iterable[Recording], where: str) -> Iterator[Recording]:
    """A streamed reader's chunks, its RecordingErrors said as FormatErrors, their rotation
    rate checked to be rad/s (:func:`_in_units`, the evidence counted across chunks)."""
    from gaitedge.recording import RecordingError

    check = GyroScaleCheck(where)
    try:
        for chunk in chunks:
            yield _in_units(chunk, where, check)
    except FormatError:
        raise
    except RecordingError as exc:
        raise FormatError(str(exc)) from exc


def _in_units(rec: Recording, where: str, check: GyroScaleCheck | None = None) -> Recording:
    """``rec``, its rotation rate checked to be rad/s (``units.check_gyro_scale``: a file in
    deg/s declared or read as rad/s would feed the model 57 times the rotation, in silence);
    ``check``: the check of a stream ``rec`` is a chunk of (its evidence so far)."""
    if rec.imu.ndim == 2 and rec.imu.shape[1] == 6:
        try:
            (check or GyroScaleCheck(where))(rec.timestamp_s, rec.imu[:, 3:6])
        except ValueError as exc:
            raise FormatError(str(exc)) from exc
    return rec
