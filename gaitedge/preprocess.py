"""The causal signal chain, shared by training and the live runtime.

    timestamped 6-axis chunks (m/s², rad/s)
      -> resample to ``sample_rate_hz`` (linear interpolation, streaming across chunks)
      -> low-pass (causal Butterworth, SOS sections with carried state)
      -> gravity / body split (causal low-pass of the acceleration)
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
value is interpolated across the gap.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
from scipy import signal

from gaitedge.windows import Windower, Windows

try:  # The Cython kernel behind scipy.signal.sosfilt, without its per-call validation.
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - only on a scipy that moved it
    _sosfilt_kernel = None

log = logging.getLogger(__name__)

CHAIN_VERSION = 1
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
DEFAULT_CHANNELS = (
    "body_acc_x",
    "body_acc_y",
    "body_acc_z",
    "gravity_x",
    "gravity_y",
    "gravity_z",
    "gyro_x",
    "gyro_y",
    "gyro_z",
)


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
    # A longer gap between two samples starts a new segment; shorter ones are interpolated.
    max_gap_s: float = 0.2
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    window_samples: int = 128
    hop_samples: int = 64
    # Dataset-level statistics per channel, fitted on training subjects; None = not normalised.
    norm_mean: tuple[float, ...] | None = None
    norm_std: tuple[float, ...] | None = None
    version: int = CHAIN_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(self.channels))
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
class ResampledPiece:
    """Samples on the model's time grid; ``new_segment`` marks a restart after a gap."""

    new_segment: bool
    t: np.ndarray  # [M]
    x: np.ndarray  # [M, 6]


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
        self.reset()

    def reset(self) -> None:
        self._t0 = 0.0
        self._k = 0
        self._last_t: float | None = None
        self._last_x: np.ndarray | None = None

    @property
    def last_t(self) -> float | None:
        return self._last_t

    def process(self, t: np.ndarray, x: np.ndarray) -> list[ResampledPiece]:
        """Resample a validated chunk (strictly increasing ``t``, finite ``x``)."""
        if not len(t):
            return []
        if self._last_t is None:
            tt, xx, new = t, x, True
            self._t0, self._k = float(t[0]), 0
        else:
            tt = np.concatenate(([self._last_t], t))
            xx = np.concatenate((self._last_x[None], x))
            new = False
        cuts = np.flatnonzero(np.diff(tt) > self.max_gap_s) + 1
        pieces = []
        for i, (a, b) in enumerate(zip((0, *cuts), (*cuts, len(tt)), strict=True)):
            if i > 0:
                self._t0, self._k, new = float(tt[a]), 0, True
            piece = self._grid(tt[a:b], xx[a:b], new)
            if len(piece.t) or piece.new_segment:
                pieces.append(piece)
            new = False
        self._last_t, self._last_x = float(tt[-1]), xx[-1].copy()
        return pieces

    def _grid(self, tt: np.ndarray, xx: np.ndarray, new: bool) -> ResampledPiece:
        newest = float(tt[-1]) + self._EPS_S
        k_last = math.floor((newest - self._t0) * self.rate_hz)
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
        w = ((tg - tt[j]) / (tt[j + 1] - tt[j]))[:, None]
        x0 = xx[j]
        return ResampledPiece(new, tg, x0 + w * (xx[j + 1] - x0))


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


