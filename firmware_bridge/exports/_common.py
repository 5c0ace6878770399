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
    bandlimited: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` sampled by a sensor of its own at ``rate_hz``, its first stamp ``offset_s`` after
    the recording's, each stamp jittered by up to ``jitter_s`` (kept increasing).

    ``bandlimited``: the sensor samples the motion, not straight lines between the recording's
    samples: an evenly sampled recording is first rendered band-limited at :data:`DENSE` times
    its rate (the datasets' own polyphase FIR, ``gaitedge.datasets.render_rate``) and the stamps
    are read off that. Linear interpolation of the recording itself (the default, which the
    export tests pin against) flattens what lies between its samples: an impact's peak at a stamp
    between two 50 Hz samples reads up to ~10 % low, which the fall rules then miss where a real
    100 Hz sensor would not (the live phone paths of ``bench/phones.py`` use it)."""
    n = int(np.floor((t_s[-1] - t_s[0] - offset_s) * rate_hz)) + 1
    t = t_s[0] + offset_s + np.arange(n) / rate_hz
    if jitter_s:
        rng = np.random.default_rng(seed)
        t = t + rng.uniform(-jitter_s, jitter_s, n)
        t = np.maximum.accumulate(t)
        t = np.clip(t, t_s[0], t_s[-1])
    if not bandlimited:
        return t, np.stack([np.interp(t, t_s, x[:, c]) for c in range(x.shape[1])], axis=1)
    return t, read_at(t_s, x, t)


DENSE = 8  # the band-limited rendering's rate, in multiples of the recording's


def read_at(t_s: np.ndarray, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``x`` [N, C] (sampled at ``t_s``) read at the times ``t``: band-limited when ``t_s`` is
    evenly spaced, linear between the samples otherwise."""
    from gaitedge.datasets import render_rate

    dt = np.diff(t_s)
    if len(t_s) < 16 or not np.allclose(dt, dt[0], rtol=1e-6, atol=1e-9):
        return np.stack([np.interp(t, t_s, x[:, c]) for c in range(x.shape[1])], axis=1)
    rate = 1.0 / float(dt[0])
    dense_t = t_s[0] + np.arange((len(t_s) - 1) * DENSE + 1) / (rate * DENSE)
    out = np.empty((len(t), x.shape[1]))
    for c in range(x.shape[1]):  # a column at a time: the dense rendering is 8x the recording
        dense = render_rate(x[:, c : c + 1], rate, rate * DENSE)[: len(dense_t), 0]
        out[:, c] = np.interp(t, dense_t[: len(dense)], dense)
    return out


def gravity_split(t_s: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A phone's fusion split of acceleration (m/s², with gravity) into (linear, gravity): the
    gravity a 0.3 Hz low-pass keeps, the rest linear. The two add back to ``acc`` exactly."""
    rate = 1.0 / float(np.median(np.diff(t_s)))
    sos = butter(2, 0.3, fs=rate, output="sos")
    gravity = sosfiltfilt(sos, acc, axis=0)
    return acc - gravity, gravity
