"""From per-window class probabilities to alerts: activity smoothing and fall confirmation.

    windows (stream time) + engine probabilities
      -> ActivitySmoother: k-of-n vote over windows, one alert per activity change
      -> FallDetector: impact (peak |a|) + model probability + confirmation
         (post-impact stillness or orientation change), with a refractory period
      -> Alert -> sinks (``gaitedge.sinks``)

Times are stream times in seconds, counted from the recording's or connection's first sample.
Every alert carries ``t`` (when it was raised: the end of the window that decided it) and
``t_event`` (when the thing happened: the impact, or the estimated activity change), so
``latency_s = t - t_event`` is what a carer waits beyond the event itself.
"""

from __future__ import annotations

import enum
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from gaitedge.preprocess import ChainConfig
from gaitedge.units import STANDARD_GRAVITY_M_S2
from gaitedge.windows import Windows

log = logging.getLogger(__name__)


class AlertType(str, enum.Enum):
    FALL = "fall"
    ACTIVITY = "activity"


class Confirmation(str, enum.Enum):
    """Post-impact evidence that turns an impact into a fall alert."""

    STILLNESS = "stillness"
    ORIENTATION = "orientation"


@dataclass(frozen=True)
class Alert:
    """One alert, as sent to every sink.

    Attributes:
        t: stream time (s) at which the alert was raised.
        t_event: stream time (s) of the impact or the activity change.
        type: fall or activity.
        label: "fall", or the new activity's class name.
        p: the model's probability behind the alert (fall: the highest fall probability of the
            windows holding the impact; activity: the mean probability of the winning votes).
        device: which sensor the alert is about.
        confirmed_by: fall only; the post-impact evidence that confirmed it.
        extra: further JSON-ready fields (e.g. ``impact_g``), written after the fixed ones.
    """

    t: float
    t_event: float
    type: AlertType
    label: str
    p: float
    device: str = ""
    confirmed_by: tuple[Confirmation, ...] = ()
    extra: Mapping[str, float | int | str] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.t - self.t_event

    def to_dict(self) -> dict:
        out = {
            "t": round(float(self.t), 3),
            "t_event": round(float(self.t_event), 3),
            "type": self.type.value,
            "label": self.label,
            "p": round(float(self.p), 4),
            "device": self.device,
            "latency_s": round(float(self.latency_s), 3),
        }
        if self.confirmed_by:
            out["confirmed_by"] = [c.value for c in self.confirmed_by]
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        """One line of JSON (no newline inside): the alert JSONL format."""
        return json.dumps(self.to_dict(), separators=(", ", ": "))


@dataclass(frozen=True)
class ActivityConfig:
    """k-of-n smoothing: a label becomes current once it wins ``k`` of the last ``n`` windows.

    A window votes for its arg-max class only when that class's probability is at least
    ``min_prob``; less confident windows abstain (they still occupy a slot of the ``n``).
    """

    k: int = 3
    n: int = 4
    min_prob: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.n:
            raise ValueError(f"activity smoothing needs 1 <= k <= n, got k={self.k}, n={self.n}")
        if not 0.0 <= self.min_prob <= 1.0:
            raise ValueError(f"min_prob must lie in [0, 1], got {self.min_prob}")


_ABSTAIN = -1


