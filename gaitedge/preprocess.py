"""The causal signal chain, shared by training and the live runtime.

    timestamped 6-axis chunks (m/s², rad/s)
      -> timestamp repair (ties, batches, backward jitter, clock resets; :class:`TimestampRepair`)
      -> anti-aliasing at the input's own rate when it is faster than the model's
      -> resample to ``sample_rate_hz`` (linear interpolation, streaming across chunks)
      -> low-pass (causal Butterworth, SOS sections with carried state)
      -> gravity / body split (causal low-pass of the acceleration)
      -> mounting: rotation into the body frame (``gaitedge.mounting``), when the chain asks
      -> channel selection and dataset-level normalisation
      -> windows (``gaitedge.windows``)

There is one implementation: :func:`run_offline` is :class:`StreamingChain` fed the whole
recording in one chunk, so training sees exactly what the device sees. Any chunking of a stream
gives the same windows as one pass (pinned by property tests).

Bad input policy (``BadSamplePolicy``): ``RAISE`` (the default, used offline) raises
:class:`ChainInputError` naming the sample and leaves the chain's state untouched, so the caller
can fix or drop the chunk and carry on; ``DROP`` (used live) drops non-finite samples and samples
whose timestamp does not increase, counts them in :attr:`StreamingChain.stats` and logs a warning.
A gap longer than ``max_gap_s`` starts a new segment: filters and windows restart there and no
value is interpolated across the gap; shorter losses (a few BLE notifications) are bridged by the
resampler's linear interpolation and counted in :attr:`ChainStats.bridged_gaps`.

Timestamps as devices send them are repaired unless the chain is ``strict`` (see
:class:`TimestampRepair`): with ``strict=True`` a timestamp that does not increase is bad input
under the policy above.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import json
import logging
import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
from scipy import signal

from gaitedge.windows import Windower, Windows

try:  # The Cython kernel behind scipy.signal.sosfilt, without its per-call validation.
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - only on a scipy that moved it
    _sosfilt_kernel = None

log = logging.getLogger(__name__)

# 2: the ``mounting`` field (sensor-to-body alignment) and anti-aliasing of faster input.
CHAIN_VERSION = 2
# Input at least this much faster than the model's rate is low-passed at its own rate first.
ANTIALIAS_RATIO = 1.25
# Samples of a segment used to estimate the input rate (anti-aliasing, short-loss counting).
RATE_ESTIMATE_SAMPLES = 16
INPUT_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
# Every channel the chain can emit. acc_*: low-passed total acceleration (m/s²); gravity_*: its
# slow part; body_acc_*: acc - gravity; gyro_*: low-passed angular rate (rad/s); *_norm: magnitudes.
AVAILABLE_CHANNELS = (
    "acc_x",
    "acc_y",
    "acc_z",
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "gravity_x",
    "gravity_y",
    "gravity_z",
    "gyro_x",
    "gyro_y",
    "gyro_z",
    "acc_norm",
    "gyro_norm",
)
# Body motion for activity, the gravity direction for posture (sitting vs standing) and falls.
DEFAULT_CHANNELS = tuple(
    c
    for c in AVAILABLE_CHANNELS
    if c.startswith(("body_acc_", "gravity_", "gyro_")) and "norm" not in c
)
# What a chain whose channels need no gyroscope computes from [N, 3] accelerometer input (an
# accelerometer-only sensor, or the first three columns of a 6-axis one): nothing is padded.
ACC_ONLY_CHANNELS = tuple(c for c in AVAILABLE_CHANNELS if not c.startswith("gyro_"))


def needs_gyroscope(channels) -> bool:
    """Whether a chain with these channels needs the gyroscope (else [N, 3] input will do)."""
    return any(c.startswith("gyro_") for c in channels)


class ChainInputError(ValueError):
    """Input the chain refuses (non-finite values, time not increasing, wrong shape)."""


class BadSamplePolicy(str, enum.Enum):
    RAISE = "raise"
    DROP = "drop"


@dataclass(frozen=True)
class ChainConfig:
    """Everything that defines the signal chain; saved inside checkpoints and model bundles."""

    sample_rate_hz: float = 50.0
    lowpass_order: int = 4
    lowpass_cutoff_hz: float = 20.0
    gravity_order: int = 2
    gravity_cutoff_hz: float = 0.3
    # A longer gap between two samples starts a new segment; shorter ones are interpolated
    # (bridged). 1 s keeps a fall next to a lost burst of BLE notifications in one segment.
    max_gap_s: float = 1.0
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    window_samples: int = 128
    hop_samples: int = 64
    # Dataset-level statistics per channel, fitted on training subjects; None = not normalised.
    norm_mean: tuple[float, ...] | None = None
    norm_std: tuple[float, ...] | None = None
    # "none": the input is already in the model's frame; "auto": rotate into the body frame
    # estimated online from walking (gaitedge.mounting); "vertical": only body x = up is
    # estimated (from the first samples, refined while walking), the heading is arbitrary
    # (a model trained with rotations about the vertical). The runtime may override it.
    mounting: str = "none"
    version: int = CHAIN_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels:
            raise ValueError(f"channels is empty; choose from {AVAILABLE_CHANNELS}")
        # Whole numbers where the chain counts (a window of 128.5 samples, a filter of order
        # -3 failed deep inside numpy and scipy; one of order 0 passed everything through).
        for name, low, high in (
            ("window_samples", 2, None), ("hop_samples", 1, None),
            ("lowpass_order", 1, 10), ("gravity_order", 1, 10),
        ):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be a whole number, not {value!r}")
            if value < low or (high is not None and value > high):
                bound = f"from {low} to {high}" if high is not None else f">= {low}"
                raise ValueError(f"{name} must be {bound}, not {value}")
        rate = self.sample_rate_hz
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 < rate < math.inf:
            raise ValueError(f"sample_rate_hz must be a positive number, not {rate!r}")
        for name in ("norm_mean", "norm_std"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))
        unknown = [c for c in self.channels if c not in AVAILABLE_CHANNELS]
        if unknown:
            raise ValueError(f"unknown channels {unknown}; choose from {AVAILABLE_CHANNELS}")
        nyquist = self.sample_rate_hz / 2
        for name in ("lowpass_cutoff_hz", "gravity_cutoff_hz"):
            if not 0 < getattr(self, name) < nyquist:
                raise ValueError(f"{name} must lie in (0, {nyquist}) Hz at this sample rate")
        if (self.norm_mean is None) != (self.norm_std is None):
            raise ValueError("norm_mean and norm_std go together")
        if self.norm_mean is not None:
            n = len(self.channels)
            if len(self.norm_mean) != n or len(self.norm_std) != n:
                raise ValueError(f"normalisation statistics need {n} values per field")
            if min(self.norm_std) <= 0:
                raise ValueError("norm_std must be positive")
        if self.mounting not in ("none", "auto", "vertical"):
            raise ValueError(
                f"mounting must be 'none', 'auto' or 'vertical', not {self.mounting!r}"
            )
        if self.window_samples < 2 or self.hop_samples < 1 or self.max_gap_s <= 0:
            raise ValueError("window_samples >= 2, hop_samples >= 1 and max_gap_s > 0 needed")

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def window_s(self) -> float:
        return self.window_samples / self.sample_rate_hz

    @property
    def hop_s(self) -> float:
        return self.hop_samples / self.sample_rate_hz

    def with_normalization(self, mean: np.ndarray, std: np.ndarray) -> ChainConfig:
        return replace(self, norm_mean=tuple(map(float, mean)), norm_std=tuple(map(float, std)))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> ChainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown chain config fields {sorted(unknown)}")
        if data.get("version", CHAIN_VERSION) > CHAIN_VERSION:
            raise ValueError(
                f"chain config version {data['version']} is newer than this gaitedge "
                f"understands ({CHAIN_VERSION}); upgrade gaitedge"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ChainConfig:
        return cls.from_dict(json.loads(text))


class SosFilter:
    """A causal IIR filter over several channels with its state carried across chunks.

    The state starts at the steady state for the segment's first sample, so a constant input
    (gravity at rest) passes without a start-up transient.
    """

    def __init__(self, sos: np.ndarray, n_channels: int) -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.n_channels = n_channels
        self._zi_unit = signal.sosfilt_zi(self.sos)  # [sections, 2]
        self._zi: np.ndarray | None = None  # [C, sections, 2]

    def reset(self) -> None:
        self._zi = None

    def process(self, x: np.ndarray) -> np.ndarray:
        """Filter [N, C] samples; returns a new [N, C] float64 array."""
        if self._zi is None:
            self._zi = np.ascontiguousarray(x[0][:, None, None] * self._zi_unit[None])
        if _sosfilt_kernel is not None:
            y = np.array(x.T, dtype=np.float64, order="C")  # [C, N], filtered in place
            _sosfilt_kernel(self.sos, y, self._zi)
            return y.T
        y, zf = signal.sosfilt(self.sos, x, axis=0, zi=self._zi.transpose(1, 2, 0))
        self._zi = np.ascontiguousarray(zf.transpose(2, 0, 1))
        return y


@dataclass
class RepairStats:
    """What :class:`TimestampRepair` changed; every repaired sample is counted."""

    tied: int = 0  # samples that repeated the previous stamp (ties, batches)
    backward_jitter: int = 0  # samples stamped slightly before the previous one
    clock_resets: int = 0  # large backward jumps: the stream time carries on, a new segment
    # lone samples stamped far from the stream (ahead past ``reset_s``, or back past it) whose
    # next stamp goes on from before them: a glitch of one stamp, not a clock reset
    outliers: int = 0


class TimestampRepair:
    """Turns timestamps as devices send them into strictly increasing ones, losing no sample.

    * **Ties and batches.** Phone apps stamp with 1 or 10 ms resolution (~8 % of samples repeat
      the previous stamp at 104 Hz) and Android delivers several samples with one arrival time.
      A run of ``n`` samples sharing stamp ``T`` after the previous distinct stamp ``P`` is spread
      evenly: ``P + (i + 1) (T - P) / n``, the last exactly ``T``. The newest run is held back
      until a later stamp arrives (it may grow), which delays a clean stream by one sample;
      :meth:`flush` releases it at the end of a recording.
    * **Backward jitter** of up to ``reset_s`` is a tie with the newest stamp.
    * **A larger backward jump** (a device clock reset) re-bases the clock so stream time carries
      on ``segment_gap_s`` plus one typical interval after the last sample, and marks a new
      segment (the true gap is unknown): the caller's resampler sees a step of ``max_gap_s`` or
      more.
    * **A lone outlier**: one sample stamped far ahead of the stream, or far back (a reset),
      whose next sample's stamp goes on from before it (back within ``reset_s`` of the stamp
      before it, at most ``segment_gap_s`` ahead), is a glitch of one stamp: it joins the run
      of its next sample (ahead) or of the one before it (back), as jitter does, and is counted;
      the stream time is not moved. A sample stamped back waits for its next sample to decide
      (a stream that ends there: a reset). Two glitched stamps in a row are read as resets.
    * **The typical interval** is set once per stream, by the first run that a later stamp ends:
      ``n`` samples at ``T1`` then ``T2`` give ``(T2 - T1) / n`` (an Android batch of ``n`` spans
      about ``T2 - T1``). A run opening the stream has no ``P``: it is spread back over ``n``
      intervals, to ``T1 - (T2 - T1)``. Until the stream has one (a reset or the end before any
      second stamp), :attr:`DEFAULT_INTERVAL_S`.

    What comes out, and the stats, depend only on the samples fed, never on how they were cut
    into chunks (pinned by a property test). A chunk is repaired ``BLOCK_SAMPLES`` at a time with
    array operations (:meth:`_runs`); a block holding a clock reset, or a short one with a tie,
    goes through the per-sample loop (:meth:`_loop`), the reference the array path is tested
    against bit for bit.
    """

    DEFAULT_INTERVAL_S = 0.02  # a 50 Hz guess, only until the stream shows its own interval
    # Bounds the samples one clock reset sends through the per-sample loop.
    BLOCK_SAMPLES = 4096
    # Below this many samples a block with a tie costs less in the loop than in array set-up.
    LOOP_SAMPLES = 16

    def __init__(self, reset_s: float = 0.5, segment_gap_s: float = 1.0) -> None:
        self.reset_s = reset_s
        self.segment_gap_s = segment_gap_s
        self.stats = RepairStats()
        self.reset()

    def reset(self) -> None:
        self._offset = 0.0  # added to every stamp since the last clock reset
        self._prev: float | None = None  # the last emitted (distinct) stamp
        self._held_t: float | None = None  # the newest run's stamp: the newest stamp so far
        self._held_x = np.zeros((0, 6))
        self._dt: float | None = None  # the typical interval (see the class docstring)
        # A sample stamped far back (its raw stamp, its [1, C] values), held until the next
        # sample shows a clock reset or a lone outlier.
        self._pending: tuple[float, np.ndarray] | None = None

    def process(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feed [N] stamps and [N, C] finite samples (C = 6 in the chain, 3 for one sensor of
        an export); returns the samples now final."""
        if not len(t):
            return t, x
        t, x = np.asarray(t, np.float64), np.asarray(x, np.float64)
        if self._held_t is None:
            self._held_x = x[:0]  # [0, C]
        step = self.BLOCK_SAMPLES
        if len(t) <= step:
            return self._block(t, x)
        parts = [self._block(t[i : i + step], x[i : i + step]) for i in range(0, len(t), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Release the held samples (end of a recording)."""
        if self._pending is None:
            return self._release()
        (t_raw, x), self._pending = self._pending, None
        first = self._reset(t_raw, x)
        last = self._release()
        return np.concatenate([first[0], last[0]]), np.concatenate([first[1], last[1]])

    @property
    def pending(self) -> bool:
        """Whether a sample stamped far back waits for the next to tell a reset from a glitch."""
        return self._pending is not None

    @property
    def offset(self) -> float:
        """What is added to the device's stamps since its last clock reset."""
        return self._offset

    def _block(self, t_raw: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._pending is not None:
            return self._loop(t_raw, x)
        t = t_raw + self._offset
        newest = -np.inf if self._held_t is None else self._held_t
        if len(t) <= self.LOOP_SAMPLES:  # a live frame's: Python floats (b > a iff b - a > 0)
            stamps = t.tolist()
            if stamps[0] > newest and all(a < b for a, b in itertools.pairwise(stamps)):
                return self._increasing(t, x)
        elif t[0] > newest and (np.diff(t) > 0).all():
            return self._increasing(t, x)
        if len(t) < self.LOOP_SAMPLES:
            return self._loop(t_raw, x)
        before = np.empty_like(t)  # [N] the newest stamp before each sample
        before[0] = newest
        np.maximum(np.maximum.accumulate(t[:-1]), newest, out=before[1:])
        if (t < before - self.reset_s).any():
            return self._loop(t_raw, x)
        return self._runs(t, x, before)

    def _increasing(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The common case: strictly increasing after the held run, nothing to repair."""
        if self._dt is None:
            if self._held_t is not None:
                self._dt = (float(t[0]) - self._held_t) / len(self._held_x)
            elif len(t) > 1:
                self._dt = float(t[1]) - float(t[0])
        if self._held_t is not None and len(self._held_x) == 1:
            # One held sample (the usual case): released at its own stamp, as _release does.
            out_t = np.empty(len(t))
            out_t[0] = self._held_t
            out_t[1:] = t[:-1]
            out_x = np.concatenate([self._held_x, x[:-1]])
        else:
            released_t, released_x = self._release()
            out_t = np.concatenate([released_t, t[:-1]])
            out_x = np.concatenate([released_x, x[:-1]])
        if len(t) > 1:
            self._prev = float(t[-2])
        elif self._held_t is not None:  # the one held sample, released above
            self._prev = self._held_t
        self._held_t, self._held_x = float(t[-1]), x[-1:].copy()
        return out_t, out_x

    def _runs(
        self, t: np.ndarray, x: np.ndarray, before: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ties and backward jitter, no clock reset: every run but the newest released at once."""
        opens = t > before  # [N] later than every stamp before it: opens a run
        joins = ~opens
        tied = int(np.count_nonzero(joins & (t == before)))
        self.stats.tied += tied
        self.stats.backward_jitter += int(np.count_nonzero(joins)) - tied
        held = len(self._held_x)
        xs = np.concatenate([self._held_x, x])  # [H + N, C] the held run, then this block
        first = np.flatnonzero(opens)  # [K] where runs 1..K open; run 0 is the held one
        k = len(first)
        if not k:
            self._held_x = xs
            return np.zeros(0), xs[:0]
        run = np.cumsum(opens)  # [N] each sample's run
        stamps = np.concatenate(([before[0]], t[first]))  # [K + 1]
        sizes = np.bincount(run, minlength=k + 1)  # [K + 1]
        sizes[0] += held
        j = 0 if sizes[0] else 1  # the oldest run with samples (1: nothing was held)
        if self._dt is None and j < k:
            self._dt = float(stamps[j + 1] - stamps[j]) / int(sizes[j])
        prevs = np.empty(k + 1)  # [K + 1] the stamp each run is spread back to
        prevs[1:] = stamps[:-1]
        if self._prev is not None:
            prevs[j] = self._prev
        else:
            prevs[j] = float(stamps[j]) - self._interval() * int(sizes[j])
        n_out = held + int(first[-1])  # runs 0..K-1 are final
        rid = np.concatenate([np.zeros(held, np.int64), run[: first[-1]]])  # [n_out]
        opens_at = np.concatenate(([0], held + first))  # [K + 1] each run's index in xs
        pos = np.arange(1, n_out + 1) - opens_at[rid]  # [n_out] 1..n within the run
        n, big_t, prev = sizes[rid], stamps[rid], prevs[rid]
        out = prev + (pos / n) * (big_t - prev)
        last = pos == n
        out[last] = big_t[last]
        if n_out:  # else one run opened a stream that held nothing: it is the newest
            self._prev = float(stamps[-2])
        self._held_t, self._held_x = float(stamps[-1]), xs[n_out:].copy()
        return out, xs[:n_out]

    def _loop(self, t_raw: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One sample at a time: the reference for :meth:`_runs`, and what handles clock resets."""
        parts = []
        for i in range(len(t_raw)):
            ti = float(t_raw[i]) + self._offset
            if self._pending is not None:  # the sample before was stamped far back
                (p_raw, p_x), self._pending = self._pending, None
                if self._held_t - self.reset_s <= ti <= self._held_t + self.segment_gap_s:
                    self.stats.outliers += 1  # this one goes on from before it: a glitch
                    self._held_x = np.concatenate([self._held_x, p_x])
                else:
                    parts.append(self._reset(p_raw, p_x))
                    ti = float(t_raw[i]) + self._offset
            if self._held_t is None:
                self._held_t, self._held_x = ti, x[i : i + 1].copy()
            elif ti > self._held_t:
                if self._dt is None:
                    self._dt = (ti - self._held_t) / len(self._held_x)
                parts.append(self._release())
                self._held_t, self._held_x = ti, x[i : i + 1].copy()
            elif ti >= self._held_t - self.reset_s:
                if ti == self._held_t:
                    self.stats.tied += 1
                else:
                    self.stats.backward_jitter += 1
                self._held_x = np.concatenate([self._held_x, x[i : i + 1]])
            elif (
                len(self._held_x) == 1
                and self._prev is not None
                and self._prev < ti <= self._prev + self.segment_gap_s
            ):  # the one held sample was stamped far ahead, and this goes on from before it
                self.stats.outliers += 1
                self._held_t = ti
                self._held_x = np.concatenate([self._held_x, x[i : i + 1]])
            else:  # a clock reset, or a lone outlier: the next sample tells
                self._pending = (float(t_raw[i]), x[i : i + 1].copy())
        if not parts:
            return np.zeros(0), x[:0]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _interval(self) -> float:
        return self._dt if self._dt is not None else self.DEFAULT_INTERVAL_S

    def _reset(self, t_raw: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A clock reset at a sample stamped ``t_raw``: the held run released, the stream time
        carried on past a segment break; returns what is released."""
        self.stats.clock_resets += 1
        out = self._release()
        self._offset += self._prev + self.segment_gap_s + self._interval() - (t_raw + self._offset)
        self._held_t, self._held_x = t_raw + self._offset, x
        return out

    def _release(self) -> tuple[np.ndarray, np.ndarray]:
        """Emit the held run of samples spread back to the previous stamp."""
        if self._held_t is None:
            return np.zeros(0), self._held_x[:0]
        n = len(self._held_x)
        big_t = self._held_t
        prev = self._prev if self._prev is not None else big_t - self._interval() * n
        out = prev + (np.arange(1, n + 1) / n) * (big_t - prev)
        out[-1] = big_t
        self._prev = big_t
        x = self._held_x
        self._held_t, self._held_x = None, x[:0]
        return out, x


def _whole_blocks(select: list[int], n_inputs: int) -> list[int] | None:
    """The channel selection as whole blocks of the available channels (acc, body_acc,
    gravity, [gyro], acc_norm, [gyro_norm]: their indices, in order), or None when it picks
    parts of a block or reorders within one."""
    widths = [3, 3, 3] + ([3, 1, 1] if n_inputs == 6 else [1])
    starts = [sum(widths[:b]) for b in range(len(widths))]
    blocks, i = [], 0
    if not select:
        return None
    while i < len(select):
        if select[i] not in starts:
            return None
        b = starts.index(select[i])
        if select[i : i + widths[b]] != list(range(select[i], select[i] + widths[b])):
            return None
        blocks.append(b)
        i += widths[b]
    return blocks


# Up to this many samples (a live frame's) a stage works on Python floats where numpy's
# per-call cost would dominate (the same IEEE operations as its array path).
FEW_SAMPLES = 64


# The largest magnitude a sample's value may have, in m/s² or rad/s (~10 000 g, ~5.7 M deg/s):
# no IMU reports more. Past it a value is a corrupted cell or frame, and one such value would
# fill the filters' state (and the model's float32 input) with garbage for the rest of its
# segment: it is treated as a non-finite one (dropped and counted, or refused).
MAX_ABS_VALUE = 1e5


def all_finite(t: np.ndarray, x: np.ndarray) -> bool:
    """Whether every sample is usable: its stamp finite, its values finite and within
    ±:data:`MAX_ABS_VALUE`. The sum of the stamps and the sum of the squared values first (a
    NaN or inf anywhere, or a value past the bound, shows in them; usable almost always), the
    exact test (:func:`usable_rows`) only when they do not pass."""
    x = np.asarray(x, np.float64)
    if math.isfinite(float(t.sum())) and float(np.vdot(x, x)) <= MAX_ABS_VALUE**2:
        return True
    return bool(usable_rows(t, x).all())


def usable_rows(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """[N] True where a sample's stamp is finite and its values finite and within
    ±:data:`MAX_ABS_VALUE` (a NaN is neither)."""
    return np.isfinite(t) & (np.abs(x) <= MAX_ABS_VALUE).all(axis=1)


def repair_timestamps(
    t: np.ndarray, x: np.ndarray, reset_s: float = 0.5, segment_gap_s: float = 1.0
) -> tuple[np.ndarray, np.ndarray, RepairStats]:
    """A whole recording through :class:`TimestampRepair` (fed once, then flushed)."""
    rep = TimestampRepair(reset_s, segment_gap_s)
    a_t, a_x = rep.process(np.asarray(t, np.float64), np.asarray(x, np.float64))
    b_t, b_x = rep.flush()
    return np.concatenate([a_t, b_t]), np.concatenate([a_x, b_x]), rep.stats


@dataclass
class ResampledPiece:
    """Samples on the model's time grid; ``new_segment`` marks a restart after a gap."""

    new_segment: bool
    t: np.ndarray  # [M]
    x: np.ndarray  # [M, 6]


class AntiAlias:
    """Causal low-pass of the input at its own rate, when it is faster than the model's.

    Linear resampling folds everything above the model's Nyquist frequency into the band (a
    200 Hz impact spike aliases into the 50 Hz stream). Input at least :data:`ANTIALIAS_RATIO`
    times faster than the model rate is therefore low-passed first (Butterworth, order 4, at
    0.45 x the model rate, state carried across chunks, restarted after a gap) and its samples
    are re-stamped ``group_delay_s`` earlier (the filter's delay at low frequencies), so a fast
    stream lines up with a slow one of the same movement. The input rate is the median interval
    of the stream's first :data:`RATE_ESTIMATE_SAMPLES` samples, which are held back until it is
    known (a one-off delay at the start). It also counts short losses that the resampler bridges.
    """

    ORDER = 4
    CUTOFF_FRACTION = 0.45  # of the model's sample rate

    def __init__(self, model_rate_hz: float, max_gap_s: float, n_inputs: int = 6) -> None:
        self.model_rate_hz = float(model_rate_hz)
        self.n_inputs = n_inputs
        self.max_gap_s = max_gap_s
        self.input_rate_hz: float | None = None
        self.group_delay_s = 0.0
        self.bridged_gaps = 0
        self._held_t = np.zeros(0)
        self._held_x = np.zeros((0, n_inputs))
        self._filter: SosFilter | None = None
        self._last_t: float | None = None

    def reset(self) -> None:
        """A new connection: the next sample starts a new segment."""
        self._last_t = None

    def process(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.input_rate_hz is None:
            self._held_t = np.concatenate([self._held_t, t])
            self._held_x = np.concatenate([self._held_x, x])
            if len(self._held_t) <= RATE_ESTIMATE_SAMPLES:
                return np.zeros(0), np.zeros((0, self.n_inputs))
            return self.flush()
        return self._filter_segments(t, x)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Release held samples (end of a recording shorter than the rate estimate)."""
        if self.input_rate_hz is None:
            dt = np.diff(self._held_t[: RATE_ESTIMATE_SAMPLES + 1])
            dt = dt[(dt > 0) & (dt <= self.max_gap_s)]
            self._design(float(np.median(dt)) if len(dt) else 1.0 / self.model_rate_hz)
        t, x = self._held_t, self._held_x
        self._held_t, self._held_x = np.zeros(0), np.zeros((0, self.n_inputs))
        return self._filter_segments(t, x) if len(t) else (t, x)

    def _design(self, interval_s: float) -> None:
        self.input_rate_hz = 1.0 / interval_s if interval_s > 0 else self.model_rate_hz
        if self.input_rate_hz < ANTIALIAS_RATIO * self.model_rate_hz:
            return
        cutoff = self.CUTOFF_FRACTION * self.model_rate_hz
        sos = signal.butter(self.ORDER, cutoff, fs=self.input_rate_hz, output="sos")
        self._filter = SosFilter(sos, self.n_inputs)
        b, a = signal.sos2tf(sos)
        _, delay = signal.group_delay((b, a), w=[0.5], fs=self.input_rate_hz)
        self.group_delay_s = float(delay[0]) / self.input_rate_hz
        log.debug(
            "input at %.1f Hz: anti-aliasing low-pass at %.1f Hz (delay %.1f ms) before resampling",
            self.input_rate_hz, cutoff, 1e3 * self.group_delay_s,
        )  # fmt: skip

    def _filter_segments(self, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not len(t):
            return t, x
        if self._filter is None and len(t) <= FEW_SAMPLES:
            # No filter (a slow input): only the bridged gaps to count. A live frame's few
            # stamps as Python floats (the same differences), where numpy's per-call cost
            # would dominate.
            limit, prev, bridged = 1.5 / self.input_rate_hz, self._last_t, 0
            for stamp in t.tolist():
                if prev is not None and limit < stamp - prev <= self.max_gap_s:
                    bridged += 1
                prev = stamp
            self.bridged_gaps += bridged
            self._last_t = prev
            return t, x
        prev = np.concatenate(([self._last_t], t[:-1])) if self._last_t is not None else None
        dt = t - prev if prev is not None else np.concatenate(([np.inf], np.diff(t)))
        self.bridged_gaps += int(((dt > 1.5 / self.input_rate_hz) & (dt <= self.max_gap_s)).sum())
        self._last_t = float(t[-1])
        if self._filter is None:
            return t, x
        starts = np.flatnonzero(dt > self.max_gap_s)
        out = np.empty_like(x)
        for a, b in zip((0, *starts), (*starts, len(t)), strict=True):
            if a == b:
                continue
            if a in starts:
                self._filter.reset()
            out[a:b] = self._filter.process(x[a:b])
        return t - self.group_delay_s, out


class Resampler:
    """Streaming linear interpolation onto ``t0 + k / rate_hz`` from irregular timestamps.

    ``t0`` is the first sample of the segment. Grid point k is emitted as soon as a sample at
    or after it has arrived, so the output does not depend on how the input is chunked.
    """

    # Grid points this close past the newest sample are emitted now (a hair of extrapolation)
    # rather than one sample later, so timestamps rounded to microseconds still line up.
    _EPS_S = 1e-9

    def __init__(self, rate_hz: float, max_gap_s: float) -> None:
        self.rate_hz = float(rate_hz)
        self.max_gap_s = max_gap_s
        # The grid starts this long after a segment's first sample: the anti-aliasing filter's
        # delay, so the grid sits where the device's own first stamp was (fast == slow input).
        self.t0_offset_s = 0.0
        self.reset()

    def reset(self) -> None:
        self._t0 = 0.0
        self._k = 0
        self._last_t: float | None = None
        self._last_x: np.ndarray | None = None

    @property
    def last_t(self) -> float | None:
        return self._last_t

    @property
    def next_grid_s(self) -> float:
        """The time of the grid point the next sample will be interpolated at (its segment)."""
        return self._t0 + self._k / self.rate_hz

    def process(self, t: np.ndarray, x: np.ndarray) -> list[ResampledPiece]:
        """Resample a validated chunk (strictly increasing ``t``, finite ``x``)."""
        if not len(t):
            return []
        if self._last_t is None:
            tt, xx, new = t, x, True
            self._t0, self._k = float(t[0]) + self.t0_offset_s, 0
        else:
            tt = np.concatenate(([self._last_t], t))
            xx = np.concatenate((self._last_x[None], x))
            new = False
        if len(tt) <= FEW_SAMPLES:  # a live frame's: Python floats, no numpy calls
            stamps = tt.tolist()
            cuts = [i for i in range(1, len(stamps)) if stamps[i] - stamps[i - 1] > self.max_gap_s]
        else:
            cuts = (np.flatnonzero(np.diff(tt) > self.max_gap_s) + 1).tolist()
        pieces = []
        for i, (a, b) in enumerate(zip((0, *cuts), (*cuts, len(tt)), strict=True)):
            if i > 0:
                self._t0, self._k, new = float(tt[a]) + self.t0_offset_s, 0, True
            piece = self._grid(tt[a:b], xx[a:b], new)
            if len(piece.t) or piece.new_segment:
                pieces.append(piece)
            new = False
        self._last_t, self._last_x = float(tt[-1]), xx[-1].copy()
        return pieces

    def _grid(self, tt: np.ndarray, xx: np.ndarray, new: bool) -> ResampledPiece:
        newest = float(tt[-1]) + self._EPS_S
        k_last = math.floor((newest - self._t0) * self.rate_hz)
        if len(tt) <= FEW_SAMPLES and 1 < k_last + 2 - self._k <= FEW_SAMPLES:
            return self._grid_few(tt, xx, new, newest, k_last)
        tg = self._t0 + np.arange(self._k, k_last + 1) / self.rate_hz
        if len(tg) and tg[-1] > newest:  # rounding can put the last candidate past `newest`
            tg = tg[:-1]
        if not len(tg):
            return ResampledPiece(new, tg, np.zeros((0, xx.shape[1])))
        self._k += len(tg)
        if len(tt) == 1:
            return ResampledPiece(new, tg, np.repeat(xx, len(tg), axis=0))
        j = np.searchsorted(tt, tg, side="right") - 1
        np.minimum(j, len(tt) - 2, out=j)
        j1 = j + 1
        t0 = tt[j]
        w = ((tg - t0) / (tt[j1] - t0))[:, None]
        x0 = xx[j]
        return ResampledPiece(new, tg, x0 + w * (xx[j1] - x0))

    def _grid_few(
        self, tt: np.ndarray, xx: np.ndarray, new: bool, newest: float, k_last: int
    ) -> ResampledPiece:
        """:meth:`_grid` of a live frame's few samples and grid points: the grid times, where
        each falls among the samples and its weight on Python floats (the same IEEE operations
        as the array path: ``t0 + k / rate``, a right-side search, ``(t - t_j) / (t_j+1 -
        t_j)``), the interpolation itself on arrays."""
        t0, rate = self._t0, self.rate_hz
        tg = [t0 + k / rate for k in range(self._k, k_last + 1)]
        if tg[-1] > newest:  # rounding can put the last candidate past `newest`
            tg.pop()
        if not tg:
            return ResampledPiece(new, np.zeros(0), np.zeros((0, xx.shape[1])))
        self._k += len(tg)
        if len(tt) == 1:
            return ResampledPiece(new, np.array(tg), np.repeat(xx, len(tg), axis=0))
        stamps, last = tt.tolist(), len(tt) - 2
        j = [min(bisect.bisect_right(stamps, g) - 1, last) for g in tg]
        w = [(g - stamps[i]) / (stamps[i + 1] - stamps[i]) for g, i in zip(tg, j, strict=True)]
        at = np.array(j)
        x0 = xx[at]
        return ResampledPiece(new, np.array(tg), x0 + np.array(w)[:, None] * (xx[at + 1] - x0))


@dataclass
class ChainStats:
    """Counters a live display or log can show; nothing the chain drops goes uncounted."""

    samples_in: int = 0
    samples_out: int = 0
    windows: int = 0
    segments: int = 0
    dropped_nonfinite: int = 0
    dropped_out_of_order: int = 0
    gaps: list[float] = field(default_factory=list)
    repair: RepairStats = field(default_factory=RepairStats)
    bridged_gaps: int = 0  # short losses interpolated over (no new segment)
    input_rate_hz: float | None = None


class Mounting:
    """How the chain turns the sensor frame into the model's: fixed, or estimated online.

    Args:
        rotation: a fixed body-from-sensor rotation (``--mount -y,x,z``), or None.
        estimator: an online estimate (``--mount auto``), or None. With neither, the identity.
    """

    def __init__(self, rotation: np.ndarray | None = None, estimator=None) -> None:
        self.fixed = None if rotation is None else np.asarray(rotation, np.float64)
        self.estimator = estimator

    @property
    def calibrated(self) -> bool:
        return self.estimator is None or self.estimator.calibrated

    def samples_to_calibrated(self) -> int | None:
        """The fewest samples (at the chain's rate) still to come before :attr:`calibrated`
        can turn true: 0 once it is, None when the estimator cannot say (then any sample may)."""
        if self.calibrated:
            return 0
        need = getattr(self.estimator, "samples_to_calibrated", None)
        return None if need is None else need()

    @classmethod
    def for_chain(cls, cfg: ChainConfig, mode: str | None = None, estimator=None) -> Mounting:
        """``mode``: None (the contract's), ``none``, ``auto``, ``vertical`` or an axis map like
        ``-y,x,z``. Each call makes a fresh estimator (a cold start) unless ``estimator`` is
        given."""
        from gaitedge import mounting as m

        mode = cfg.mounting if mode is None else mode
        if mode == "none":
            return cls()
        if mode == "auto":
            return cls(estimator=estimator or m.MountingEstimator(cfg.sample_rate_hz))
        if mode == "vertical":
            if isinstance(estimator, m.MountingEstimator):  # a stored walking estimate
                estimator = m.VerticalEstimator(cfg.sample_rate_hz, estimator)
            return cls(estimator=estimator or m.VerticalEstimator(cfg.sample_rate_hz))
        return cls(rotation=m.parse_axis_map(mode))


class StreamingChain:
    """The signal chain with carried state: feed chunks, get windows.

    Args:
        cfg: the chain definition (usually read from a model bundle).
        policy: what to do with non-finite or out-of-order samples (see module docstring).
        strict: refuse timestamps that do not increase (under ``policy``) instead of repairing.
        mounting: the sensor-to-body rotation; default from ``cfg.mounting``.
    """

    def __init__(
        self,
        cfg: ChainConfig,
        policy: BadSamplePolicy = BadSamplePolicy.RAISE,
        *,
        strict: bool = False,
        mounting: Mounting | None = None,
    ) -> None:
        self.cfg = cfg
        self.policy = BadSamplePolicy(policy)
        self.strict = strict
        rate = cfg.sample_rate_hz
        lp = signal.butter(cfg.lowpass_order, cfg.lowpass_cutoff_hz, fs=rate, output="sos")
        grav = signal.butter(cfg.gravity_order, cfg.gravity_cutoff_hz, fs=rate, output="sos")
        self._repair = None if strict else TimestampRepair(segment_gap_s=cfg.max_gap_s)
        # A chain without gyroscope channels runs on the accelerometer alone ([N, 3] inside).
        self.n_inputs = 6 if needs_gyroscope(cfg.channels) else 3
        self._antialias = AntiAlias(rate, cfg.max_gap_s, self.n_inputs)
        self._resampler = Resampler(rate, cfg.max_gap_s)
        self._lowpass = SosFilter(lp, self.n_inputs)
        self._gravity = SosFilter(grav, 3)
        self._windower = Windower(cfg.window_samples, cfg.hop_samples, cfg.n_channels)
        available = AVAILABLE_CHANNELS if self.n_inputs == 6 else ACC_ONLY_CHANNELS
        self._select = np.array([available.index(c) for c in cfg.channels])
        self._needs_norms = any(c.endswith("_norm") for c in cfg.channels)
        self._blocks = _whole_blocks(self._select.tolist(), self.n_inputs)
        if cfg.norm_mean is not None:
            self._mean = np.asarray(cfg.norm_mean)
            self._inv_std = 1.0 / np.asarray(cfg.norm_std)
        else:
            self._mean, self._inv_std = None, None
        self.mounting = mounting if mounting is not None else Mounting.for_chain(cfg)
        self._last_in_t: float | None = None
        # Up to the mounting estimate only, no windows (:func:`calibrate_stream`).
        self.estimate_only = False
        # Keep each call's filtered pieces in ``front`` for a chain that follows this one
        # (:meth:`follow`); ``front_samples_in``: the samples that call took.
        self.keep_front = False
        self.front: list[tuple[ResampledPiece, np.ndarray | None, np.ndarray | None]] = []
        self.front_samples_in = 0
        self.stats = ChainStats()
        if self._repair is not None:
            self.stats.repair = self._repair.stats

    def reset(self) -> None:
        """Forget the stream (a new connection); the next sample starts a new segment."""
        if self._repair is not None:
            self._repair.reset()
        self._last_in_t = None
        self._antialias.reset()
        self._resampler.reset()

    @property
    def segment(self) -> int:
        return self._windower.segment

    @property
    def samples_to_window(self) -> int:
        """Samples at the chain's rate still to come until its next window ends."""
        return self._windower.samples_to_window

    def makes_no_window(self, t: np.ndarray, newest: float) -> bool:
        """Whether stamps ``t`` [N], fed after samples whose newest stamp is ``newest``, surely
        complete no window: they go on from ``newest`` (no step back, so no clock reset), and
        every sample the resampler could then have lies before the grid point that ends the
        next window. Timestamp repair holds the newest run of equal stamps back until a later
        stamp comes, so those are the samples up to the last stamp before ``t``'s final run.
        A caller may hold such samples back and feed them with the chunk that can complete a
        window (``Pipeline``): the same windows, in fewer calls."""
        resampler = self._resampler
        n = len(t)
        if resampler.last_t is None or self.estimate_only or not n:
            return False
        if self._repair is not None and self._repair.pending:  # a reset may move the clock
            return False
        # Python floats: a live frame is a few samples, where numpy's per-call cost dominates.
        i, last = n - 1, float(t[-1])
        if self._repair is None:
            released, offset = last, 0.0
        else:
            while i and float(t[i - 1]) == last:  # the final run of equal stamps
                i -= 1
            released = float(t[i - 1]) if i else newest
            offset = self._repair.offset
        end = resampler.next_grid_s + (self.samples_to_window - 1) / resampler.rate_hz
        if not released + offset < end - self._DUE_MARGIN_S:
            return False
        stamps = t.tolist()
        return newest <= stamps[0] and all(a <= b for a, b in itertools.pairwise(stamps))

    # Kept off the grid point: a stamp this close may reach it in rounding (epoch seconds carry
    # ~0.2 µs); the cost of the margin is, at most, one chain call sooner than needed.
    _DUE_MARGIN_S = 1e-5

    def process(self, t: np.ndarray, imu: np.ndarray) -> Windows:
        """Feed [N] timestamps (s) and [N, 6] samples (m/s², rad/s), or [N, 3]
        (acceleration only) when the chain's channels need no gyroscope; return completed
        windows."""
        t, imu = self._validate(t, imu)
        self.stats.samples_in += len(t)
        self.front_samples_in = len(t)
        if len(t):
            self._last_in_t = (
                float(t[-1]) if self._last_in_t is None else max(self._last_in_t, float(t[-1]))
            )
        if self._repair is not None:
            t, imu = self._repair.process(t, imu)
        return self._resample(*self._antialias.process(t, imu))

    def flush(self) -> Windows:
        """End of a recording: release the samples that timestamp repair and the input-rate
        estimate hold back."""
        parts = []
        if self._repair is not None:
            parts.append(self._resample(*self._antialias.process(*self._repair.flush())))
        parts.append(self._resample(*self._antialias.flush()))
        parts = [p for p in parts if len(p)]
        if not parts:
            return Windows.empty(self.cfg.window_samples, self.cfg.n_channels)
        return Windows.concat(parts)

    def _resample(self, t: np.ndarray, imu: np.ndarray) -> Windows:
        self._resampler.t0_offset_s = self._antialias.group_delay_s
        front = []  # the filtered pieces: (piece, low-passed, gravity); None for an empty one
        for piece in self._resampler.process(t, imu):
            if piece.new_segment:
                self._lowpass.reset()
                self._gravity.reset()
            if self.estimate_only:  # the low-passed acceleration is all the estimate needs
                if piece.new_segment:
                    self._start_segment(piece)
                if len(piece.t):
                    self._estimate(self._lowpass.process(piece.x[:, :3]))
                    self.stats.samples_out += len(piece.t)
            elif len(piece.t):
                lp = self._lowpass.process(piece.x)  # [M, 6], or [M, 3] without a gyroscope
                front.append((piece, lp, self._gravity.process(lp[:, :3])))  # gravity [M, 3]
            elif piece.new_segment:
                front.append((piece, None, None))
        if self.keep_front:
            self.front = front
        return self._windows(front, self._antialias)

    def _windows(self, front: list, antialias: AntiAlias) -> Windows:
        """The stages after the filters (mounting, features, normalisation) and the windows,
        for the filtered pieces of one call (this chain's own, or a leader's: :meth:`follow`)."""
        parts = []
        for piece, lp, gravity in front:
            if piece.new_segment:
                self._start_segment(piece)
            if lp is None:
                continue
            features = self._features(lp, gravity)
            self.stats.samples_out += len(features)
            out = self._windower.push(piece.t, features)
            if len(out):
                parts.append(out)
        self.stats.bridged_gaps = antialias.bridged_gaps
        self.stats.input_rate_hz = antialias.input_rate_hz
        if not parts:
            return Windows.empty(self.cfg.window_samples, self.cfg.n_channels)
        out = Windows.concat(parts)
        self.stats.windows += len(out)
        return out

    def shares_front_with(self, other: StreamingChain) -> bool:
        """Whether ``other``'s stages up to the filters are this chain's (the same rate,
        filters, gap rule, repair, input channels and bad-sample policy), so that
        :meth:`follow` gives what :meth:`process` would."""
        a, b = self.cfg, other.cfg
        same = ("sample_rate_hz", "lowpass_order", "lowpass_cutoff_hz", "gravity_order")
        same += ("gravity_cutoff_hz", "max_gap_s")
        return (
            all(getattr(a, k) == getattr(b, k) for k in same)
            and (self.policy, self.strict, self.n_inputs)
            == (other.policy, other.strict, other.n_inputs)
            and not (self.estimate_only or other.estimate_only)
        )

    def follow(self, leader: StreamingChain) -> Windows:
        """The windows :meth:`process` would make of the samples ``leader`` took in its last
        call, from the filtered pieces it kept (:attr:`keep_front`) instead of filtering them
        again: a cold-start model's chain beside its device's, fed the same samples, runs its
        own mounting, features and windows only (:meth:`shares_front_with` must hold, and this
        chain must take every call's samples this way from its first). Its own stages before
        the filters stay unused."""
        self.stats.samples_in += leader.front_samples_in
        return self._windows(leader.front, leader._antialias)

    def _start_segment(self, piece: ResampledPiece) -> None:
        """A new segment after the filters (their reset is the front's: :meth:`_resample`)."""
        if self.stats.segments:
            t_new = float(piece.t[0]) if len(piece.t) else float("nan")
            self.stats.gaps.append(t_new)
            log.info("gap in the stream: new segment at t=%.3f s", t_new)
        self.stats.segments += 1
        self._windower.reset()
        if self.mounting.estimator is not None:
            self.mounting.estimator.new_segment()

    def _features(self, lp: np.ndarray, gravity: np.ndarray) -> np.ndarray:
        """Features of the low-passed samples ``lp`` and their gravity (never written to)."""
        acc = lp[:, :3]
        vectors = [acc, gravity] + ([lp[:, 3:]] if self.n_inputs == 6 else [])
        if self.mounting.estimator is not None or self.mounting.fixed is not None:
            vectors = self._rotate(*vectors)
        acc, gravity = vectors[:2]
        if self._blocks is not None:  # the channels are whole blocks: only those are made

            def block(b: int) -> np.ndarray:
                if b == 0:
                    return acc
                if b == 1:
                    return acc - gravity
                if b <= len(vectors):
                    return vectors[b - 1]
                return np.linalg.norm((acc, *vectors[2:])[b - len(vectors) - 1], axis=1)[:, None]

            y = np.concatenate([block(b) for b in self._blocks], axis=1)  # [M, C]
        else:
            cols = [acc, acc - gravity, *vectors[1:]]  # ACC_ONLY_CHANNELS' order without gyro
            if self._needs_norms:
                cols += [np.linalg.norm(v, axis=1)[:, None] for v in (acc, *vectors[2:])]
            y = np.concatenate(cols, axis=1)[:, self._select]  # [M, C]
        if self._mean is not None:
            y -= self._mean
            y *= self._inv_std
        return y

    def _estimate(self, acc: np.ndarray) -> None:
        """Feed the mounting estimator only (:attr:`estimate_only`)."""
        est = self.mounting.estimator
        if hasattr(est, "feed"):
            for a in range(0, len(acc), self.ROTATE_SAMPLES):
                est.feed(acc[a : a + self.ROTATE_SAMPLES])
            return
        i = 0
        while i < len(acc):
            j = min(len(acc), i + est.boundary())
            est.update(acc[i:j])
            i = j

    # Samples rotated per call of an estimator's ``feed`` (bounds its [M, 3, 3] rotations).
    ROTATE_SAMPLES = 1 << 15

    def _rotate(self, *vectors):
        """Body-frame vectors (acc, gravity and the gyroscope's rate when there is one). Filters
        are linear and the same on every axis, so rotating their output equals filtering rotated
        input; an online estimate changes only at block ends."""
        est = self.mounting.estimator
        acc = vectors[0]
        if est is None:
            r = self.mounting.fixed.T
            return [v @ r for v in vectors]
        if hasattr(est, "feed"):  # whole blocks at once (gaitedge.mounting)
            xyz = np.empty((len(acc), len(vectors), 3))  # [M, 2 or 3 vectors, 3]
            for k, v in enumerate(vectors):  # np.stack's copy, without its set-up
                xyz[:, k] = v
            for a in range(0, len(acc), self.ROTATE_SAMPLES):
                part = xyz[a : a + self.ROTATE_SAMPLES]
                starts, rots = est.feed(part[:, 0])
                if len(starts) == 1:  # one rotation for all of it (a live frame's)
                    whole = part.reshape(-1, 3)
                    whole[:] = whole @ rots[0].T
                    continue
                for i, j, r in zip(starts, [*starts[1:], len(part)], rots, strict=True):
                    piece = part[i:j].reshape(-1, 3)
                    piece[:] = piece @ r.T
            return [xyz[:, k] for k in range(len(vectors))]
        out = [np.empty_like(v) for v in vectors]
        i = 0
        while i < len(acc):
            j = min(len(acc), i + est.boundary())
            r = est.rotation.T
            for v, o in zip(vectors, out, strict=True):
                o[i:j] = v[i:j] @ r
            est.update(acc[i:j])
            i = j
        return out

    def _validate(self, t: np.ndarray, imu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        imu = np.asarray(imu, dtype=np.float64)
        if imu.ndim != 2 or imu.shape[0] != len(t) or imu.shape[1] not in (3, 6):
            raise ChainInputError(
                f"expected [N] timestamps and [N, 6] samples, got {t.shape} and {imu.shape}"
            )
        if imu.shape[1] < self.n_inputs:
            raise ChainInputError(no_gyroscope_message(self.cfg.channels))
        imu = imu[:, : self.n_inputs]
        last = -np.inf if self._last_in_t is None else self._last_in_t
        if self.policy is BadSamplePolicy.RAISE:
            self._check(t, imu, last if self.strict else None)
            return t, imu
        finite = None if all_finite(t, imu) else usable_rows(t, imu)
        if finite is not None and not finite.all():
            self.stats.dropped_nonfinite += int((~finite).sum())
            log.warning(
                "dropped %d samples with a non-finite value or one past ±%g (corrupted)",
                (~finite).sum(), MAX_ABS_VALUE,
            )  # fmt: skip
            t, imu = t[finite], imu[finite]
        if not self.strict:
            return t, imu
        newest = np.maximum.accumulate(np.concatenate(([last], t)))[:-1]
        ordered = t > newest
        if not ordered.all():
            self.stats.dropped_out_of_order += int((~ordered).sum())
            log.warning("dropped %d out-of-order or duplicate samples", (~ordered).sum())
            t, imu = t[ordered], imu[ordered]
        return t, imu

    @staticmethod
    def _check(t: np.ndarray, imu: np.ndarray, last: float | None) -> None:
        if not all_finite(t, imu):
            i = int(np.argmin(usable_rows(t, imu)))
            raise ChainInputError(
                f"sample {i} of the chunk (t={t[i]!r}) is not finite or has a value past "
                f"±{MAX_ABS_VALUE:g} (corrupted)"
            )
        if last is None:
            return
        if len(t) and (t[0] <= last or (len(t) > 1 and (np.diff(t) <= 0).any())):
            previous = np.concatenate(([last], t[:-1]))
            i = int(np.argmax(t <= previous))
            raise ChainInputError(
                f"timestamps must increase: sample {i} of the chunk has t={t[i]:.6f} s "
                f"after t={previous[i]:.6f} s"
            )


def no_gyroscope_message(channels, model: str = "the model") -> str:
    """The one line for accelerometer-only input to a chain that needs the gyroscope."""
    gyro = [c for c in channels if c.startswith("gyro_")]
    return (
        f"the input has an accelerometer but no gyroscope, and {model} needs channels "
        f"{', '.join(gyro)} (of {', '.join(channels)}); a missing gyroscope is never padded"
    )


def run_offline(
    cfg: ChainConfig,
    timestamp_s: np.ndarray,
    imu: np.ndarray,
    *,
    mounting: Mounting | None = None,
    strict: bool = False,
) -> Windows:
    """Run the chain over a whole recording: the streaming chain fed in one chunk, then flushed.

    With ``cfg.mounting == "auto"`` and no ``mounting`` given, the recording is first calibrated
    on itself (:func:`calibrate`) and every window is aligned with that estimate, as a device
    whose estimate was stored by an earlier session streams from its first sample.
    """
    if mounting is None and cfg.mounting == "auto":
        mounting = Mounting(estimator=calibrate(cfg, [(timestamp_s, imu)]))
    chain = StreamingChain(cfg, strict=strict, mounting=mounting)
    a = chain.process(timestamp_s, imu)
    b = chain.flush()
    return Windows.concat([a, b]) if len(b) else a


def calibrate(cfg: ChainConfig, recordings, estimator=None):
    """A mounting estimate from recordings ``[(timestamps [N], imu [N, 6]), ...]`` (one device):
    the chain up to the low-pass, fed to :class:`gaitedge.mounting.MountingEstimator`."""
    from gaitedge.mounting import MountingEstimator

    est = estimator or MountingEstimator(cfg.sample_rate_hz)
    for t, imu in recordings:
        calibrate_stream(cfg, [(t, imu)], est)
    return est


def calibrate_stream(cfg: ChainConfig, chunks, estimator=None):
    """:func:`calibrate` on one recording fed in chunks ``[(timestamps [n], imu [n, 6]), ...]``
    (a long file streamed: memory bounded by a chunk); the same estimate as one pass."""
    from gaitedge.mounting import MountingEstimator

    est = estimator or MountingEstimator(cfg.sample_rate_hz)
    probe = replace(cfg, mounting="none", norm_mean=None, norm_std=None)
    chain = StreamingChain(probe, mounting=Mounting(estimator=est))
    chain.estimate_only = True
    for t, imu in chunks:
        chain.process(t, imu)
    chain.flush()
    return est


def fit_normalization(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of un-normalised windows [K, W, C] (fit on training data only)."""
    flat = np.asarray(windows, dtype=np.float64).reshape(-1, windows.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    return mean, np.where(std > 1e-8, std, 1.0)
