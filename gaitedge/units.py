"""Unit conversion into the canonical units of the signal chain: m/s² and rad/s."""

from __future__ import annotations

import enum

import numpy as np

STANDARD_GRAVITY_M_S2 = 9.80665


class AccelUnit(str, enum.Enum):
    """Units an accelerometer may report in."""

    M_S2 = "m/s2"
    G = "g"
    MG = "mg"
    COUNTS = "counts"


class GyroUnit(str, enum.Enum):
    """Units a gyroscope may report in."""

    RAD_S = "rad/s"
    DEG_S = "deg/s"
    COUNTS = "counts"


_ACCEL_TO_M_S2 = {
    AccelUnit.M_S2: 1.0,
    AccelUnit.G: STANDARD_GRAVITY_M_S2,
    AccelUnit.MG: STANDARD_GRAVITY_M_S2 / 1000.0,
}
_GYRO_TO_RAD_S = {GyroUnit.RAD_S: 1.0, GyroUnit.DEG_S: np.pi / 180.0}


# Unit names as files write them (lower-cased, spaces removed), to the canonical enums.
_ACCEL_NAMES = {
    "m/s2": AccelUnit.M_S2, "m/s^2": AccelUnit.M_S2, "m/(s^2)": AccelUnit.M_S2,
    "m/(sec^2)": AccelUnit.M_S2, "m/sec^2": AccelUnit.M_S2,
    "ms2": AccelUnit.M_S2, "m/s²": AccelUnit.M_S2, "ms^-2": AccelUnit.M_S2,
    "g": AccelUnit.G, "mg": AccelUnit.MG,
}  # fmt: skip
_GYRO_NAMES = {
    "rad/s": GyroUnit.RAD_S, "rads": GyroUnit.RAD_S, "rad/sec": GyroUnit.RAD_S,
    "deg/s": GyroUnit.DEG_S, "dps": GyroUnit.DEG_S, "d/s": GyroUnit.DEG_S,
    "°/s": GyroUnit.DEG_S, "deg/sec": GyroUnit.DEG_S,
}  # fmt: skip


def parse_accel_unit(text: str, where: str = "input") -> AccelUnit:
    """An accelerometer unit as a file names it (``m/s^2``, ``m/(s^2)``, ``G``, ``mg``)."""
    unit = _ACCEL_NAMES.get(text.strip().lower().replace(" ", ""))
    if unit is None:
        raise ValueError(f"{where}: unknown accelerometer unit {text!r}")
    return unit


def parse_gyro_unit(text: str, where: str = "input") -> GyroUnit:
    """A gyroscope unit as a file names it (``rad/s``, ``deg/s``, ``dps``, ``d/s``)."""
    unit = _GYRO_NAMES.get(text.strip().lower().replace(" ", ""))
    if unit is None:
        raise ValueError(f"{where}: unknown gyroscope unit {text!r}")
    return unit


def accel_to_m_s2(
    values: np.ndarray, unit: AccelUnit | str, g_per_count: float | None = None
) -> np.ndarray:
    """Convert acceleration to m/s².

    Raw counts need the sensor's scale in g per count (for example 1/256 for an ADXL345 at
    ±16 g, 13 bit); without it counts cannot be interpreted and a ValueError is raised.
    """
    unit = AccelUnit(unit)
    values = np.asarray(values, dtype=np.float64)
    if unit is AccelUnit.COUNTS:
        if g_per_count is None or not g_per_count > 0:
            raise ValueError("accelerometer counts need a positive scale in g per count")
        return values * (g_per_count * STANDARD_GRAVITY_M_S2)
    return values * _ACCEL_TO_M_S2[unit]


def gyro_to_rad_s(
    values: np.ndarray, unit: GyroUnit | str, dps_per_count: float | None = None
) -> np.ndarray:
    """Convert angular rate to rad/s; raw counts need the scale in deg/s per count."""
    unit = GyroUnit(unit)
    values = np.asarray(values, dtype=np.float64)
    if unit is GyroUnit.COUNTS:
        if dps_per_count is None or not dps_per_count > 0:
            raise ValueError("gyroscope counts need a positive scale in deg/s per count")
        return values * np.deg2rad(dps_per_count)
    return values * _GYRO_TO_RAD_S[unit]


