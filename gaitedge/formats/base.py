"""What every file-format reader shares: the container a path names, the sensor series a reader
returns, and the error it raises.

A reader never builds a :class:`~gaitedge.recording.Recording` itself. It returns an
:class:`Export`: one :class:`Series` per sensor, each on its own clock, already in canonical units
(m/s², rad/s) and the canonical sign (Android's: a device lying flat, screen up, reads +9.81 m/s²
on z). ``gaitedge.formats.join`` turns that into the one ``Recording`` (gravity added back where a
file holds it apart, sensors joined onto one timeline).
"""

from __future__ import annotations

import enum
import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

import numpy as np

from gaitedge.recording import Recording, RecordingError


class FormatError(RecordingError):
    """An export that cannot be read as it is; the message names the file (and line)."""


class SensorKind(str, enum.Enum):
    """What one series measures (all in canonical units and sign once a reader returns it)."""

    ACC = "acceleration"  # with gravity (specific force), m/s²
    LINEAR_ACC = "linear acceleration"  # without gravity, m/s²
    GRAVITY = "gravity"  # m/s²
    GYRO = "rotation rate"  # rad/s


@dataclass(frozen=True)
class Series:
    """One sensor's samples as a file holds them.

    Attributes:
        kind: what it measures.
        t_s: [N] sample times in seconds on the file's own clock (ties and steps back allowed:
            the join repairs them as the chain would).
        xyz: [N, 3] canonical units and sign.
        where: the file it came from, for messages and ``inspect`` (``export.zip:Gyroscope.csv``).
        unit: the unit the file wrote, in words (``g``, ``deg/s``).
    """

    kind: SensorKind
    t_s: np.ndarray
    xyz: np.ndarray
    where: str
    unit: str


@dataclass
class Export:
    """What a reader found: its series and the rules it applied (said by ``inspect``)."""

    format: str
    series: list[Series]
    rules: list[str] = field(default_factory=list)
    start_epoch_s: float | None = None
    device: str | None = None

    def get(self, kind: SensorKind) -> Series | None:
        return next((s for s in self.series if s.kind is kind), None)


@dataclass
class StreamedExport:
    """What a reader's ``read_chunks`` may return: its recording in pieces, and the start the
    export states (``Export.start_epoch_s``)."""

    chunks: Iterator[Recording]
    start_epoch_s: float | None = None


@dataclass(frozen=True)
class SensorInfo:
    """One joined sensor, as ``inspect`` reports it."""

    kind: str
    where: str
    unit: str
    samples: int
    rate_hz: float


@dataclass(frozen=True)
class SourceInfo:
    """Where a recording came from and what was done to it on the way in."""

    format: str
    path: str
    sensors: tuple[SensorInfo, ...]
    rules: tuple[str, ...]
    start_epoch_s: float | None = None

    def to_dict(self) -> dict:
        return {
            "format": self.format,
            "path": self.path,
            "start_epoch_s": self.start_epoch_s,
            "sensors": [
                {
                    "kind": s.kind,
                    "file": s.where,
                    "unit": s.unit,
                    "samples": s.samples,
                    "rate_hz": round(s.rate_hz, 3),
                }
                for s in self.sensors
            ],
            "rules": list(self.rules),
        }


