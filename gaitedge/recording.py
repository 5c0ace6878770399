"""The recording format: CSV files of timestamped 6-axis IMU samples.

Canonical header (SI units)::

    timestamp_s,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z[,label][,device_id]

Also read:

* the seed's files: ``acc_x..gyro_z`` without a time column, with the sample rate given by the
  caller (``rate_hz``);
* unit-suffixed headers: ``acc_x_g``, ``acc_x_mg``, ``acc_x_ms2``, ``gyro_x_dps``,
  ``gyro_x_rads``; ``timestamp_ms`` instead of ``timestamp_s``.

The reader refuses what it cannot trust (a malformed row, a non-finite value, time going
backwards) with the line number; it never skips a row silently. The writer appends while
streaming and flushes to disk at least once per second of stream time, so a crash loses at
most the last second.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge.private import open_private_append
from gaitedge.units import AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s

AXES = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
CANONICAL_HEADER = ("timestamp_s", *AXES)
_ACCEL_SUFFIX = {"": AccelUnit.M_S2, "ms2": AccelUnit.M_S2, "m_s2": AccelUnit.M_S2}
_ACCEL_SUFFIX |= {"g": AccelUnit.G, "mg": AccelUnit.MG}
_GYRO_SUFFIX = {"": GyroUnit.RAD_S, "rads": GyroUnit.RAD_S, "rad_s": GyroUnit.RAD_S}
_GYRO_SUFFIX |= {"dps": GyroUnit.DEG_S, "deg_s": GyroUnit.DEG_S}
_TIME_COLUMNS = {"timestamp_s": 1.0, "timestamp_ms": 1e-3}


class RecordingError(ValueError):
    """A recording file that cannot be trusted; the message names the file and line."""


@dataclass(frozen=True)
class Recording:
    """A recording in canonical units.

    Attributes:
        timestamp_s: [N] strictly increasing sample times in seconds (repaired where the file's
            were tied, batched or stepped back; see ``repair``).
        imu: [N, 6] acc_x..acc_z in m/s², gyro_x..gyro_z in rad/s; [N, 3] for a file with
            an accelerometer alone (no gyro_* column).
        label: [N] per-sample labels as strings, or None when the file has none.
        device_id: [N] device ids as strings, or None.
        repair: what timestamp repair changed (``gaitedge.preprocess.RepairStats``), or None.
        source: where it came from when read from an app's export
            (``gaitedge.formats.SourceInfo``: format, each sensor's file and rate, the unit, sign
            and gravity rules applied), or None for gaitedge's own CSV.
    """

    timestamp_s: np.ndarray
    imu: np.ndarray
    label: np.ndarray | None = None
    device_id: np.ndarray | None = None
    repair: object | None = None
    source: object | None = None

    def __len__(self) -> int:
        return len(self.timestamp_s)

    @property
    def duration_s(self) -> float:
        return float(self.timestamp_s[-1] - self.timestamp_s[0]) if len(self) > 1 else 0.0

    @property
    def median_rate_hz(self) -> float:
        """The median sample rate; where most stamps are tied (a phone's batches), the mean rate
        over the span; 0 for fewer than two samples or no span."""
        if len(self) < 2:
            return 0.0
        step = float(np.median(np.diff(self.timestamp_s)))
        if step > 0:
            return 1.0 / step
        span = self.duration_s
        return (len(self) - 1) / span if span > 0 else 0.0


@dataclass(frozen=True)
class _Layout:
    time_index: int | None
    time_scale: float
    axis_index: tuple[int, ...]
    accel_unit: AccelUnit
    gyro_unit: GyroUnit | None  # None: no gyroscope columns
    label_index: int | None
    device_index: int | None


def _unit_of(column: str, axis: str, table: dict) -> object | None:
    if column == axis:
        return table[""]
    if column.startswith(axis + "_"):
        return table.get(column[len(axis) + 1 :])
    return None


def _parse_header(header: list[str], where: str) -> _Layout:
    names = [h.strip().lower() for h in header]
    time_index, time_scale = None, 1.0
    for name, scale in _TIME_COLUMNS.items():
        if name in names:
            time_index, time_scale = names.index(name), scale
    axis_index, units = [], []
    # An accelerometer alone (no gyro_* column at all): [N, 3] samples, for a model that
    # needs no gyroscope (the runtime picks one; none is ever fed a padded gyroscope).
    has_gyro = any(_unit_of(n, a, _GYRO_SUFFIX) is not None for n in names for a in AXES[3:])
    for axis in AXES if has_gyro else AXES[:3]:
        table = _ACCEL_SUFFIX if axis.startswith("acc") else _GYRO_SUFFIX
        found = [(i, _unit_of(n, axis, table)) for i, n in enumerate(names)]
        found = [(i, u) for i, u in found if u is not None]
        if len(found) != 1:
            raise RecordingError(
                f"{where}: header needs exactly one column for {axis} "
                f"(as {axis} or {axis}_<unit>); got header {header}"
            )
        axis_index.append(found[0][0])
        units.append(found[0][1])
    if len(set(units[:3])) != 1 or len(set(units[3:])) > 1:
        raise RecordingError(f"{where}: the three axes of a sensor must share one unit")
    return _Layout(
        time_index=time_index,
        time_scale=time_scale,
        axis_index=tuple(axis_index),
        accel_unit=units[0],
        gyro_unit=units[3] if has_gyro else None,
        label_index=names.index("label") if "label" in names else None,
        device_index=names.index("device_id") if "device_id" in names else None,
    )


def read_recording(
    path: str | os.PathLike,
    rate_hz: float | None = None,
    *,
    strict: bool = False,
    device: str | None = None,
) -> Recording:
    """Read a recording CSV into canonical units.

    Args:
        path: the CSV file.
        rate_hz: sample rate for files without a time column (the seed's format); ignored
            (and checked to be absent) when the file has one.
        strict: refuse timestamps that do not strictly increase; by default they are repaired
            as the live chain repairs them (``gaitedge.preprocess.TimestampRepair``: ties and
            batches spread, backward jitter absorbed, a clock reset re-based) and counted.

    Raises:
        RecordingError: missing or ambiguous columns, a malformed row, a non-finite value, or
            (``strict``) timestamps that do not strictly increase; the message gives the line.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{where}: cannot read: {exc}") from exc
    return recording_from_text(text, where, rate_hz, strict=strict, device=device)


def recording_from_text(
    text: str,
    where: str,
    rate_hz: float | None = None,
    *,
    strict: bool = False,
    device: str | None = None,
) -> Recording:
    """:func:`read_recording` of a file's text (``where`` names it in messages)."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise RecordingError(f"{where}: empty file, expected a header line")
    layout = _parse_header(header, where)
    _check_rate(layout, rate_hz, where)
    numeric = ([layout.time_index] if layout.time_index is not None else []) + list(
        layout.axis_index
    )
    data = None
    if layout.label_index is None and layout.device_index is None:
        data = _parse_numeric_fast(text, len(header))
    if data is not None:
        data, labels, devices = data[:, numeric], [], []
    else:
        data, labels, devices = _parse_rows(rows, header, layout, numeric, where)
    if devices or device is not None:
        data, labels, devices = _one_device(data, labels, devices, device, where)
    return _to_recording(data, labels, devices, layout, rate_hz, where, strict)


def _check_rate(layout: _Layout, rate_hz: float | None, where: str) -> None:
    if rate_hz is not None and not (math.isfinite(rate_hz) and rate_hz > 0):
        raise RecordingError(
            f"{where}: the sample rate (rate_hz / --rate-hz) must be a positive number of Hz, "
            f"not {rate_hz:g}"
        )
    if layout.time_index is None and rate_hz is None:
        raise RecordingError(
            f"{where}: no timestamp_s column; give the sample rate (rate_hz / --rate-hz)"
        )
    if layout.time_index is not None and rate_hz is not None:
        raise RecordingError(f"{where}: has its own timestamps; do not also give a rate")


def _one_device(data, labels, devices, device: str | None, where: str):
    """The rows of one device of a multi-device recording (all rows when it holds one)."""
    if not devices:
        raise RecordingError(f"{where}: has no device_id column to pick device {device!r} from")
    ids = np.asarray(devices, dtype=str)
    names = sorted(set(ids.tolist()))
    if device is None:
        if len(names) <= 1:
            return data, labels, devices
        raise RecordingError(
            f"{where}: holds {len(names)} devices ({', '.join(names)}); replay one at a time "
            "with --device ID"
        )
    if device not in names:
        raise RecordingError(f"{where}: no rows of device {device!r} (it has {', '.join(names)})")
    keep = ids == device
    return (
        data[keep],
        [x for x, k in zip(labels, keep, strict=True) if k] if labels else labels,
        [x for x, k in zip(devices, keep, strict=True) if k],
    )


def _parse_numeric_fast(text: str, n_columns: int) -> np.ndarray | None:
    """All-numeric files in one numpy call; None when anything is off (then the careful path
    finds and reports the line)."""
    return _parse_numeric_body(text.split("\n", 1)[1] if "\n" in text else "", n_columns)


def _parse_numeric_body(body: str | bytes, n_columns: int) -> np.ndarray | None:
    """Rows without the header (a whole file's, or a block's of :class:`CsvChunks`), parsed
    by polars' CSV reader (4x numpy's ``fromstring`` on this path, the same doubles: both
    round correctly); None when any row is not ``n_columns`` numbers (an empty field, a blank
    line, text)."""
    import polars as pl

    data = body.encode() if isinstance(body, str) else body
    data = (data.replace(b"\r", b"") if b"\r" in data else data).strip()
    if not data:
        return None
    # An empty field (",,", a trailing comma) or a blank line is a null that polars reports
    # (counted below): no scan of the text for them (each cost more than the parse itself).
    schema = {f"c{i}": pl.Float64 for i in range(n_columns)}
    try:
        frame = pl.read_csv(data, has_header=False, schema=schema, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, ValueError):  # text, or a row with more fields
        return None
    if frame.height != data.count(b"\n") + 1 or any(frame.null_count().row(0)):
        return None  # a row with fewer fields, or an empty one at a line's end
    return frame.to_numpy()


def _parse_rows(rows, header, layout: _Layout, numeric: list[int], where: str, first_line=2):
    values, labels, devices = [], [], []
    for line_no, row in enumerate(rows, start=first_line):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise RecordingError(
                f"{where}:{line_no}: expected {len(header)} fields, got {len(row)}"
            )
        try:
            values.append([float(row[i]) for i in numeric])
        except ValueError as exc:
            raise RecordingError(f"{where}:{line_no}: not a number: {exc}") from exc
        if layout.label_index is not None:
            labels.append(row[layout.label_index].strip())
        if layout.device_index is not None:
            devices.append(row[layout.device_index].strip())
    return np.asarray(values, dtype=np.float64).reshape(-1, len(numeric)), labels, devices


def _to_recording(
    data, labels, devices, layout: _Layout, rate_hz, where: str, strict: bool
) -> Recording:
    if not len(data):
        raise RecordingError(f"{where}: no samples after the header")
    bad = ~np.isfinite(data).all(axis=1)
    if bad.any():
        raise RecordingError(f"{where}:{int(np.argmax(bad)) + 2}: non-finite value (NaN/inf)")
    repair = None
    if layout.time_index is not None:
        t, data = data[:, 0] * layout.time_scale, data[:, 1:]
        back = np.diff(t) <= 0
        if back.any() and not strict:
            from gaitedge.preprocess import repair_timestamps

            t, data, repair = repair_timestamps(t, data)
        elif back.any():
            i = int(np.argmax(back)) + 1
            raise RecordingError(
                f"{where}:{i + 2}: timestamp {t[i]:.6f} s does not increase "
                f"(previous {t[i - 1]:.6f} s)"
            )
    else:
        t = np.arange(len(data)) / float(rate_hz)
    imu = np.empty_like(data)
    imu[:, :3] = accel_to_m_s2(data[:, :3], layout.accel_unit)
    if layout.gyro_unit is not None:
        imu[:, 3:] = gyro_to_rad_s(data[:, 3:], layout.gyro_unit)
    return Recording(
        timestamp_s=t,
        imu=imu,
        label=np.asarray(labels) if layout.label_index is not None else None,
        device_id=np.asarray(devices) if layout.device_index is not None else None,
        repair=repair,
    )


# Text parsed at a time by CsvChunks: ~35 k rows of a canonical CSV, a few MB of arrays.
CHUNK_BYTES = 4 << 20


class CsvChunks:
    """A recording CSV read block by block, in canonical units: memory bounded by
    ``chunk_bytes`` however long the file (a week of ``listen --record`` is gigabytes).

    Iterating gives :class:`Recording` chunks whose concatenation is what
    :func:`read_recording` returns in one piece: the same parsing, units and refusals (the line
    named is the file's), and stamps repaired by the same ``TimestampRepair``, fed block by
    block (it holds back only its newest run of tied stamps). The header is checked when the
    object is made, so a bad file is refused before anything streams. A file of several
    devices read without ``device`` is refused at the first row of a second device.

    Args:
        path, rate_hz, strict, device: as :func:`read_recording`.
        chunk_bytes: the text read at a time (a chunk holds the whole lines in it).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        rate_hz: float | None = None,
        *,
        strict: bool = False,
        device: str | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        from gaitedge.preprocess import TimestampRepair

        self.path, self.where = Path(path), str(path)
        self.rate_hz, self.device, self.chunk_bytes = rate_hz, device, chunk_bytes
        try:
            self._file = self.path.open("rb")
            first = self._file.readline()
        except OSError as exc:
            raise RecordingError(f"{self.where}: cannot read: {exc}") from exc
        header = next(csv.reader([self._text(first, 1).lstrip("\ufeff")]), None)
        if not header or not "".join(header).strip():
            self.close()
            raise RecordingError(f"{self.where}: empty file, expected a header line")
        self.header = header
        try:
            self.layout = layout = _parse_header(header, self.where)
            _check_rate(layout, rate_hz, self.where)
        except RecordingError:
            self.close()
            raise
        self._numeric = ([layout.time_index] if layout.time_index is not None else []) + list(
            layout.axis_index
        )
        self._repair = TimestampRepair() if layout.time_index is not None and not strict else None
        self._line = 2  # the file's line number of the next row
        self._rows = 0  # rows kept so far (the sample index of a file without times)
        self._last_t: float | None = None
        self._devices: set[str] = set()
        self._held_labels = np.zeros(0, dtype=str)  # labels of the samples repair holds back
        self._held_devices = np.zeros(0, dtype=str)

    @property
    def repair(self):
        """What timestamp repair changed so far (``RepairStats``), or None (strict, no times)."""
        return self._repair.stats if self._repair is not None else None

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CsvChunks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Recording]:
        carry = b""
        try:
            while True:
                data = self._file.read(self.chunk_bytes)
                block, carry = carry + data, b""
                if data:
                    cut = block.rfind(b"\n") + 1
                    block, carry = block[:cut], block[cut:]
                chunk = self._block(block) if block else None
                if chunk is not None and len(chunk):
                    yield chunk
                if not data:
                    break
            tail = self._flush()
            if tail is not None and len(tail):
                yield tail
        finally:
            self.close()
        if not self._rows and self.device is not None and self._devices:
            raise RecordingError(
                f"{self.where}: no rows of device {self.device!r} "
                f"(it has {', '.join(sorted(self._devices))})"
            )
        if not self._rows:
            raise RecordingError(f"{self.where}: no samples after the header")

    def _text(self, data: bytes, line: int) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = line + data[: exc.start].count(b"\n")
            raise RecordingError(f"{self.where}:{at}: cannot read: {exc}") from exc

    def _block(self, raw: bytes) -> Recording | None:
        layout, first = self.layout, self._line
        data = None
        if layout.label_index is None and layout.device_index is None:
            data = _parse_numeric_body(raw, len(self.header))
        if data is not None:  # numbers throughout: ASCII, so no text to decode
            self._line += raw.count(b"\n")
            data, labels, devices = data[:, self._numeric], [], []
        else:
            text = self._text(raw, first)
            self._line += text.count("\n")
            rows = csv.reader(io.StringIO(text))
            data, labels, devices = _parse_rows(
                rows, self.header, layout, self._numeric, self.where, first
            )
        labels = np.asarray(labels, dtype=str)
        devices = np.asarray(devices, dtype=str)
        if layout.device_index is not None or self.device is not None:
            data, labels, devices = self._one_device(data, labels, devices)
        bad = ~np.isfinite(data).all(axis=1)
        if bad.any():
            raise RecordingError(
                f"{self.where}:{first + int(np.argmax(bad))}: non-finite value (NaN/inf)"
            )
        n = len(data)
        if layout.time_index is not None:
            t, x = data[:, 0] * layout.time_scale, data[:, 1:]
            if self._repair is None:
                self._check_increasing(t, first)
            else:
                labels = np.concatenate([self._held_labels, labels])
                devices = np.concatenate([self._held_devices, devices])
                t, x = self._repair.process(t, x)
                labels, self._held_labels = labels[: len(t)], labels[len(t) :]
                devices, self._held_devices = devices[: len(t)], devices[len(t) :]
        else:
            t, x = (self._rows + np.arange(n)) / float(self.rate_hz), data
        self._rows += n
        return self._recording(t, x, labels, devices)

    def _one_device(self, data, labels, devices):
        if self.layout.device_index is None:
            raise RecordingError(
                f"{self.where}: has no device_id column to pick device {self.device!r} from"
            )
        self._devices.update(np.unique(devices).tolist())
        if self.device is None:
            if len(self._devices) > 1:
                raise RecordingError(
                    f"{self.where}: holds {len(self._devices)} devices "
                    f"({', '.join(sorted(self._devices))}); replay one at a time with --device ID"
                )
            return data, labels, devices
        keep = devices == self.device
        return data[keep], labels[keep] if len(labels) else labels, devices[keep]

    def _check_increasing(self, t: np.ndarray, first: int) -> None:
        """``strict``: refuse the first stamp that does not increase (across blocks too)."""
        prev = np.concatenate(([-np.inf if self._last_t is None else self._last_t], t[:-1]))
        back = t <= prev
        if back.any():
            i = int(np.argmax(back))
            raise RecordingError(
                f"{self.where}:{first + i}: timestamp {t[i]:.6f} s does not increase "
                f"(previous {prev[i]:.6f} s)"
            )
        if len(t):
            self._last_t = float(t[-1])

    def _flush(self) -> Recording | None:
        if self._repair is None:
            return None
        t, x = self._repair.flush()
        return self._recording(t, x, self._held_labels, self._held_devices)

    def _recording(self, t, x, labels, devices) -> Recording:
        layout = self.layout
        imu = np.empty_like(x)
        imu[:, :3] = accel_to_m_s2(x[:, :3], layout.accel_unit)
        if layout.gyro_unit is not None:
            imu[:, 3:] = gyro_to_rad_s(x[:, 3:], layout.gyro_unit)
        return Recording(
            timestamp_s=t,
            imu=imu,
            label=labels if layout.label_index is not None else None,
            device_id=devices if layout.device_index is not None else None,
        )


# Stamps at or after this are seconds since 1970 (1973-03-03); smaller ones count from a
# stream's or a recording's start (a device's clock, ``listen``'s stream time, HAPT).
EPOCH_STAMPS_AFTER_S = 1e8


class RecordingWriter:
    """Append samples to a canonical recording CSV while streaming.

    Flushes (and fsyncs) whenever the stream time has advanced ``flush_interval_s`` since the
    last flush, so a crash loses at most that much. Appending to an existing file checks that
    its header matches.

    ``wall_clock`` (``listen --record``): a device whose stamps count from its stream's start
    is written on the wall clock, in UTC seconds since 1970: its first chunk anchors its
    stream time (its last sample: now), so a session appended to the file keeps the gap
    before it (it restarted at 0: read back as a clock reset, the gap lost) and the file
    carries its dates (``summarize``). Stamps already since 1970 are written as they are.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        with_label: bool = False,
        with_device_id: bool = False,
        flush_interval_s: float = 1.0,
        wall_clock: bool = False,
    ) -> None:
        self.path = Path(path)
        self.wall_clock = wall_clock
        self._offsets: dict[str, float] = {}  # device -> wall clock minus its stream time
        extra = (["label"] if with_label else []) + (["device_id"] if with_device_id else [])
        self.header = list(CANONICAL_HEADER) + extra
        # A device without a gyroscope records acceleration alone ([N, 3]): the header then has
        # no gyro_* columns (decided by the first samples written to a new file).
        self._acc_only_header = list(CANONICAL_HEADER[:4]) + extra
        self.flush_interval_s = flush_interval_s
        self.rows_written = 0
        self._last_flush_t: float | None = None
        try:
            exists = self.path.exists() and self.path.stat().st_size > 0
            if exists:
                with self.path.open(encoding="utf-8") as f:
                    first = f.readline().strip().split(",")
                if first == self._acc_only_header:
                    self.header = first
                elif first != self.header:
                    raise RecordingError(
                        f"{self.path}: cannot append, header {first} differs from {self.header}"
                    )
            # Motion data of an identifiable person: created 0600 (gaitedge.private).
            self._file = open_private_append(self.path, newline="")
        except OSError as exc:  # a folder, a read-only place: one line naming the file
            raise OSError(
                f"recording file {self.path}: cannot write: {exc.strerror or exc}"
            ) from exc
        self._header_pending = not exists

    def write(
        self,
        timestamp_s: np.ndarray,
        imu: np.ndarray,
        label: str | np.ndarray | None = None,
        device_id: str | np.ndarray | None = None,
    ) -> None:
        """Append [N] timestamps and [N, 6] samples in canonical units ([N, 3]: acceleration
        alone, from a device without a gyroscope, into a file of such samples).

        Raises:
            RecordingError: samples of another width than the file's (a 6-axis and an
                accelerometer-only device recorded into one file).
        """
        t = np.asarray(timestamp_s, dtype=np.float64).reshape(-1)
        x = np.asarray(imu, dtype=np.float64).reshape(len(t), -1)
        if self.wall_clock and len(t):
            t = t + self._offset(str(device_id), float(t[-1]))
        if self._header_pending:
            if x.shape[1] == 3:
                self.header = self._acc_only_header
            self._write_header()
        axes = sum(h.startswith(("acc_", "gyro_")) for h in self.header)
        if x.shape[1] != axes:
            raise RecordingError(
                f"{self.path}: {x.shape[1]}-axis samples cannot join this {axes}-axis recording "
                "(record a device without a gyroscope into its own file)"
            )
        extra = []
        if "label" in self.header:
            extra.append(np.broadcast_to(np.asarray(label, dtype=str), t.shape))
        if "device_id" in self.header:
            extra.append(np.broadcast_to(np.asarray(device_id, dtype=str), t.shape))
        # repr() is the shortest text that reads back as the same float64: no loss (stamps
        # too: epoch seconds at 6 decimals lost a device's sub-microsecond stamps, and a
        # converted export then replayed with other probabilities than the export itself).
        lines = []
        for i, (stamp, row) in enumerate(zip(t.tolist(), x.tolist(), strict=True)):
            fields = [repr(stamp), *map(repr, row)]
            fields.extend(str(col[i]) for col in extra)
            lines.append(",".join(fields))
        if lines:
            self._file.write("\n".join(lines) + "\n")
            self.rows_written += len(lines)
            if self._last_flush_t is None:
                self._last_flush_t = float(t[0])
            if t[-1] - self._last_flush_t >= self.flush_interval_s:
                self._sync()
                self._last_flush_t = float(t[-1])

    def _offset(self, device: str, newest_s: float) -> float:
        offset = self._offsets.get(device)
        if offset is None:
            offset = 0.0 if newest_s >= EPOCH_STAMPS_AFTER_S else time.time() - newest_s
            self._offsets[device] = offset
        return offset

    def _write_header(self) -> None:
        self._header_pending = False
        self._file.write(",".join(self.header) + "\n")
        self._sync()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if not self._file.closed:
            if self._header_pending:  # nothing written: the 6-axis header alone, as before
                self._write_header()
            self._sync()
            self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_recording(path: str | os.PathLike, recording: Recording) -> None:
    """Write a whole recording in the canonical format (replacing the file)."""
    Path(path).unlink(missing_ok=True)
    with RecordingWriter(
        path,
        with_label=recording.label is not None,
        with_device_id=recording.device_id is not None,
    ) as w:
        w.write(recording.timestamp_s, recording.imu, recording.label, recording.device_id)


def write_chunks(path: str | os.PathLike, chunks: Iterable[Recording]) -> tuple[int, float]:
    """Write a recording's chunks (``gaitedge.formats.open_chunks``) as one canonical CSV,
    replacing the file; memory bounded by a chunk. A chunk that fails to read part way removes
    the partial file (the error is raised). Returns the samples written and the duration (s).
    """
    path = Path(path)
    chunks = iter(chunks)
    first = next(chunks, None)
    if first is None:
        raise RecordingError(f"{path}: nothing to write")
    path.unlink(missing_ok=True)
    n, t0, t1 = 0, float(first.timestamp_s[0]), float(first.timestamp_s[0])
    try:
        with RecordingWriter(
            path, with_label=first.label is not None, with_device_id=first.device_id is not None
        ) as w:
            for chunk in itertools.chain([first], chunks):
                w.write(chunk.timestamp_s, chunk.imu, chunk.label, chunk.device_id)
                n += len(chunk)
                t1 = float(chunk.timestamp_s[-1]) if len(chunk) else t1
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return n, t1 - t0


def describe_recording(recording: Recording, max_gap_s: float = 0.2) -> dict:
    """A summary for people: samples, duration, median rate, gaps longer than ``max_gap_s``."""
    dt = np.diff(recording.timestamp_s)
    gaps = np.flatnonzero(dt > max_gap_s)
    summary = {
        "samples": len(recording),
        "duration_s": round(recording.duration_s, 3),
        "median_rate_hz": round(recording.median_rate_hz, 3),
        "gaps": [
            {"t_s": round(float(recording.timestamp_s[i]), 3), "length_s": round(float(dt[i]), 3)}
            for i in gaps
        ],
        "acc_norm_median_m_s2": round(
            float(np.median(np.linalg.norm(recording.imu[:, :3], axis=1))), 3
        ),
    }
    if recording.repair is not None:
        summary["timestamp_repair"] = {
            "tied": recording.repair.tied,
            "backward_jitter": recording.repair.backward_jitter,
            "clock_resets": recording.repair.clock_resets,
            "outliers": recording.repair.outliers,
        }
    if recording.source is not None:
        summary["source"] = recording.source.to_dict()
    if recording.label is not None:
        names, counts = np.unique(recording.label, return_counts=True)
        summary["labels"] = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    return summary