# The largest full scale a gyroscope has (±4000 deg/s): rotation rate past it cannot be rad/s
# (deg/s read as rad/s reads 57 times too fast, and walking's 300 deg/s lands past it).
GYRO_FULL_SCALE_RAD_S = 4000.0 * np.pi / 180.0
# Samples past the full scale that show the data are not rad/s (one may be a corrupted cell).
GYRO_SCALE_EVIDENCE = 3


def check_gyro_scale(t_s: np.ndarray, gyro_rad_s: np.ndarray, where: str = "input") -> None:
    """Refuse rotation rate that cannot be rad/s: :data:`GYRO_SCALE_EVIDENCE` samples or more
    past any gyroscope's full scale (:data:`GYRO_FULL_SCALE_RAD_S`), below what the chain drops
    as corrupted (``preprocess.MAX_ABS_VALUE``).

    Raises:
        ValueError: naming the first such sample's time and the likely unit.
    """
    GyroScaleCheck(where)(t_s, gyro_rad_s)


class GyroScaleCheck:
    """:func:`check_gyro_scale` over a recording that comes in chunks: the evidence is counted
    across them (a deg/s file whose fast moments fall one per chunk is refused as it is when
    read whole), and the refusal names the first such sample wherever it came."""

    def __init__(self, where: str = "input"):
        self.where = where
        self.seen = 0  # samples past the full scale so far
        self.first: tuple[float, float] | None = None  # the first one's (peak, time)

    def __call__(self, t_s: np.ndarray, gyro_rad_s: np.ndarray) -> None:
        from gaitedge.preprocess import MAX_ABS_VALUE

        g = np.asarray(gyro_rad_s, dtype=np.float64)
        limit = GYRO_FULL_SCALE_RAD_S
        if not len(g) or (float(g.max()) <= limit and float(g.min()) >= -limit):  # almost always
            return
        peak = np.abs(g).max(axis=1)
        over = np.flatnonzero((peak > limit) & (peak <= MAX_ABS_VALUE))
        if not len(over):
            return
        if self.first is None:
            self.first = (float(peak[over[0]]), float(np.asarray(t_s)[over[0]]))
        self.seen += len(over)
        if self.seen < GYRO_SCALE_EVIDENCE:
            return
        value, t = self.first
        raise ValueError(
            f"{self.where}: rotation rate {value:.4g} rad/s at t={t:.3f} s, past any "
            f"gyroscope's full scale (±{GYRO_FULL_SCALE_RAD_S:.1f} rad/s = 4000 deg/s); the data "
            "look like deg/s (use gyro_x_dps headers, or deg/s in the layout)"
        )


def check_gravity_scale(acc_m_s2: np.ndarray, where: str = "input") -> None:
    """Refuse acceleration whose magnitude cannot be m/s² on a person on Earth.

    A worn sensor sees gravity most of the time, so the median |acc| sits near 9.8 m/s². A
    median near 1 means the data are in g, near 1000 in mg: declared units that do not match
    the data would silently feed the model numbers ten times off.

    Raises:
        ValueError: naming the likely unit and how to declare it.
    """
    acc = np.asarray(acc_m_s2, dtype=np.float64)
    # Only finite samples are evidence: a corrupted one (NaN, inf) is the chain's to drop, and
    # one among a live device's first made the median NaN, read as "mg".
    acc = acc[np.isfinite(acc).all(axis=1)]
    if len(acc) < 50:
        return
    median = float(np.median(np.linalg.norm(acc, axis=1)))
    # g read as m/s² gives ~1 (0.5-2 while moving); mg gives ~1000. Real movement can pull the
    # median of a few seconds well below 9.8 (measured: 3.7 m/s² on 2.5 s of MobiFall's
    # continuous jumping), so only what no person produces for seconds is refused.
    if 2.5 <= median <= 40.0:
        return
    guess = "g (use acc_x_g headers)" if median < 2.5 else "mg (use acc_x_mg headers)"
    raise ValueError(
        f"{where}: median |acceleration| is {median:.3g} m/s², not about 9.8; "
        f"the data look like {guess}"
    )
