"""What the emulated apps share: resampling to an app's own clock and a phone's gravity split."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, sosfiltfilt

from gaitedge.units import STANDARD_GRAVITY_M_S2 as G  # noqa: F401 - re-exported for writers


def resample(
    t_s: np.ndarray,
    x: np.ndarray,
    rate_hz: float,
    *,
    jitter_s: float = 0.0,
    offset_s: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` sampled by a sensor of its own at ``rate_hz``, its first stamp ``offset_s`` after
    the recording's, each stamp jittered by up to ``jitter_s`` (kept increasing)."""
    n = int(np.floor((t_s[-1] - t_s[0] - offset_s) * rate_hz)) + 1
    t = t_s[0] + offset_s + np.arange(n) / rate_hz
    if jitter_s:
        rng = np.random.default_rng(seed)
        t = t + rng.uniform(-jitter_s, jitter_s, n)
        t = np.maximum.accumulate(t)
        t = np.clip(t, t_s[0], t_s[-1])
    out = np.stack([np.interp(t, t_s, x[:, c]) for c in range(x.shape[1])], axis=1)
    return t, out


def gravity_split(t_s: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A phone's fusion split of acceleration (m/s², with gravity) into (linear, gravity): the
    gravity a 0.3 Hz low-pass keeps, the rest linear. The two add back to ``acc`` exactly."""
    rate = 1.0 / float(np.median(np.diff(t_s)))
    sos = butter(2, 0.3, fs=rate, output="sos")
    gravity = sosfiltfilt(sos, acc, axis=0)
    return acc - gravity, gravity
