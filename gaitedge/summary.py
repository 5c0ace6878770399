"""Daily activity summaries of a long recording: what a week of wear comes down to.

A recording streams through the same pipeline ``replay --fast`` runs (same chunks, same chain,
model and smoothing), and three things are kept, each bounded by the recording's length in
seconds, never in samples:

* the **activity timeline**: the activity alerts, each label holding from its ``t_event`` to
  the next one's (what ``replay`` prints), and the fall alerts;
* **non-wear**, from the raw acceleration (:class:`NonWearDetector`): the method of
  biobankAccelerometerAnalysis (Doherty et al. 2017, PLoS ONE 12(2): e0169649): 10-s epochs
  are *stationary* when the standard deviation of each of the three axes is below 13 mg, and
  a run of stationary epochs lasting at least 60 minutes is non-wear. (GGIR's default, van Hees
  2013, judges 60-min windows in 15-min steps and so places a stretch's ends only to within
  15-22 minutes; the run of epochs places them to 10 s.)
* which seconds hold samples at all (the rest is ``no_data``).

Every second then gets one category (non-wear and no data over the activity), seconds are
binned by local wall-clock day and hour (:class:`WallClock`: time zones handled here, once),
and the result is written as CSV (hourly and daily), JSON and one picture of the week.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from gaitedge.alerts import Alert, AlertType
from gaitedge.private import private_dir, write_private
from gaitedge.recording import EPOCH_STAMPS_AFTER_S, Recording
from gaitedge.units import STANDARD_GRAVITY_M_S2

# The model's activity classes as the field reports them (stairs: up and down together).
ACTIVITY_GROUPS = {
    "LAYING": "lying",
    "SITTING": "sitting",
    "STANDING": "standing",
    "WALKING": "walking",
    "WALKING_UPSTAIRS": "stairs",
    "WALKING_DOWNSTAIRS": "stairs",
}
UNKNOWN = "unknown"  # worn, but no activity reported yet (the first seconds, calibration)
NONWEAR = "nonwear"
NO_DATA = "no_data"
COLOURS = {
    "lying": "#4c72b0",
    "sitting": "#8fb3de",
    "standing": "#55a868",
    "walking": "#dd8452",
    "stairs": "#c44e52",
    UNKNOWN: "#bbbbbb",
    NONWEAR: "#eeeeee",
    NO_DATA: "#ffffff",
}
EPOCH = dt.datetime(1970, 1, 1)
# Stamps at or after this are seconds since 1970 (1973-03-03); smaller ones count from the
# recording's start (a device's stream time, HAPT).
ABSOLUTE_AFTER_S = EPOCH_STAMPS_AFTER_S
# Epoch seconds of 2200-01-01: a first stamp later is in another unit (ms, ns).
LATEST_EPOCH_S = 7_258_118_400.0


# The longest span a summary covers (its per-second timeline is built whole): a year of wear.
MAX_SPAN_S = 366 * 86400.0


class SummaryError(ValueError):
    """A summary that cannot be made as asked (a time zone unknown, ``--tz`` on a local clock)."""


@dataclass(frozen=True)
class NonWearConfig:
    """biobankAccelerometerAnalysis's non-wear rule (see the module docstring)."""

    epoch_s: float = 10.0
    std_mg: float = 13.0
    min_run_s: float = 3600.0


