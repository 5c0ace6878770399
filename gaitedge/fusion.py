"""Fuse separately timestamped accelerometer and gyroscope streams onto one time base.

Phones (Android) and some sensors (MetaWear) deliver the two sensors as separate streams with
their own timestamps and rates. :class:`StreamFuser` puts them on the accelerometer's time base:
each accelerometer sample is emitted once gyroscope samples bracket it, with the gyroscope
linearly interpolated to its time. The result feeds the signal chain, which then resamples.

Policy at the edges: accelerometer samples before the first gyroscope sample are dropped and
counted (``stats.dropped_before_gyro``); if the gyroscope falls more than ``max_wait_s`` behind,
the waiting accelerometer samples are emitted with the last gyroscope value held and counted
(``stats.gyro_held``), so a stalled gyroscope neither blocks the stream nor grows memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FusionStats:
    fused: int = 0
    dropped_before_gyro: int = 0
    gyro_held: int = 0


def _check_stream(t: np.ndarray, x: np.ndarray, last: float, name: str) -> None:
    if x.shape != (len(t), 3):
        raise ValueError(f"{name}: expected [N] times and [N, 3] values, got {t.shape}, {x.shape}")
    if not (np.isfinite(t).all() and np.isfinite(x).all()):
        raise ValueError(f"{name}: non-finite timestamp or value")
    if len(t) and (t[0] <= last or (np.diff(t) <= 0).any()):
        raise ValueError(f"{name}: timestamps must increase")


class StreamFuser:
    """Streaming fusion of accelerometer [N, 3] and gyroscope [M, 3] chunks into [K, 6]."""

    def __init__(self, max_wait_s: float = 0.5) -> None:
        self.max_wait_s = max_wait_s
        self.stats = FusionStats()
        self._acc_t = np.zeros(0)
        self._acc = np.zeros((0, 3))
        self._gyro_t = np.zeros(0)
        self._gyro = np.zeros((0, 3))
        self._last_acc_t = -np.inf
        self._last_gyro_t = -np.inf

    def push_acc(self, t: np.ndarray, acc: np.ndarray) -> None:
        t, acc = np.asarray(t, float).reshape(-1), np.asarray(acc, float)
        _check_stream(t, acc, self._last_acc_t, "accelerometer")
        if len(t):
            self._last_acc_t = float(t[-1])
            self._acc_t = np.concatenate([self._acc_t, t])
            self._acc = np.concatenate([self._acc, acc])

    def push_gyro(self, t: np.ndarray, gyro: np.ndarray) -> None:
        t, gyro = np.asarray(t, float).reshape(-1), np.asarray(gyro, float)
        _check_stream(t, gyro, self._last_gyro_t, "gyroscope")
        if len(t):
            self._last_gyro_t = float(t[-1])
            self._gyro_t = np.concatenate([self._gyro_t, t])
            self._gyro = np.concatenate([self._gyro, gyro])

    def pop(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the fused samples ready now: [K] times and [K, 6] (acc, gyro)."""
        if not len(self._gyro_t):
            return np.zeros(0), np.zeros((0, 6))
        early = self._acc_t < self._gyro_t[0]
        if early.any():
            self.stats.dropped_before_gyro += int(early.sum())
            self._acc_t, self._acc = self._acc_t[~early], self._acc[~early]
        ready = self._acc_t <= self._gyro_t[-1]
        stale = self._acc_t < (self._last_acc_t - self.max_wait_s)
        held = stale & ~ready
        take = ready | held
        t = self._acc_t[take]
        gyro = np.column_stack([np.interp(t, self._gyro_t, self._gyro[:, k]) for k in range(3)])
        self.stats.gyro_held += int(held.sum())
        self.stats.fused += len(t)
        out = np.concatenate([self._acc[take], gyro], axis=1)
        self._acc_t, self._acc = self._acc_t[~take], self._acc[~take]
        self._trim_gyro(t[-1] if len(t) else None)
        return t, out

    def _trim_gyro(self, last_emitted: float | None) -> None:
        """Keep only the gyroscope samples still needed to bracket future output."""
        if last_emitted is None:
            return
        keep_from = max(int(np.searchsorted(self._gyro_t, last_emitted, side="right")) - 1, 0)
        self._gyro_t, self._gyro = self._gyro_t[keep_from:], self._gyro[keep_from:]


def fuse(
    t_acc: np.ndarray, acc: np.ndarray, t_gyro: np.ndarray, gyro: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Offline fusion: the streaming fuser fed both whole streams once."""
    fuser = StreamFuser()
    fuser.push_acc(t_acc, acc)
    fuser.push_gyro(t_gyro, gyro)
    return fuser.pop()
