"""Axivity AX6 / AX3: a recording written as the device writes its ``.cwa`` file.

The AX6 samples on its own clock at 100 Hz (±16 g, 2048 counts per g; gyroscope ±2000 dps) and
fills 512-byte sectors of 40 six-axis int16 samples (gyroscope first), each stamped as the
firmware does: the whole second of the instant the sector filled (the sample after its last),
the 15-bit fraction of that second, and a ``timestampOffset`` already shifted by the fraction
for readers that ignore it (the layout: openmovement ``cwa.h``; shared/reference
vendor-formats.md §B2). Only whole sectors are written: a device stopping mid-sector keeps
the samples of its last full one. The AX3 (:func:`render_ax3`) packs 120 three-axis samples per
sector into 10-bit DWORDs with an exponent and records no gyroscope: the reader refuses it, so
it is kept out of :data:`VARIANTS` (which ``bench/formats.py`` replays).

The recording's first sample is the device's :data:`START_LOCAL` (device-local time, which a
CWA file carries without a time zone). The file is named as on the device's own drive.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from firmware_bridge.exports._common import G, resample
from gaitedge.recording import Recording

START_LOCAL = dt.datetime(2024, 3, 4, 9, 15, 0)  # device-local, whole second
FILE_NAME = "CWA-DATA.CWA"
SECTOR_BYTES = 512
HEADER_BYTES = 1024
RATE_HZ = 100
RATE_CODE_AX6 = 0x0A  # 3200 / 2^(15-10) = 100 Hz, range 16 >> 0 = ±16 g
RATE_CODE_AX3 = 0x4A  # 100 Hz, range 16 >> 1 = ±8 g
AX6_COUNTS_PER_G = 2048  # light bits 15..13 = 3: 1/2^(8+3) g per count
AX6_GYRO_DPS = 2000  # sensorConfig low nibble 2 and light bits 12..10 = 2: 8000/2^2
AX3_COUNTS_PER_G = 256
AX6_PER_SECTOR = 40  # 480 bytes / (6 axes x 2 bytes)
AX3_PER_SECTOR = 120  # 480 bytes / 4-byte DWORD
DEVICE_ID = 6012345
SESSION_ID = 1
FIRMWARE = 53
LIGHT_RAW = 75  # a dim room, raw 10-bit
TEMPERATURE_RAW = 263
BATTERY_RAW = 190


def _packed_time(t: dt.datetime) -> int:
    """A CWA packed timestamp: YYYYYYMM MMDDDDDh hhhhmmmm mmssssss (years since 2000)."""
    return (
        (t.year - 2000) << 26
        | t.month << 22
        | t.day << 17
        | t.hour << 12
        | t.minute << 6
        | t.second
    )


def _header(hardware: int, sensor_config: int, rate_code: int) -> bytes:
    """The 1024-byte ``MD`` block as an AX device writes it (unused fields 0xFF, the metadata
    area spaces)."""
    h = bytearray(b"\xff" * HEADER_BYTES)
    h[0:2] = b"MD"
    h[2:4] = (HEADER_BYTES - 4).to_bytes(2, "little")
    h[4] = hardware
    h[5:7] = (DEVICE_ID & 0xFFFF).to_bytes(2, "little")
    h[7:11] = SESSION_ID.to_bytes(4, "little")
    h[11:13] = (DEVICE_ID >> 16).to_bytes(2, "little")
    h[13:17] = (0).to_bytes(4, "little")  # logging start: always
    h[17:21] = (0xFFFFFFFF).to_bytes(4, "little")  # logging end: never
    h[21:25] = (0).to_bytes(4, "little")  # capacity (deprecated)
    h[26] = 0x03  # flash LED
    h[35] = sensor_config
    h[36] = rate_code
    h[37:41] = _packed_time(START_LOCAL - dt.timedelta(minutes=5)).to_bytes(4, "little")
    h[41] = FIRMWARE
    h[64:512] = b" " * 448
    return bytes(h)


def _stamps(
    n_sectors: int, per_sector: int, first: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sector: the packed whole second, the fraction field and ``timestampOffset``.

    The firmware stamps the instant the sector filled: sample ``per_sector`` (the one after the
    last) at whole second W plus a fraction f. Readers that ignore the fraction take the first
    sample at ``W - offset / rate``; the stored offset is ``per_sector - floor(f16 * rate / 2^16)``
    so both readings agree to a sample (exactly, on this emulated 100 Hz clock: the fraction is
    rounded up to 1/32768 s so the floor lands on the right sample)."""
    ticks = (first + np.arange(n_sectors) + 1) * per_sector  # [S] samples since START
    whole, hundredths = np.divmod(ticks, RATE_HZ)
    frac15 = (hundredths * 32768 + RATE_HZ - 1) // RATE_HZ  # ceil(f * 32768)
    offset = per_sector - ((frac15 * 2 * RATE_HZ) >> 16)
    packed = np.array(
        [_packed_time(START_LOCAL + dt.timedelta(seconds=int(w))) for w in whole], dtype=np.uint32
    )
    return packed, (0x8000 | frac15).astype(np.uint16), offset.astype(np.int16)


