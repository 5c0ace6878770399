"""A Shimmer3 recording as Consensys exports it to CSV (vendor-formats.md §B5, the wild export
``shimmer_consensys-fixture``).

``consensys``: ``"sep=;"``, the fixture's 21 ``Shimmer_40AC_..._CAL`` columns, the units row, a
``;`` after every cell, CRLF, numbers as Java's ``Double.toString`` prints them (epoch ms as
``1.595933810034E12``). 51.2 Hz (the Shimmer3's usual rate). Stamps are whole ms; now and then
two samples arrive together and share the second one's stamp (the fixture: 4 in 90 rows).

Both accelerometers in m/s² with gravity and Android's sign: the low-noise one (``Accel_LN``)
limited to its ±2 g range, the wide-range one (``Accel_WR``) to ±16 g; the gyroscope in deg/s.
The other channels (battery, GSR, magnetometer, pressure) hold plausible constants.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, resample
from gaitedge.recording import Recording

RATE_HZ = 51.2
START_EPOCH_S = 1595933810.034  # the fixture's first stamp
DEVICE = "Shimmer_40AC"
REPEAT_EVERY = 23  # every 23rd sample shares its stamp with the one before
_COLUMNS = [  # (channel, unit, constant or None for a signal)
    ("Timestamp_Unix_CAL", "ms", None),
    ("Accel_LN_X_CAL", "m/(s^2)", None),
    ("Accel_LN_Y_CAL", "m/(s^2)", None),
    ("Accel_LN_Z_CAL", "m/(s^2)", None),
    ("Accel_WR_X_CAL", "m/(s^2)", None),
    ("Accel_WR_Y_CAL", "m/(s^2)", None),
    ("Accel_WR_Z_CAL", "m/(s^2)", None),
    ("Battery_CAL", "mV", 4139.194139194139),
    ("Ext_Exp_A15_CAL", "mV", 1684.9816849816848),
    ("GSR_Range_CAL", "no_units", 2.0),
    ("GSR_Skin_Conductance_CAL", "uS", 2.493040293040293),
    ("GSR_Skin_Resistance_CAL", "kOhms", 401.1166617690273),
    ("Gyro_X_CAL", "deg/s", None),
    ("Gyro_Y_CAL", "deg/s", None),
    ("Gyro_Z_CAL", "deg/s", None),
    ("Int_Exp_A12_CAL", "mV", 1680.5860805860805),
    ("Mag_X_CAL", "local_flux", -0.11244377811094453),
    ("Mag_Y_CAL", "local_flux", -0.9160419790104948),
    ("Mag_Z_CAL", "local_flux", -0.047976011994003),
    ("Pressure_BMP280_CAL", "kPa", 100.43537920858897),
    ("Temperature_BMP280_CAL", "Degrees Celsius", 33.365877509029815),
]


def java_double(x: float) -> str:
    """``x`` as Java's ``Double.toString``: the shortest round trip, in ``1.5E12`` style outside
    [1e-3, 1e7)."""
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        return repr(float(x))
    mantissa, exponent = np.format_float_scientific(x, unique=True, trim="0").split("e")
    return f"{mantissa}E{int(exponent)}"


def render_consensys(rec: Recording, out_dir: Path) -> Path:
    t, x = resample(rec.timestamp_s, rec.imu, RATE_HZ)
    stamp_ms = np.round((START_EPOCH_S + t - rec.timestamp_s[0]) * 1000.0)
    # Two samples delivered together, both stamped on arrival (after the second): the
    # fixture's steps ... 46, 0 ... ms.
    later = np.flatnonzero(np.arange(len(stamp_ms)) % REPEAT_EVERY == REPEAT_EVERY - 1)
    stamp_ms[later - 1] = stamp_ms[later]
    signals = {
        "Timestamp_Unix_CAL": stamp_ms,
        **{f"Accel_LN_{a}_CAL": np.clip(x[:, i], -2 * G, 2 * G) for i, a in enumerate("XYZ")},
        **{f"Accel_WR_{a}_CAL": np.clip(x[:, i], -16 * G, 16 * G) for i, a in enumerate("XYZ")},
        **{f"Gyro_{a}_CAL": np.degrees(x[:, 3 + i]) for i, a in enumerate("XYZ")},
    }
    cells = [
        [java_double(v) for v in signals[name].tolist()]
        if const is None
        else [java_double(const)] * len(t)
        for name, _, const in _COLUMNS
    ]
    lines = [
        '"sep=;"',
        "".join(f"{DEVICE}_{name};" for name, _, _ in _COLUMNS),
        "".join(f"{unit};" for _, unit, _ in _COLUMNS),
        *("".join(f"{c};" for c in row) for row in zip(*cells, strict=True)),
    ]
    path = out_dir / "shimmer-consensys.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


VARIANTS = {"consensys": render_consensys}