class ActivitySmoother:
    """Reports the current activity when it changes, with flicker suppressed by a k-of-n vote.

    The first label to win ``k`` of the last ``n`` windows is reported, then every change.
    ``t_event`` is the centre of the earliest window among the last ``n`` that voted for the new
    label: a window is labelled by what fills most of it, so its centre is the best single guess
    of when the new activity began, and it is never later than ``t`` (that window's end or an
    earlier one).

    Args:
        labels: activity class names, in the model's output order.
        cfg: smoothing parameters.
        device: written into every alert.
    """

    def __init__(
        self, labels: Sequence[str], cfg: ActivityConfig | None = None, device: str = ""
    ) -> None:
        self.labels = tuple(labels)
        self.cfg = cfg or ActivityConfig()
        self.device = device
        self.reset()

    def reset(self) -> None:
        """Forget the stream (new connection): the next winning label is reported afresh."""
        self.current: int | None = None
        # The last n - 1 windows: what the next window's vote is counted with.
        n_keep = self.cfg.n - 1
        self._votes = np.zeros(0, np.int64)  # [<= n-1]
        self._centre = np.zeros(0)  # [<= n-1] window centres (s)
        self._p = np.zeros((0, len(self.labels)))  # [<= n-1, n_act]
        self._n_keep = n_keep

    def update(self, t_start: float, t_end: float, probs: np.ndarray) -> Alert | None:
        """One window: ``probs`` [n_act]. Returns the alert if the current activity changed."""
        alerts = self.update_batch(
            np.array([t_start], np.float64),
            np.array([t_end], np.float64),
            np.asarray(probs, np.float64)[None],
        )
        return alerts[0] if alerts else None

    def update_batch(
        self, t_start: np.ndarray, t_end: np.ndarray, probs: np.ndarray
    ) -> list[Alert]:
        """K windows in stream order: ``t_start`` [K], ``t_end`` [K], ``probs`` [K, n_act].

        Equivalent to calling :meth:`update` on each window in turn.
        """
        probs = np.asarray(probs, np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(self.labels):
            raise ValueError(f"expected probs [K, {len(self.labels)}], got {probs.shape}")
        t_end = np.asarray(t_end, np.float64)
        if not len(probs):
            return []
        if len(probs) == 1:  # a live window: the same, without the batch's array set-up
            return self._one(float(np.asarray(t_start)[0]), float(t_end[0]), probs)
        best = probs.argmax(axis=1)  # [K]
        confident = probs[np.arange(len(best)), best] >= self.cfg.min_prob
        votes = np.concatenate([self._votes, np.where(confident, best, _ABSTAIN)])  # [H+K]
        centre = np.concatenate([self._centre, (np.asarray(t_start) + t_end) / 2])
        p_all = np.concatenate([self._p, probs])
        h = len(self._votes)
        winners = self._winners(votes, h)  # [K], _ABSTAIN where no label reaches k
        alerts = []
        # Where a window's own label reaches k votes, it becomes (or stays) current; elsewhere
        # the current label carries on. So the current label is a forward fill of `winners`,
        # and only its changes need a Python-level step.
        for i in np.flatnonzero(winners != _ABSTAIN):
            label = int(winners[i])
            if label == self.current:
                continue
            self.current = label
            alerts.append(self._alert(label, h + i, votes, centre, p_all, float(t_end[i])))
        keep = max(len(votes) - self._n_keep, 0)
        self._votes, self._centre, self._p = votes[keep:], centre[keep:], p_all[keep:]
        return alerts

    def _one(self, t_start: float, t_end: float, probs: np.ndarray) -> list[Alert]:
        """:meth:`update_batch` of one window (``probs`` [1, n_act] float64). The kept votes
        are fewer than ``n``, so with this one they are all of its last ``n``."""
        row = probs[0]
        best = int(row.argmax())
        vote = best if row[best] >= self.cfg.min_prob else _ABSTAIN
        h = len(self._votes)
        votes = np.concatenate((self._votes, np.array([vote], self._votes.dtype)))
        centre = np.concatenate((self._centre, np.array([(t_start + t_end) / 2])))
        p_all = np.concatenate([self._p, probs])
        alerts = []
        if vote != _ABSTAIN and vote != self.current and int((votes == vote).sum()) >= self.cfg.k:
            self.current = vote
            alerts.append(self._alert(vote, h, votes, centre, p_all, t_end))
        keep = max(len(votes) - self._n_keep, 0)
        self._votes, self._centre, self._p = votes[keep:], centre[keep:], p_all[keep:]
        return alerts

    def _winners(self, votes: np.ndarray, h: int) -> np.ndarray:
        """For each new window, its own vote if that label has >= k of the last n votes."""
        n_act = len(self.labels)
        onehot = np.zeros((len(votes) + 1, n_act + 1), np.int64)  # column n_act: abstain
        onehot[np.arange(1, len(votes) + 1), np.where(votes < 0, n_act, votes)] = 1
        counts = np.cumsum(onehot, axis=0)  # counts[j] = votes among the first j
        ends = np.arange(h + 1, len(votes) + 1)  # window i ends the slice votes[:i+1]
        starts = np.maximum(ends - self.cfg.n, 0)
        own = votes[h:]
        col = np.where(own < 0, n_act, own)
        in_last_n = counts[ends, col] - counts[starts, col]
        return np.where((own >= 0) & (in_last_n >= self.cfg.k), own, _ABSTAIN)

    def _alert(
        self,
        label: int,
        j: int,
        votes: np.ndarray,
        centre: np.ndarray,
        p_all: np.ndarray,
        t: float,
    ) -> Alert:
        lo = max(j - self.cfg.n + 1, 0)
        mine = lo + np.flatnonzero(votes[lo : j + 1] == label)
        return Alert(
            t=t,
            t_event=float(centre[mine[0]]),
            type=AlertType.ACTIVITY,
            label=self.labels[label],
            p=float(p_all[mine, label].mean()),
            device=self.device,
        )


@dataclass(frozen=True)
class FallConfig:
    """Fall confirmation rules (defaults tuned on SisFall training subjects, see BENCHMARKS.md).

    An impact is a sample with |a| >= ``impact_threshold_g``. Confirmation is looked for over
    the trailing ``stillness_s`` of samples once ``settle_s`` has passed since the impact:
    an orientation change (mean acceleration direction vs the gravity direction
    ``pre_impact_s`` before the impact, more than ``orientation_change_deg``) and/or stillness
    (total-acceleration std below ``stillness_threshold_g``). Without confirmation by
    ``confirm_window_s`` after the impact, the impact is dropped. After an alert, impacts are
    ignored for ``refractory_s``.

    Only orientation confirms by default: on SisFall it finds 97.6 % of the training subjects'
    falls with 0.8 false alarms per hour of their (deliberately fall-like) ADLs, while adding
    stillness finds 0.6 % more falls at 35x the false alarms (a jump or a drop into a chair ends
    still). ``settle_s + stillness_s`` = 0.7 s bounds the latency from below; with 0.2 s hops
    the p95 is 0.88 s.
    """

    prob_threshold: float = 0.5
    impact_threshold_g: float = 2.5
    settle_s: float = 0.2
    stillness_s: float = 0.5
    stillness_threshold_g: float = 0.1
    orientation_change_deg: float = 50.0
    pre_impact_s: float = 1.0
    confirm_window_s: float = 1.5
    refractory_s: float = 10.0
    confirmations: tuple[Confirmation, ...] = (Confirmation.ORIENTATION,)
    # True: every rule in `confirmations` must hold; False: any one of them suffices.
    require_all: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "confirmations", tuple(map(Confirmation, self.confirmations)))
        if not self.confirmations:
            raise ValueError("FallConfig needs at least one confirmation rule")
        if self.settle_s + self.stillness_s > self.confirm_window_s:
            raise ValueError("settle_s + stillness_s must not exceed confirm_window_s")
        if min(self.impact_threshold_g, self.stillness_s, self.confirm_window_s) <= 0:
            raise ValueError("impact_threshold_g, stillness_s and confirm_window_s must be > 0")

    @property
    def history_s(self) -> float:
        """How much signal the detector keeps: from before the impact to the last check."""
        return self.pre_impact_s + self.confirm_window_s + 0.5


