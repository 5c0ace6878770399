"""The notebook API: read a recording, analyse it, look at it as tables and plots; or follow a
live source's decisions from asyncio code.

    >>> import gaitedge
    >>> rec = gaitedge.read("walk.csv")              # any supported recording or app export
    >>> result = gaitedge.analyse(rec)               # what `gaitedge replay --fast` decides
    >>> result.timeline_frame()                      # pandas DataFrames, when pandas is installed
    >>> result.plot()                                # matplotlib, when it is installed

    >>> async for decision in gaitedge.stream("serial:/dev/ttyACM0"):
    ...     print(decision.t_s, decision.activity, decision.p_fall)

Nothing here re-implements a stage: :func:`analyse` runs the replay session of
``gaitedge replay --fast`` (``ReplaySource`` in fast mode driving the runtime's
:class:`~gaitedge.pipeline.Pipeline` through ``gaitedge.runner.stream``, the mounting from a
stored estimate or cold, calibrated online; ``calibrate_first=True`` calibrates on the whole
recording first, as ``replay --calibrate-first``), and :func:`stream` drives the same pipeline
from a live source. Both only listen to the pipeline: each batch of scored windows is reported
after the alert logic has run on it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import math
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from gaitedge.alerts import Alert, AlertType
from gaitedge.pipeline import DeviceState, Pipeline
from gaitedge.recording import Recording
from gaitedge.sinks import FanOut, ListSink
from gaitedge.sources.base import Source
from gaitedge.windows import Windows

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Scored:
    """Windows a model scored in one engine call: their probabilities per head (the model's
    ``heads``: head name -> class names) and the alerts they raised."""

    windows: Windows
    probs: dict[str, np.ndarray]
    alerts: list[Alert]
    heads: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class ColdWindow:
    """One window the cold-start model scored beside a calibrating device: its probabilities
    per head (the model's ``heads``) and the alerts it raised (marked ``mounting: cold
    start``, as the sinks got them)."""

    probs: dict[str, np.ndarray]
    heads: dict[str, tuple[str, ...]]
    alerts: tuple[Alert, ...]


# Called with (device, what its model scored in one engine call, and the cold-start model's
# windows that end where those do: window end (s, rounded to 0.1 ms) -> ColdWindow).
WindowsCallback = Callable[[str, Scored, dict[float, ColdWindow]], None]


class ObservedPipeline(Pipeline):
    """The runtime's :class:`~gaitedge.pipeline.Pipeline`, also reporting every batch of
    scored windows to ``on_windows`` once the alert logic has run on it (same chain, same
    engine call, same alerts: it only listens), with what the device's cold-start model scored
    beside it while its mounting calibrates."""

    def __init__(self, *args: Any, on_windows: WindowsCallback, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_windows = on_windows
        self._scored: list[tuple[DeviceState, Scored]] = []  # this engine call's, in order
        # Per device (id of its state): the cold-start model's windows not yet matched with
        # the device's own (the two chains' windows may be scored in different calls).
        self._cold: dict[int, dict[float, ColdWindow]] = {}

    def _score(self, made) -> list[Alert]:
        self._scored = []
        alerts = super()._score(made)
        scored, self._scored = self._scored, []
        for state, s in scored:
            if state.parent is not None:  # the companion's: kept for its device's windows
                stash = self._cold.setdefault(id(state.parent), {})
                by = _by_window(s.windows, s.alerts)
                for i, t in enumerate(s.windows.t_end_s.tolist()):
                    row = {h: p[i] for h, p in s.probs.items()}
                    stash[round(t, 4)] = ColdWindow(row, s.heads, tuple(by.get(i, ())))
        for state, s in scored:
            if state.parent is None:  # a device's own model's
                device = next(name for name, d in self.devices.items() if d is state)
                self.on_windows(device, *self._match(state, s))
        return alerts

    def _match(self, state: DeviceState, own: Scored) -> tuple[Scored, dict[float, ColdWindow]]:
        """The cold-start windows that end where ``own``'s do; the alerts of older ones that
        none of the device's windows matched go with ``own``'s (never lost)."""
        stash = self._cold.get(id(state))
        if not stash or not len(own.windows):
            return own, {}
        ends = [round(t, 4) for t in own.windows.t_end_s.tolist()]
        matched = {k: stash.pop(k) for k in ends if k in stash}
        older = [k for k in stash if k <= ends[-1]]
        orphans = [a for k in older for a in stash.pop(k).alerts]
        if orphans:
            own = dataclasses.replace(own, alerts=sorted([*own.alerts, *orphans], key=_at))
        return own, matched

    def _decide(
        self, made, probs: dict[str, np.ndarray], last_peak_g: float | None = None
    ) -> list[Alert]:
        alerts = super()._decide(made, probs, last_peak_g)
        if made.state.parent is not None:  # the companion's, marked as the sinks got them
            heads = dict(self.contract_of(made.state).heads)
            self._scored.append((made.state, Scored(made.windows, probs, alerts, heads)))
        return alerts

    def _uncalibrated_activity(self, name: str, state: DeviceState) -> list[Alert]:
        """A stream that never calibrated ends with its held-back activity alert: reported with
        no window (:func:`decisions` makes it a decision of its own)."""
        alerts = super()._uncalibrated_activity(name, state)
        self._windowless(name, state, alerts)
        return alerts

    def finish(self, device: str | None = None) -> list[Alert]:
        """As the pipeline's; a cold-start window's alert that no window of its device matched
        by the end is reported with no window (never lost)."""
        alerts = super().finish(device)
        for name, state in self.devices.items():
            if device is None or name == device:
                stash = self._cold.pop(id(state), {})
                self._windowless(name, state, [a for w in stash.values() for a in w.alerts])
        return alerts

    def _windowless(self, name: str, state: DeviceState, alerts: list[Alert]) -> None:
        if alerts:
            contract = self.contract_of(state)
            none = Windows.empty(contract.chain.window_samples, contract.chain.n_channels)
            self.on_windows(name, Scored(none, {}, alerts, dict(contract.heads)), {})

    def _alerts(
        self,
        state: DeviceState,
        windows,
        probs: dict[str, np.ndarray],
        last_peak_g: float | None = None,
    ) -> list[Alert]:
        alerts = super()._alerts(state, windows, probs, last_peak_g)
        if state.parent is None:
            heads = dict(self.contract_of(state).heads)
            self._scored.append((state, Scored(windows, probs, alerts, heads)))
        return alerts


def _at(alert: Alert) -> float:
    return alert.t


@dataclass(frozen=True)
class ActivitySpan:
    """One stretch of the activity timeline: ``label`` from ``start_s`` until ``end_s``
    (stream time, s); ``p`` is the probability behind the alert that started it."""

    label: str
    start_s: float
    end_s: float
    p: float


@dataclass(frozen=True)
class WindowProbabilities:
    """Every window the engine scored, in stream order.

    Attributes:
        t_start_s, t_end_s: [K] each window's first and last sample time (stream time, s).
        segment: [K] the chain's segment number (a gap longer than ``max_gap_s`` starts one).
        probs: head name -> [K, n_classes] class probabilities.
        classes: head name -> its class names, in column order.
    """

    t_start_s: np.ndarray
    t_end_s: np.ndarray
    segment: np.ndarray
    probs: dict[str, np.ndarray]
    classes: dict[str, tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.t_end_s)


class _WindowLog:
    """Collects what an :class:`ObservedPipeline` reports, for one recording."""

    def __init__(self, heads: dict[str, tuple[str, ...]]) -> None:
        self.heads = heads
        self.parts: list[tuple[Windows, dict[str, np.ndarray]]] = []

    def __call__(self, device: str, own: Scored, cold: dict[float, ColdWindow]) -> None:
        if not len(own.windows):  # an alert of no window (the sink has it)
            return
        self.parts.append((own.windows, {h: np.asarray(p) for h, p in own.probs.items()}))

    def result(self) -> WindowProbabilities:
        def cat(values: list[np.ndarray], dtype, width: int | None = None) -> np.ndarray:
            if values:
                return np.concatenate(values)
            return np.zeros((0, width) if width is not None else (0,), dtype)

        return WindowProbabilities(
            t_start_s=cat([w.t_start_s for w, _ in self.parts], np.float64),
            t_end_s=cat([w.t_end_s for w, _ in self.parts], np.float64),
            segment=cat([w.segment for w, _ in self.parts], np.int64),
            probs={
                h: cat([p[h] for _, p in self.parts], np.float32, len(names))
                for h, names in self.heads.items()
            },
            classes=dict(self.heads),
        )


@dataclass(frozen=True)
class Analysis:
    """What the runtime decided about one recording (:func:`analyse`).

    Attributes:
        device: the device name the session ran under.
        model: the bundle's name and version.
        duration_s: the recording's duration.
        alerts: every alert, in the order the pipeline raised them (activity and fall),
            exactly what ``replay --alerts-jsonl`` writes.
        windows: the per-window class probabilities.
        calibration: how the mounting was set up: ``online`` (from a stored estimate or cold,
            as ``replay``), else what :func:`gaitedge.runner.calibrate_recording` returned
            (``calibrate_first=True``).
        recording: the recording analysed (for :meth:`plot`).
    """

    device: str
    model: str
    duration_s: float
    alerts: tuple[Alert, ...]
    windows: WindowProbabilities
    calibration: str
    recording: Recording = field(repr=False)

    @property
    def falls(self) -> list[Alert]:
        """The fall alerts."""
        return [a for a in self.alerts if a.type is AlertType.FALL]

    @property
    def timeline(self) -> list[ActivitySpan]:
        """The activity timeline: each activity alert holds until the next one (or the end)."""
        changes = [a for a in self.alerts if a.type is AlertType.ACTIVITY]
        ends = [a.t_event for a in changes[1:]] + [self.duration_s] if changes else []
        return [
            ActivitySpan(a.label, round(float(a.t_event), 3), round(float(end), 3), float(a.p))
            for a, end in zip(changes, ends, strict=True)
        ]

    def timeline_frame(self):
        """The activity timeline as a ``pandas.DataFrame`` (label, start_s, end_s, p)."""
        pd = _pandas()
        rows = [vars(span) for span in self.timeline]
        return pd.DataFrame(rows, columns=["label", "start_s", "end_s", "p"])

    def alerts_frame(self):
        """Every alert as a ``pandas.DataFrame``, one row per alert (the JSONL fields)."""
        pd = _pandas()
        columns = ["t", "t_event", "type", "label", "p", "device", "latency_s"]
        rows = [a.to_dict() for a in self.alerts]
        frame = pd.DataFrame(rows)
        return frame if rows else pd.DataFrame(columns=columns)

    def windows_frame(self):
        """Per-window probabilities as a ``pandas.DataFrame``: ``t_start_s``, ``t_end_s``,
        ``segment``, then one column per class named ``<head>.<class>``."""
        pd = _pandas()
        w = self.windows
        data: dict[str, np.ndarray] = {
            "t_start_s": w.t_start_s,
            "t_end_s": w.t_end_s,
            "segment": w.segment,
        }
        for head, names in w.classes.items():
            for j, name in enumerate(names):
                data[f"{head}.{name}"] = w.probs[head][:, j]
        return pd.DataFrame(data)

    def plot(self, *, figsize: tuple[float, float] = (11.0, 6.0)):
        """Acceleration, the activity probabilities with the timeline, and the falls.

        Returns the matplotlib ``Figure`` (needs matplotlib: ``pip install matplotlib``).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("Analysis.plot needs matplotlib: pip install matplotlib") from exc
        rec = self.recording
        t = rec.timestamp_s - rec.timestamp_s[0]
        fig, (ax_acc, ax_act) = plt.subplots(2, 1, sharex=True, figsize=figsize)
        for i, axis in enumerate("xyz"):
            ax_acc.plot(t, rec.imu[:, i], lw=0.6, label=f"acc_{axis}")
        ax_acc.set_ylabel("acceleration (m/s²)")
        ax_acc.legend(loc="upper right", ncol=3, fontsize="small")
        activity = self.windows.classes.get("activity", ())
        colours = {name: plt.cm.tab10(i % 10) for i, name in enumerate(activity)}
        for j, name in enumerate(activity):
            p = self.windows.probs["activity"][:, j]
            ax_act.plot(self.windows.t_end_s, p, lw=0.8, color=colours[name], label=name)
        for span in self.timeline:
            colour = colours.get(span.label, "grey")
            ax_act.axvspan(span.start_s, span.end_s, ymin=0.92, ymax=1.0, color=colour)
        for ax in (ax_acc, ax_act):
            for fall in self.falls:
                ax.axvline(fall.t_event, color="red", lw=1.2, ls="--")
        ax_act.set_ylim(0, 1.08)
        ax_act.set_ylabel("activity probability")
        ax_act.set_xlabel("stream time (s); bar: the alert timeline; red: falls")
        ax_act.legend(loc="lower right", ncol=3, fontsize="small")
        fig.suptitle(f"{self.device}: {self.model}")
        fig.tight_layout()
        return fig


