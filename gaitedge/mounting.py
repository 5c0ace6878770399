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

import json
import math
import os
from pathlib import Path

import numpy as np

from gaitedge.private import write_private
from gaitedge.units import STANDARD_GRAVITY_M_S2

BLOCK_S = 2.0
CALIBRATED_WALKING_S = 20.0
MOUNTING_MODES = ("none", "auto")


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
        axis = part.lstrip("+-")
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
        return self.long.walking_s >= CALIBRATED_WALKING_S

    @property
    def walking_s(self) -> float:
        return self.long.walking_s

    @property
    def rotation(self) -> np.ndarray:
        """The current body-from-sensor rotation (identity before any walking)."""
        return self._rotation

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


def default_mount_file() -> Path:
    """``$GAITEDGE_MOUNT_FILE``, else ``mounting.json`` in the user's cache directory."""
    if "GAITEDGE_MOUNT_FILE" in os.environ:
        return Path(os.environ["GAITEDGE_MOUNT_FILE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gaitedge" / "mounting.json"


class MountStore:
    """Mounting estimates per device id in one small JSON file (``path=None``: in memory)."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = None if path is None else Path(path)
        self.entries: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise MountingError(f"{self.path}: not a readable mount file: {exc}") from exc
            if not isinstance(self.entries, dict):
                raise MountingError(f"{self.path}: not a mount file (expected a JSON object)")

    def get(self, device: str, rate_hz: float) -> MountingEstimator | None:
        entry = self.entries.get(device)
        return None if entry is None else MountingEstimator.from_dict(entry, rate_hz)

    def put(self, device: str, estimator: MountingEstimator) -> None:
        self.entries[device] = estimator.to_dict()

    def save(self) -> None:
        if self.path is None:
            return
        write_private(self.path, json.dumps(self.entries, indent=1))
