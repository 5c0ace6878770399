"""SensorLog (iOS) as it logs a recording: one wide CSV, one row per 100 Hz logging tick
(vendor-formats.md §A5, the wild export ``sensorlog_ios-steady-unitless``).

* ``units``: names with units in the documented order (``loggingTime(txt)``,
  ``loggingSample(N)``, ``identifierForVendor(txt)``, ``accelerometerTimestamp_sinceReboot(s)``,
  ``accelerometerAccelerationX(G)``, ..., ``motionAttitudeReferenceFrame(txt)``, ...,
  ``motionGravityX(G)``, ..., ``label(N)``); ``loggingTime`` is a local date string.
* ``unitless``: the older 37-column header of the wild set, ``loggingTime`` as epoch seconds
  (6 decimals), magnetometer columns included.

Every sensor has its own CoreMotion uptime stamp, a few ms from the tick (motion first, then
gyroscope, then accelerometer, as in the wild set). Acceleration and gravity are in G with
CoreMotion's sign (-1 G on z lying flat, screen up); the raw accelerometer holds gravity, Device
Motion splits it into user acceleration + gravity (``_common.gravity_split``); rotation rates in
rad/s (same sign as Android). Numbers as Swift prints a Double (shortest round trip).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, gravity_split, resample
from gaitedge.recording import Recording

RATE_HZ = 100.0
START_EPOCH_S = 1616158295.962107  # the wild set's first loggingTime
UPTIME_S = 13422.171517375  # CoreMotion uptime at the first tick (the wild set's motion stamp)
# Each sensor's stamp after the logging tick, s (the wild set: motion, gyro, acc within 8 ms).
_LAG_S = {"motion": 0.0, "gyro": 0.003, "acc": 0.008}
VENDOR_ID = "6F9C2C5E-4F1B-4E0A-9D51-2B7A8C0D1E3F"


def _num(values: np.ndarray) -> list[str]:
    return [repr(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def _const(value: float, n: int) -> list[str]:
    return [repr(float(value))] * n


def _signals(rec: Recording) -> dict[str, list[str]]:
    """Every column SensorLog writes, by name without unit, as text."""
    t0 = rec.timestamp_s[0]
    tick, _ = resample(rec.timestamp_s, rec.imu[:, :1], RATE_HZ)
    tick = tick[tick + max(_LAG_S.values()) <= rec.timestamp_s[-1]]
    n = len(tick)

    def at(lag: float, cols: slice) -> np.ndarray:
        return np.stack(
            [np.interp(tick + lag, rec.timestamp_s, rec.imu[:, c]) for c in range(6)[cols]], 1
        )

    acc_ios_g = -at(_LAG_S["acc"], slice(0, 3)) / G
    motion_acc = at(_LAG_S["motion"], slice(0, 3))
    linear, gravity = gravity_split(tick, motion_acc)
    out: dict[str, list[str]] = {
        "loggingSample": [str(i + 1) for i in range(n)],
        "accelerometerTimestamp_sinceReboot": _num(UPTIME_S + tick - t0 + _LAG_S["acc"]),
        "gyroTimestamp_sinceReboot": _num(UPTIME_S + tick - t0 + _LAG_S["gyro"]),
        "motionTimestamp_sinceReboot": _num(UPTIME_S + tick - t0),
        "motionYaw": _const(0.0, n),
        "motionRoll": _const(0.0, n),
        "motionPitch": _const(0.0, n),
        "motionAttitudeReferenceFrame": ["XArbitraryCorrectedZVertical"] * n,
        "motionHeading": ["-1"] * n,
        "motionMagneticFieldCalibrationAccuracy": ["2"] * n,
        "label": ["0"] * n,
        "identifierForVendor": [VENDOR_ID] * n,
    }
    gyro = at(_LAG_S["gyro"], slice(3, 6))
    rotation = at(_LAG_S["motion"], slice(3, 6))
    for i, a in enumerate("XYZ"):
        out[f"accelerometerAcceleration{a}"] = _num(acc_ios_g[:, i])
        out[f"gyroRotation{a}"] = _num(gyro[:, i])
        out[f"motionRotationRate{a}"] = _num(rotation[:, i])
        out[f"motionUserAcceleration{a}"] = _num(-linear[:, i] / G)
        out[f"motionGravity{a}"] = _num(-gravity[:, i] / G)
        out[f"motionQuaternion{a}"] = _const(0.0, n)
        out[f"magnetometer{a}"] = _const((-23.6, 171.7, -235.8)[i], n)
        out[f"motionMagneticField{a}"] = _const((-24.8, 33.1, -19.4)[i], n)
    out["motionQuaternionW"] = _const(1.0, n)
    out["magnetometerTimestamp_sinceReboot"] = _num(UPTIME_S + tick - t0 - 0.05)
    epoch = START_EPOCH_S + tick - t0 + 0.01  # the row is logged after its samples
    out["loggingTime"] = [f"{v:.6f}" for v in epoch.tolist()]
    tz = timezone(timedelta(hours=1))
    out["loggingTime(txt)"] = [
        datetime.fromtimestamp(v, tz).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " +0100"
        for v in epoch.tolist()
    ]
    return out


def _write(path: Path, header: list[str], columns: list[list[str]]) -> Path:
    lines = [",".join(header)] + [",".join(row) for row in zip(*columns, strict=True)]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


_UNITS = [
    ("loggingTime(txt)", "loggingTime(txt)"),
    ("loggingSample(N)", "loggingSample"),
    ("identifierForVendor(txt)", "identifierForVendor"),
    ("accelerometerTimestamp_sinceReboot(s)", "accelerometerTimestamp_sinceReboot"),
    *((f"accelerometerAcceleration{a}(G)", f"accelerometerAcceleration{a}") for a in "XYZ"),
    ("gyroTimestamp_sinceReboot(s)", "gyroTimestamp_sinceReboot"),
    *((f"gyroRotation{a}(rad/s)", f"gyroRotation{a}") for a in "XYZ"),
    ("motionTimestamp_sinceReboot(s)", "motionTimestamp_sinceReboot"),
    ("motionYaw(rad)", "motionYaw"),
    ("motionRoll(rad)", "motionRoll"),
    ("motionPitch(rad)", "motionPitch"),
    *((f"motionRotationRate{a}(rad/s)", f"motionRotationRate{a}") for a in "XYZ"),
    *((f"motionUserAcceleration{a}(G)", f"motionUserAcceleration{a}") for a in "XYZ"),
    ("motionAttitudeReferenceFrame(txt)", "motionAttitudeReferenceFrame"),
    *((f"motionQuaternion{a}(R)", f"motionQuaternion{a}") for a in "XYZW"),
    *((f"motionGravity{a}(G)", f"motionGravity{a}") for a in "XYZ"),
    ("label(N)", "label"),
]

# The wild set's header line, verbatim.
UNITLESS_LINE = (
    "loggingTime,loggingSample,accelerometerTimestamp_sinceReboot,accelerometerAccelerationX,"
    "accelerometerAccelerationY,accelerometerAccelerationZ,gyroTimestamp_sinceReboot,"
    "gyroRotationX,gyroRotationY,gyroRotationZ,magnetometerTimestamp_sinceReboot,magnetometerX,"
    "magnetometerY,magnetometerZ,motionTimestamp_sinceReboot,motionYaw,motionRoll,motionPitch,"
    "motionRotationRateX,motionRotationRateY,motionRotationRateZ,motionUserAccelerationX,"
    "motionUserAccelerationY,motionUserAccelerationZ,motionAttitudeReferenceFrame,"
    "motionQuaternionX,motionQuaternionY,motionQuaternionZ,motionQuaternionW,motionGravityX,"
    "motionGravityY,motionGravityZ,motionMagneticFieldX,motionMagneticFieldY,"
    "motionMagneticFieldZ,motionHeading,motionMagneticFieldCalibrationAccuracy"
)
UNITLESS_HEADER = UNITLESS_LINE.split(",")


def render_units(rec: Recording, out_dir: Path) -> Path:
    cols = _signals(rec)
    return _write(
        out_dir / "sensorlog-units.csv", [h for h, _ in _UNITS], [cols[k] for _, k in _UNITS]
    )


def render_unitless(rec: Recording, out_dir: Path) -> Path:
    cols = _signals(rec)
    cols["motionAttitudeReferenceFrame"] = ["2"] * len(cols["label"])  # a number in this version
    return _write(
        out_dir / "sensorlog-unitless.csv", UNITLESS_HEADER, [cols[k] for k in UNITLESS_HEADER]
    )


VARIANTS = {"units": render_units, "unitless": render_unitless}