class NonWearDetector:
    """Stationary 10-s epochs and the runs of them that are non-wear, fed chunk by chunk.

    Epochs count from stream time 0; an epoch split across chunks is carried over, so any
    chunking gives the same epochs. An epoch without samples is not stationary (a gap breaks
    a run). Memory: one byte per epoch.
    """

    def __init__(self, cfg: NonWearConfig | None = None) -> None:
        self.cfg = cfg or NonWearConfig()
        self.stationary = bytearray()  # [epochs] 1 = stationary
        self._carry_t = np.zeros(0)
        self._carry_acc = np.zeros((0, 3))

    def process(self, t_s: np.ndarray, acc_m_s2: np.ndarray) -> None:
        """Feed [N] stream times (s, from 0, increasing) and [N, 3] acceleration in m/s²."""
        t = np.concatenate([self._carry_t, t_s])
        acc = np.concatenate([self._carry_acc, acc_m_s2])
        if not len(t):
            return
        epoch = np.floor(t / self.cfg.epoch_s).astype(np.int64)  # [N]
        done = epoch < epoch[-1]  # the last epoch may go on in the next chunk
        self._epochs(epoch[done], acc[done])
        self._carry_t, self._carry_acc = t[~done], acc[~done]

    def finish(self) -> list[tuple[float, float]]:
        """The non-wear stretches ``(start_s, end_s)`` in stream time."""
        if len(self._carry_t):
            epoch = np.floor(self._carry_t / self.cfg.epoch_s).astype(np.int64)
            self._epochs(epoch, self._carry_acc)
            self._carry_t, self._carry_acc = np.zeros(0), np.zeros((0, 3))
        flags = np.frombuffer(bytes(self.stationary), dtype=np.uint8).astype(np.int8)
        edges = np.diff(np.concatenate([[0], flags, [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        min_epochs = self.cfg.min_run_s / self.cfg.epoch_s
        e = self.cfg.epoch_s
        return [(a * e, b * e) for a, b in zip(starts, ends, strict=True) if b - a >= min_epochs]

    def _epochs(self, epoch: np.ndarray, acc: np.ndarray) -> None:
        if not len(epoch):
            return
        ids, first = np.unique(epoch, return_index=True)  # [E]
        n = np.diff(np.append(first, len(epoch)))[:, None]  # [E, 1]
        mg = acc * (1000.0 / STANDARD_GRAVITY_M_S2)  # [N, 3]
        mean = np.add.reduceat(mg, first, axis=0) / n  # [E, 3]
        dev = mg - np.repeat(mean, n[:, 0], axis=0)
        std = np.sqrt(np.add.reduceat(dev * dev, first, axis=0) / n)  # [E, 3] (population)
        still = (std < self.cfg.std_mg).all(axis=1)
        if ids[-1] >= len(self.stationary):
            self.stationary.extend(bytes(int(ids[-1]) + 1 - len(self.stationary)))
        flags = np.frombuffer(self.stationary, dtype=np.uint8)
        flags[ids] = still


class Coverage:
    """Which whole seconds of stream time hold at least one sample (one byte per second)."""

    def __init__(self) -> None:
        self.seconds = bytearray()

    def process(self, t_s: np.ndarray) -> None:
        if not len(t_s):
            return
        sec = np.unique(np.floor(t_s).astype(np.int64))
        if sec[-1] >= len(self.seconds):
            self.seconds.extend(bytes(int(sec[-1]) + 1 - len(self.seconds)))
        np.frombuffer(self.seconds, dtype=np.uint8)[sec] = 1


@dataclass(frozen=True)
class WallClock:
    """Stream time -> local wall-clock time: the one place time zones are handled.

    Attributes:
        start_s: the first sample: seconds since 1970 in UTC (``tz`` given), or on the local
            wall clock itself (``tz`` None: a device-local clock such as an Axivity's, or
            ``--start``), or None when the recording holds no absolute time (days are then
            counted ``day 1``, ``day 2``, ... from its first sample at 00:00).
        tz: the IANA zone the UTC stamps are shown in, or None.
    """

    start_s: float | None
    tz: str | None = None

    @classmethod
    def of(
        cls,
        first_stamp_s: float,
        *,
        local_clock: bool = False,
        start_epoch_s: float | None = None,
        tz: str | None = None,
        start: dt.datetime | None = None,
    ) -> WallClock:
        """The clock of a recording whose first stamp is ``first_stamp_s``.

        ``start``: the local wall-clock time of the first sample, for a recording that holds
        no absolute time. ``tz``: the zone for stamps in UTC (default UTC).
        """
        if tz is not None:
            try:
                ZoneInfo(tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise SummaryError(
                    f"unknown time zone {tz!r} (an IANA name: Europe/Berlin)"
                ) from exc
        if start is not None:
            if tz is not None:
                raise SummaryError("--start is local wall-clock time already; leave out --tz")
            if start.utcoffset() is not None:  # it was dropped: the hours were the offset's
                raise SummaryError(
                    f"--start is the local wall-clock time the recording began, without an "
                    f"offset (got {start.isoformat()}: give {start:%Y-%m-%dT%H:%M:%S})"
                )
            return cls((start - EPOCH).total_seconds(), None)
        if local_clock:
            if tz is not None:
                raise SummaryError(
                    "this recording's stamps are the device's local clock (no time zone); "
                    "leave out --tz"
                )
            return cls(first_stamp_s, None)
        if first_stamp_s >= LATEST_EPOCH_S:
            raise SummaryError(
                f"its first stamp is {first_stamp_s:.6g} s, after the year 2200: epoch "
                "milliseconds or nanoseconds read as seconds? (name the unit: a timestamp_ms "
                "header, or --layout)"
            )
        if first_stamp_s >= ABSOLUTE_AFTER_S:
            return cls(first_stamp_s, tz or "UTC")
        if start_epoch_s is not None:
            return cls(start_epoch_s, tz or "UTC")
        if tz is not None:
            raise SummaryError(
                "this recording holds no date (its stamps count from its start): --tz has "
                "nothing to convert; give --start with the local date and time it began"
            )
        return cls(None, None)

    def local(self, t_s: float) -> dt.datetime:
        """The naive local wall-clock time of stream time ``t_s``."""
        if self.start_s is None:
            return EPOCH + dt.timedelta(seconds=t_s)
        if self.tz is None:
            return EPOCH + dt.timedelta(seconds=self.start_s + t_s)
        utc = dt.datetime.fromtimestamp(self.start_s + t_s, dt.timezone.utc)
        return utc.astimezone(ZoneInfo(self.tz)).replace(tzinfo=None)

    def day(self, local: dt.datetime) -> str:
        if self.start_s is None:
            return f"day {(local - EPOCH).days + 1}"
        return local.date().isoformat()

    def stamp(self, local: dt.datetime) -> str:
        """A local time as the summary writes it: ISO, or ``day N HH:MM:SS`` on a relative
        clock (not a 1970 date)."""
        if self.start_s is None:
            return f"{self.day(local)} {local:%H:%M:%S}"
        return local.isoformat(timespec="seconds")

    def to_dict(self) -> dict:
        if self.start_s is None:
            return {"clock": "relative: the first sample is day 1, 00:00"}
        if self.tz is None:
            return {"clock": "local wall clock", "start": self.local(0.0).isoformat()}
        return {"clock": "UTC stamps", "tz": self.tz, "start": self.local(0.0).isoformat()}


@dataclass
class Summary:
    """What a recording comes down to, per local day and hour.

    Attributes:
        columns: the categories, in order (activity groups, unknown, nonwear, no_data).
        hours: [(day, hour, minutes per column [C], falls)] for every hour of every day, 24
            rows a day (a day that DST shortens has an hour of 0 minutes; one it lengthens
            holds up to 120 minutes in its repeated hour).
        minutes_by_label: the model's own classes (``WALKING_UPSTAIRS``...), minutes worn.
        falls: ``{"t_s", "local", "p"}`` per fall alert.
        nonwear: the non-wear stretches ``(start_s, end_s)`` in stream time.
        day_minutes: per day, [1440] the category index of each wall-clock minute (the
            picture), -1 where the day has no such minute.
    """

    recording: str
    clock: WallClock
    duration_s: float
    columns: list[str]
    hours: list[tuple[str, int, np.ndarray, int]]
    minutes_by_label: dict[str, float]
    falls: list[dict]
    nonwear: list[tuple[float, float]]
    nonwear_cfg: NonWearConfig
    day_minutes: dict[str, np.ndarray] = field(default_factory=dict)

    def days(self) -> list[tuple[str, np.ndarray, int]]:
        """Per day: minutes per column [C] and falls."""
        out: dict[str, list] = {}
        for day, _, minutes, falls in self.hours:
            row = out.setdefault(day, [np.zeros(len(self.columns)), 0])
            row[0] += minutes
            row[1] += falls
        return [(d, m, f) for d, (m, f) in out.items()]

    def totals(self) -> dict[str, float]:
        total = sum((m for _, m, _ in self.days()), np.zeros(len(self.columns)))
        out = {c: round(float(v), 2) for c, v in zip(self.columns, total, strict=True)}
        out["wear"] = round(sum(v for c, v in out.items() if c not in (NONWEAR, NO_DATA)), 2)
        return out

    def to_dict(self) -> dict:
        def minutes(m: np.ndarray) -> dict:
            row = {c: round(float(v), 2) for c, v in zip(self.columns, m, strict=True)}
            row["wear"] = round(sum(v for c, v in row.items() if c not in (NONWEAR, NO_DATA)), 2)
            return row

        return {
            "recording": self.recording,
            **self.clock.to_dict(),
            "duration_s": round(self.duration_s, 3),
            "nonwear_method": {
                "name": "biobankAccelerometerAnalysis (Doherty et al. 2017)",
                "epoch_s": self.nonwear_cfg.epoch_s,
                "std_mg_every_axis_below": self.nonwear_cfg.std_mg,
                "min_run_s": self.nonwear_cfg.min_run_s,
            },
            "totals_min": self.totals(),
            "minutes_by_label": {k: round(v, 2) for k, v in self.minutes_by_label.items()},
            "nonwear": [{"start_s": a, "end_s": b} for a, b in self.nonwear],
            "falls": self.falls,
            "days": [
                {
                    "day": d,
                    "falls": f,
                    **minutes(m),
                    "hours": [
                        {"hour": h, "falls": hf, **minutes(hm)}
                        for hd, h, hm, hf in self.hours
                        if hd == d
                    ],
                }
                for d, m, f in self.days()
            ],
        }

    def write(self, out_dir: Path, stem: str, *, picture: bool = True) -> list[Path]:
        """``<stem>-hourly.csv``, ``<stem>-daily.csv``, ``<stem>-summary.json`` and (``picture``)
        ``<stem>-week.png`` in ``out_dir``; returns the paths written. A person's days are
        health data: the files are the owner's alone (0600, a new folder 0700:
        ``gaitedge.private``), each written whole or not at all."""
        private_dir(out_dir)
        paths = [out_dir / f"{stem}-hourly.csv", out_dir / f"{stem}-daily.csv"]
        header = [f"{c}_min" for c in self.columns] + ["wear_min", "falls"]
        wear = [i for i, c in enumerate(self.columns) if c not in (NONWEAR, NO_DATA)]

        def cells(m: np.ndarray, falls: int) -> list:
            return [f"{v:.2f}" for v in m] + [f"{m[wear].sum():.2f}", falls]

        hourly, daily = io.StringIO(newline=""), io.StringIO(newline="")
        w = csv.writer(hourly)
        w.writerow(["day", "hour", *header])
        w.writerows([d, h, *cells(m, n)] for d, h, m, n in self.hours)
        write_private(paths[0], hourly.getvalue())
        w = csv.writer(daily)
        w.writerow(["day", *header])
        w.writerows([d, *cells(m, n)] for d, m, n in self.days())
        write_private(paths[1], daily.getvalue())
        paths.append(out_dir / f"{stem}-summary.json")
        write_private(paths[-1], json.dumps(self.to_dict(), indent=1) + "\n")
        if picture:
            paths.append(plot_week(self, out_dir / f"{stem}-week.png"))
        return paths


def _category_codes(labels: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    columns = list(dict.fromkeys(ACTIVITY_GROUPS.get(x, x.lower()) for x in labels))
    columns += [UNKNOWN, NONWEAR, NO_DATA]
    by_label = {x: columns.index(ACTIVITY_GROUPS.get(x, x.lower())) for x in labels}
    return columns, by_label


def _seconds(
    n_s: int,
    activity: list[Alert],
    labels: list[str],
    nonwear: list[tuple[float, float]],
    coverage: Coverage,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """[n_s] category code of every second, [n_s] model-class index (-1: none), columns."""
    columns, by_label = _category_codes(labels)
    code = np.full(n_s, columns.index(UNKNOWN), np.int8)
    klass = np.full(n_s, -1, np.int16)
    starts = [round(a.t_event) for a in activity] + [n_s]
    for a, b0, b1 in zip(activity, starts[:-1], starts[1:], strict=True):
        code[b0:b1] = by_label[a.label]
        klass[b0:b1] = labels.index(a.label)
    for a, b in nonwear:
        code[round(a) : round(b)] = columns.index(NONWEAR)
    has = np.frombuffer(bytes(coverage.seconds), np.uint8)[:n_s]
    code[: len(has)][has == 0] = columns.index(NO_DATA)
    code[len(has) :] = columns.index(NO_DATA)
    return code, klass, columns


def build_summary(
    name: str,
    clock: WallClock,
    duration_s: float,
    alerts: list[Alert],
    labels: list[str],
    nonwear: list[tuple[float, float]],
    coverage: Coverage,
    nonwear_cfg: NonWearConfig | None = None,
) -> Summary:
    """The summary of a timeline: every second's category, binned by local day and hour."""
    activity = sorted((a for a in alerts if a.type is AlertType.ACTIVITY), key=lambda a: a.t_event)
    falls = sorted((a for a in alerts if a.type is AlertType.FALL), key=lambda a: a.t_event)
    n_s = max(1, math.ceil(duration_s))
    code, klass, columns = _seconds(n_s, activity, labels, nonwear, coverage)
    worn = code < columns.index(NONWEAR)
    by_label = np.bincount(klass[worn & (klass >= 0)], minlength=len(labels)) / 60.0
    # Minutes on the wall clock's: the first starts at the minute the recording starts in
    # (blocks from the first sample put up to 59 s of each day and hour in the one before).
    lead = clock.local(0.0).second
    n_min = -(-(lead + n_s) // 60)
    padded = np.full(n_min * 60, -1, np.int16)
    padded[lead : lead + n_s] = code
    per_min = np.stack(
        [(padded.reshape(n_min, 60) == c).sum(axis=1) for c in range(len(columns))], axis=1
    )  # [M, C] seconds
    minute_local = [clock.local(60.0 * m - lead) for m in range(n_min)]
    fall_local = [clock.local(a.t_event) for a in falls]
    hours: dict[tuple[str, int], list] = {}
    days: list[str] = []
    for local in minute_local + fall_local:
        if clock.day(local) not in days:
            days.append(clock.day(local))
    for d in days:
        for h in range(24):
            hours[(d, h)] = [np.zeros(len(columns)), 0]
    picture = {d: np.full(1440, -1, np.int16) for d in days}
    for local, secs in zip(minute_local, per_min, strict=True):
        hours[(clock.day(local), local.hour)][0] += secs / 60.0
        if secs.any():
            picture[clock.day(local)][local.hour * 60 + local.minute] = int(np.argmax(secs))
    for local in fall_local:
        hours[(clock.day(local), local.hour)][1] += 1
    return Summary(
        recording=name,
        clock=clock,
        duration_s=duration_s,
        columns=columns,
        hours=[(d, h, m, f) for (d, h), (m, f) in hours.items()],
        minutes_by_label={x: float(v) for x, v in zip(labels, by_label, strict=True)},
        falls=[
            {"t_s": round(a.t_event, 2), "local": clock.stamp(loc), "p": a.p}
            for a, loc in zip(falls, fall_local, strict=True)
        ],
        nonwear=nonwear,
        nonwear_cfg=nonwear_cfg or NonWearConfig(),
        day_minutes=picture,
    )


def summarize(
    pipeline,
    chunks: Iterable[Recording],
    *,
    name: str,
    clock: WallClock,
    device: str = "summary",
    nonwear_cfg: NonWearConfig | None = None,
) -> Summary:
    """Stream ``chunks`` through ``pipeline`` exactly as ``replay --fast`` does, watch the raw
    signal for non-wear and coverage on the way, and summarise.

    ``pipeline``: an open :class:`gaitedge.pipeline.Pipeline`, its mounting as replay starts it
    (stored or cold, calibrating online; or calibrated first: ``runner.calibrate_chunks``).
    """
    from gaitedge.sources import ReplaySource

    source = ReplaySource(chunks=chunks, fast=True, device=device)  # replay's chunks
    detector, coverage = NonWearDetector(nonwear_cfg), Coverage()
    alerts: list[Alert] = []
    end = [0.0]

    async def run() -> None:
        async with source:
            async for chunk in source.chunks():
                if len(chunk.t_s) and chunk.t_s[-1] > MAX_SPAN_S:  # before a second is counted
                    raise SummaryError(
                        f"{name}: its stamps reach {chunk.t_s[-1] / 86400:.0f} days after its "
                        "first (a clock that jumped, or a time column in ms or ns read as "
                        f"seconds?); a summary covers at most {MAX_SPAN_S / 86400:.0f} days"
                    )
                alerts.extend(pipeline.process(chunk))
                detector.process(chunk.t_s, chunk.imu[:, :3])
                coverage.process(chunk.t_s)
                end[0] = float(chunk.t_s[-1])
        alerts.extend(pipeline.finish(device))

    asyncio.run(run())
    labels = list(pipeline.contract.heads.get("activity", ()))
    # The last sample's interval (one sample, or stamps all tied: the model's rate's).
    rate_hz = source.stats.rate_hz or pipeline.contract.chain.sample_rate_hz
    duration_s = end[0] + 1.0 / rate_hz
    return build_summary(
        name, clock, duration_s, alerts, labels, detector.finish(), coverage, nonwear_cfg
    )


def require_matplotlib() -> None:
    """Refuse early (before a long run) when the picture cannot be drawn.

    Raises:
        SummaryError: matplotlib is not installed.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise SummaryError(
            "the week's picture needs matplotlib (pip install matplotlib), or give --no-plot"
        ) from exc


def plot_week(summary: Summary, path: Path) -> Path:
    """One PNG: a row per day, each wall-clock minute coloured by its category, falls marked.

    Raises:
        SummaryError: matplotlib is not installed.
    """
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    days = list(summary.day_minutes)
    grid = np.stack([summary.day_minutes[d] for d in days]).astype(float)  # [D, 1440]
    grid[grid < 0] = np.nan
    colours = [COLOURS.get(c, "#999999") for c in summary.columns]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(days) + 1.4))
    ax.imshow(
        grid,
        aspect="auto",
        interpolation="nearest",
        cmap=ListedColormap(colours),
        vmin=-0.5,
        vmax=len(colours) - 0.5,
        extent=(0, 24, len(days) - 0.5, -0.5),
    )
    for fall in summary.falls:
        local = summary.clock.local(fall["t_s"])
        row = days.index(summary.clock.day(local))
        x = local.hour + local.minute / 60 + local.second / 3600
        ax.plot(x, row, marker="v", color="black", markersize=9, markerfacecolor="#ff2222")
    ax.set_yticks(range(len(days)), days)
    ax.set_xticks(range(0, 25, 3), [f"{h:02d}:00" for h in range(0, 25, 3)])
    ax.set_xlim(0, 24)
    shown = [c for c in summary.columns if c != NO_DATA]
    handles = [Patch(color=COLOURS.get(c, "#999999"), label=c) for c in shown]
    handles.append(
        plt.Line2D(
            [], [], marker="v", ls="", color="black", markerfacecolor="#ff2222", label="fall"
        )
    )
    ax.legend(handles=handles, ncol=len(handles), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    ax.set_title(f"{summary.recording}: activity by wall-clock time")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, dpi=110, format="png")
    plt.close(fig)
    return write_private(path, png.getvalue())
