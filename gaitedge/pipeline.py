"""The one place that wires the stages together.

    Source -> StreamingChain -> Engine -> ActivitySmoother / FallDetector -> sinks

The model bundle's contract configures the chain, so what the runtime computes is what the
model was trained on. One :class:`Pipeline` serves several devices at once (state per device);
one consumer drives it, so no stage needs a lock. Sessions (sources driving a pipeline, with
status and sinks) are run by ``gaitedge.runner``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
from hdrh.histogram import HdrHistogram

from gaitedge.alerts import (
    ActivityConfig,
    ActivitySmoother,
    Alert,
    AlertType,
    FallConfig,
    FallDetector,
)
from gaitedge.bundle import ContractError
from gaitedge.engine import Engine
from gaitedge.mounting import CALIBRATED_WALKING_S, MountingError
from gaitedge.preprocess import (
    FEW_SAMPLES,
    BadSamplePolicy,
    Mounting,
    StreamingChain,
    all_finite,
    needs_gyroscope,
    no_gyroscope_message,
    usable_rows,
)
from gaitedge.recording import RecordingWriter
from gaitedge.shadow import Shadow, class_name, result_alerts
from gaitedge.sinks import FanOut
from gaitedge.sources.base import DeviceResult, SampleChunk
from gaitedge.status import DeviceStatus
from gaitedge.units import check_gravity_scale
from gaitedge.windows import Windows

log = logging.getLogger(__name__)

STAGES = ("chain", "engine", "alerts", "end_to_end")
# While a mounting calibrates, a chunk's windows are flagged as if fed in pieces of this much
# input (the resolution of the moment it calibrated; :func:`feed_chain`).
CALIBRATING_PIECE_S = 0.5


def feed_chain(chain: StreamingChain, t_s, imu):
    """Feed a chunk to ``chain``; yields ``(timestamps, windows, t0)`` per chain call (``t0``:
    ``perf_counter`` before it). A calibrated (or fixed) mounting takes the chunk whole; while
    it calibrates the chunk goes in pieces of :data:`CALIBRATING_PIECE_S`, so the windows of
    each piece can be told apart by ``chain.mounting.calibrated`` after it, however large the
    chunk (``replay --fast``, ``gaitedge evaluate``): no look-ahead beyond one piece.

    Pieces the mounting cannot calibrate in go in one call (:func:`_sure_uncalibrated`): their
    windows are all uncalibrated, as piece by piece; so does the rest of the chunk once it has
    calibrated (it stays calibrated). That is checked, not assumed: when the
    mounting did calibrate in such a call the chain is put back as it was before it and the
    pieces go one by one, so the windows and their flags are those of the pieces always."""
    t = np.asarray(t_s, np.float64)
    if chain.mounting.calibrated or len(t) < 2 or _one_piece(t):
        t0 = time.perf_counter()
        yield t, chain.process(t, imu), t0
        return
    cuts = np.flatnonzero(np.diff(np.floor((t - t[0]) / CALIBRATING_PIECE_S))) + 1
    starts, ends = np.array((0, *cuts)), np.array((*cuts, len(t)))
    steps = np.flatnonzero(np.diff(t) < 0)  # t[i + 1] < t[i]
    p, repeat = 0, False
    while p < len(starts):
        if chain.mounting.calibrated:  # calibrated: the rest of the chunk goes whole
            t0 = time.perf_counter()
            yield t[starts[p] :], chain.process(t[starts[p] :], imu[starts[p] :]), t0
            return
        q = p if repeat else _sure_uncalibrated(chain, t, starts, ends, steps, p)
        a, b = starts[p], ends[q]
        before = copy.deepcopy(chain) if q > p else None
        t0 = time.perf_counter()
        if repeat:
            with _quiet():
                windows = chain.process(t[a:b], imu[a:b])
        else:
            windows = chain.process(t[a:b], imu[a:b])
        if before is not None and chain.mounting.calibrated:  # not so: back, piece by piece
            chain.__dict__.update(before.__dict__)
            repeat_until, repeat = q, True
            continue
        yield t[a:b], windows, t0
        p = q + 1
        repeat = repeat and p <= repeat_until


def _one_piece(t: np.ndarray) -> bool:
    """Whether a live frame's few stamps fall in one piece of :func:`feed_chain` (none before
    the first, none a piece or more after it: its floor((t - t[0]) / piece) all 0), checked on
    Python floats (subtraction and division round monotonically: the extremes decide)."""
    if len(t) > FEW_SAMPLES:
        return False
    stamps = t.tolist()
    if not math.isfinite(sum(stamps)):  # a bad stamp: the pieces as ever
        return False
    return min(stamps) >= stamps[0] and (max(stamps) - stamps[0]) / CALIBRATING_PIECE_S < 1.0


# Input beyond what the mounting needs, allowed for samples the chain releases late (timestamp
# repair's held-back run, an opening run spread back) when pieces are fed in one call.
CALIBRATION_MARGIN_S = 1.0


def _sure_uncalibrated(chain: StreamingChain, t: np.ndarray, starts, ends, steps, p: int) -> int:
    """The last piece from ``p`` on through which ``chain``'s mounting cannot have calibrated:
    its estimator still needs more samples (at the chain's rate) than these pieces span, less
    :data:`CALIBRATION_MARGIN_S`, on a clock that does not step back (``steps``: where ``t``
    does). ``p`` when unknown."""
    if p == len(starts) - 1:  # the last piece (a live chunk's only one)
        return p
    need = chain.mounting.samples_to_calibrated()
    span_s = need / chain.cfg.sample_rate_hz - CALIBRATION_MARGIN_S if need else 0.0
    if span_s <= 2 * CALIBRATING_PIECE_S:
        return p
    a = starts[p]
    back = steps[np.searchsorted(steps, a)] if len(steps) and steps[-1] >= a else len(t) - 1
    last = int(np.searchsorted(ends, back + 1, side="right")) - 1  # no step back within
    if last <= p:
        return p
    return max(p, p - 1 + int(np.searchsorted(t[ends[p : last + 1] - 1], t[a] + span_s)))


@contextlib.contextmanager
def _quiet():
    """The chain's log lines silenced while pieces it already went through go again."""
    chain_log = logging.getLogger(StreamingChain.__module__)
    was, chain_log.disabled = chain_log.disabled, True
    try:
        yield
    finally:
        chain_log.disabled = was


class LatencyHistogram:
    """Latencies in an HdrHistogram (1 µs to 100 s, 2 significant digits): constant memory
    however long it runs. bench/libraries.py measured it against the 161 fixed log bins this
    class had before: 1.18 vs 1.47 µs per value, and p99 within 0.1 % of the exact value where
    the bins' upper edges read 10 % high. Values wait in a short list and go into the histogram
    in batches, each distinct value once with its count (hdrh records a value in Python: a few
    µs each, on every window of every device): the same counts as one by one."""

    # Values per batch (a list of ints while they wait: ~32 KiB).
    BATCH = 4096

    def __init__(self) -> None:
        self._hdr = HdrHistogram(1, 100_000_000, 2)  # µs
        self._waiting: list[int] = []
        self.total = 0

    def add(self, seconds: float) -> None:
        self._waiting.append(max(1, min(round(seconds * 1e6), 100_000_000)))
        self.total += 1
        if len(self._waiting) >= self.BATCH:
            self._record()

    def _record(self) -> None:
        if self._waiting:
            values, counts = np.unique(np.array(self._waiting), return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self._hdr.record_value(value, count)
            self._waiting.clear()

    def percentile_ms(self, q: float) -> float:
        """Latency at quantile ``q`` (0-100), in ms; NaN when empty."""
        if not self.total:
            return float("nan")
        self._record()
        return self._hdr.get_value_at_percentile(q) / 1e3

    def summary(self) -> dict[str, float]:
        return {f"p{q}_ms": round(self.percentile_ms(q), 4) for q in (50, 95, 99)} | {
            "n": self.total
        }


@dataclass
class DeviceState:
    chain: StreamingChain
    activity: ActivitySmoother | None
    fall: FallDetector | None
    activity_label: str | None = None
    activity_p: float = 0.0
    windows: int = 0
    last_t_s: float = 0.0
    segment: int = -1
    # The first seconds of acceleration, kept until the unit check has run once.
    units_pending: list[np.ndarray] = field(default_factory=list)
    units_first_t_s: float | None = None  # the first of those samples' stamp
    units_checked: bool = False
    # Stream time at which the mounting first reported calibrated (None: not yet, or fixed).
    calibrated_at_s: float | None = None
    # Activity held back while the mounting calibrates: arg-max counts, probability sums and
    # the first window's centre, for the end-of-stream activity (``Pipeline.finish``).
    held_counts: np.ndarray | None = None
    held_p: np.ndarray | None = None
    held_since_s: float | None = None
    # The device decides on its own (protocol 1.2 result frames); with ``shadow`` the host
    # model runs beside it on its raw samples and is compared, not reported.
    decides: bool = False
    shadow: Shadow | None = None
    # The chain's state when the windows being scored were made (``Pipeline.process_many``
    # scores them after every chunk of its tick has gone through its chain).
    calibrated: bool = True
    input_rate_hz: float | None = None
    # The model this device runs when it is not the pipeline's (an accelerometer-only device
    # on the shipped accelerometer-only bundle).
    engine: Engine | None = None
    # While an automatic mounting calibrates: the cold-start model's own chain (mounting
    # ``vertical``) and activity logic beside this one, whose activity alerts stand in for the
    # held-back ones until this chain reports calibrated (then it is dropped). ``parent``: the
    # device a companion serves; ``companion_alerts``: activity alerts it raised.
    companion: DeviceState | None = None
    parent: DeviceState | None = None
    companion_alerts: int = 0
    # The companion's fall probability per window end (stream time, rounded), for this
    # device's fall rules while it calibrates: the cold-start model's vote stands in for the
    # model gate its own unaligned model cannot give.
    cold_fall: dict[float, float] = field(default_factory=dict)
    # Live chunks held back while they cannot complete a window (``Pipeline._wait``), and the
    # newest stamp this device sent.
    waiting: list[SampleChunk] = field(default_factory=list)
    newest_t_s: float = -np.inf
    # Why the model refused this device's data (its units): every later chunk is refused too.
    refused: ContractError | None = None


@dataclass
class _Made:
    """Windows one chain call made, waiting for the engine (``Pipeline.process_many``)."""

    state: DeviceState
    windows: Windows
    host_rx_s: float
    calibrated: bool
    input_rate_hz: float | None


@dataclass
class PipelineStats:
    latency: dict[str, LatencyHistogram] = field(
        default_factory=lambda: {s: LatencyHistogram() for s in STAGES}
    )
    windows: int = 0
    alerts: int = 0
    chunks: int = 0

    def latency_summary(self) -> dict[str, dict[str, float]]:
        return {stage: h.summary() for stage, h in self.latency.items()}


class DevicesRefusedError(ContractError):
    """Devices of one :meth:`Pipeline.process_many` call whose data the model refused;
    ``refused``: each device's ContractError (the message: theirs, joined)."""

    def __init__(self, refused: dict[str, ContractError]) -> None:
        super().__init__("; ".join(str(e) for e in refused.values()))
        self.refused = refused


class Pipeline:
    """Feeds chunks through chain, engine and alert logic, sending alerts to the sinks.

    Args:
        engine: a loaded model (its contract configures the chain).
        sinks: where alerts go.
        recorder: if given, every raw sample is recorded (``--record``).
        activity_config / fall_config: alert logic settings.
        mount: ``none``, ``auto`` or an axis map (``-y,x,z``); default: the contract's.
        mount_store: where automatic mounting estimates are restored from and saved to, per
            device id (``gaitedge.mounting.MountStore``), or None.
        strict: refuse timestamps that do not increase instead of repairing them.
        acc_range_g: the accelerometer's full scale when it is small (a ±2 g phone clips every
            impact): the impact threshold is lowered to 90 % of it, so a fall never needs to
            be seen above the range the device can report.
        shadow: for devices that decide on their own (:meth:`process_result`), run the host
            model beside them on their raw samples and count disagreements
            (``gaitedge.shadow``); without it their samples are only recorded.

    Before calibration: the policy follows the mounting the bundle's contract asks for, not its
    name. While the chain's mounting does not report ``calibrated`` (an automatic estimate
    before :data:`CALIBRATED_WALKING_S` of walking; a mode that needs only the vertical reports
    it as soon as its estimator knows the vertical; fixed and ``none`` always), activity alerts
    are held back and a fall is raised on frame-independent evidence alone (impact +
    orientation change). While it calibrates a chunk's windows are told apart as pieces of
    :data:`CALIBRATING_PIECE_S` of input would tell them (:func:`feed_chain`), so a large chunk
    (``replay --fast``) releases no activity from before the moment it calibrated
    (``DeviceState.calibrated_at_s``) beyond that resolution: a replay says what a live device
    would have said. A stream that ends (or
    reconnects) with activity held back all along gets one activity alert at its end
    (:meth:`finish`): the label most of the held-back windows voted for, with
    ``extra={"mounting": "uncalibrated", "windows": K}`` so that no consumer mistakes it for a
    calibrated decision (a person or recording that never walks still gets activity output).
    """

    def __init__(
        self,
        engine: Engine,
        sinks: FanOut,
        *,
        recorder: RecordingWriter | None = None,
        activity_config: ActivityConfig | None = None,
        fall_config: FallConfig | None = None,
        mount: str | None = None,
        mount_store=None,
        strict: bool = False,
        acc_range_g: float | None = None,
        shadow: bool = False,
        acc_only_engine: Callable[[], Engine] | None = None,
        no_gyroscope_hint: str = "",
        cold_start_engine: Callable[[], Engine] | None = None,
    ) -> None:
        self.engine = engine
        # Opens the cold-start model (mounting ``vertical``: heading-free, ready once the
        # vertical is known) that reports activity while a device's automatic mounting
        # calibrates; None: activity is held back until then.
        self.cold_start_engine = cold_start_engine
        self._cold_engine: Engine | None = None
        # Opens the model for devices without a gyroscope when ``engine`` needs one (the
        # shipped accelerometer-only bundle; None: such devices are refused in one line).
        self.acc_only_engine = acc_only_engine
        self._acc_engine: Engine | None = None
        self.no_gyroscope_hint = no_gyroscope_hint  # why none is picked, for the refusal
        self.shadow = shadow
        self.mount = mount
        self.mount_store = mount_store
        self.strict = strict
        self.contract = engine.contract
        self.sinks = sinks
        self.recorder = recorder
        # Why the recording stopped (a full disk): the session went on without it.
        self.recording_error: OSError | None = None
        self.activity_config = activity_config or ActivityConfig()
        self.fall_config = fall_config or FallConfig()
        if acc_range_g is not None and not (math.isfinite(acc_range_g) and acc_range_g > 0):
            raise ValueError(
                "the accelerometer's full scale (acc_range_g / --acc-range-g) must be a positive "
                f"number of g, not {acc_range_g:g}"
            )
        self.acc_range_g = acc_range_g
        self.devices: dict[str, DeviceState] = {}
        self.stats = PipelineStats()
        fall_classes = self.contract.heads.get("fall", ())
        Mounting.for_chain(self.contract.chain, mount)  # a malformed axis map fails here
        if fall_classes and "fall" not in fall_classes:
            raise ContractError(f"the fall head's classes {fall_classes} have no 'fall' class")

    def close(self) -> None:
        """Save calibrated mounting estimates, close the sinks and flush the recording (these
        two whatever the save does: a store that cannot be written is one logged line)."""
        try:
            self.save_mountings()
        except MountingError as exc:
            log.error("%s", exc)
        finally:
            self.sinks.close()
            if self.recorder is not None:
                try:
                    self.recorder.close()
                except OSError as exc:
                    self._recording_failed(exc)

    def _recording_failed(self, exc: OSError) -> None:
        """The recording cannot be written (a full disk, a removed drive): one logged line, and
        the session goes on without it (alerts matter more than the raw file); the caller
        reads :attr:`recording_error` at the end (``listen`` exits 1 naming it)."""
        recorder, self.recorder = self.recorder, None
        if getattr(recorder, "inner", None) is not None:  # a tap before the writer (the web
            # view's, ``gaitedge.web.session.WebTap``): it stays, the writer goes
            self.recorder, recorder = recorder, recorder.inner
            self.recorder.inner = None
        self.recording_error = self.recording_error or exc
        log.error(
            "recording to %s stopped after %d samples: %s; the session goes on without it",
            recorder.path, recorder.rows_written, exc.strerror or exc,
        )  # fmt: skip
        with contextlib.suppress(OSError):
            recorder.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save_mountings(self, *, if_changed: bool = False) -> bool:
        """Store each calibrated automatic estimate under its device id (``if_changed``: write
        the store only when one moved; a periodic save). True if the store was written; raises
        MountingError (one line) when it cannot be."""
        if self.mount_store is None:
            return False
        saved = False
        for name, state in self.devices.items():
            est = state.chain.mounting.estimator
            if est is not None and est.calibrated:
                self.mount_store.put(name, est)
                saved = True
        return saved and self.mount_store.save(if_changed=if_changed)

    def _mounting(self, device: str, declared: str | None = None, cfg=None) -> Mounting:
        """``--mount`` if given, else what the device declares, else the contract's (automatic:
        restored from the mount store when this device has an estimate there)."""
        cfg = cfg or self.contract.chain
        mode = self.mount or declared or cfg.mounting
        stored = None
        if mode in ("auto", "vertical") and self.mount_store is not None:
            stored = self.mount_store.get(device, cfg.sample_rate_hz)
        return Mounting.for_chain(cfg, mode, stored)

    def _fall_config(self, declared_range_g: float | None) -> FallConfig:
        """The impact threshold never needs more than 90 % of what the device can report (the
        smaller of the range given to the pipeline and the one the device declares)."""
        cfg = self.fall_config
        ranges = [r for r in (self.acc_range_g, declared_range_g) if r is not None]
        if ranges and 0.9 * min(ranges) < cfg.impact_threshold_g:
            cfg = replace(cfg, impact_threshold_g=0.9 * float(min(ranges)))
        return cfg

    def _state(self, device: str, chunk: SampleChunk | None = None) -> DeviceState:
        state = self.devices.get(device)
        if state is None:
            declared = chunk.declared_mounting if chunk is not None else None
            acc_range_g = chunk.acc_range_g if chunk is not None else None
            engine = self.engine_for(device, None if chunk is None else chunk.imu)
            state = self._new_state(
                device,
                engine,
                self._mounting(device, declared, engine.contract.chain),
                self._fall_config(acc_range_g),
                engine=engine if engine is not self.engine else None,
            )
            state.companion = self._companion(device, state)
            self.devices[device] = state
        return state

    def _new_state(
        self, device: str, model: Engine, mounting: Mounting, fall: FallConfig | None, **fields
    ) -> DeviceState:
        """A device's chain and alert logic for ``model``'s contract (its fall rules only with
        ``fall`` given and a fall head); ``fields``: the rest of the :class:`DeviceState`."""
        cfg, heads = model.contract.chain, model.contract.heads
        return DeviceState(
            chain=StreamingChain(
                cfg, policy=BadSamplePolicy.DROP, strict=self.strict, mounting=mounting
            ),
            activity=(
                ActivitySmoother(heads["activity"], self.activity_config, device=device)
                if "activity" in heads
                else None
            ),
            fall=(
                FallDetector(cfg.channels, fall, device=device)
                if fall is not None and "fall" in heads
                else None
            ),
            **fields,
        )

    def _companion(self, device: str, state: DeviceState) -> DeviceState | None:
        """The cold-start model's state beside a device whose automatic mounting has yet to
        calibrate (nothing stored), when one is at hand and feeds on the same sensors."""
        if self.cold_start_engine is None or state.engine is not None:
            return None
        est = state.chain.mounting.estimator
        if est is None or state.chain.mounting.calibrated or hasattr(est, "up_source"):
            return None  # fixed, none, stored, or already heading-free ("vertical")
        if self._cold_engine is None:
            self._cold_engine = self.cold_start_engine()
        cold = self._cold_engine
        activity = cold.contract.heads.get("activity")
        if activity is None or activity != self.contract.heads.get("activity"):
            return None
        cfg = cold.contract.chain
        mounting = Mounting.for_chain(cfg, cfg.mounting, None)
        # No fall rules of its own: its fall vote goes to the device's (``cold_fall``).
        companion = self._new_state(
            device, cold, mounting, None, engine=cold, units_checked=True, parent=state
        )
        # It sees the device's samples in the same calls (``_chain``), so where the stages up
        # to the filters are the same it takes the device chain's filtered pieces: a
        # calibrating device costs one chain's front, not two.
        state.chain.keep_front = companion.chain.shares_front_with(state.chain)
        return companion

    def engine_for(self, device: str, imu: np.ndarray | None) -> Engine:
        """The model a device whose samples look like ``imu`` runs: the pipeline's, or for a
        device without a gyroscope ([N, 3] samples) when that model needs one, the
        accelerometer-only model (named once on stderr); none shipped, or a ``--model``
        given: ContractError naming the channels."""
        acc_only = imu is not None and imu.ndim == 2 and imu.shape[1] == 3
        if not acc_only or not needs_gyroscope(self.contract.chain.channels):
            return self.engine
        refusal = self.no_gyroscope_refusal()
        if refusal is not None:
            raise ContractError(f"{device}: {refusal}")
        if self._acc_engine is not None:
            return self._acc_engine
        self._acc_engine = self.acc_only_engine()
        c = self._acc_engine.contract
        log.warning(
            "%s has no gyroscope: it runs the accelerometer-only model %s %s (channels %s)",
            device, c.name, c.model_version, ", ".join(c.chain.channels),
        )  # fmt: skip
        return self._acc_engine

    def no_gyroscope_refusal(self) -> str | None:
        """None when a device without a gyroscope can run here (the model needs none, or an
        accelerometer-only one is at hand); else the one line that refuses it."""
        c = self.contract
        if not needs_gyroscope(c.chain.channels) or self.acc_only_engine is not None:
            return None
        message = no_gyroscope_message(c.chain.channels, f"the model {c.name} {c.model_version}")
        return f"{message} ({self.no_gyroscope_hint})" if self.no_gyroscope_hint else message

    def contract_of(self, state: DeviceState):
        """The contract of the model ``state``'s device runs."""
        return (state.engine or self.engine).contract

    def process(self, chunk: SampleChunk) -> list[Alert]:
        """Run one chunk through every stage; returns the alerts it raised (already sent)."""
        return self.process_many([chunk])

    def process_many(self, chunks: Iterable[SampleChunk | DeviceResult]) -> list[Alert]:
        """The chunks of one tick, from one device or several (``gaitedge.runner``): each goes
        through its device's chain as :meth:`process` runs it, then ONE engine call scores the
        windows all of them completed, and the probabilities go back to each device's alert
        logic in order. The alerts, and the order they reach the sinks, are those of
        :meth:`process` on each chunk in turn (a device's own results and a reconnect's end of
        segment score what is waiting first; so does a second chunk of the same device).

        Raises:
            DevicesRefusedError: the model refused some devices' data (a wrong unit, no gyroscope);
                every other device's chunks of the tick were processed and scored.
        """
        made: list[_Made] = []
        alerts: list[Alert] = []
        refused: dict[str, ContractError] = {}
        chained: set[str] = set()  # devices with a chunk in this tick so far
        for chunk in chunks:
            if isinstance(chunk, DeviceResult):
                alerts += self._score(made) + self.process_result(chunk)
            elif chunk.device not in refused:
                again = chunk.device in chained
                chained.add(chunk.device)
                try:
                    alerts += self._chain(chunk, made, again)
                except ContractError as exc:  # this device's data only: the others go on
                    refused[chunk.device] = exc
        alerts += self._score(made)
        if refused:
            raise DevicesRefusedError(refused)
        return alerts

    def _chain(self, chunk: SampleChunk, made: list[_Made], again: bool = False) -> list[Alert]:
        """:meth:`process_many`'s first stage for one chunk: its windows join ``made``
        (``again``: the device had a chunk earlier in the tick, whose windows may wait there)."""
        state = self._state(chunk.device, chunk)
        if state.refused is not None:
            raise state.refused
        alerts: list[Alert] = []
        if again and any(m.state is state for m in made):  # its earlier windows come first
            alerts += self._score(made)
        self.stats.chunks += 1
        if self.recorder is not None:
            try:
                self.recorder.write(chunk.t_s, chunk.imu, device_id=chunk.device)
            except OSError as exc:
                self._recording_failed(exc)
        if chunk.device_decides:  # its result frames are the decisions (process_result)
            state.decides = True
            if not self.shadow:
                state.last_t_s = float(chunk.t_s[-1]) if len(chunk.t_s) else state.last_t_s
                return alerts
            state.shadow = state.shadow or Shadow()
        # A reconnect that continues the device's timeline is a gap the chain bridges or not
        # (its max_gap_s rule); any other (re)connect starts a new segment.
        new_segment = chunk.new_connection and not chunk.continued
        if new_segment and (state.chain.stats.samples_in or state.waiting):
            # a reconnect: score what is waiting, then what the chain held back
            alerts += self._score(made) + self.finish(chunk.device)
        if new_segment:
            state.chain.reset()
            if state.companion is not None:
                state.companion.chain.reset()
        joins = self._joins(state, chunk)
        if state.waiting and not joins:  # those held first, then this chunk (the chain's error)
            self._feed(state, *self._with_waiting(state, state.waiting.pop()), made)
        if not state.units_checked:
            self._check_units(state, chunk)
            if joins and self._hold_unchecked(state, chunk):
                return alerts
        if joins and self._wait(state, chunk):
            return alerts
        self._feed(state, *self._with_waiting(state, chunk), made)
        return alerts

    def _feed(self, state: DeviceState, t_s, imu, host_rx_s: float, made: list[_Made]) -> None:
        """A chunk through its device's chain (and its cold-start companion's); the windows
        join ``made``."""
        ready_at = None  # when this device's mounting reported calibrated in this chunk
        companion, fed = state.companion, 0  # samples of this chunk the companion has seen
        for t, windows, t0 in feed_chain(state.chain, t_s, imu):
            if ready_at is None and state.chain.mounting.calibrated and len(t):
                ready_at = float(t[-1])
            piece: list[_Made] = []
            self._made(piece, state, windows, t0, host_rx_s, t)
            if state.companion is not None:
                # The cold-start model sees the same samples, up to the moment this device
                # calibrated; its windows of each piece are scored just before the device's
                # (their fall votes are asked for), so a large chunk's alerts keep the order
                # small live chunks give them.
                start, fed = fed, fed + len(t)
                if ready_at is not None:  # this device's own model takes over
                    state.companion = None
                    state.cold_fall.clear()
                if fed > start and state.chain.keep_front:  # the same samples: reuse the pieces
                    c0 = time.perf_counter()
                    cw = companion.chain.follow(state.chain)
                    self._made(made, companion, cw, c0, host_rx_s, t)
                elif fed > start:
                    cut = slice(start, fed)
                    for ct, cw, c0 in feed_chain(companion.chain, t_s[cut], imu[cut]):
                        self._made(made, companion, cw, c0, host_rx_s, ct)
                if state.companion is None:  # nothing follows the device's chain any more
                    state.chain.keep_front, state.chain.front = False, []
            made += piece
        est = state.chain.mounting.estimator
        online = est is not None and not est.restored  # calibrated online, from nothing
        if ready_at is not None and state.calibrated_at_s is None and online:
            state.calibrated_at_s = ready_at

    @staticmethod
    def _joins(state: DeviceState, chunk: SampleChunk) -> bool:
        """Whether ``chunk`` may be held back with the device's held chunks and go through the
        chain with them: samples of a shape the chain takes, as many channels as those held (a
        chunk that is not is fed on its own, after them: the chain refuses it as ever)."""
        shape = np.shape(chunk.imu)
        if len(shape) != 2 or shape[0] != len(chunk.t_s) or shape[1] not in (3, 6):
            return False
        width = np.shape(state.waiting[0].imu)[1] if state.waiting else shape[1]
        return shape[1] == width >= state.chain.n_inputs

    @staticmethod
    def _hold_unchecked(state: DeviceState, chunk: SampleChunk) -> bool:
        """Hold ``chunk`` back while its device's units are not checked yet (the check has not
        had its samples: :meth:`units_due`): no window of a device the model may yet refuse (its
        data in g or mg) is scored, so none raises an alert. The chain takes the held chunks
        with the one that completes the check: the same windows, the first ones later (at
        50 Hz, 5 s of data instead of the first window's 2.56 s). A chunk with a corrupted
        sample is held too (the chain drops and counts it when it takes them), unless the chain
        refuses such samples: then it goes through at once, with those held."""
        t = chunk.t_s
        if state.units_checked or not len(t):
            return False
        if state.chain.policy is BadSamplePolicy.RAISE and not all_finite(t, chunk.imu):
            return False
        state.waiting.append(chunk)
        state.newest_t_s = max(state.newest_t_s, float(t[-1]))
        state.last_t_s = float(t[-1])
        return True

    def _wait(self, state: DeviceState, chunk: SampleChunk) -> bool:
        """Hold ``chunk`` back when it surely completes no window
        (:meth:`~gaitedge.preprocess.StreamingChain.makes_no_window` on its stamps after the
        newest this device sent) and changes nothing a window is flagged with: a calibrating
        mounting still needs more samples than the next window (so it does not calibrate in
        them, and the cold-start companion is fed them as before), and the companion's next
        window is no nearer. The chunk that can goes through the chains with the held ones in
        one call: the same windows and flags, made as soon as they could be, in fewer calls
        (live 4-sample frames at hop 10: about one call in 2.5)."""
        t = chunk.t_s
        if not len(t):
            return False
        newest, state.newest_t_s = state.newest_t_s, max(state.newest_t_s, float(t[-1]))
        chain = state.chain
        if state.shadow is not None or not chain.makes_no_window(t, newest):
            return False
        need = chain.mounting.samples_to_calibrated()
        if need is None or 0 < need < chain.samples_to_window:  # it may calibrate meanwhile
            return False
        companion = state.companion
        if companion is not None and not (
            companion.chain.samples_to_window >= chain.samples_to_window
            if chain.keep_front  # it follows this chain's grid
            else companion.chain.makes_no_window(t, newest)
        ):
            return False
        if not all_finite(t, chunk.imu):  # refused or dropped now, as ever
            return False
        state.waiting.append(chunk)
        state.last_t_s = float(t[-1])
        return True

    @staticmethod
    def _with_waiting(state: DeviceState, chunk: SampleChunk) -> tuple:
        """``(t_s, imu, host_rx_s)`` of ``chunk`` after those held back for it (:meth:`_wait`)."""
        if not state.waiting:
            return chunk.t_s, chunk.imu, chunk.host_rx_s
        held, state.waiting = [*state.waiting, chunk], []
        t = np.concatenate([c.t_s for c in held])
        return t, np.concatenate([c.imu for c in held]), chunk.host_rx_s

    def finish(self, device: str | None = None) -> list[Alert]:
        """The end of a stream (``device``, or every one): release what the chain holds back
        (timestamp repair's last run of samples) and score it. A device whose stream ended
        before its units check had its samples is judged on those it sent (DevicesRefusedError
        for it, after the others are done): its held chunks were scored unchecked."""
        alerts = []
        refused: dict[str, ContractError] = {}
        for name, state in self.devices.items():
            if device is not None and name != device:
                continue
            if state.waiting and not state.units_checked and state.units_pending:
                try:  # on what it sent (fewer than 50 usable samples: not judged)
                    self._judge_units(state, name)
                except ContractError as exc:
                    refused[name] = exc
                    continue
            if state.waiting:  # the chunks held back for a window that will not come
                made: list[_Made] = []
                self._feed(state, *self._with_waiting(state, state.waiting.pop()), made)
                alerts += self._score(made)
            t0 = time.perf_counter()
            alerts += self._windows(state, state.chain.flush(), t0, time.monotonic(), ())
            alerts += self._uncalibrated_activity(name, state)
        if refused:
            raise DevicesRefusedError(refused)
        return alerts

    def _uncalibrated_activity(self, name: str, state: DeviceState) -> list[Alert]:
        """The end of a stream whose activity was held back all along (never calibrated): one
        activity alert, the label most held-back windows voted for, marked uncalibrated."""
        if state.held_counts is None or not state.held_counts.sum():
            return []
        if state.companion_alerts:  # the cold-start model reported activity meanwhile
            state.held_counts = state.held_p = state.held_since_s = None
            return []
        best = int(state.held_counts.argmax())
        n = int(state.held_counts[best])
        alert = Alert(
            t=state.last_t_s,
            t_event=float(state.held_since_s),
            type=AlertType.ACTIVITY,
            label=self.contract_of(state).heads["activity"][best],
            p=float(state.held_p[best] / n),
            device=name,
            extra={"mounting": "uncalibrated", "windows": int(state.held_counts.sum())},
        )
        state.held_counts = state.held_p = state.held_since_s = None
        self.sinks.send(alert)
        self.stats.alerts += 1
        return [alert]

    def _windows(self, state: DeviceState, windows, t0: float, host_rx_s: float, t_s):
        made: list[_Made] = []
        self._made(made, state, windows, t0, host_rx_s, t_s)
        return self._score(made)

    def _made(self, made: list[_Made], state: DeviceState, windows, t0, host_rx_s, t_s) -> None:
        """After a chain call: its latency and the stream time; its windows join ``made``
        with the chain's state as they were made."""
        self.stats.latency["chain"].add(time.perf_counter() - t0)
        if len(t_s):
            state.last_t_s = float(t_s[-1])
        if len(windows):
            chain = state.chain
            rate = chain.stats.input_rate_hz
            made.append(_Made(state, windows, host_rx_s, chain.mounting.calibrated, rate))

    def _score(self, made: list[_Made]) -> list[Alert]:
        """One engine call for every window in ``made`` (emptied), then each chain call's
        share of the probabilities to its device's alert logic, in order."""
        if not made:
            return []
        t1 = time.perf_counter()
        shares: list[dict[str, np.ndarray]] = [{} for _ in made]
        peaks: list[float | None] = [None] * len(made)  # each call's last window's, for falls
        engines = [m.state.engine or self.engine for m in made]
        for engine in dict.fromkeys(engines):  # one call per model (usually one)
            mine = [i for i, e in enumerate(engines) if e is engine]
            data = [made[i].windows.data for i in mine]
            batch = data[0] if len(data) == 1 else np.concatenate(data)
            probs = engine.predict(batch)
            # The peak |a| of each call's last window (a live call's only one), for every
            # device's fall detector at once (one model: one contract, one set of channels):
            # most live windows then skip the detector's work. The others of a large call are
            # passed over by the detector's own test.
            fall = next((made[i].state.fall for i in mine if made[i].state.fall), None)
            last = None
            if fall is not None:
                ends = np.cumsum([len(made[i].windows) for i in mine]) - 1
                chain = self.contract_of(made[mine[0]].state).chain
                last = fall.window_peaks_g(batch[ends], chain)
            at = 0
            for k, i in enumerate(mine):
                n = len(made[i].windows)
                shares[i] = (
                    probs if len(mine) == 1 else {h: p[at : at + n] for h, p in probs.items()}
                )
                if last is not None and n:
                    peaks[i] = float(last[k])
                at += n
        self.stats.latency["engine"].add(time.perf_counter() - t1)
        # Each device's alerts, with its cold-start companion's, go to the sinks in time order:
        # a large chunk's two models decide one after the other, as no live chunk would.
        devices: dict[int, list[Alert]] = {}
        for m, share, peak in zip(made, shares, peaks, strict=True):
            key = id(m.state.parent or m.state)
            devices.setdefault(key, []).extend(self._decide(m, share, peak))
        made.clear()
        alerts = [a for group in devices.values() for a in sorted(group, key=lambda a: a.t)]
        for alert in alerts:
            self.sinks.send(alert)
        return alerts

    def _decide(
        self, made: _Made, probs: dict[str, np.ndarray], last_peak_g: float | None = None
    ) -> list[Alert]:
        """Alert logic and counters for one chain call's windows and their scores (and its
        last window's peak acceleration: ``FallDetector.window_peaks_g``); returns the alerts
        for the sinks."""
        t2 = time.perf_counter()
        state, windows = made.state, made.windows
        state.calibrated, state.input_rate_hz = made.calibrated, made.input_rate_hz
        shown = state.activity_label, state.activity_p
        if state.parent is not None:
            self._stash_cold_fall(state, windows, probs, made.calibrated)
        alerts = self._alerts(state, windows, probs, last_peak_g)
        self.stats.latency["alerts"].add(time.perf_counter() - t2)
        if state.parent is not None:
            return self._companion_alerts(state, alerts)
        self.stats.latency["end_to_end"].add(time.monotonic() - made.host_rx_s)
        if state.shadow is not None:  # the device's decisions are the ones reported
            state.activity_label, state.activity_p = shown
            activity = probs["activity"].argmax(axis=1) if "activity" in probs else None
            state.shadow.add_host(windows.t_end_s, activity, alerts)
            return []
        state.windows += len(windows)
        self.stats.windows += len(windows)
        self.stats.alerts += len(alerts)
        return alerts

    def _stash_cold_fall(self, companion: DeviceState, windows, probs, calibrated: bool) -> None:
        """Keep the companion's fall probabilities (once its vertical is known) for its device's
        windows that end at the same instants (both chains see the same samples)."""
        heads = companion.engine.contract.heads
        if not calibrated or "fall" not in probs or "fall" not in heads.get("fall", ()):
            return
        p = probs["fall"][:, heads["fall"].index("fall")]
        cold = companion.parent.cold_fall
        for t_end, v in zip(windows.t_end_s.tolist(), p.tolist(), strict=True):
            cold[round(t_end, 4)] = v

    def _cold_fall_votes(self, state: DeviceState, windows) -> np.ndarray | None:
        """The companion's fall probabilities for ``windows`` (each used once), or None when
        it did not score every one of them."""
        if not state.cold_fall:
            return None
        keys = [round(t, 4) for t in windows.t_end_s.tolist()]
        if not all(k in state.cold_fall for k in keys):
            return None
        votes = np.array([state.cold_fall.pop(k) for k in keys])
        newest = keys[-1]
        for k in [k for k in state.cold_fall if k <= newest]:  # older ones are never asked
            del state.cold_fall[k]
        return votes

    def _companion_alerts(self, companion: DeviceState, alerts: list[Alert]) -> list[Alert]:
        """A cold-start companion's activity alerts, sent while its device's own mounting
        calibrates (marked with the model and the mounting they come from); the device's status
        shows its label (its windows are all from before the device calibrated: it is fed no
        sample after that moment)."""
        parent = companion.parent
        c = companion.engine.contract
        out = []
        for alert in alerts:
            extra = {
                **alert.extra,
                "mounting": "cold start",
                "model": f"{c.name} {c.model_version}",
            }
            out.append(replace(alert, extra=extra))
        if companion.activity_label is not None:
            parent.activity_label = companion.activity_label
            parent.activity_p = companion.activity_p
        self.stats.alerts += len(out)
        parent.companion_alerts += len(out)
        return out

    def process_result(self, result: DeviceResult) -> list[Alert]:
        """A device's own decision (a protocol 1.2 result frame): its alerts go to the sinks
        as the host's own would; with ``shadow`` it is compared with the host's decision for
        the same window. Returns the alerts (already sent)."""
        state = self._state(result.device)
        state.decides = True
        frame, classes = result.frame, self.contract.heads.get("activity", ())
        alerts = result_alerts(frame, result.t_s, result.device, classes)
        if frame.activity is not None:
            state.activity_label = class_name(classes, frame.activity)
            state.activity_p = frame.activity_p
        state.last_t_s = max(state.last_t_s, result.t_s)
        state.windows += 1
        self.stats.windows += 1
        self.stats.latency["end_to_end"].add(time.monotonic() - result.host_rx_s)
        if self.shadow:
            state.shadow = state.shadow or Shadow()
            state.shadow.add_device(result.t_s, frame.activity, alerts)
        for alert in alerts:
            self.sinks.send(alert)
        self.stats.alerts += len(alerts)
        return alerts

    UNITS_CHECK_SAMPLES = 250  # 5 s at 50 Hz: enough for a median of |acc|
    # ... or this long of a slower device's (at 12.5 Hz, 250 samples took 20 s), from at
    # least UNITS_CHECK_MIN_SAMPLES (what ``check_gravity_scale`` judges on).
    UNITS_CHECK_S = 5.0
    UNITS_CHECK_MIN_SAMPLES = 50

    def units_due(self, n: int, span_s: float) -> bool:
        """Whether ``n`` usable samples spanning ``span_s`` of a device's stamps are enough for
        its units check: ``UNITS_CHECK_SAMPLES`` of them, or ``UNITS_CHECK_S`` of a slower
        device's (at 50 Hz or faster, the count comes first)."""
        if n >= self.UNITS_CHECK_SAMPLES:
            return True
        return n >= self.UNITS_CHECK_MIN_SAMPLES and span_s >= self.UNITS_CHECK_S

    def _check_units(self, state: DeviceState, chunk: SampleChunk) -> None:
        """Refuse a device whose acceleration is not in m/s² (a wrong scale or unit), judged on
        its first usable samples (:meth:`units_due`; corrupted ones: the chain drops them)."""
        acc, t = chunk.imu[:, :3], chunk.t_s
        if not all_finite(chunk.t_s, chunk.imu):
            keep = usable_rows(chunk.t_s, chunk.imu)
            acc, t = acc[keep], t[keep]
        state.units_pending.append(acc)
        if len(t) and state.units_first_t_s is None:
            state.units_first_t_s = float(t[0])
        span = float(t[-1]) - state.units_first_t_s if len(t) else 0.0
        if not self.units_due(sum(len(a) for a in state.units_pending), span):
            return
        self._judge_units(state, chunk.device)

    def _judge_units(self, state: DeviceState, device: str) -> None:
        """The units check on the samples kept for it (:meth:`_check_units`, or what a stream
        that ended sooner sent: :meth:`finish`); a refusal is the device's for good, and none
        of the chunks held for the check is scored."""
        acc = np.concatenate(state.units_pending)
        state.units_pending, state.units_checked = [], True
        try:
            self.check_units(acc, device)
        except ContractError as exc:
            state.refused, state.waiting = exc, []
            raise

    def check_units(self, acc: np.ndarray, device: str) -> None:
        """Raise :class:`ContractError` when ``acc`` [n, 3] is not in m/s² (a wrong scale or
        unit); :meth:`process` checks each device's first samples with it (:meth:`units_due`)."""
        try:
            check_gravity_scale(acc, device)
        except ValueError as exc:
            raise ContractError(
                f"{exc}; the model {self.contract.name} expects m/s² (check the device's "
                "accelerometer range or the recording's units)"
            ) from exc

    def _alerts(
        self,
        state: DeviceState,
        windows,
        probs: dict[str, np.ndarray],
        last_peak_g: float | None = None,
    ) -> list[Alert]:
        alerts: list[Alert] = []
        contract = self.contract_of(state)
        calibrated = state.calibrated  # as the chain was when it made ``windows``
        cold_votes = None
        if state.fall is not None:
            # Calibrating: the cold-start model's fall vote when it scored these windows, else
            # impact + orientation change alone.
            cold_votes = None if calibrated else self._cold_fall_votes(state, windows)
            state.fall.model_gate = calibrated or cold_votes is not None
            state.fall.input_rate_hz = state.input_rate_hz
        if state.activity is not None and not calibrated:
            p = probs["activity"]
            best = p.argmax(axis=1)
            if state.companion is None or state.companion.activity_label is None:
                state.activity_label, state.activity_p = None, float(p[-1, best[-1]])
            if state.held_counts is None:
                state.held_counts = np.zeros(p.shape[1], np.int64)
                state.held_p = np.zeros(p.shape[1])
                state.held_since_s = float(windows.t_start_s[0] + windows.t_end_s[0]) / 2
            np.add.at(state.held_counts, best, 1)
            np.add.at(state.held_p, best, p[np.arange(len(best)), best])
        elif state.activity is not None:
            state.held_counts = state.held_p = state.held_since_s = None  # calibrated now
            p = probs["activity"]
            # Smoothing never votes across a gap: each new segment starts afresh.
            cuts = np.flatnonzero(np.diff(windows.segment)) + 1 if len(windows) > 1 else ()
            for a, b in zip((0, *cuts), (*cuts, len(windows)), strict=True):
                if windows.segment[a] != state.segment:
                    state.activity.reset()
                    state.segment = int(windows.segment[a])
                alerts += state.activity.update_batch(
                    windows.t_start_s[a:b], windows.t_end_s[a:b], p[a:b]
                )
            best = int(p[-1].argmax())
            state.activity_label = contract.heads["activity"][best]
            state.activity_p = float(p[-1, best])
        if state.fall is not None:
            p_fall = probs["fall"][:, contract.heads["fall"].index("fall")]
            if cold_votes is not None:
                p_fall = cold_votes
            alerts += state.fall.update_windows(windows, p_fall, contract.chain, last_peak_g)
        return sorted(alerts, key=lambda a: a.t)

    def device_status(self) -> list[DeviceStatus]:
        """One typed status per device (the session layer adds each source's link health)."""
        e2e = self.stats.latency["end_to_end"]
        return [
            DeviceStatus(
                device=name,
                t_s=round(s.last_t_s, 1),
                activity=s.activity_label,
                p=round(s.activity_p, 2),
                windows=s.windows,
                dropped=s.chain.stats.dropped_nonfinite + s.chain.stats.dropped_out_of_order,
                segments=s.chain.stats.segments,
                latency_p95_ms=round(e2e.percentile_ms(95), 2),
                mounting=_mounting_status(s.chain.mounting, s.companion),
                tied=s.chain.stats.repair.tied + s.chain.stats.repair.backward_jitter,
                clock_resets=s.chain.stats.repair.clock_resets,
                outliers=s.chain.stats.repair.outliers,
                bridged=s.chain.stats.bridged_gaps,
                decisions="device" if s.decides else "host",
                shadow=s.shadow.stats.to_dict() if s.shadow is not None else None,
                model=(
                    f"{s.engine.contract.name} {s.engine.contract.model_version}"
                    if s.engine is not None
                    else None
                ),
                refused=None if s.refused is None else str(s.refused),
            )
            for name, s in self.devices.items()
        ]

    def status(self) -> list[dict]:
        """One row per device for the live display (:meth:`device_status` as dicts)."""
        return [s.to_dict() for s in self.device_status()]


def _mounting_status(mounting: Mounting, companion: DeviceState | None = None) -> str:
    est = mounting.estimator
    if est is None:
        return "fixed" if mounting.fixed is not None else "none"
    if not est.calibrated:
        meanwhile = "activity held back"
        if companion is not None:
            meanwhile = f"activity from the cold-start model {companion.engine.contract.name}"
        return (
            f"calibrating ({est.walking_s:.0f}/{CALIBRATED_WALKING_S:.0f} s walking; {meanwhile})"
        )
    stored = "stored, " if est.restored else ""
    if hasattr(est, "up_source"):  # mounting "vertical": only up is estimated
        walked = f"{stored}{est.walking_s:.0f} s walking"
        return f"calibrated (vertical from {est.up_source()}, {walked})"
    return f"calibrated ({stored}{est.walking_s:.0f} s walking, {est.realignments} re-aligned)"