def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("DataFrames need pandas: pip install pandas") from exc
    return pd


def _run(coro_factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, also inside a notebook (where
    the kernel's event loop already runs in this thread: then in a worker thread)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gaitedge") as pool:
        return pool.submit(lambda: asyncio.run(coro_factory())).result()


def read(path: str | os.PathLike, *, format: str | None = None, options: Any = None) -> Recording:  # noqa: A002 - the CLI's --format
    """Read a recording as its app exported it (a file, a zip or the unzipped folder), as
    ``gaitedge replay`` reads it: :func:`gaitedge.formats.read`, whose ``options`` default here
    to reading an export without a gyroscope (its acceleration alone, [N, 3]) when the shipped
    accelerometer-only model is installed to run it (:func:`analyse` picks that model).

    Raises:
        FormatError: the export cannot be read; one line naming the file (and line).
    """
    from gaitedge.formats import ReadOptions
    from gaitedge.formats import read as read_export
    from gaitedge.runner import reads_acc_only

    if options is None:
        options = ReadOptions(accelerometer_only=reads_acc_only(None))
    return read_export(path, format=format, options=options)


def _read(
    recording: Recording | str | os.PathLike, device: str | None, accelerometer_only: bool
) -> Recording:
    from gaitedge.recording import RecordingError

    if isinstance(recording, Recording):
        try:  # lists, or another float type, as the runtime takes them (a list was a TypeError
            # deep in replay); text is refused here (it was numpy's UFuncTypeError)
            t = np.asarray(recording.timestamp_s, dtype=np.float64)
            x = np.asarray(recording.imu, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise RecordingError(
                f"recording: timestamps and samples must be numbers: {exc}"
            ) from exc
        if t.ndim != 1 or x.ndim != 2 or x.shape[1] not in (3, 6) or len(t) != len(x):
            raise RecordingError(
                f"recording: expected timestamp_s [N] and imu [N, 6] (or [N, 3] without a "
                f"gyroscope), got {t.shape} and {x.shape}"
            )
        if len(t) > 1 and not t[-1] > t[0]:  # reversed: read as clock resets, a negative span
            raise RecordingError(
                f"recording: its last timestamp ({t[-1]:g} s) is not after its first "
                f"({t[0]:g} s): timestamps in reverse?"
            )
        return dataclasses.replace(recording, timestamp_s=t, imu=x)
    from gaitedge.formats import ReadOptions, read

    options = ReadOptions(device=device, accelerometer_only=accelerometer_only)
    return read(Path(recording), options=options)


def analyse(
    recording: Recording | str | os.PathLike,
    model: str | os.PathLike | None = None,
    *,
    mount: str | None = None,
    device: str | None = None,
    acc_range_g: float | None = None,
    mount_file: str | os.PathLike | None = None,
    calibrate_first: bool = False,
) -> Analysis:
    """Run a recording through the runtime as ``gaitedge replay --fast`` does.

    Args:
        recording: a :class:`~gaitedge.recording.Recording` (``gaitedge.read(path)``) or a
            path in any format ``gaitedge formats`` lists.
        model: a model bundle (default: the shipped one).
        mount: ``auto``, ``none`` or an axis map like ``-y,x,z`` (default: the model's). An
            automatic mounting starts from ``mount_file``'s estimate for ``device`` (else cold)
            and calibrates online, as ``replay`` does.
        device: the device id to read from a multi-device recording (a path), and the name
            alerts carry (default: the file name, or ``recording``).
        acc_range_g: the recording device's accelerometer full scale in g, when small.
        mount_file: JSON file of stored mounting estimates per device id (as ``replay``).
        calibrate_first: calibrate on the whole recording first (look-ahead), as
            ``replay --calibrate-first``.

    Returns:
        An :class:`Analysis`: the activity timeline, every alert and per-window probabilities.

    Raises:
        RecordingError / FormatError: the file cannot be read.
        ContractError: the model refuses the data (e.g. acceleration not in m/s²).
    """
    from gaitedge.engine import load_engine
    from gaitedge.mounting import MountStore
    from gaitedge.runner import (
        calibrate_recording,
        fast_batch_threads,
        model_options,
        no_window_why,
        reads_acc_only,
        stream,
    )
    from gaitedge.sources import ReplaySource

    rec = _read(recording, device, reads_acc_only(model))
    name = device or (Path(recording).name if not isinstance(recording, Recording) else "recording")
    opening = {"batch_threads": fast_batch_threads()}  # as `replay --fast`
    engine = load_engine(model, **opening)
    log_ = _WindowLog(dict(engine.contract.heads))
    sink = ListSink()
    store = MountStore(Path(mount_file)) if mount_file is not None else None
    # While a cold device's mounting calibrates, the cold-start model reports its activity,
    # as in `replay` (the windows reported are the device's own model's); a recording without
    # a gyroscope runs the accelerometer-only model.
    pipe = ObservedPipeline(
        engine, FanOut([sink]), on_windows=log_, mount=mount, acc_range_g=acc_range_g,
        mount_store=store, **model_options(model, mount, opening),
    )  # fmt: skip
    with pipe:
        calibration = "online"
        if calibrate_first:
            calibration = calibrate_recording(pipe, name, rec.timestamp_s, rec.imu)
        source = ReplaySource(recording=rec, fast=True, device=name)
        _run(lambda: stream(pipe, source))
    for device, state in pipe.devices.items():  # as `replay` says it
        if not state.windows and state.chain.stats.samples_in:
            log.warning("%s: no window was made: %s", device, no_window_why(state.chain))
    # the model the recording ran (without a gyroscope: the accelerometer-only one)
    state = pipe.devices.get(name)
    contract = engine.contract if state is None else pipe.contract_of(state)
    return Analysis(
        device=name,
        model=f"{contract.name} {contract.model_version}",
        duration_s=rec.duration_s,
        alerts=tuple(sink.alerts),
        windows=log_.result(),
        calibration=calibration,
        recording=rec,
    )


@dataclass(frozen=True)
class Decision:
    """One scored window from a live source (:func:`stream`).

    Attributes:
        device: which sensor.
        t_s: stream time of the window's last sample (s).
        activity: the window's most probable activity, or None without an activity head.
        p: its probability.
        p_fall: the window's fall probability, or None without a fall head.
        probs: head name -> [n_classes] this window's probabilities (empty for the activity a
            stream that never calibrated ends with: its held-back windows' vote).
        alerts: the alerts this window raised (already sent to the session's sinks).
        cold_start: whether ``activity``, ``p``, ``p_fall``, ``probs`` and ``alerts`` are the
            cold-start model's, which decides while the device's mounting calibrates (as
            ``listen`` reports it: its alerts are marked ``mounting: cold start``).
    """

    device: str
    t_s: float
    activity: str | None
    p: float
    p_fall: float | None
    probs: dict[str, np.ndarray]
    alerts: tuple[Alert, ...] = ()
    cold_start: bool = False


def decisions(
    device: str,
    windows: Windows,
    probs: dict[str, np.ndarray],
    alerts: list[Alert],
    heads: dict[str, tuple[str, ...]],
    cold: dict[float, ColdWindow] | None = None,
) -> list[Decision]:
    """One :class:`Decision` per window; each alert goes with the window that raised it (the
    window ending at the alert's time ``t``; the batch's last one if none ends there). ``cold``:
    the cold-start model's windows by their end (s, rounded to 0.1 ms), scored beside the
    device while its mounting calibrated: a window that ends where one of those does is that
    model's decision, with its alerts (as ``listen`` reports it). Alerts of no window (the
    held-back activity a stream that never calibrated ends with) are a decision each, without
    probabilities."""
    if not len(windows):
        return [Decision(device, a.t, a.label, a.p, None, {}, (a,)) for a in alerts]
    own = _by_window(windows, alerts)
    cold = cold or {}
    out = []
    for i in range(len(windows)):
        c = cold.get(round(float(windows.t_end_s[i]), 4))
        by = heads if c is None else c.heads
        row = {h: p[i] for h, p in probs.items()} if c is None else c.probs
        raised = own.get(i, [])
        if c is not None:
            raised = sorted([*raised, *c.alerts], key=_at)
        activity = by.get("activity")
        fall = by.get("fall")
        fall_index = fall.index("fall") if fall and "fall" in fall else None
        best = int(row["activity"].argmax()) if activity else -1
        out.append(
            Decision(
                device=device,
                t_s=float(windows.t_end_s[i]),
                activity=activity[best] if activity else None,
                p=float(row["activity"][best]) if activity else 0.0,
                p_fall=float(row["fall"][fall_index]) if fall_index is not None else None,
                probs=row,
                alerts=tuple(raised),
                cold_start=c is not None,
            )
        )
    return out


def _by_window(windows: Windows, alerts: list[Alert]) -> dict[int, list[Alert]]:
    """Alerts by the window that raised them: the one ending at the alert's time ``t``, else
    the last."""
    by_window: dict[int, list[Alert]] = collections.defaultdict(list)
    for alert in alerts:
        hits = np.flatnonzero(np.isclose(windows.t_end_s, alert.t, atol=1e-6))
        by_window[int(hits[0]) if len(hits) else len(windows) - 1].append(alert)
    return by_window


def source_from_spec(
    spec: Source | str | os.PathLike, *, speed: float = 1.0, accelerometer_only: bool = True
) -> Source:
    """A source from ``serial:PORT``, ``ble:ADDRESS`` or a recording's path (read now, in any
    format ``gaitedge formats`` lists, and replayed at ``speed`` times real time); a Source
    object is returned as it is. ``accelerometer_only``: a recording without a gyroscope is
    read (the shipped accelerometer-only model runs it), else refused by its reader."""
    from gaitedge.sources import BleSource, ReplaySource, SerialSource

    if hasattr(spec, "chunks"):
        return spec  # type: ignore[return-value]
    text = os.fspath(spec)
    kind, _, rest = text.partition(":")
    if kind == "serial" and rest:
        return SerialSource(rest)
    if kind == "ble" and rest:
        return BleSource(rest)
    if Path(text).exists():
        rec = _read(text, None, accelerometer_only)
        return ReplaySource(recording=rec, speed=speed, device=Path(text).name)
    raise ValueError(
        f"{text!r}: no such file or folder (a source is serial:PORT, ble:ADDRESS or a "
        "recording's path)"
    )


class _Mailbox:
    """Decisions waiting for the consumer: bounded for a live source, the oldest dropped (and
    counted) when a consumer falls behind, so the pipeline never waits for it; unbounded
    (``size`` None) for a recording, which is not live."""

    def __init__(self, size: int | None) -> None:
        self.items: collections.deque = collections.deque(maxlen=size)  # None: keeps all
        self.dropped = 0
        self.ready = asyncio.Event()

    def put(self, item: object) -> None:
        if len(self.items) == self.items.maxlen:
            self.dropped += 1
        self.items.append(item)
        self.ready.set()

    async def get(self) -> object:
        while not self.items:
            self.ready.clear()
            await self.ready.wait()
        return self.items.popleft()


_END = object()


async def stream(
    source_or_spec: Source | str | os.PathLike,
    model: str | os.PathLike | None = None,
    *,
    mount: str | None = None,
    mount_file: str | os.PathLike | None = None,
    duration_s: float | None = None,
    speed: float = 1.0,
    max_pending: int = 1000,
    calibrate_first: bool = False,
) -> AsyncIterator[Decision]:
    """Decisions from a live source, as they are made, for asyncio code.

    Args:
        source_or_spec: ``serial:PORT``, ``ble:ADDRESS``, a recording's path (replayed in real
            time, or ``speed`` times faster), or any :class:`~gaitedge.sources.Source`.
        model: a model bundle (default: the shipped one).
        mount: ``auto``, ``none`` or an axis map (default: the model's).
        mount_file: JSON file of stored mounting estimates per device id (as ``listen``).
        duration_s: stop after this many seconds (default: when the source ends).
        max_pending: a live source's decisions kept for a consumer that falls behind; beyond
            it the oldest are dropped (logged), so a slow consumer never holds the pipeline up.
            A recording's are all kept (it is played as fast as ``speed`` asks, not live).
        calibrate_first: a recording's path only: calibrate on the whole recording first
            (look-ahead, ``replay --calibrate-first``); default online, as ``listen``.

    Yields:
        One :class:`Decision` per scored window (a decision every hop, e.g. 0.2 s at 50 Hz).

    Raises:
        SourceError: the device cannot be reached. ContractError: the model refuses its data.
    """
    from gaitedge.engine import load_engine
    from gaitedge.mounting import MountStore
    from gaitedge.runner import calibrate_recording, model_options, reads_acc_only, stream_many
    from gaitedge.sources import ReplaySource

    if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
        raise ValueError(f"max_pending must be a whole number >= 1, not {max_pending!r}")
    for name, value in (("speed", speed), ("duration_s", duration_s)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, not {value!r}")
    source = source_from_spec(source_or_spec, speed=speed, accelerometer_only=reads_acc_only(model))
    engine = load_engine(model)
    mailbox = _Mailbox(None if isinstance(source, ReplaySource) else max_pending)

    def on_windows(device: str, own: Scored, cold: dict[float, ColdWindow]) -> None:
        for decision in decisions(device, own.windows, own.probs, own.alerts, own.heads, cold):
            mailbox.put(decision)

    store = MountStore(Path(mount_file)) if mount_file is not None else None
    # As `listen` runs: the cold-start model while a device calibrates, the accelerometer-only
    # model for a device without a gyroscope.
    pipe = ObservedPipeline(
        engine, FanOut([]), on_windows=on_windows, mount=mount, mount_store=store,
        **model_options(model, mount, {}),
    )  # fmt: skip
    if calibrate_first and isinstance(source, ReplaySource) and source.recording is not None:
        rec = source.recording  # as `gaitedge replay --calibrate-first` does
        calibrate_recording(pipe, source.device, rec.timestamp_s, rec.imu)
    # As `listen` runs it: a source serving several phones goes on past a refused one.
    task = asyncio.ensure_future(stream_many(pipe, [source], duration_s=duration_s))
    task.add_done_callback(lambda _: mailbox.put(_END))
    try:
        while (item := await mailbox.get()) is not _END:
            yield item  # type: ignore[misc]
        task.result()  # the source's error, if it ended with one
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if mailbox.dropped:
            log.warning("%d decisions dropped: the consumer fell behind", mailbox.dropped)
        pipe.close()
