"""Sensor Logger (Kelvin Choi) exports, written as the app writes them.

What the writers copy from the app (vendor-formats.md §A1 and the wild exports
``sensorlogger_*`` in shared/data/wild-exports):

* one CSV per sensor, ``time,seconds_elapsed,z,y,x``, a final newline; ``Metadata.csv`` (a header
  and one row, no final newline) and a 0-byte ``Annotation.csv``;
* numbers as JavaScript prints them (the app is a JavaScript app): the shortest round-trip
  digits, fixed notation from 1e-7 to 1e21 (``0.000016058649634942412``), else ``1.6e-17``;
  ``time`` is the stamp in ms (a float64) times 1e6, so its 19 digits end in ``00``;
  ``seconds_elapsed`` is that ms stamp less the Start tap's, over 1000 (negative for samples
  buffered before the tap); Android and gyroscope values are float32 sensor values, iOS
  acceleration and gravity float64;
* Android: ``Accelerometer.csv`` without gravity and ``TotalAcceleration.csv`` with it, ~100 Hz,
  each on its own stamps, ``Gyroscope.csv`` at ~400 Hz on its own clock; iOS: one CoreMotion
  update at 100 Hz gives ``Accelerometer.csv`` (without gravity), ``Gravity.csv`` and
  ``Gyroscope.csv`` the same stamps, with acceleration and gravity negated (iOS sign) unless
  standardised; the raw ``AccelerometerUncalibrated.csv`` is in g on iOS, one row earlier;
* the Apple Watch's ``WristMotion.csv``: rotation rate, gravity and acceleration (g, iOS sign)
  and the attitude quaternion in one wide CSV.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, gravity_split, resample
from gaitedge.recording import Recording

# The Start tap of every rendering: 2022-09-26 13:32:56.750 UTC (15:32:56 in Europe/Amsterdam,
# the local time the app names the export by).
TAP_MS = int(datetime(2022, 9, 26, 13, 32, 56, 750000, tzinfo=UTC).timestamp() * 1000)
LOCAL_NAME = "2022-09-26_15-32-56"
# The recording's first sample is this long after the tap: negative, as the app writes events
# buffered from just before the tap (negative seconds_elapsed).
FIRST_SAMPLE_AFTER_TAP_S = -0.005
FIRST_SAMPLE_EPOCH_S = TAP_MS / 1e3 + FIRST_SAMPLE_AFTER_TAP_S
SENSOR_HEADER = "time,seconds_elapsed,z,y,x"
WATCH_HEADER = (
    "time,seconds_elapsed,rotationRateX,rotationRateY,rotationRateZ,gravityX,gravityY,gravityZ,"
    "accelerationX,accelerationY,accelerationZ,quaternionW,quaternionX,quaternionY,quaternionZ"
)
METADATA_HEADER = (
    "version,device name,recording epoch time,recording time,recording timezone,platform,"
    "appVersion,device id,sensors,sampleRateMs,standardisation"
)
# Android's rates (SAMPLING.md medians: accelerometer 70-207 Hz, gyroscope 425-499 Hz).
ANDROID_ACC_HZ = 100.0
ANDROID_GYRO_HZ = 400.0
IOS_HZ = 100.0


def js_number(x: float) -> str:
    """``x`` as JavaScript's ``Number.prototype.toString`` prints it."""
    if x == 0:
        return "0"
    if not np.isfinite(x):
        return "NaN" if np.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    text = repr(float(x))
    sign = "-" if text[0] == "-" else ""
    mantissa, _, exponent = text.lstrip("-").partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    n = len(whole) + int(exponent or 0) - (len(whole + frac) - len((whole + frac).lstrip("0")))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    e = n - 1
    head = digits if k == 1 else digits[0] + "." + digits[1:]
    return f"{sign}{head}e{'+' if e > 0 else '-'}{abs(e)}"


def _numbers(values: np.ndarray, *, float32: bool = False) -> list[str]:
    """A column as JavaScript prints it (Python's repr has the same shortest digits; only
    exponents and whole numbers are written differently)."""
    if float32:
        values = values.astype(np.float32).astype(np.float64)
    floats = values.tolist()
    return [
        s if "e" not in s and s[-2:] != ".0" else js_number(v)
        for s, v in zip(map(repr, floats), floats, strict=True)
    ]


def _epoch_ns_text(stamps_ms: np.ndarray) -> list[str]:
    """``time``: the ms stamp times 1e6 as JavaScript prints it, 19 digits ending in zeros
    (what :func:`js_number` gives for 1e18 <= x < 1e19, without its per-value cost)."""
    ns = stamps_ms * 1e6
    if not ((ns >= 1e18) & (ns < 1e19)).all():
        return _numbers(ns)
    return [r.partition("e")[0].replace(".", "").ljust(19, "0") for r in map(repr, ns.tolist())]


