"""One home for the rules every reader shares: units, sign conventions, gravity, and the join of
sensors sampled on separate clocks and rates onto one timeline.

* **Units**: a reader names the unit its file wrote (``g``, ``m/s^2``, ``deg/s``, ...);
  :func:`make_series` converts through ``gaitedge.units``.
* **Sign**: the canonical convention is Android's (and HAPT's, SisFall's): an accelerometer
  reports specific force, so a device lying flat, screen up, reads +9.81 m/s² on z. Apple's
  CoreMotion reports the opposite (-1 g on z when flat): :attr:`Convention.IOS` negates
  acceleration and gravity, never the gyroscope (same sign on both platforms).
* **Gravity**: the model was trained on acceleration with gravity. A file holding acceleration
  without gravity is joined with its gravity series (:func:`total_acceleration`); without one the
  recording is refused, never guessed.
* **Join**: :func:`to_recording` repairs each series' stamps (ties, batches, jitter: the chain's
  ``repair_timestamps``), takes the faster sensor's stamps as the timeline, interpolates the
  other onto it within the span both cover (no extrapolation), and leaves out the instants where
  the other sensor has a hole (counted in the rules ``inspect`` prints).
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from gaitedge.cores import pieces, run_all
from gaitedge.formats.base import (
    Export,
    FormatError,
    SensorInfo,
    SensorKind,
    Series,
    SourceInfo,
    StreamedExport,
)
from gaitedge.recording import Recording
from gaitedge.units import (
    AccelUnit,
    GyroUnit,
    accel_to_m_s2,
    gyro_to_rad_s,
    parse_accel_unit,
    parse_gyro_unit,
)

log = logging.getLogger(__name__)

# A hole in the interpolated sensor longer than this many of its own sample intervals (or
# HOLE_MIN_S) is not bridged by the join: those instants are left out, and the chain's gap
# handling sees the gap as it would live.
HOLE_INTERVALS = 4.0
HOLE_MIN_S = 0.05
# A sensor slower than this is said so by ``inspect`` (the model runs at 50 Hz).
MIN_RATE_HZ = 20.0


class Convention(str, enum.Enum):
    """How a file signs acceleration and gravity."""

    ANDROID = "android"  # flat, screen up: +9.81 m/s² on z (canonical)
    IOS = "ios"  # flat, screen up: -1 g on z (CoreMotion)


def make_series(
    kind: SensorKind,
    t_s: np.ndarray,
    xyz: np.ndarray,
    *,
    unit: str,
    where: str,
    convention: Convention = Convention.ANDROID,
) -> Series:
    """A series in canonical units and sign from what a file wrote.

    Args:
        kind: what the columns measure.
        t_s: [N] times in seconds.
        xyz: [N, 3] as written (x, y, z order: a reader reorders by column name first).
        unit: the file's unit (``g``, ``G``, ``m/s^2``, ``m/(s^2)``, ``mG``, ``rad/s``,
            ``deg/s``, ``dps``, ``d/s``).
        where: the file, for messages.
        convention: the file's sign convention for acceleration and gravity.
    """
    xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
    t_s = np.asarray(t_s, dtype=np.float64).reshape(-1)
    if len(t_s) != len(xyz):
        raise FormatError(f"{where}: {len(t_s)} times for {len(xyz)} samples")
    try:
        gyro = kind is SensorKind.GYRO
        parsed = parse_gyro_unit(unit, where) if gyro else parse_accel_unit(unit, where)
    except ValueError as exc:
        raise FormatError(str(exc)) from exc
    if parsed in (GyroUnit.RAD_S, AccelUnit.M_S2):
        values = xyz  # already canonical: no copy (a series is never written to in place)
    else:
        values = gyro_to_rad_s(xyz, parsed) if gyro else accel_to_m_s2(xyz, parsed)
    if not gyro and convention is Convention.IOS:
        values = -values
    return Series(kind=kind, t_s=t_s, xyz=values, where=where, unit=unit)


def _check_finite(t: np.ndarray, x: np.ndarray, where: str, before: int = 0) -> None:
    """Refuse a NaN or inf, naming its sample (``before``: samples of the series before
    these). A non-finite value anywhere makes a sum non-finite: one pass each, the exact test
    only then."""
    if not (np.isfinite(t.sum()) and np.isfinite(x.sum())):
        bad = ~(np.isfinite(t) & np.isfinite(x).all(axis=1))
        if bad.any():
            raise FormatError(
                f"{where}: sample {before + int(np.argmax(bad)) + 1} has a non-finite value "
                "(NaN/inf)"
            )


def _repaired(series: Series, strict: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The series' stamps and values, stamps strictly increasing (repaired, or refused when
    ``strict``), and the stamps' intervals (``np.diff``, kept for the rate and the holes)."""
    from gaitedge.preprocess import repair_timestamps

    t, x = series.t_s, series.xyz
    _check_finite(t, x, series.where)
    if len(t) < 2:
        raise FormatError(f"{series.where}: {len(t)} sample(s); a recording needs more")
    d = np.diff(t)
    if d.min() <= 0:
        if strict:
            i = int(np.argmax(d <= 0)) + 1
            raise FormatError(
                f"{series.where}: sample {i + 1}: time {t[i]:.6f} s does not increase "
                f"(previous {t[i - 1]:.6f} s)"
            )
        t, x, _ = repair_timestamps(t, x)
        d = np.diff(t)
    return t, x, d


