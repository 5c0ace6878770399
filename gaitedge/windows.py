"""Sliding windows over a stream, from a preallocated history buffer.

Each segment's windows cover samples ``[i*hop, i*hop + window)``; a segment break (a gap in the
stream) resets the count, so no window spans a gap. Memory is fixed: the buffer keeps the last
``window_samples - 1`` samples, and only the windows a chunk completes are materialised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Windows:
    """Windows emitted by the chain.

    Attributes:
        data: [K, window_samples, n_channels] float32, normalised chain output.
        t_start_s: [K] stream time of each window's first sample.
        t_end_s: [K] stream time of each window's last sample.
        segment: [K] segment number (increments at every gap / reset).
    """

    data: np.ndarray
    t_start_s: np.ndarray
    t_end_s: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return len(self.data)

    @staticmethod
    def empty(window_samples: int, n_channels: int) -> Windows:
        return Windows(
            data=np.zeros((0, window_samples, n_channels), np.float32),
            t_start_s=np.zeros(0),
            t_end_s=np.zeros(0),
            segment=np.zeros(0, np.int64),
        )

    @staticmethod
    def concat(parts: list[Windows]) -> Windows:
        """Join windows in order; ``parts`` must not be empty."""
        if len(parts) == 1:
            return parts[0]
        return Windows(
            data=np.concatenate([p.data for p in parts]),
            t_start_s=np.concatenate([p.t_start_s for p in parts]),
            t_end_s=np.concatenate([p.t_end_s for p in parts]),
            segment=np.concatenate([p.segment for p in parts]),
        )


class Windower:
    """Cuts a sample stream into windows of ``window_samples`` every ``hop_samples``."""

    def __init__(self, window_samples: int, hop_samples: int, n_channels: int) -> None:
        if window_samples < 1 or hop_samples < 1:
            raise ValueError("window_samples and hop_samples must be positive")
        self.window_samples = window_samples
        self.hop_samples = hop_samples
        self.n_channels = n_channels
        history = window_samples - 1
        self._hist = np.zeros((history, n_channels), np.float32)  # [W-1, C]
        self._hist_t = np.zeros(history)  # [W-1]
        self._offsets = np.arange(window_samples)
        self._count = 0
        self.segment = 0
        self._empty = Windows.empty(window_samples, n_channels)

    def reset(self) -> None:
        """Start a new segment: no later window reaches back across this point."""
        self._count = 0
        self.segment += 1

    def _first_end(self) -> int:
        """Sample count (1-based, within the segment) at which the next window ends."""
        w, h, c = self.window_samples, self.hop_samples, self._count
        if c + 1 <= w:
            return w
        return w + -(-(c + 1 - w) // h) * h

    @property
    def samples_to_window(self) -> int:
        """Samples still to come until the next window ends (at least 1)."""
        return self._first_end() - self._count

    def push(self, t: np.ndarray, y: np.ndarray) -> Windows:
        """Append [M] times and [M, C] samples; return the windows they complete."""
        m = len(y)
        c, w = self._count, self.window_samples
        ends = np.arange(self._first_end(), c + m + 1, self.hop_samples)
        if len(ends):
            # Sample number s of the segment sits at index (W - 2 + s - c) of the joined
            # array, so the window ending at sample e starts at index e - c - 1.
            joined = np.concatenate([self._hist, y.astype(np.float32, copy=False)])
            joined_t = np.concatenate([self._hist_t, t])
            starts = ends - c - 1
            data = joined[starts[:, None] + self._offsets]  # [K, W, C]
            out = Windows(
                data=data,
                t_start_s=joined_t[starts],
                t_end_s=joined_t[starts + w - 1],
                segment=np.full(len(ends), self.segment, np.int64),
            )
        else:
            out = self._empty
        self._remember(t, y)
        self._count += m
        return out

    def _remember(self, t: np.ndarray, y: np.ndarray) -> None:
        keep = len(self._hist)
        m = len(y)
        if keep == 0:
            return
        if m >= keep:
            self._hist[:] = y[m - keep :]
            self._hist_t[:] = t[m - keep :]
        else:
            self._hist[:-m] = self._hist[m:]
            self._hist[-m:] = y
            self._hist_t[:-m] = self._hist_t[m:]
            self._hist_t[-m:] = t