class StreamingChain:
    """The signal chain with carried state: feed chunks, get windows.

    Args:
        cfg: the chain definition (usually read from a model bundle).
        policy: what to do with non-finite or out-of-order samples (see module docstring).
    """

    def __init__(self, cfg: ChainConfig, policy: BadSamplePolicy = BadSamplePolicy.RAISE) -> None:
        self.cfg = cfg
        self.policy = BadSamplePolicy(policy)
        rate = cfg.sample_rate_hz
        lp = signal.butter(cfg.lowpass_order, cfg.lowpass_cutoff_hz, fs=rate, output="sos")
        grav = signal.butter(cfg.gravity_order, cfg.gravity_cutoff_hz, fs=rate, output="sos")
        self._resampler = Resampler(rate, cfg.max_gap_s)
        self._lowpass = SosFilter(lp, 6)
        self._gravity = SosFilter(grav, 3)
        self._windower = Windower(cfg.window_samples, cfg.hop_samples, cfg.n_channels)
        self._select = np.array([AVAILABLE_CHANNELS.index(c) for c in cfg.channels])
        self._needs_norms = any(c.endswith("_norm") for c in cfg.channels)
        if cfg.norm_mean is not None:
            self._mean = np.asarray(cfg.norm_mean)
            self._inv_std = 1.0 / np.asarray(cfg.norm_std)
        else:
            self._mean, self._inv_std = None, None
        self.stats = ChainStats()

    def reset(self) -> None:
        """Forget the stream (a new connection); the next sample starts a new segment."""
        self._resampler.reset()

    @property
    def segment(self) -> int:
        return self._windower.segment

    def process(self, t: np.ndarray, imu: np.ndarray) -> Windows:
        """Feed [N] timestamps (s) and [N, 6] samples (m/s², rad/s); return completed windows."""
        t, imu = self._validate(t, imu)
        self.stats.samples_in += len(t)
        parts = []
        for piece in self._resampler.process(t, imu):
            if piece.new_segment:
                self._start_segment(piece)
            if not len(piece.t):
                continue
            features = self._features(piece.x)
            self.stats.samples_out += len(features)
            out = self._windower.push(piece.t, features)
            if len(out):
                parts.append(out)
        if not parts:
            return Windows.empty(self.cfg.window_samples, self.cfg.n_channels)
        out = Windows.concat(parts)
        self.stats.windows += len(out)
        return out

    def _start_segment(self, piece: ResampledPiece) -> None:
        if self.stats.segments:
            self.stats.gaps.append(float(piece.t[0]) if len(piece.t) else float("nan"))
            log.info("gap in the stream: new segment at t=%.3f s", piece.t[0])
        self.stats.segments += 1
        self._lowpass.reset()
        self._gravity.reset()
        self._windower.reset()

    def _features(self, x: np.ndarray) -> np.ndarray:
        lp = self._lowpass.process(x)  # [M, 6]
        acc = lp[:, :3]
        gravity = self._gravity.process(acc)  # [M, 3]
        cols = [acc, acc - gravity, gravity, lp[:, 3:]]
        if self._needs_norms:
            norms = np.stack([np.linalg.norm(acc, axis=1), np.linalg.norm(lp[:, 3:], axis=1)])
            cols.append(norms.T)
        y = np.concatenate(cols, axis=1)[:, self._select]  # [M, C]
        if self._mean is not None:
            y -= self._mean
            y *= self._inv_std
        return y

    def _validate(self, t: np.ndarray, imu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        imu = np.asarray(imu, dtype=np.float64)
        if imu.ndim != 2 or imu.shape != (len(t), 6):
            raise ChainInputError(
                f"expected [N] timestamps and [N, 6] samples, got {t.shape} and {imu.shape}"
            )
        last = self._resampler.last_t
        last = -np.inf if last is None else last
        if self.policy is BadSamplePolicy.RAISE:
            self._check(t, imu, last)
            return t, imu
        finite = np.isfinite(imu).all(axis=1) & np.isfinite(t)
        if not finite.all():
            self.stats.dropped_nonfinite += int((~finite).sum())
            log.warning("dropped %d non-finite samples", (~finite).sum())
            t, imu = t[finite], imu[finite]
        newest = np.maximum.accumulate(np.concatenate(([last], t)))[:-1]
        ordered = t > newest
        if not ordered.all():
            self.stats.dropped_out_of_order += int((~ordered).sum())
            log.warning("dropped %d out-of-order or duplicate samples", (~ordered).sum())
            t, imu = t[ordered], imu[ordered]
        return t, imu

    @staticmethod
    def _check(t: np.ndarray, imu: np.ndarray, last: float) -> None:
        if not (np.isfinite(imu).all() and np.isfinite(t).all()):
            finite = np.isfinite(imu).all(axis=1) & np.isfinite(t)
            i = int(np.argmin(finite))
            raise ChainInputError(f"sample {i} of the chunk (t={t[i]!r}) is not finite")
        if len(t) and (t[0] <= last or (len(t) > 1 and (np.diff(t) <= 0).any())):
            previous = np.concatenate(([last], t[:-1]))
            i = int(np.argmax(t <= previous))
            raise ChainInputError(
                f"timestamps must increase: sample {i} of the chunk has t={t[i]:.6f} s "
                f"after t={previous[i]:.6f} s"
            )


def run_offline(cfg: ChainConfig, timestamp_s: np.ndarray, imu: np.ndarray) -> Windows:
    """Run the chain over a whole recording: the streaming chain fed in one chunk."""
    return StreamingChain(cfg).process(timestamp_s, imu)


def fit_normalization(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of un-normalised windows [K, W, C] (fit on training data only)."""
    flat = np.asarray(windows, dtype=np.float64).reshape(-1, windows.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    return mean, np.where(std > 1e-8, std, 1.0)
