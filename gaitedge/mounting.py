"""Sensor-to-body alignment: the model sees body-frame axes however the sensor is worn.

The **body frame** of a bundle whose chain has ``mounting="auto"``:

* ``x`` points up: the mean acceleration (gravity's reaction) while the wearer walks, when the
  trunk (or thigh) is upright on average;
* ``y`` lies along the gait's main horizontal axis (the largest horizontal body-acceleration
  variance while walking: forward-backward at the waist), signed so that the acceleration along
  ``+y`` has negative skewness (the brief, sharp deceleration at heel strike); on HAPT's waist
  phone this is ``+y`` of the phone in 37 of 38 experiments;
* ``z = x × y``.

:class:`MountingEstimator` finds that frame online from the low-passed acceleration at the
chain's rate. It looks at blocks of :data:`BLOCK_S`; a block counts as walking when |a| varies
(std 0.8-12 m/s²), its mean is near 1 g and |a| is rhythmic (autocorrelation >= 0.25 at a step
or stride lag of 0.3-1.4 s). It keeps sufficient statistics of walking blocks with exponential
forgetting (mean up direction, second and third moments of body acceleration), so the
estimate is the same however the stream is chunked, is re-checked all the time and can be saved
and restored (:meth:`MountingEstimator.to_dict`). It is *calibrated* after
:data:`CALIBRATED_WALKING_S` of walking. A second, short-memory estimate runs beside it; when its
up axis stays more than ``slip_deg`` from the long one for 10 walking blocks in a row (20 s of
walking: a sensor that slipped or was re-clipped, not a few odd blocks), the long estimate is
replaced by the short one and counted in :attr:`realignments`.

Every statistic is rotation-equivariant: the estimate from data rotated by ``R`` is the
estimate from the original times ``R^T``, so the aligned stream does not depend on the mounting
up to the estimate's noise. Training therefore aligns every recording with its own estimate, and
the model learns the aligned stream including the estimator's residual error.

Manual mountings are axis maps: ``"-y,x,z"`` means body x = -sensor y, body y = sensor x,
body z = sensor z (:func:`parse_axis_map`).
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gaitedge.private import private_dir, write_private
from gaitedge.units import STANDARD_GRAVITY_M_S2

BLOCK_S = 2.0
_FIRST = np.zeros(1, np.int64)  # feed's starts when the rotation holds for the whole input
_FIRST.flags.writeable = False
CALIBRATED_WALKING_S = 20.0
MOUNTING_MODES = ("none", "auto", "vertical")


class MountingError(ValueError):
    """A mounting that cannot be parsed or a mount file that cannot be read."""


def parse_axis_map(text: str) -> np.ndarray:
    """``"-y,x,z"`` -> the rotation R with body = R @ sensor (rows pick signed sensor axes)."""
    parts = [p.strip().lower() for p in text.split(",")]
    if len(parts) != 3:
        raise MountingError(f"axis map {text!r}: expected three comma-separated axes like -y,x,z")
    rot = np.zeros((3, 3))
    for row, part in enumerate(parts):
        sign = -1.0 if part.startswith("-") else 1.0
        axis = part[1:] if part[:1] in "+-" else part  # one sign at most: '--x' is no axis
        if axis not in ("x", "y", "z"):
            raise MountingError(f"axis map {text!r}: {part!r} is not one of x, y, z, -x, -y, -z")
        rot[row, "xyz".index(axis)] = sign
    if abs(abs(np.linalg.det(rot)) - 1) > 1e-9:
        raise MountingError(f"axis map {text!r}: uses an axis twice")
    if np.linalg.det(rot) < 0:
        raise MountingError(f"axis map {text!r} mirrors the axes; flip the sign of one of them")
    return rot


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors in degrees."""
    cos = float(a @ b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def rotation_angle_deg(r: np.ndarray) -> float:
    """The angle of rotation matrix ``r`` in degrees (0 = identity)."""
    return math.degrees(math.acos(min(1.0, max(-1.0, (float(np.trace(r)) - 1) / 2))))


class _Moments:
    """Exponentially forgotten statistics of walking blocks."""

    def __init__(self, half_life_s: float) -> None:
        self.decay = 0.5 ** (BLOCK_S / half_life_s)
        self.up = np.zeros(3)
        self.m2 = np.zeros((3, 3))
        self.m3 = np.zeros((3, 3, 3))
        self.weight = 0.0
        self.walking_s = 0.0

    def add(self, mean: np.ndarray, body: np.ndarray) -> None:
        d = self.decay
        n = len(body)
        self.up = d * self.up + mean / np.linalg.norm(mean)
        self.m2 = d * self.m2 + body.T @ body / n
        self.m3 = d * self.m3 + np.einsum("ni,nj,nk->ijk", body, body, body) / n
        self.weight = d * self.weight + 1.0
        self.walking_s += BLOCK_S

    def rotation(self) -> np.ndarray | None:
        if self.weight <= 0:
            return None
        v = self.up / np.linalg.norm(self.up)
        p = np.eye(3) - np.outer(v, v)
        _, vectors = np.linalg.eigh(p @ self.m2 @ p)
        f = vectors[:, -1]
        f = f - (f @ v) * v
        f /= np.linalg.norm(f)
        if np.einsum("ijk,i,j,k->", self.m3, f, f, f) > 0:
            f = -f
        return np.stack([v, f, np.cross(v, f)])

    def scan(self, stats: np.ndarray) -> np.ndarray:
        """The state after each of B walking blocks, in one array operation: ``stats`` [B, 40]
        holds each block's unit mean, second and third moments and 1 (the weight), as
        :meth:`add` adds them; returns [B, 40] (up, m2, m3, weight) without changing ``self``."""
        b = len(stats)
        k = np.arange(b)
        lag = k[:, None] - k[None, :]
        decay = np.where(lag >= 0, self.decay ** np.maximum(lag, 0), 0.0)  # [B, B]
        state = np.concatenate([self.up, self.m2.ravel(), self.m3.ravel(), [self.weight]])
        return decay @ stats + (self.decay ** (k + 1))[:, None] * state

    def set(self, row: np.ndarray, walking_s: float) -> None:
        """Take a state :meth:`scan` returned."""
        self.up, self.m2 = row[:3].copy(), row[3:12].reshape(3, 3).copy()
        self.m3, self.weight = row[12:39].reshape(3, 3, 3).copy(), float(row[39])
        self.walking_s = walking_s

    def to_dict(self) -> dict:
        return {
            "up": self.up.tolist(),
            "m2": self.m2.tolist(),
            "m3": self.m3.tolist(),
            "weight": self.weight,
            "walking_s": self.walking_s,
        }

    def load(self, data: dict) -> None:
        self.up = np.asarray(data["up"], np.float64).reshape(3)
        self.m2 = np.asarray(data["m2"], np.float64).reshape(3, 3)
        self.m3 = np.asarray(data["m3"], np.float64).reshape(3, 3, 3)
        self.weight = float(data["weight"])
        self.walking_s = float(data["walking_s"])
        values = (self.up, self.m2, self.m3, self.weight, self.walking_s)
        if not all(np.isfinite(v).all() for v in values) or self.weight < 0:
            raise ValueError("a value that is not a finite number, or a negative weight")
        if self.weight > 0 and not np.linalg.norm(self.up) > 0:
            raise ValueError("no up direction")


# Bumped when the estimator's decisions change (cached training windows depend on them).
ESTIMATOR_VERSION = 2


class MountingEstimator:
    """Online estimate of the sensor-to-body rotation from low-passed acceleration.

    Args:
        rate_hz: the chain's sample rate.
        half_life_s: walking time after which an old block weighs half (long memory).
        slip_deg: a short-memory up axis this far from the long one re-aligns.
    """

    SHORT_HALF_LIFE_S = 8.0
    SLIP_MIN_BLOCKS = 10  # consecutive walking blocks the short estimate must disagree for

    def __init__(self, rate_hz: float, half_life_s: float = 600.0, slip_deg: float = 30.0):
        self.rate_hz = float(rate_hz)
        self.block = max(8, round(BLOCK_S * rate_hz))
        self.slip_deg = slip_deg
        self.long = _Moments(half_life_s)
        self.short = _Moments(self.SHORT_HALF_LIFE_S)
        self._short_blocks = 0
        self._buf = np.zeros((self.block, 3))
        self._n = 0
        self.realignments = 0
        self.restored = False
        lo, hi = round(0.3 * rate_hz), round(1.4 * rate_hz)
        self._lags = np.arange(max(lo, 1), min(hi, self.block - 4) + 1)
        self._rotation = np.eye(3)

    @property
    def calibrated(self) -> bool:
        return bool(self.long.walking_s >= CALIBRATED_WALKING_S)

    @property
    def walking_s(self) -> float:
        return float(self.long.walking_s)

    @property
    def rotation(self) -> np.ndarray:
        """The current body-from-sensor rotation (identity before any walking)."""
        return self._rotation

    def samples_to_calibrated(self) -> int:
        """The fewest samples still to come before :attr:`calibrated` can turn true: whole
        walking blocks, less what the current block holds (0 once calibrated)."""
        if self.calibrated:
            return 0
        blocks = math.ceil((CALIBRATED_WALKING_S - self.long.walking_s) / BLOCK_S - 1e-9)
        return max(1, blocks * self.block - self._n)

    def new_segment(self) -> None:
        """A gap: the partial block is dropped (no block spans a gap)."""
        self._n = 0

    def boundary(self) -> int:
        """Samples until the next block completes (the rotation may change there)."""
        return self.block - self._n

    def update(self, acc: np.ndarray) -> None:
        """Feed [M] samples of low-passed acceleration (sensor frame, m/s²), M <= boundary()."""
        m = len(acc)
        self._buf[self._n : self._n + m] = acc
        self._n += m
        if self._n == self.block:
            self._n = 0
            self._block(self._buf)

    # Walking blocks accumulated in one array operation by :meth:`feed`.
    SCAN_BLOCKS = 128

    def feed(self, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`update` on any number of samples [M, 3]: whole blocks are judged and their
        statistics accumulated with array operations (a per-block loop cost most of a long
        replay). Returns ``(starts [P], rotations [P, 3, 3])``: ``rotations[p]`` is
        :attr:`rotation` from sample ``starts[p]`` until the next start. The same walking
        decisions and, to rounding, the same rotations as :meth:`update` (pinned by a test)."""
        acc = np.asarray(acc, np.float64)
        m, n = len(acc), self.block
        if 0 < m < self.boundary():  # no block ends in it (a live chunk, most of the time)
            self.update(acc)
            return _FIRST, self._rotation[None]
        starts, rots = [0], [self._rotation]
        i = min(m, self.boundary()) if self._n else 0
        if i:
            self.update(acc[:i])
            starts.append(i)
            rots.append(self._rotation)
        k = (m - i) // n
        if k:
            blocks = acc[i : i + k * n].reshape(k, n, 3)
            walking = np.flatnonzero(self._walking(blocks))
            if len(walking):  # the rotation changes after each walking block
                starts += list(i + n * (walking + 1))
                rots += list(self._walking_blocks(blocks[walking]))
        rest = i + k * n
        if rest < m:
            self.update(acc[rest:])
        keep = np.asarray(starts) < max(m, 1)
        return np.asarray(starts)[keep], np.stack(rots)[keep]

    def _walking(self, a: np.ndarray) -> np.ndarray:
        """:meth:`_is_walking` of blocks [B, n, 3] at once: [B] bool."""
        mag = np.linalg.norm(a, axis=2)  # [B, n]
        std = mag.std(axis=1)
        ok = (std >= 0.8) & (std <= 12.0)
        ok &= np.abs(np.linalg.norm(a.mean(axis=1), axis=1) / STANDARD_GRAVITY_M_S2 - 1) <= 0.25
        x = mag[ok] - mag[ok].mean(axis=1, keepdims=True)  # [B', n]
        n = x.shape[1]
        padded = np.concatenate([x, np.zeros_like(x)], axis=1)  # x[t + lag] = 0 past the end
        lagged = np.lib.stride_tricks.sliding_window_view(padded, n, axis=1)[:, self._lags]
        r = np.einsum("bn,bln->bl", x, lagged)  # [B', L] autocovariance at each lag
        ok[ok] = r.max(axis=1) / np.einsum("bn,bn->b", x, x) >= 0.25
        return ok

    def _walking_blocks(self, a: np.ndarray) -> np.ndarray:
        """:meth:`_block` on walking blocks [W, n, 3]; returns the rotation after each."""
        n = a.shape[1]
        mean = a.mean(axis=1)  # [W, 3]
        body = a - mean[:, None]
        stats = np.concatenate(
            [
                mean / np.linalg.norm(mean, axis=1, keepdims=True),
                np.einsum("wni,wnj->wij", body, body).reshape(-1, 9) / n,
                np.einsum("wni,wnj,wnk->wijk", body, body, body).reshape(-1, 27) / n,
                np.ones((len(a), 1)),
            ],
            axis=1,
        )  # [W, 40]
        out = np.empty((len(a), 3, 3))
        w = 0
        while w < len(a):
            w = self._scan(stats, w, out)
        self._rotation = out[-1]
        return out

    def _scan(self, stats: np.ndarray, w0: int, out: np.ndarray) -> int:
        """Blocks ``w0`` on (at most SCAN_BLOCKS), up to and including a re-alignment; fills
        ``out`` with the rotations after them and returns where to go on."""
        part = stats[w0 : w0 + self.SCAN_BLOCKS]
        longs, shorts = self.long.scan(part), self.short.scan(part)
        done = BLOCK_S * np.arange(1, len(part) + 1)  # walking time added
        slipped = _angles_deg(shorts[:, :3], longs[:, :3]) > self.slip_deg
        count, end, realign = self._short_blocks, len(part), False
        for j, s in enumerate(slipped):
            count = count + 1 if s else 0
            if self.long.walking_s + done[j] >= CALIBRATED_WALKING_S and (
                count >= self.SLIP_MIN_BLOCKS
            ):
                end, realign = j + 1, True
                break
        short_s = self.short.walking_s + done[end - 1]
        if realign:
            self._short_blocks = 0
            longs[end - 1] = shorts[end - 1]
            self.long.set(longs[end - 1], CALIBRATED_WALKING_S)
            self.realignments += 1
        else:
            self._short_blocks = count
            self.long.set(longs[end - 1], self.long.walking_s + done[end - 1])
        self.short.set(shorts[end - 1], short_s)
        out[w0 : w0 + end] = _rotations(longs[:end])
        return w0 + end

    def _is_walking(self, a: np.ndarray) -> bool:
        mag = np.linalg.norm(a, axis=1)
        std = float(mag.std())
        if not 0.8 <= std <= 12.0:
            return False
        if abs(float(np.linalg.norm(a.mean(axis=0))) / STANDARD_GRAVITY_M_S2 - 1) > 0.25:
            return False
        x = mag - mag.mean()
        energy = float(x @ x)
        r = np.array([x[:-lag] @ x[lag:] for lag in self._lags]) / energy
        return float(r.max()) >= 0.25

    def _block(self, a: np.ndarray) -> None:
        if not self._is_walking(a):
            return
        mean = a.mean(axis=0)
        body = a - mean
        self.long.add(mean, body)
        self.short.add(mean, body)
        # A slip persists: the short estimate must stay away for SLIP_MIN_BLOCKS walking blocks
        # in a row. One odd block that passes as walking (a transition, a stumble) weighs a lot
        # in the 8 s memory and used to re-align on its own (HAPT subject 6: up 80 deg off).
        slipped = angle_deg(self.short.up, self.long.up) > self.slip_deg
        self._short_blocks = self._short_blocks + 1 if slipped else 0
        if self.calibrated and self._short_blocks >= self.SLIP_MIN_BLOCKS:
            self._short_blocks = 0
            self.long.load(self.short.to_dict())
            self.long.walking_s = CALIBRATED_WALKING_S  # the short estimate is good enough
            self.realignments += 1
        self._rotation = self.long.rotation()

    def to_dict(self) -> dict:
        return {
            "rate_hz": self.rate_hz,
            "long": self.long.to_dict(),
            "rotation": self._rotation.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, rate_hz: float) -> MountingEstimator:
        est = cls(rate_hz)
        try:
            est.long.load(data["long"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MountingError(f"stored mounting estimate is incomplete: {exc}") from exc
        est._rotation = est.long.rotation() if est.long.weight > 0 else np.eye(3)
        est.restored = True
        return est


def _angles_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:func:`angle_deg` row by row of [B, 3] arrays."""
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return np.degrees(np.arccos(np.clip(np.einsum("bi,bi->b", a, b) / norms, -1.0, 1.0)))


def _rotations(states: np.ndarray) -> np.ndarray:
    """:meth:`_Moments.rotation` of each state row [B, 40] (as :meth:`_Moments.scan` gives)."""
    up, m2 = states[:, :3], states[:, 3:12].reshape(-1, 3, 3)
    m3 = states[:, 12:39].reshape(-1, 3, 3, 3)
    v = up / np.linalg.norm(up, axis=1, keepdims=True)
    p = np.eye(3) - v[:, :, None] * v[:, None, :]
    _, vectors = np.linalg.eigh(p @ m2 @ p)
    f = vectors[:, :, -1]
    f = f - np.einsum("bi,bi->b", f, v)[:, None] * v
    f /= np.linalg.norm(f, axis=1, keepdims=True)
    flip = np.einsum("bijk,bi,bj,bk->b", m3, f, f, f) > 0
    f[flip] = -f[flip]
    return np.stack([v, f, np.cross(v, f)], axis=1)


# Vertical mounting (chain ``mounting="vertical"``): only "up" is estimated; the heading is left
# to a model trained with random rotations about the vertical.
QUICK_UP_S = 0.5  # the cold-start up estimate: mean low-passed acceleration of the first 0.5 s
# A still block (the walking estimator's 2 s): every axis' standard deviation below this (20 mg;
# quiet standing sways less, a device in the hand or being clipped on moves more).
STILL_STD_M_S2 = 0.2
# ... and all axes' together at least this (3 mg): a worn device sways (the first still block of
# every HAPT and SisFall recording checked: 0.07 or more), one resting on a table shows only its
# noise (a phone's or an AX6's: 1-2 mg an axis), and a table's up is no wearer's.
WORN_STD_M_S2 = 0.03
# Walking this long outweighs a still block's up (a device handled before it is clipped on can
# pass a block or two as walking).
WALKING_UP_S = 10.0
VERTICAL_VERSION = 3  # bumped when the vertical estimator's decisions change (cached windows)


def rotation_to_up(up: np.ndarray) -> np.ndarray:
    """The minimal rotation R with ``R @ up/|up| = +x`` (the heading it leaves is arbitrary but
    a deterministic function of ``up``); a half turn about z when ``up`` is -x."""
    u = np.asarray(up, np.float64) / max(float(np.linalg.norm(up)), 1e-12)
    v = np.cross(u, [1.0, 0.0, 0.0])  # axis * sin(angle)
    c = float(u[0])  # cos(angle)
    if c < -1 + 1e-9:
        return np.diag([-1.0, -1.0, 1.0])
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


class VerticalEstimator:
    """Online body-up estimate for chains with ``mounting="vertical"``: body x = up, heading
    arbitrary (:func:`rotation_to_up`), so the model must not depend on it (trained with
    uniformly random rotations about the vertical, ``train.augment``).

    * Cold start: up = the first sample's low-passed acceleration, then the mean of the first
      :data:`QUICK_UP_S` of the stream, then (:attr:`settled`) the mean of the first still
      2-s block of a worn device (every axis' standard deviation below :data:`STILL_STD_M_S2`,
      all together above :data:`WORN_STD_M_S2`), kept until the wearer walks. Known from the
      first sample on (:attr:`calibrated`), so activity is decided from the first window. The
      still block is what the wearer's first posture gives: a device handled before it is
      clipped on moves (HAPT's recordings start so, 3-23 s before the first label: the first
      0.5 s is 45-86 degrees from the standing up in 7 of 8 validation experiments, the first
      still block 0.3-4.2 degrees).
    * While walking: up = the walking estimate of :class:`MountingEstimator` (the mean
      acceleration of walking blocks, re-aligned when the sensor slips), which replaces the
      cold-start one from the first walking block (2 s), or once a still block has set up,
      after :data:`WALKING_UP_S` of walking (handling passes a block or two as walking).

    A cold start while sitting or lying takes that posture's gravity as up (gravity alone cannot
    tell a lying wearer from another mounting), so postures read as upright until the wearer
    walks; a device that restores a stored walking estimate starts right. ``to_dict`` is a
    :class:`MountingEstimator` dict plus ``vertical_up``, so one mount store serves both modes.
    """

    def __init__(self, rate_hz: float, walking: MountingEstimator | None = None) -> None:
        self.rate_hz = float(rate_hz)
        self.walking = walking if walking is not None else MountingEstimator(rate_hz)
        self.restored = self.walking.restored
        self.quick = max(4, round(QUICK_UP_S * rate_hz))
        self._quick_sum = np.zeros(3)
        self._quick_n = 0
        self.up: np.ndarray | None = None  # the cold-start estimate
        self.settled = False  # up from a still block (not only the first 0.5 s)
        self._still_sum, self._still_squares, self._still_n = np.zeros(3), np.zeros(3), 0
        self._rotation = np.eye(3)
        self._refresh()

    @property
    def calibrated(self) -> bool:
        """True once up is known (from the first sample on)."""
        return bool(self.up is not None or self.walking.long.weight > 0)

    @property
    def walking_s(self) -> float:
        return self.walking.walking_s

    @property
    def realignments(self) -> int:
        return self.walking.realignments

    @property
    def rotation(self) -> np.ndarray:
        """The current body-from-sensor rotation (identity before the first sample)."""
        return self._rotation

    def up_source(self) -> str:
        """Where up comes from now: ``walking``, ``cold start`` or ``unknown``."""
        if self._walking_up():
            return "walking"
        return "cold start" if self.up is not None else "unknown"

    def new_segment(self) -> None:
        self.walking.new_segment()

    def boundary(self) -> int:
        b = self.walking.boundary()
        if self._quick_n == 0:
            return 1  # the first sample sets up at once
        if self._quick_n < self.quick:
            return min(b, self.quick - self._quick_n)
        return b

    def update(self, acc: np.ndarray) -> None:
        """Feed [M] samples of low-passed acceleration (sensor frame), M <= boundary()."""
        quick_up = False  # up set from the first sample or the first 0.5 s
        if self._quick_n < self.quick and len(acc):
            self._quick_sum += acc.sum(axis=0)
            self._quick_n += len(acc)
            if self._quick_n in (1, self.quick) and np.linalg.norm(self._quick_sum) > 0:
                self.up = self._quick_sum / np.linalg.norm(self._quick_sum)
                quick_up = True
        settling = not self.settled and len(acc) > 0
        if settling:  # this block's moments
            self._still_sum += acc.sum(axis=0)
            self._still_squares += np.einsum("ij,ij->j", acc, acc)
            self._still_n += len(acc)
        weight = self.walking.long.weight
        self.walking.update(acc)
        settled = settling and self.walking.boundary() == self.walking.block and self._settle()
        if quick_up or self.walking.long.weight != weight or settled:
            self._refresh()  # only when up may have changed (a rotation per call cost ~1/6 live)

    def _settle(self) -> bool:
        """At the end of a block: whether it was still (then up is its mean, kept)."""
        total, squares, n = self._still_sum, self._still_squares, self._still_n
        self._still_sum, self._still_squares, self._still_n = np.zeros(3), np.zeros(3), 0
        if n < self.walking.block or self._quick_n < self.quick:
            return False  # a block begun before the stream, or within the first 0.5 s
        mean = total / n
        var = squares / n - mean**2
        if (var >= STILL_STD_M_S2**2).any() or var.sum() < WORN_STD_M_S2**2:
            return False  # moving, or resting unworn
        if not np.linalg.norm(mean) > 0:
            return False
        self.up, self.settled = mean / np.linalg.norm(mean), True
        return True

    def _walking_up(self) -> bool:
        """Whether up is the walking estimate's (else the cold start's)."""
        if self.settled:
            return bool(self.walking.long.walking_s >= WALKING_UP_S)
        return bool(self.walking.long.weight > 0)

    def _refresh(self) -> None:
        if self._walking_up():
            self._rotation = rotation_to_up(self.walking.long.up)
        elif self.up is not None:
            self._rotation = rotation_to_up(self.up)

    def to_dict(self) -> dict:
        up = None if self.up is None else self.up.tolist()
        return self.walking.to_dict() | {"vertical_up": up}

    @classmethod
    def from_dict(cls, data: dict, rate_hz: float) -> VerticalEstimator:
        est = cls(rate_hz, MountingEstimator.from_dict(data, rate_hz))
        up = data.get("vertical_up")
        if up is not None:
            est.up = np.asarray(up, np.float64).reshape(3)
            est._quick_n = est.quick  # a stored estimate: no cold start
            est.settled = True
        est._refresh()
        return est


# systemd sets $STATE_DIRECTORY for a unit with StateDirectory= (systemd.exec(5)): the shipped
# unit's /var/lib/gaitedge, writable under ProtectSystem=strict and ProtectHome=yes.
STATE_DIRECTORY_ENV = "STATE_DIRECTORY"
MOUNT_FILE_ENV = "GAITEDGE_MOUNT_FILE"
MOUNT_FILE_NAME = "mounting.json"


def default_mount_file(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``listen`` keeps mounting estimates: ``$GAITEDGE_MOUNT_FILE``; else
    ``mounting.json`` in ``$STATE_DIRECTORY`` (set by systemd for a unit with
    ``StateDirectory=``; the first when it lists several); else in the user's cache directory."""
    environ = os.environ if environ is None else environ
    if environ.get(MOUNT_FILE_ENV):
        return Path(environ[MOUNT_FILE_ENV])
    state = environ.get(STATE_DIRECTORY_ENV, "").split(":")[0]
    if state:
        return Path(state) / MOUNT_FILE_NAME
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gaitedge" / MOUNT_FILE_NAME


class MountStore:
    """Mounting estimates per device id in one small JSON file (``path=None``: in memory).

    ``read_only``: estimates are read from ``path`` but never written back (``replay`` with a
    store it cannot write: it goes on, and says so).
    """

    def __init__(self, path: str | os.PathLike | None, *, read_only: bool = False) -> None:
        self.path = None if path is None else Path(path)
        self.read_only = read_only
        self.entries: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, ValueError) as exc:  # unreadable, not JSON, not text
                raise MountingError(f"{self.path}: not a readable mount file: {exc}") from exc
            if not isinstance(self.entries, dict):
                raise MountingError(f"{self.path}: not a mount file (expected a JSON object)")
        self._saved = self._text()  # what the file holds (save(if_changed=True))

    def get(self, device: str, rate_hz: float) -> MountingEstimator | None:
        """``device``'s stored estimate, or None; MountingError (one line naming the file and
        the device) when its entry is damaged (edited by hand, a value not a number)."""
        entry = self.entries.get(device)
        if entry is None:
            return None
        try:
            if not isinstance(entry, dict):
                raise MountingError(f"an entry of type {type(entry).__name__}, not an object")
            return MountingEstimator.from_dict(entry, rate_hz)
        except (MountingError, np.linalg.LinAlgError) as exc:
            raise MountingError(
                f"{self.path}: the stored estimate of {device!r} is damaged ({exc}); delete "
                "that entry and the device calibrates anew"
            ) from exc

    def put(self, device: str, estimator: MountingEstimator) -> None:
        self.entries[device] = estimator.to_dict()

    def check_writable(self) -> None:
        """Raise MountingError (one line) unless :meth:`save` can write ``path``: its directory
        exists or can be made (0700), and a file can be created in it (a save writes a
        temporary file there and renames it over ``path``)."""
        if self.path is None or self.read_only:
            return
        try:
            if self.path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "is a directory")
            private_dir(self.path.parent)
            fd, probe = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise MountingError(_cannot_save(self.path, exc)) from None

    def save(self, *, if_changed: bool = False) -> bool:
        """Write the entries (``if_changed``: only when they differ from what the file was
        read with or last written; a periodic save); True if written. Atomic and private
        (``gaitedge.private.write_private``: a temporary file beside ``path``, fsync,
        ``os.replace``, mode 0600): a crash or a kill mid-save leaves the old file or the new
        one. Raises MountingError (one line) when it cannot write."""
        text = self._text()
        if self.path is None or self.read_only or (if_changed and text == self._saved):
            return False
        try:
            write_private(self.path, text)
        except OSError as exc:
            raise MountingError(_cannot_save(self.path, exc)) from None
        self._saved = text
        return True

    def _text(self) -> str:
        return json.dumps(self.entries, indent=1)


def _cannot_save(path: Path, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return (
        f"cannot save mounting estimates to {path}: {reason} "
        f"(give --mount-file or ${MOUNT_FILE_ENV} a writable file)"
    )