def _sectors(
    payload: np.ndarray, per_sector: int, rate_code: int, axes_bps: int, light: int, first: int = 0
) -> bytes:
    """Data sectors around [S, 480] payload bytes, checksummed; ``first``: the index of the
    first one in the file (a long recording written in pieces)."""
    from gaitedge.formats.axivity import SECTOR_DTYPE

    n = len(payload)
    packed, fraction, offset = _stamps(n, per_sector, first)
    sec = np.zeros(n, dtype=SECTOR_DTYPE)
    sec["magic"], sec["length"] = b"AX", 508
    sec["fraction"], sec["session"] = fraction, SESSION_ID
    sec["sequence"] = first + np.arange(n)
    sec["timestamp"], sec["light"], sec["temperature"] = packed, light, TEMPERATURE_RAW
    sec["battery"], sec["rate"], sec["axes_bps"] = BATTERY_RAW, rate_code, axes_bps
    sec["offset"], sec["count"] = offset, per_sector
    sec["payload"] = np.ascontiguousarray(payload).view("V480").reshape(n)
    words = sec.view("<u2").reshape(n, SECTOR_BYTES // 2)
    total = words[:, :-1].sum(axis=1, dtype=np.uint64) & 0xFFFF
    sec["checksum"] = ((0x10000 - total) & 0xFFFF).astype(np.uint16)
    return sec.tobytes()


def _device_samples(rec: Recording, per_sector: int) -> np.ndarray:
    """[S * per_sector, 6] the recording on the device's 100 Hz clock, whole sectors only."""
    _, x = resample(rec.timestamp_s, rec.imu, RATE_HZ)
    n = len(x) // per_sector * per_sector
    return x[:n]


def _int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), -32768, 32767).astype("<i2")


def render_ax6(rec: Recording, out_dir: Path) -> Path:
    """An AX6 ``.cwa``: accelerometer + gyroscope, 100 Hz, ±16 g, ±2000 dps."""
    path = out_dir / FILE_NAME
    path.write_bytes(ax6_header() + ax6_sectors(_device_samples(rec, AX6_PER_SECTOR)))
    return path


def ax6_header() -> bytes:
    """The AX6's header block (accelerometer + gyroscope, 100 Hz, ±16 g, ±2000 dps)."""
    return _header(0x64, 0x02, RATE_CODE_AX6)


def ax6_sectors(x: np.ndarray, first: int = 0) -> bytes:
    """AX6 data sectors of [S * 40, 6] samples on the device's 100 Hz clock (m/s², rad/s), the
    first of them sector ``first`` of the file: a long recording is written in pieces."""
    gyro = _int16(np.rad2deg(x[:, 3:]) * 32768.0 / AX6_GYRO_DPS)
    acc = _int16(x[:, :3] / G * AX6_COUNTS_PER_G)
    samples = np.concatenate([gyro, acc], axis=1)  # [N, 6]: gyroscope first
    payload = samples.reshape(-1, AX6_PER_SECTOR * 6).view(np.uint8)  # [S, 480]
    light = 3 << 13 | 2 << 10 | LIGHT_RAW
    return _sectors(payload, AX6_PER_SECTOR, RATE_CODE_AX6, 0x62, light, first)


def _pack_dwords(counts: np.ndarray) -> np.ndarray:
    """[N, 3] int counts -> [N] AX3 DWORDs: 10 bits per axis, the smallest exponent that fits."""
    counts = counts.astype(np.int64)
    exp = np.zeros(len(counts), dtype=np.int64)
    for e in (1, 2, 3):
        too_big = (np.abs(counts >> exp[:, None]) > 511).any(axis=1) | (
            (counts >> exp[:, None]) < -512
        ).any(axis=1)
        exp[too_big] = e
    v = np.clip(counts >> exp[:, None], -512, 511) & 0x3FF
    return (exp << 30 | v[:, 2] << 20 | v[:, 1] << 10 | v[:, 0]).astype("<u4")


def render_ax3(rec: Recording, out_dir: Path) -> Path:
    """An AX3 ``.cwa``: accelerometer only, packed, 100 Hz, ±8 g (no gyroscope: refused)."""
    x = _device_samples(rec, AX3_PER_SECTOR)
    dwords = _pack_dwords(np.rint(x[:, :3] / G * AX3_COUNTS_PER_G))
    payload = dwords.reshape(-1, AX3_PER_SECTOR).view(np.uint8)  # [S, 480]
    data = _sectors(payload, AX3_PER_SECTOR, RATE_CODE_AX3, 0x30, LIGHT_RAW)
    path = out_dir / FILE_NAME
    path.write_bytes(_header(0x17, 0x00, RATE_CODE_AX3) + data)
    return path


VARIANTS = {"ax6": render_ax6}
# What the reader refuses (no gyroscope): for the refusal tests, not replayed by the bench.
ACCEL_ONLY_VARIANTS = {"ax3": render_ax3}