def _stamps_ms(t_rel_s: np.ndarray) -> np.ndarray:
    """Sample times (s since the recording's first sample) as the app's float64 ms stamps."""
    return np.float64(TAP_MS) + (FIRST_SAMPLE_AFTER_TAP_S + t_rel_s) * 1e3


def _sensor_csv(
    stamps_ms: np.ndarray, xyz: np.ndarray, *, float32: bool, header: str = SENSOR_HEADER
) -> str:
    """``time,seconds_elapsed`` then the columns of ``xyz`` ([N, C], in the header's order)."""
    cols = [_epoch_ns_text(stamps_ms), _numbers((stamps_ms - TAP_MS) / 1e3)]
    cols += [_numbers(xyz[:, c], float32=float32) for c in range(xyz.shape[1])]
    return header + "\n" + "".join(",".join(row) + "\n" for row in zip(*cols, strict=True))


def _zyx(xyz: np.ndarray) -> np.ndarray:
    return xyz[:, ::-1]  # the files write z, y, x


def _metadata(platform: str, *, standardised: bool, sensors: list[str], rate_ms: str) -> str:
    """Metadata.csv: a header and one row, no final newline."""
    row = [
        "3",
        "Pixel 6" if platform == "android" else "iPhone 13",
        str(TAP_MS),
        LOCAL_NAME,
        "Europe/Amsterdam",
        platform,
        "1.31.4",
        "0f1e2d3c-4b5a-4697-a8b9-cadbecfd0e1f",
        "|".join(sensors),
        "|".join(rate_ms for _ in sensors),
        "true" if standardised else "false",
    ]
    return METADATA_HEADER + "\n" + ",".join(row)


def _relative(rec: Recording) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t from 0, acceleration with gravity, rotation rate) of a canonical recording."""
    return rec.timestamp_s - rec.timestamp_s[0], rec.imu[:, :3], rec.imu[:, 3:]


def _write(files: dict[str, str], out: Path, *, as_zip: bool, folder: str | None) -> Path:
    """The files as a zip (flat, or holding ``folder``) or as a folder; the path a user gives."""
    out.mkdir(parents=True, exist_ok=True)
    if as_zip:
        path = out / f"{LOCAL_NAME}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for name, text in files.items():
                zf.writestr(f"{folder}/{name}" if folder else name, text)
        return path
    path = out / (folder or LOCAL_NAME)
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text, encoding="utf-8", newline="")
    return path


def _android_files(rec: Recording) -> dict[str, str]:
    t, acc, gyro = _relative(rec)
    linear, _ = gravity_split(t, acc)
    t_tot, total = resample(t, acc, ANDROID_ACC_HZ, jitter_s=1e-3, seed=1)
    t_lin, lin = resample(t, linear, ANDROID_ACC_HZ, jitter_s=1e-3, offset_s=0.004, seed=2)
    t_gyr, gyr = resample(t, gyro, ANDROID_GYRO_HZ, jitter_s=2e-4, offset_s=0.001, seed=3)
    return {
        "Accelerometer.csv": _sensor_csv(_stamps_ms(t_lin), _zyx(lin), float32=True),
        "Gyroscope.csv": _sensor_csv(_stamps_ms(t_gyr), _zyx(gyr), float32=True),
        "TotalAcceleration.csv": _sensor_csv(_stamps_ms(t_tot), _zyx(total), float32=True),
        "Annotation.csv": "",
        "Metadata.csv": _metadata(
            "android",
            standardised=False,
            sensors=["Accelerometer", "Gyroscope", "Annotation", "TotalAcceleration"],
            rate_ms="10",
        ),
    }


def _ios_motion(rec: Recording) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One CoreMotion update at 100 Hz: (stamps ms, linear, gravity, rotation rate), canonical
    sign and units."""
    t, acc, gyro = _relative(rec)
    linear, gravity = gravity_split(t, acc)
    t100, both = resample(t, np.hstack([linear, gravity, gyro]), IOS_HZ, jitter_s=2e-4, seed=4)
    return _stamps_ms(t100), both[:, :3], both[:, 3:6], both[:, 6:]


def _ios_files(rec: Recording, *, standardised: bool) -> dict[str, str]:
    ms, linear, gravity, gyro = _ios_motion(rec)
    sign = 1.0 if standardised else -1.0
    return {
        "Accelerometer.csv": _sensor_csv(ms, _zyx(sign * linear), float32=False),
        "Gravity.csv": _sensor_csv(ms, _zyx(sign * gravity), float32=False),
        "Gyroscope.csv": _sensor_csv(ms, _zyx(gyro), float32=True),
        "Annotation.csv": "",
        "Metadata.csv": _metadata(
            "ios",
            standardised=standardised,
            sensors=["Accelerometer", "Gravity", "Gyroscope", "Annotation"],
            rate_ms="10",
        ),
    }


