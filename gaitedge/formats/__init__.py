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

A new format is one new module and one line in :data:`FORMATS`, nothing else.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from gaitedge.formats.base import (
    Container,
    Export,
    FormatError,
    SensorInfo,
    SensorKind,
    Series,
    SourceInfo,
)
from gaitedge.recording import Recording

__all__ = [
    "FORMATS",
    "Container",
    "Export",
    "FormatError",
    "FormatInfo",
    "ReadOptions",
    "SensorInfo",
    "SensorKind",
    "Series",
    "SourceInfo",
    "detect",
    "list_formats",
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
    """

    rate_hz: float | None = None
    strict: bool = False
    device: str | None = None
    layout: str | None = None


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
    sensor = SensorInfo(
        "acceleration + rotation rate", path, "m/s², rad/s", len(rec), rec.median_rate_hz
    )
    return dataclasses.replace(rec, source=SourceInfo(name, path, (sensor,), ()))


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

    options = options or ReadOptions()
    if format is not None and format not in FORMATS:
        raise FormatError(
            f"unknown format {format!r}; known: {', '.join(FORMATS)} (gaitedge formats)"
        )
    with Container(path) as container:
        name = format
        if name is None:
            name, _ = detect(container)
        elif not _module(name).detect(container) and name != "csv":
            raise FormatError(
                f"{path}: does not look like a {name} export "
                f"({_module(name).NEEDS}); leave out --format to detect it"
            )
        mod = _module(name)
        result = mod.read(container, options)
        if isinstance(result, Recording):
            return _with_source(result, name, str(Path(path)))
        if options.rate_hz is not None:
            raise FormatError(f"{path}: has its own timestamps; do not also give --rate-hz")
        return to_recording(
            result, str(Path(path)), strict=options.strict, hints=getattr(mod, "HINTS", None)
        )