# An impact lasts 50-100 ms, so a device sampling slowly sees a lower peak (and the chain's
# anti-aliasing trims a fast one a little). Median ratio of a fall's peak |a| after the chain at
# each input rate to its peak at 50 Hz, measured on 113 SisFall fall trials of training subjects
# re-rendered at each rate (held-out subjects not used). The impact threshold follows it.
IMPACT_PEAK_RATIO = ((20.0, 0.727), (25.0, 0.816), (50.0, 1.0), (100.0, 0.964), (200.0, 0.983))


@functools.lru_cache(maxsize=64)  # called per window; a device's rate rarely changes
def impact_peak_ratio(input_rate_hz: float | None) -> float:
    """How much of a 50 Hz impact peak a device at ``input_rate_hz`` shows (1 when unknown)."""
    if input_rate_hz is None or not np.isfinite(input_rate_hz):
        return 1.0
    rates, ratios = zip(*IMPACT_PEAK_RATIO, strict=True)
    return float(np.interp(np.log(input_rate_hz), np.log(rates), ratios))


@dataclass
class _Impact:
    t: float
    peak_g: float
    gravity_before: np.ndarray  # [3] unit vector
    p_max: float


def denormalize(windows: Windows | np.ndarray, chain: ChainConfig) -> np.ndarray:
    """Chain output [K, W, C] back in physical units (m/s², rad/s): ``data * std + mean``."""
    data = windows.data if isinstance(windows, Windows) else np.asarray(windows)
    if chain.norm_mean is None:
        return np.asarray(data, np.float64)
    std, mean = _denormalization(chain)
    return data * std + mean