def _median_dt(t: np.ndarray, d: np.ndarray | None = None) -> float:
    """The typical sample interval (the median of at most ~50 000 evenly spread intervals: a
    day at 400 Hz costs no more than a minute); ``d``: ``np.diff(t)`` when already taken."""
    d = np.diff(t) if d is None else d
    return float(np.median(d[:: max(1, len(d) // 50_000)]))


def _rate_hz(d: np.ndarray, dt: float) -> float:
    """A sensor's rate as ``inspect`` reports it: samples per second over its span, less its
    holes (intervals :func:`_cover` calls holes). The median interval alone reads high where
    host stamps jitter around ties (a 51.2 Hz Shimmer: 55.6 Hz); ``dt``: that median."""
    holes = d[d > max(HOLE_INTERVALS * dt, HOLE_MIN_S)]  # few: no copy of the rest
    span = float(d.sum()) - float(holes.sum())
    return (len(d) - len(holes)) / span if span > 0 else 1.0 / dt


def _cover(
    t_new: np.ndarray, t: np.ndarray, d: np.ndarray | None = None, dt: float | None = None
) -> tuple[int, int, list[tuple[int, int]]]:
    """The instants of increasing ``t_new`` that a sensor sampled at ``t`` covers: the index
    range ``[a, b)`` inside its span, less the ranges strictly inside one of its holes (an
    interval longer than :data:`HOLE_INTERVALS` of its median, or :data:`HOLE_MIN_S`; an
    instant on a sample is never inside). ``d``: ``np.diff(t)`` and ``dt``: its
    :func:`_median_dt`, when already taken."""
    d = np.diff(t) if d is None else d
    dt = _median_dt(t, d) if dt is None else dt
    hole = max(HOLE_INTERVALS * dt, HOLE_MIN_S)
    a = int(np.searchsorted(t_new, t[0], side="left"))
    b = int(np.searchsorted(t_new, t[-1], side="right"))
    gaps = np.flatnonzero(d > hole)  # few: one search per hole
    starts = np.searchsorted(t_new, t[gaps], side="right")
    ends = np.searchsorted(t_new, t[gaps + 1], side="left")
    holes = [(int(i), int(j)) for i, j in zip(starts, ends, strict=True) if j > i]
    return a, b, holes


def _interp_onto(
    t_new: np.ndarray, t: np.ndarray, x: np.ndarray, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` at ``t_new`` by linear interpolation (into ``out`` when given), and a mask of the
    instants it covers: inside its span and not inside a hole (see :func:`_cover`)."""
    out = np.empty((len(t_new), x.shape[1])) if out is None else out
    _interp_columns(out, t_new, t, x)
    a, b, holes = _cover(t_new, t)
    ok = np.zeros(len(t_new), dtype=bool)
    ok[a:b] = True
    for i, j in holes:
        ok[i:j] = False
    return out, ok


def _interp_columns(out: np.ndarray, t_new: np.ndarray, t: np.ndarray, x: np.ndarray) -> None:
    """``out[:, c]`` = column ``c`` of ``x`` (sampled at ``t``) at ``t_new``, by np.interp (exact
    at the samples themselves); a long join's pieces on threads (:func:`gaitedge.cores.run_all`)."""
    run_all(_interp_tasks(out, t_new, t, x), len(t_new))


def _interp_tasks(out: np.ndarray, t_new: np.ndarray, t: np.ndarray, x: np.ndarray) -> list:
    """:func:`_interp_columns` as tasks: one np.interp call per column and piece of
    :data:`~gaitedge.cores.PIECE_ROWS` instants (each piece's result written while it is in
    cache; no column-long temporary)."""

    def task(c: int, rows: slice):
        return lambda: out.__setitem__((rows, c), np.interp(t_new[rows], t, x[:, c]))

    return [task(c, rows) for c in range(x.shape[1]) for rows in pieces(len(t_new))]


def _copy_tasks(out: np.ndarray, x: np.ndarray) -> list:
    """``out[:] = x`` as tasks, one per column and piece of rows."""

    def task(c: int, rows: slice):
        return lambda: out.__setitem__((rows, c), x[rows, c])

    return [task(c, rows) for c in range(x.shape[1]) for rows in pieces(len(x))]


def total_acceleration(linear: Series, gravity: Series, strict: bool = False) -> Series:
    """Acceleration with gravity: linear acceleration plus gravity interpolated onto its stamps."""
    t, lin, _ = _repaired(linear, strict)
    tg, g, _ = _repaired(gravity, strict)
    if min(t[-1], tg[-1]) <= max(t[0], tg[0]):
        raise FormatError(
            f"{linear.where} ({t[0]:.3f}-{t[-1]:.3f} s) and {gravity.where} ({tg[0]:.3f}-"
            f"{tg[-1]:.3f} s) do not overlap in time: files of different recordings?"
        )
    g_on, ok = _interp_onto(t, tg, g)
    return Series(
        kind=SensorKind.ACC,
        t_s=t[ok],
        xyz=lin[ok] + g_on[ok],
        where=f"{linear.where} + {gravity.where}",
        unit=linear.unit,
    )


def no_gyroscope(path: str, format_name: str, hints: dict[SensorKind, str]) -> FormatError:
    """The refusal of an export with an accelerometer and no gyroscope."""
    return FormatError(
        f"{path}: this {format_name} export has an accelerometer but no gyroscope; the "
        "model needs both (6 axes) and is never fed zeros"
        + (f"; {hints[SensorKind.GYRO]}" if SensorKind.GYRO in hints else "")
    )


def to_recording(
    export: Export,
    path: str,
    *,
    strict: bool = False,
    hints: dict[SensorKind, str] | None = None,
    accelerometer_only: bool = False,
) -> Recording:
    """The one :class:`Recording` of an export: acceleration with gravity and rotation rate on
    one timeline, in canonical units and sign.

    Args:
        export: what a reader returned.
        path: the path the user named, for messages.
        strict: refuse stamps that do not strictly increase instead of repairing them.
        hints: per missing sensor, what to export instead (the app's own words).
        accelerometer_only: without a gyroscope, the acceleration alone ([N, 3]) instead of
            a refusal (for a model that needs no gyroscope; never padded).

    Raises:
        FormatError: no gyroscope, acceleration without gravity and no gravity series, a
            non-finite value, sensors that never overlap in time.
    """
    hints = hints or {}
    rules = list(export.rules)
    acc = export.get(SensorKind.ACC)
    if acc is None:
        linear, gravity = export.get(SensorKind.LINEAR_ACC), export.get(SensorKind.GRAVITY)
        if linear is None:
            raise FormatError(
                f"{path}: no accelerometer in this {export.format} export"
                + (f"; {hints[SensorKind.ACC]}" if SensorKind.ACC in hints else "")
            )
        if gravity is None:
            raise FormatError(
                f"{path}: {linear.where} is acceleration without gravity and the export has no "
                "gravity to add back (the model needs acceleration with gravity); "
                + hints.get(SensorKind.GRAVITY, "export the gravity sensor too")
            )
        acc = total_acceleration(linear, gravity, strict)
        rules.append(f"acceleration = {linear.where} (without gravity) + {gravity.where}")
    gyro = export.get(SensorKind.GYRO)
    if gyro is None and accelerometer_only:
        return _acceleration_alone(export, path, acc, rules, strict, hints or {})
    if gyro is None:
        raise no_gyroscope(path, export.format, hints)
    ta, xa, da = _repaired(acc, strict)
    tg, xg, dg = _repaired(gyro, strict)
    lo, hi = max(ta[0], tg[0]), min(ta[-1], tg[-1])
    if hi <= lo:
        raise FormatError(
            f"{path}: {acc.where} ({ta[0]:.3f}-{ta[-1]:.3f} s) and {gyro.where} "
            f"({tg[0]:.3f}-{tg[-1]:.3f} s) do not overlap in time: files of different "
            "recordings?"
        )
    dt_acc, dt_gyro = _median_dt(ta, da), _median_dt(tg, dg)
    for what, dt in (("acceleration", dt_acc), ("rotation rate", dt_gyro)):
        if 1.0 / dt < MIN_RATE_HZ:
            # Interpolated onto the faster sensor's stamps, the chain sees that sensor's rate:
            # said here (and as a warning, which replay prints), or no one would say it.
            slow = (
                f"{what} at {1.0 / dt:.3g} Hz, below {MIN_RATE_HZ:g} Hz: interpolated onto the "
                "other sensor's stamps, a rate the model's figures were not measured at"
            )
            rules.append(slow)
            log.warning("%s: %s", path, slow)
    acc_faster = dt_acc <= dt_gyro
    # The faster sensor's stamps are the timeline; the other is interpolated onto those of
    # them it covers (its span, less its holes): both into one [N, 6] array, nothing else
    # copied when there is no hole.
    t, x, t_other, x_other, d_other = (ta, xa, tg, xg, dg) if acc_faster else (tg, xg, ta, xa, da)
    own, other = (slice(0, 3), slice(3, 6)) if acc_faster else (slice(3, 6), slice(0, 3))
    a, b, holes = _cover(t, t_other, d_other, dt_gyro if acc_faster else dt_acc)
    t_in = t[a:b]
    # Column-major: each column written contiguously (the table's columns are contiguous
    # too, and np.interp writes one column at a time): a third of the join's time.
    imu = np.empty((len(t_in), 6), order="F")
    tasks = _copy_tasks(imu[:, own], x[a:b]) + _interp_tasks(imu[:, other], t_in, t_other, x_other)
    run_all(tasks, len(t_in))  # a long export's pieces on threads
    n_outside = len(t) - len(t_in)
    n_holes = sum(j - i for i, j in holes)
    n_ok = len(t_in) - n_holes
    if n_outside:
        rules.append(
            f"{n_outside} samples outside the span both sensors cover left out (no extrapolation)"
        )
    if n_holes:
        rules.append(
            f"{n_holes} samples left out where the "
            f"{'gyroscope' if acc_faster else 'accelerometer'} has a hole"
        )
    if n_ok < 2:
        raise FormatError(f"{path}: fewer than 2 samples where both sensors have data")
    t = t_in
    if holes:
        ok = np.ones(len(t_in), dtype=bool)
        for i, j in holes:
            ok[i - a : j - a] = False
        t, imu = t[ok], imu[ok]
    rules.append(
        f"timeline: the {'accelerometer' if acc_faster else 'gyroscope'}'s stamps; the "
        f"{'gyroscope' if acc_faster else 'accelerometer'} interpolated onto them"
    )
    info = SourceInfo(
        format=export.format,
        path=path,
        sensors=(
            SensorInfo("acceleration", acc.where, acc.unit, len(ta), _rate_hz(da, dt_acc)),
            SensorInfo("rotation rate", gyro.where, gyro.unit, len(tg), _rate_hz(dg, dt_gyro)),
        ),
        rules=tuple(rules),
        start_epoch_s=export.start_epoch_s,
    )
    return Recording(timestamp_s=t, imu=imu, source=info)


def _acceleration_alone(
    export: Export,
    path: str,
    acc: Series,
    rules: list[str],
    strict: bool,
    hints: dict[SensorKind, str],
) -> Recording:
    """An export without a gyroscope, read for a model that needs none: its acceleration (with
    gravity) on its own stamps, [N, 3]; nothing stands in for the gyroscope. The rule says
    what to export for a model that needs one (``hints``: the app's own words)."""
    t, x, d = _repaired(acc, strict)
    dt = _median_dt(t, d)
    hint = (
        f"; for a model that needs it: {hints[SensorKind.GYRO]}" if SensorKind.GYRO in hints else ""
    )
    rules.append(
        "no gyroscope: acceleration alone ([N, 3], for a model that needs no gyroscope; "
        f"never padded with zeros){hint}"
    )
    info = SourceInfo(
        format=export.format,
        path=path,
        sensors=(SensorInfo("acceleration", acc.where, acc.unit, len(t), _rate_hz(d, dt)),),
        rules=tuple(rules),
        start_epoch_s=export.start_epoch_s,
    )
    return Recording(timestamp_s=t, imu=x, source=info)


# --- the same join, streamed --------------------------------------------------------------------

# Samples of each series whose intervals set its rate (and the hole test) in a streamed join:
# the whole-file join takes its median over the whole file, a stream over its start.
STREAM_RATE_SAMPLES = 50_000


@dataclass
class SeriesStream:
    """One sensor's series as a reader streams it: pieces in canonical units and sign, in file
    order (each a :class:`Series` of the same ``kind`` and ``where``)."""

    kind: SensorKind
    where: str
    pieces: Iterator[Series]


def stream_recording(
    streams: list[SeriesStream],
    path: str,
    *,
    strict: bool = False,
    accelerometer_only: bool = False,
) -> Iterator[Recording]:
    """:func:`to_recording` of an export whose series come in pieces: the same samples in the
    same order, memory bounded by a few pieces however long the recording.

    The caller validates first (:func:`to_recording` on the export's opening pieces: the same
    refusals). What differs from the whole-file join only where a recording changes its rate:
    which sensor is the timeline, and how long a hole is, come from each series' first
    :data:`STREAM_RATE_SAMPLES` intervals (the whole-file join: its whole-file median).
    """
    by_kind = {s.kind: s for s in streams}
    acc = by_kind.get(SensorKind.ACC)
    if acc is None:
        linear, gravity = by_kind[SensorKind.LINEAR_ACC], by_kind[SensorKind.GRAVITY]
        acc_pieces = (
            (t, lin + g)
            for t, lin, g in _aligned(
                _repaired_stream(linear, strict), _repaired_stream(gravity, strict)
            )
        )
    else:
        acc_pieces = _repaired_stream(acc, strict)
    gyro = by_kind.get(SensorKind.GYRO)
    if gyro is None:
        if not accelerometer_only:
            raise FormatError(f"{path}: no gyroscope")  # the caller has refused it already
        for t, x in acc_pieces:
            yield Recording(timestamp_s=t, imu=x)
        return
    acc_pieces, acc_dt = _with_rate(acc_pieces)
    gyro_pieces, gyro_dt = _with_rate(_repaired_stream(gyro, strict))
    if acc_dt <= gyro_dt:
        for t, a, g in _aligned(acc_pieces, gyro_pieces):
            yield Recording(timestamp_s=t, imu=_six(a, g))
    else:
        for t, g, a in _aligned(gyro_pieces, acc_pieces):
            yield Recording(timestamp_s=t, imu=_six(a, g))


def streamed_export(
    head: Export,
    streams: list[SeriesStream],
    path: str,
    options,
    hints: dict[SensorKind, str] | None = None,
) -> StreamedExport | None:
    """A reader's ``read_chunks``, from the export its files' first blocks give (``head``: what
    ``read`` makes of them, decisions included) and each series' stream: the head checked by
    :func:`to_recording` (the whole read's refusals), then :func:`stream_recording`. None (read
    whole) when the head alone cannot be joined: the whole read then says what is wrong, or
    that nothing is (sensors that start far apart)."""
    try:
        to_recording(
            head,
            path,
            strict=options.strict,
            hints=hints,
            accelerometer_only=options.accelerometer_only,
        )
    except FormatError:
        return None
    chunks = stream_recording(
        streams, path, strict=options.strict, accelerometer_only=options.accelerometer_only
    )
    return StreamedExport(chunks, head.start_epoch_s)


def _six(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    imu = np.empty((len(a), 6), order="F")
    imu[:, :3], imu[:, 3:] = a, g
    return imu


def _repaired_stream(stream: SeriesStream, strict: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A series' pieces with stamps strictly increasing, as :func:`_repaired` gives the whole
    series (the same ``TimestampRepair``: its output does not depend on the pieces)."""
    from gaitedge.preprocess import TimestampRepair

    repair, last, seen = TimestampRepair(), -np.inf, 0
    for piece in stream.pieces:
        t, x = piece.t_s, piece.xyz
        _check_finite(t, x, stream.where, seen)
        if strict and len(t):
            d = np.diff(t, prepend=last)
            if d.min() <= 0:
                i = int(np.argmax(d <= 0))
                before = t[i - 1] if i else last
                raise FormatError(
                    f"{stream.where}: sample {seen + i + 1}: time {t[i]:.6f} s does not "
                    f"increase (previous {before:.6f} s)"
                )
            last = t[-1]
            seen += len(t)
            yield t, x
            continue
        seen += len(t)
        t, x = repair.process(np.asarray(t, np.float64), np.asarray(x, np.float64))
        if len(t):
            yield t, x
    if not strict:
        t, x = repair.flush()
        if len(t):
            yield t, x


def _with_rate(
    pieces: Iterator[tuple[np.ndarray, np.ndarray]],
) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], float]:
    """The pieces (unchanged) and the median interval of their first
    :data:`STREAM_RATE_SAMPLES` samples (read ahead, then handed out first)."""
    head, n = [], 0
    for piece in pieces:
        head.append(piece)
        n += len(piece[0])
        if n > STREAM_RATE_SAMPLES:
            break
    if not head:
        return iter(()), np.inf
    t = np.concatenate([p[0] for p in head])[: STREAM_RATE_SAMPLES + 1]
    dt = _median_dt(t) if len(t) > 1 else np.inf
    return itertools.chain(head, pieces), dt


def _aligned(
    timeline: Iterator[tuple[np.ndarray, np.ndarray]],
    other: Iterator[tuple[np.ndarray, np.ndarray]],
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(t, x, other at t)`` for the timeline's stamps that the other series covers (its
    span, less its holes), the other interpolated as :func:`to_recording` does, piece by piece."""
    other, other_dt = _with_rate(other)
    hole = max(HOLE_INTERVALS * other_dt, HOLE_MIN_S) if np.isfinite(other_dt) else np.inf
    ot, ox = np.empty(0), np.empty((0, 3))
    first: float | None = None
    done = False
    for t, x in timeline:
        while not done and (not len(ot) or ot[-1] < t[-1]):
            piece = next(other, None)
            if piece is None:
                done = True
                break
            if first is None:
                first = float(piece[0][0])
            ot, ox = np.concatenate([ot, piece[0]]), np.concatenate([ox, piece[1]])
        if first is None:
            return  # the other series has no samples
        # Inside its span: from its first sample to its newest (all of the piece unless the
        # other has ended: what is past its last sample is outside the span).
        a = int(np.searchsorted(t, first, side="left"))
        b = int(np.searchsorted(t, ot[-1], side="right"))
        t_in, x_in = t[a:b], x[a:b]
        if len(t_in):
            on = np.empty((len(t_in), ox.shape[1]))
            _interp_columns(on, t_in, ot, ox)
            d = np.diff(ot)
            gaps = np.flatnonzero(d > hole)
            if len(gaps):
                keep = np.ones(len(t_in), dtype=bool)
                starts = np.searchsorted(t_in, ot[gaps], side="right")
                ends = np.searchsorted(t_in, ot[gaps + 1], side="left")
                for i, j in zip(starts, ends, strict=True):
                    keep[i:j] = False
                t_in, x_in, on = t_in[keep], x_in[keep], on[keep]
            if len(t_in):
                yield t_in, x_in, on
            # Keep the other's samples from the newest one at or before this piece's end.
            k = max(int(np.searchsorted(ot, t[-1], side="right")) - 1, 0)
            ot, ox = ot[k:], ox[k:]
        if done and b < len(t):
            return  # past the other's last sample: outside the span from here on