def android_zip(rec: Recording, out: Path) -> Path:
    """Android (Pixel 6 style): a flat zip, TotalAcceleration.csv, gyroscope at 400 Hz."""
    return _write(_android_files(rec), out, as_zip=True, folder=None)


def android_folder(rec: Recording, out: Path) -> Path:
    """The Android export unzipped into its folder."""
    return _write(_android_files(rec), out, as_zip=False, folder=LOCAL_NAME)


def ios_zip(rec: Recording, out: Path) -> Path:
    """iOS, default settings (iOS sign, standardisation false): a zip holding the folder."""
    return _write(_ios_files(rec, standardised=False), out, as_zip=True, folder=LOCAL_NAME)


def ios_standardised_folder(rec: Recording, out: Path) -> Path:
    """iOS with "Standardise Units & Frames" on (Android's sign), unzipped into a folder."""
    return _write(_ios_files(rec, standardised=True), out, as_zip=False, folder=LOCAL_NAME)


def ios_uncalibrated_zip(rec: Recording, out: Path) -> Path:
    """iOS 1.10 without Gravity (``sensorlogger_ios-unlabelled-zip-tue``): a flat zip whose
    only acceleration with gravity is AccelerometerUncalibrated.csv, in g, one row earlier;
    the old Metadata.csv (no standardisation column)."""
    ms, linear, gravity, gyro = _ios_motion(rec)
    raw_ms = np.concatenate([[ms[0] - 10.0], ms])
    raw = -np.vstack([linear[:1] + gravity[:1], linear + gravity]) / G
    metadata = (
        "version,device name,recording time,platform,appVersion,device id,sensors,sampleRateMs\n"
        f"3,iPhone 12 mini,{LOCAL_NAME},ios,1.10.4,9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d,"
        "Accelerometer|Gyroscope|Annotation|AccelerometerUncalibrated,10|10||10"
    )
    files = {
        "Gyroscope.csv": _sensor_csv(ms, _zyx(gyro), float32=True),
        "AccelerometerUncalibrated.csv": _sensor_csv(raw_ms, _zyx(raw), float32=True),
        "Accelerometer.csv": _sensor_csv(ms, _zyx(-linear), float32=False),
        "Metadata.csv": metadata,
        "Annotation.csv": "",
    }
    return _write(files, out, as_zip=True, folder=None)


def ios_json(rec: Recording, out: Path) -> Path:
    """The JSON export: one array, records grouped by sensor and sorted by time, every value a
    string (iOS, default sign; no metadata in it)."""
    ms, linear, gravity, gyro = _ios_motion(rec)
    time, elapsed = _epoch_ns_text(ms), _numbers((ms - TAP_MS) / 1e3)
    records = []
    for sensor, xyz, f32 in (
        ("Accelerometer", -linear, False),
        ("Gravity", -gravity, False),
        ("Gyroscope", gyro, True),
    ):
        z, y, x = (_numbers(xyz[:, c], float32=f32) for c in (2, 1, 0))
        records += [
            {"sensor": sensor, "time": a, "seconds_elapsed": b, "z": c, "y": d, "x": e}
            for a, b, c, d, e in zip(time, elapsed, z, y, x, strict=True)
        ]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{LOCAL_NAME}.json"
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return path


def watch_wristmotion(rec: Recording, out: Path) -> Path:
    """Apple Watch ``WristMotion.csv`` (one file): gravity and acceleration in g, iOS sign."""
    ms, linear, gravity, gyro = _ios_motion(rec)
    up = gravity / np.linalg.norm(gravity, axis=1, keepdims=True)
    # The attitude as the tilt taking z to "up" (the heading is not known from acc + gyro).
    quat = np.stack([1.0 + up[:, 2] + 1e-12, -up[:, 1], up[:, 0], np.zeros(len(up))], axis=1)
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    values = np.hstack([gyro, -gravity / G, -linear / G])  # [N, 9]
    cols = [_epoch_ns_text(ms), _numbers((ms - TAP_MS) / 1e3)]
    cols += [_numbers(values[:, c], float32=True) for c in range(9)]
    cols += [_numbers(quat[:, c]) for c in range(4)]
    text = WATCH_HEADER + "\n" + "".join(",".join(r) + "\n" for r in zip(*cols, strict=True))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "WristMotion.csv"
    path.write_text(text, encoding="utf-8", newline="")
    return path


VARIANTS = {
    "android-zip": android_zip,
    "android-folder": android_folder,
    "ios-zip": ios_zip,
    "ios-standardised-folder": ios_standardised_folder,
    "ios-uncalibrated-zip": ios_uncalibrated_zip,
    "ios-json": ios_json,
    "watch-wristmotion": watch_wristmotion,
}