@functools.lru_cache(maxsize=16)  # per window in a live stream; a model has one chain
def _denormalization(chain: ChainConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(std, mean)`` such that ``data * std + mean`` is :func:`denormalize` (float64; read
    only: one pair per chain is shared)."""
    if chain.norm_mean is None:
        pair = np.ones(chain.n_channels), np.zeros(chain.n_channels)
    else:
        pair = np.array(chain.norm_std, np.float64), np.array(chain.norm_mean, np.float64)
    for a in pair:
        a.flags.writeable = False
    return pair


def _axes(channels: Sequence[str], prefix: str) -> np.ndarray | None:
    """Where x, y, z of ``prefix`` are among the channels, as indices: their copies are
    contiguous, so the arithmetic on a batch's [K, m, 3] runs as one loop (slices, as views,
    made a one-hour replay's process run ~1.6 % more instructions: callgrind)."""
    names = [f"{prefix}_{a}" for a in "xyz"]
    if not all(n in channels for n in names):
        return None
    return np.array([list(channels).index(n) for n in names])


class FallDetector:
    """Streaming fall confirmation over overlapping windows; state carries across windows.

    Each window adds only its samples newer than the last window's end to a short history, so
    overlapping windows are not counted twice and an impact seen in one window can be confirmed
    by a later one. A new segment (a gap in the stream) clears everything but the refractory
    clock.

    Args:
        channels: the chain's channel names; needs gravity_* and either acc_* or body_acc_*.
        cfg: confirmation rules.
        device: written into every alert.
    """

    def __init__(
        self, channels: Sequence[str], cfg: FallConfig | None = None, device: str = ""
    ) -> None:
        self.cfg = cfg or FallConfig()
        self.device = device
        self._acc = _axes(channels, "acc")
        self._body = _axes(channels, "body_acc")
        self._gravity = _axes(channels, "gravity")
        if self._gravity is None or (self._acc is None and self._body is None):
            raise ValueError(
                f"fall detection needs gravity_x/y/z and acc_x/y/z or body_acc_x/y/z channels, "
                f"got {list(channels)}"
            )
        # The columns |a| is made of: acc, or body_acc then gravity (:meth:`_magnitude_g`).
        self._magnitude_columns = (
            self._acc if self._acc is not None else np.concatenate([self._body, self._gravity])
        )
        self._last_alert_t = -np.inf
        # The history lives in buffers that grow at their end and drop at their start, so a
        # live window (a few new samples) writes those only: [_lo, _hi) is the history.
        self._buf_t, self._buf_a, self._buf_g = (
            np.zeros(256),
            np.zeros((256, 3)),
            np.zeros((256, 3)),
        )
        # False while the mounting is calibrating: the model sees an unaligned frame, so a fall
        # is raised on frame-independent evidence alone (impact + confirmation).
        self.model_gate = True
        # The device's own sample rate (the chain measures it): the impact threshold follows it.
        self.input_rate_hz: float | None = None
        self.reset()

    def reset(self) -> None:
        """Start a new segment: forget samples and any pending impact."""
        self._segment: int | None = None
        self._lo = self._hi = 0
        self._t = self._buf_t[:0]  # [H] sample times (s)
        self._a = self._buf_a[:0]  # [H, 3] total acceleration (g)
        self._g = self._buf_g[:0]  # [H, 3] gravity estimate (g)
        self._pending: _Impact | None = None

    def update(
        self,
        t_start: float,
        t_end: float,
        p_fall: float,
        raw: np.ndarray,
        segment: int = 0,
    ) -> Alert | None:
        """One window: ``raw`` [W, C] de-normalised chain output; ``p_fall`` the model's."""
        return self._update(t_start, t_end, p_fall, np.asarray(raw, np.float64), segment)

    def _update(
        self,
        t_start: float,
        t_end: float,
        p_fall: float,
        data: np.ndarray,
        segment: int,
        scaling: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> Alert | None:
        """:meth:`update`, ``data`` de-normalised as ``data * scale + offset`` (``scaling``)
        where its samples are new (the rest is never looked at)."""
        if self._segment is not None and segment != self._segment:
            self.reset()
        self._segment = segment
        t_new, a_new = self._append(t_start, t_end, data, scaling)
        if not len(t_new):
            return None
        self._look_for_impact(t_new, a_new, p_fall)
        if self._pending is None:
            return None
        if self._pending.t >= t_start:  # the model saw the impact in this window
            self._pending.p_max = max(self._pending.p_max, float(p_fall))
        return self._try_confirm(float(t_new[-1]))

    def update_windows(
        self,
        windows: Windows,
        p_fall: np.ndarray,
        chain: ChainConfig,
        last_peak_g: float | None = None,
    ) -> list[Alert]:
        """All windows of a chain output, with ``p_fall`` [K] from the engine's fall head.

        The same as :meth:`update` on each window, without the per-window work where it cannot
        matter: with no impact pending, a window none of whose new samples (those later than
        the window before it) reaches the impact threshold only feeds the history, and the next
        window of its segment (which overlaps it by more than the history
        :meth:`_gravity_before` and the stillness check look at) feeds it too; so such a window
        is passed over (most windows of a long recording), and only the windows :meth:`update`
        sees are de-normalised.

        ``last_peak_g``: the last window's peak |a| (:meth:`window_peaks_g`, one call for many
        devices' windows, as live ticks make them): with no impact pending, a last window none
        of whose samples reaches the threshold is passed over too: the next window of its
        segment (the windower makes one every hop) holds its new samples and the history the
        checks look back over, a new segment clears the history, and no next window needs
        none."""
        alerts = []
        last = len(windows) - 1
        # [K]; the last window is never passed over, so a single window (live) needs none.
        threshold = self._impact_g()
        quiet = self._quiet(windows, chain, threshold) if last > 0 else np.zeros(len(windows), bool)
        segment = windows.segment
        scaling = _denormalization(chain)
        for i in range(len(windows)):
            if self._pending is None and (
                (quiet[i] and i < last and segment[i + 1] == segment[i])
                or (i == last and last_peak_g is not None and last_peak_g < threshold)
            ):
                continue
            alert = self._update(
                float(windows.t_start_s[i]),
                float(windows.t_end_s[i]),
                float(p_fall[i]),
                windows.data[i],
                int(windows.segment[i]),
                scaling,
            )
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _impact_g(self) -> float:
        """The peak |a| (g) a sampled impact must reach at this input rate."""
        return self.cfg.impact_threshold_g * impact_peak_ratio(self.input_rate_hz)

    def _quiet(self, windows: Windows, chain: ChainConfig, threshold: float) -> np.ndarray:
        """[K] True where no sample of a window that is new (later than the window before it
        in its segment, or than the history) can reach ``threshold`` (:meth:`_impact_g`);
        one sample of margin."""
        k, w = windows.data.shape[:2]
        if not k:
            return np.zeros(0, bool)
        t_start, t_end = windows.t_start_s, windows.t_end_s
        dt = (t_end - t_start) / (w - 1)
        prev = np.empty(k)
        prev[1:] = t_end[:-1]
        fresh = np.zeros(k, bool)  # windows whose every sample is new
        fresh[1:] = windows.segment[1:] != windows.segment[:-1]
        if self._segment != windows.segment[0] or not len(self._t):
            fresh[0] = True
        else:
            prev[0] = self._t[-1]
        with np.errstate(invalid="ignore", divide="ignore"):
            n_new = np.ceil((t_end - prev) / dt) + 1
        n_new = np.where(fresh | ~np.isfinite(n_new), w, np.clip(n_new, 1, w)).astype(np.int64)
        # The few windows whose samples are all new (a segment's first) apart: the others'
        # new samples are a short tail (a hop), not the whole width the first would impose.
        whole = n_new == w
        peak = np.empty(k)
        if whole.any():
            peak[whole] = self._magnitude_g(windows.data[whole], chain).max(axis=1)
        if not whole.all():
            tail = ~whole
            m = int(n_new[tail].max())
            mag_g = self._magnitude_g(windows.data[:, w - m :][tail], chain)  # [K', m]
            mag_g[np.arange(m)[None, :] < (m - n_new[tail])[:, None]] = 0.0  # seen before
            peak[tail] = mag_g.max(axis=1)
        return peak < threshold

    def window_peaks_g(self, data: np.ndarray, chain: ChainConfig) -> np.ndarray:
        """[K] the largest total acceleration (g) of each window of chain output ``data``
        [K, W, C], over all its samples (for :meth:`update_windows`' ``last_peak_g``)."""
        return self._magnitude_g(data, chain).max(axis=1)

    def _magnitude_g(self, data: np.ndarray, chain: ChainConfig) -> np.ndarray:
        """[K, m] |a| (g) of chain output ``data`` [K, m, C], de-normalised as :meth:`_append`
        does it, value for value."""
        scale, offset = _denormalization(chain)
        cols = self._magnitude_columns  # only those: [K, m, 3 or 6] in m/s²
        tail = data[..., cols] * scale[cols] + offset[cols]
        acc = tail if self._acc is not None else tail[..., :3] + tail[..., 3:]
        return np.sqrt((acc * acc).sum(axis=-1)) / STANDARD_GRAVITY_M_S2

    def _append(
        self,
        t_start: float,
        t_end: float,
        raw: np.ndarray,
        scaling: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add the window's unseen samples to the history; return their times and |a| (g)."""
        t, j = self._new_times(t_start, t_end, len(raw))
        raw = raw[j:]
        if scaling is not None:  # de-normalised here: only the new samples
            raw = raw * scaling[0] + scaling[1]
        gravity = raw[:, self._gravity]
        # The low-passed total acceleration, not body_acc: the slow gravity filter lags a
        # fall's orientation change by seconds, and that lag would read as motion.
        acc = raw[:, self._acc] if self._acc is not None else raw[:, self._body] + gravity
        if len(t):  # keep the history from history_s before the newest sample (times increase)
            keep = int(np.searchsorted(self._t, t[-1] - self.cfg.history_s, side="left"))
            self._keep(keep, t, acc / STANDARD_GRAVITY_M_S2, gravity / STANDARD_GRAVITY_M_S2)
        return t, np.sqrt((acc * acc).sum(axis=1)) / STANDARD_GRAVITY_M_S2

    def _new_times(self, t_start: float, t_end: float, w: int) -> tuple[np.ndarray, int]:
        """The times of a window's samples later than the history's newest (with half a
        sample of tolerance: the grid times are recomputed, not copied), and the index of the
        first. Windows lie on the chain's uniform grid: the times are ``np.linspace(t_start,
        t_end, w)``'s, bit for bit (``i * step + t_start``, the last ``t_end``), made for the
        new samples only."""
        step = (t_end - t_start) / (w - 1) if w > 1 else 0.0
        if step == 0.0 or not np.isfinite(step):  # linspace's own special cases
            t = np.linspace(t_start, t_end, w)
            last = self._t[-1] + 0.5 * (t[1] - t[0]) if len(self._t) and w > 1 else -np.inf
            j = int(np.searchsorted(t, last, side="right"))
            return t[j:], j

        def at(i: int) -> float:
            return t_end if i == w - 1 else i * step + t_start

        j = 0
        if len(self._t):
            last = float(self._t[-1]) + 0.5 * (at(1) - t_start)
            # Where linspace's times pass ``last`` (searchsorted's side="right"): a guess, then
            # the exact place by the same arithmetic.
            j = min(max(int((last - t_start) / step) + 1, 0), w) if last >= t_start else 0
            while j > 0 and at(j - 1) > last:
                j -= 1
            while j < w and at(j) <= last:
                j += 1
        t = np.arange(j, w) * step + t_start
        if j < w:
            t[-1] = t_end
        return t, j

    def _keep(self, drop: int, t: np.ndarray, acc_g: np.ndarray, gravity_g: np.ndarray) -> None:
        """The history without its first ``drop`` samples, with ``t`` and its rows after it."""
        lo, hi, m = self._lo + drop, self._hi, len(t)
        if hi + m > len(self._buf_t):  # no room at the end: move the history to the start
            n, size = hi - lo, len(self._buf_t)
            if n + m > size // 2:
                size = 2 * (n + m)
            for name in ("_buf_t", "_buf_a", "_buf_g"):
                old = getattr(self, name)
                new = old if size == len(old) else np.zeros((size, *old.shape[1:]))
                new[:n] = old[lo:hi]  # overlapping moves are safe in numpy
                setattr(self, name, new)
            lo, hi = 0, n
        self._buf_t[hi : hi + m] = t
        self._buf_a[hi : hi + m] = acc_g
        self._buf_g[hi : hi + m] = gravity_g
        self._lo, self._hi = lo, hi + m
        self._t, self._a, self._g = (
            self._buf_t[lo : hi + m], self._buf_a[lo : hi + m], self._buf_g[lo : hi + m]
        )  # fmt: skip

    def _look_for_impact(self, t_new: np.ndarray, a_new: np.ndarray, p_fall: float) -> None:
        i = int(np.argmax(a_new))
        peak, t_peak = float(a_new[i]), float(t_new[i])
        if peak < self._impact_g():
            return
        if t_peak < self._last_alert_t + self.cfg.refractory_s:
            return
        pending = self._pending
        if pending is not None and peak <= pending.peak_g:
            return  # a smaller bounce after the main impact; it only spoils stillness
        if pending is not None:
            # A harder hit within the confirmation window: the fall's real impact is this one.
            pending.t, pending.peak_g = t_peak, peak
            return
        self._pending = _Impact(t_peak, peak, self._gravity_before(t_peak), float(p_fall))

    def _gravity_before(self, t_impact: float) -> np.ndarray:
        j = int(np.searchsorted(self._t, t_impact - self.cfg.pre_impact_s))
        g = self._g[min(j, len(self._g) - 1)]
        return g / max(float(np.linalg.norm(g)), 1e-9)

    def _try_confirm(self, t_now: float) -> Alert | None:
        cfg, imp = self.cfg, self._pending
        if t_now > imp.t + cfg.confirm_window_s:
            log.debug("impact at %.2f s not confirmed; dropped", imp.t)
            self._pending = None
            return None
        if t_now < imp.t + cfg.settle_s + cfg.stillness_s:
            return None
        if self.model_gate and imp.p_max < cfg.prob_threshold:
            return None
        tail = self._a[self._t > t_now - cfg.stillness_s]  # [S, 3]
        held = []
        if Confirmation.STILLNESS in cfg.confirmations:
            spread = float(np.sqrt(tail.var(axis=0).sum()))
            if spread < cfg.stillness_threshold_g:
                held.append(Confirmation.STILLNESS)
        if Confirmation.ORIENTATION in cfg.confirmations:
            now = tail.mean(axis=0)
            cos = float(now @ imp.gravity_before) / max(float(np.linalg.norm(now)), 1e-9)
            if np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))) > cfg.orientation_change_deg:
                held.append(Confirmation.ORIENTATION)
        if not held or (cfg.require_all and len(held) < len(cfg.confirmations)):
            return None
        self._pending = None
        self._last_alert_t = t_now
        return Alert(
            t=t_now,
            t_event=imp.t,
            type=AlertType.FALL,
            label="fall",
            p=imp.p_max,
            device=self.device,
            confirmed_by=tuple(held),
            extra={"impact_g": round(imp.peak_g, 2)},
        )
