"""Sliding windows over a stream, from a preallocated history buffer.

Each segment's windows cover samples ``[i*hop, i*hop + window)``; a segment break (a gap in the
stream) resets the count, so no window spans a gap. Memory is fixed: the buffer keeps the last
``window_samples - 1`` samples (with room for a few windows' samples after them), and only the
windows a chunk completes are materialised.
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
        # The last W-1 samples at [_lo, _lo + W-1) of a buffer with room after them: a chunk
        # that fits is written after them in place (a live frame: no copy of the history);
        # one that does not is joined to them, and they move to the buffer's start.
        self._history = window_samples - 1
        self._size = self._history + self.ROOM_WINDOWS * window_samples
        self._buf = np.zeros((self._size, n_channels), np.float32)  # [size, C]
        self._buf_t = np.zeros(self._size)  # [size]
        self._lo = 0
        self._count = 0
        self.segment = 0
        self._empty = Windows.empty(window_samples, n_channels)

    # Room after the history, in windows (a fixed size: memory does not grow with a chunk).
    ROOM_WINDOWS = 4

    def reset(self) -> None:
        """Start a new segment: no later window reaches back across this point."""
        self._count = 0
        self.segment += 1

    def _first_end(self) -> int:
        """Sample count (1-based, within the segment) at which the next window ends."""
        return self._first_end_of(self._count)

    def _first_end_of(self, c: int) -> int:
        """:meth:`_first_end` after ``c`` samples of the segment."""
        w, h = self.window_samples, self.hop_samples
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
        c, w, history, lo = self._count, self.window_samples, self._history, self._lo
        # Sample number s of the segment sits at index (W - 2 + s - c) of the history joined
        # with the chunk, so the window ending at sample e starts at index e - c - 1.
        if lo + history + m <= self._size:
            self._buf[lo + history : lo + history + m] = y
            self._buf_t[lo + history : lo + history + m] = t
            joined = self._buf[lo : lo + history + m]
            joined_t = self._buf_t[lo : lo + history + m]
            self._lo = lo + m
        else:
            joined = np.concatenate(
                [self._buf[lo : lo + history], y.astype(np.float32, copy=False)]
            )
            joined_t = np.concatenate([self._buf_t[lo : lo + history], t])
            self._buf[:history] = joined[len(joined) - history :]
            self._buf_t[:history] = joined_t[len(joined) - history :]
            self._lo = 0
        self._count += m
        first = self._first_end_of(c)
        if first > c + m:
            return self._empty
        if first + self.hop_samples > c + m:  # one window (a live frame's): slices, copied
            s = first - c - 1
            return Windows(
                data=joined[None, s : s + w].copy(),
                t_start_s=joined_t[s : s + 1].copy(),
                t_end_s=joined_t[s + w - 1 : s + w].copy(),
                segment=np.full(1, self.segment, np.int64),
            )
        starts = np.arange(first, c + m + 1, self.hop_samples) - c - 1
        # [K, W, C]: a strided view of the joined samples (window k starts hop * k rows after
        # the first), copied in one pass (a gather by a [K, W] index array took ~3x as long)
        rows, cols = joined.strides
        view = np.lib.stride_tricks.as_strided(
            joined[starts[0] :],
            shape=(len(starts), w, joined.shape[1]),
            strides=(self.hop_samples * rows, rows, cols),
            writeable=False,
        )
        return Windows(
            data=view.copy(),
            t_start_s=joined_t[starts],
            t_end_s=joined_t[starts + w - 1],
            segment=np.full(len(starts), self.segment, np.int64),
        )