class Container:
    """A path as an app shared it: one file, a zip (as shared from the phone) or the unzipped
    folder. Members are named by their POSIX path inside it (``meta/time.csv``).

    Raises:
        FormatError: a path that does not exist, or a zip that cannot be opened (truncated).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        if not self.path.exists():
            raise FormatError(f"{self.path}: no such file or folder")
        if self.path.is_dir():
            self.kind = "folder"
            names = [
                p.relative_to(self.path).as_posix()
                for p in sorted(self.path.rglob("*"))
                if p.is_file()
            ]
        elif zipfile.is_zipfile(self.path):
            self.kind = "zip"
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise FormatError(f"{self.path}: cannot open the zip: {exc}") from exc
            names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        else:
            self.kind = "file"
            if _looks_like_zip(self.path):
                raise FormatError(f"{self.path}: a truncated or damaged zip; share it again")
            names = [self.path.name]
        # macOS zips carry resource forks (__MACOSX/, ._name): never data.
        self.names = [
            n
            for n in names
            if not n.startswith("__MACOSX/") and not PurePosixPath(n).name.startswith("._")
        ]

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def where(self, name: str) -> str:
        """How messages name a member: the file itself, or ``container:member``."""
        if self.kind == "file":
            return str(self.path)
        return f"{self.path}:{name}" if self.kind == "zip" else str(self.path / name)

    def find(self, *basenames: str) -> list[str]:
        """Members whose file name (any folder) is one of ``basenames``, case-insensitive."""
        wanted = {b.lower() for b in basenames}
        return [n for n in self.names if PurePosixPath(n).name.lower() in wanted]

    def open(self, name: str) -> IO[bytes]:
        """A binary file object for streaming a member (a zip member is read as it is inflated)."""
        try:
            if self.kind == "zip":
                return _Member(self._zip.open(name), self.where(name))
            return (self.path if self.kind == "file" else self.path / name).open("rb")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise FormatError(f"{self.where(name)}: cannot read: {exc}") from exc

    def local_path(self, name: str) -> Path | None:
        """The member's own file on disk (a file or a folder's member), or None in a zip."""
        if self.kind == "zip":
            return None
        return self.path if self.kind == "file" else self.path / name

    def read_bytes(self, name: str) -> bytes:
        try:
            with self.open(name) as f:
                return f.read()
        except OSError as exc:
            raise FormatError(f"{self.where(name)}: cannot read: {exc}") from exc

    def read_text(self, name: str) -> str:
        """A member as text (UTF-8, a byte-order mark dropped); other encodings are refused."""
        data = self.read_bytes(name)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise FormatError(
                f"{self.where(name)}:{line}: not UTF-8 text (byte {data[exc.start]:#04x}); "
                "is this the file the app exported?"
            ) from exc

    def read_head(self, name: str, n_bytes: int) -> bytes:
        """The member's first ``n_bytes`` cut at the last whole line (all of it when shorter):
        a streamed reader's first block, read without inflating the rest of a zip member."""
        with self.open(name) as f:
            data = f.read(n_bytes)
            if len(data) == n_bytes and f.read(1):
                data = data[: data.rfind(b"\n") + 1]
        return data

    def read_head_text(self, name: str, n_bytes: int) -> str:
        """:meth:`read_head` decoded as :meth:`read_text` decodes the whole."""
        data = self.read_head(name, n_bytes)
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return self.read_text(name)  # refused there, naming the line

    def head(self, name: str, n_bytes: int = 4096) -> str:
        """The start of a member as text, for detection (undecodable bytes replaced)."""
        try:
            with self.open(name) as f:
                data = f.read(n_bytes)
        except (FormatError, OSError, *ZIP_DAMAGE):
            return ""  # (a workbook's sheets stream from its own zip)
        return data.decode("utf-8-sig", errors="replace")


# What a zip member raises where its stored bytes are damaged, found as it is inflated: a CRC
# that does not match, a deflate stream cut short or broken.
ZIP_DAMAGE = (zipfile.BadZipFile, EOFError, zlib.error)


class _Member(io.BufferedIOBase):
    """A zip member's stream whose damage, found while it is inflated (a CRC that does not
    match, a deflate stream cut short: ``BadZipFile``, ``EOFError``, ``zlib.error``), is a
    :class:`FormatError` naming the member, wherever a reader meets it."""

    def __init__(self, raw: IO[bytes], where: str) -> None:
        super().__init__()
        self._raw, self._where = raw, where

    def _guard(self, read, *args):
        try:
            return read(*args)
        except ZIP_DAMAGE as exc:
            raise FormatError(
                f"{self._where}: cannot read: {exc} (the zip is damaged: share the export again)"
            ) from exc

    def read(self, n: int | None = -1) -> bytes:
        return self._guard(self._raw.read, n)

    def read1(self, n: int = -1) -> bytes:
        return self._guard(self._raw.read1, n)

    def readline(self, limit: int | None = -1) -> bytes:
        return self._guard(self._raw.readline, limit)

    def peek(self, n: int = 0) -> bytes:
        return self._guard(self._raw.peek, n)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._raw.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._guard(self._raw.seek, offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()
        super().close()


def pick_one(names: list[str], device: str | None, what: str, path: object) -> str:
    """The one recording of several in an export: the only one, or the one whose name holds
    ``device`` (``--device``); FormatError listing them otherwise."""
    if len(names) == 1:
        return names[0]
    if device:
        chosen = [n for n in names if device in n]
        if len(chosen) == 1:
            return chosen[0]
    raise FormatError(
        f"{path}: {len(names)} {what} ({', '.join(names)}); give one (or --device with part of "
        "its name)"
    )


def _looks_like_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) == b"PK\x03\x04"


def stem(name: str) -> str:
    """The file name of a member without folder and extension (``meta/time.csv`` -> ``time``)."""
    return PurePosixPath(name).stem
