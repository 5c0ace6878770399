"""Axivity AX6 / AX3 ``.cwa`` files (as OmGui downloads them from the device), read by our own
vectorised numpy decoder, one block of sectors at a time.

The layout (openmovement ``cwa.h`` / ``cwa_load.py``, scikit-digital-health ``read_axivity.f95``;
shared/reference vendor-formats.md §B2), each part honoured here:

* A header block (``MD``, its length at @2: 1020 + 4 = 1024 bytes), then 512-byte sectors. The
  header says the device (@4 hardware type: 0x64 AX6, 0x17/0x00/0xFF AX3; @5 and @11 the lower
  and upper words of the id), the session (@7), the sensors (@35 ``sensorConfig``: 0x00/0xFF
  accelerometer only, otherwise the low nibble is the gyroscope range 8000/2^n dps) and the rate
  code (@36).
* A data sector (``AX``, length 508) carries a packed whole-second timestamp (@14: years since
  2000, month, day, hours, minutes, seconds; the device's **local** time, no time zone), the
  index of the sample that timestamp belongs to (@26 ``timestampOffset``), the rate code (@24:
  3200 / 2^(15 - n) Hz, range 16 >> (code >> 6) g), the axes and packing (@25 ``numAxesBPS``:
  3, 6 or 9 axes in the top nibble; 2 = int16 per axis, 0 = AX3's packed 10-bit DWORDs with a
  2-bit exponent), the sample count (@28), the scales (@18 top bits: 1/2^(8+n) g per count,
  then 8000/2^n dps full scale) and a checksum (the 256 16-bit words sum to zero). Six axes are
  gyroscope then accelerometer.
* Sample times: each sector's first sample lies ``timestampOffset`` samples before its whole
  second; samples are spread evenly from the end of the previous sector (when it ends less
  than 1 s before) to this sector's end, exactly as skdh's ``ReadCwa`` does (the AX6's
  15-bit fraction of a second is not needed: its ``timestampOffset`` already accounts for it to
  within a sample, and matching skdh pins the decoder to an outside reference).
* Sign: the AX accelerometers report specific force, like Android (+1 g on the axis pointing
  up at rest); the gyroscope turns positive clockwise looking out along an axis (right-handed,
  as Android). Nothing is flipped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

import numpy as np

from gaitedge.formats.base import Container, Export, FormatError, SensorKind, pick_one
from gaitedge.formats.join import make_series, no_gyroscope
from gaitedge.recording import Recording

NAME = "axivity"
# The stamps are the device's local wall clock (CWA carries no time zone): a summary's days
# and hours are read from them as they are.
LOCAL_CLOCK = True
TITLE = "Axivity AX6 / AX3 .cwa (the binary file OmGui downloads from the device)"
NEEDS = (
    "one .cwa recording: an AX6 with its gyroscope on, or an AX3 (no gyroscope: the "
    "accelerometer-only model runs it)"
)
HINTS = {
    SensorKind.GYRO: "an AX3 (or an AX6 set to accelerometer only) records no gyroscope: record "
    "with an AX6 configured for accelerometer + gyroscope in OmGui",
}

SECTOR_BYTES = 512
PAYLOAD_BYTES = 480  # @30..@510: the samples
HEADER_MAGIC = b"MD"
DATA_MAGIC = b"AX"
DATA_PACKET_LENGTH = 508  # a data sector's length field: 512 less the 4-byte magic + length
MIN_HEADER_PACKET_LENGTH = 508
USUAL_HEADER_PACKET_LENGTH = 1020  # 1024 bytes with the magic and length
HEADER_PROBE_BYTES = 4096 + 2  # detection looks for the first "AX" sector within this
BLOCK_SECTORS = 4096  # sectors decoded at a time (2 MiB read, ~160k samples at 40/sector)
CHAIN_GAP_S = 1.0  # a sector starting less than this after the previous one ends continues it
DEVICE_EPOCH_YEAR = 2000
_DEVICE_TYPES = {0x00: "AX3", 0xFF: "AX3", 0x17: "AX3", 0x64: "AX6"}

# One data sector, field by field (offsets as in cwa.h).
SECTOR_DTYPE = np.dtype(
    [
        ("magic", "S2"),  # @0 "AX"
        ("length", "<u2"),  # @2 508
        ("fraction", "<u2"),  # @4 top bit set: 15-bit fraction of a second (AX6)
        ("session", "<u4"),  # @6
        ("sequence", "<u4"),  # @10
        ("timestamp", "<u4"),  # @14 packed YYYYYYMM MMDDDDDh hhhhmmmm mmssssss
        ("light", "<u2"),  # @18 AAAGGGLLLLLLLLLL: accel scale, gyro range, light
        ("temperature", "<u2"),  # @20
        ("events", "u1"),  # @22
        ("battery", "u1"),  # @23
        ("rate", "u1"),  # @24 rate code
        ("axes_bps", "u1"),  # @25 axes << 4 | packing
        ("offset", "<i2"),  # @26 timestampOffset
        ("count", "<u2"),  # @28 samples in this sector
        ("payload", "V480"),  # @30
        ("checksum", "<u2"),  # @510
    ]
)
assert SECTOR_DTYPE.itemsize == SECTOR_BYTES


@dataclass(frozen=True)
class CwaHeader:
    """What the 1024-byte header says."""

    device_type: str
    device_id: int
    session_id: int
    sensor_config: int
    rate_hz: float
    accel_range_g: int
    gyro_range_dps: float | None  # None: accelerometer only
    header_bytes: int


@dataclass
class CwaStats:
    """What the sector blocks held, for the rules ``inspect`` prints."""

    sectors: int = 0
    samples: int = 0
    bad_checksum: int = 0
    bad_checksum_samples: int = 0
    not_data: int = 0  # sectors that are not "AX" data (erased, other types)
    bad_time: int = 0
    trailing_bytes: int = 0
    axes: int = 0
    packed: bool = False
    rate_code: int = -1
    counts_per_g: set[int] = field(default_factory=set)
    gyro_dps: set[float] = field(default_factory=set)


@dataclass(frozen=True)
class Block:
    """The samples of a run of sectors: [N] device-local seconds, [N, 3] g, [N, 3] deg/s."""

    t_s: np.ndarray
    acc_g: np.ndarray
    gyro_dps: np.ndarray | None


def parse_header(data: bytes, where: str) -> CwaHeader:
    """The header block (the first 1024 bytes).

    Raises:
        FormatError: not an ``MD`` header.
    """
    if len(data) < 64 or data[:2] != HEADER_MAGIC:
        raise FormatError(f"{where}: not a CWA file (no 'MD' header block)")
    length = int.from_bytes(data[2:4], "little")
    if length < MIN_HEADER_PACKET_LENGTH:
        raise FormatError(f"{where}: CWA header length {length} is too short")
    hardware = data[4]
    device_id = int.from_bytes(data[5:7], "little")
    upper = int.from_bytes(data[11:13], "little")
    if upper != 0xFFFF:
        device_id |= upper << 16
    config, rate = data[35], data[36]
    gyro = None if config in (0x00, 0xFF) else 8000.0 / 2 ** (config & 0x0F)
    return CwaHeader(
        device_type=_DEVICE_TYPES.get(hardware, f"0x{hardware:02x}"),
        device_id=device_id,
        session_id=int.from_bytes(data[7:11], "little"),
        sensor_config=config,
        rate_hz=_rate_hz(rate),
        accel_range_g=16 >> (rate >> 6),
        gyro_range_dps=gyro,
        header_bytes=-(-(length + 4) // SECTOR_BYTES) * SECTOR_BYTES,
    )


def _rate_hz(code: int | np.ndarray) -> float | np.ndarray:
    # in int64: a uint8 code (a sector's) shifted 15 places overflowed to 0 (an erased sector's
    # code 0: divide-by-zero warnings on stderr)
    return 3200.0 / np.left_shift(1, 15 - (np.asarray(code, np.int64) & 0x0F))


def unpack_timestamps(packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed CWA timestamps as seconds since 1970-01-01 on the device's local clock, and a mask
    of the valid ones (month 1-12, day 1-31, hours < 24, minutes and seconds < 60)."""
    packed = packed.astype(np.int64)
    year = ((packed >> 26) & 0x3F) + DEVICE_EPOCH_YEAR
    month = (packed >> 22) & 0x0F
    day = (packed >> 17) & 0x1F
    hour, minute, sec = (packed >> 12) & 0x1F, (packed >> 6) & 0x3F, packed & 0x3F
    ok = (month >= 1) & (month <= 12) & (day >= 1) & (hour < 24) & (minute < 60) & (sec < 60)
    # Days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return (days * 86400 + hour * 3600 + minute * 60 + sec).astype(np.float64), ok


def _checksum_ok(raw: np.ndarray) -> np.ndarray:
    """[S] True where a sector's 256 little-endian words sum to zero (mod 2^16)."""
    words = raw.view("<u2").reshape(len(raw), SECTOR_BYTES // 2)
    return (words.sum(axis=1, dtype=np.uint64) & 0xFFFF) == 0


def _unpack_dwords(payload: np.ndarray) -> np.ndarray:
    """AX3 packed samples: [S, 120] uint32 ``eezzzzzz zzzzyyyy yyyyyyxx xxxxxxxx`` -> [S, 120, 3]
    int32 (10-bit signed per axis, shifted left by the 2-bit exponent)."""
    v = payload.view("<u4").reshape(len(payload), PAYLOAD_BYTES // 4).astype(np.int64)
    exp = v >> 30
    axes = [((((v >> s) & 0x3FF) ^ 0x200) - 0x200) << exp for s in (0, 10, 20)]
    return np.stack(axes, axis=-1)


class CwaReader:
    """A CWA file as a stream of sector blocks (see :meth:`blocks`); :attr:`stats` counts what
    each block held. Memory is bounded by ``block_sectors``.

    Args:
        stream: the file, opened binary, positioned at its start.
        where: the file, for messages.
    """

    def __init__(self, stream: IO[bytes], where: str, block_sectors: int = BLOCK_SECTORS):
        self.stream, self.where, self.block_sectors = stream, where, block_sectors
        head = stream.read(1024)
        self.header = parse_header(head, where)
        rest = self.header.header_bytes - len(head)
        if rest > 0:
            stream.read(rest)
        self._pending = head[self.header.header_bytes :] if rest < 0 else b""
        self.stats = CwaStats()
        self._prev_end: float | None = None  # the last decoded sector's end, for the chain

    def blocks(self) -> Iterator[Block]:
        """The samples, one block of sectors at a time, in file order."""
        index = 0
        while True:
            want = self.block_sectors * SECTOR_BYTES - len(self._pending)
            data = self._pending + self.stream.read(want)
            self._pending = b""
            whole = len(data) // SECTOR_BYTES * SECTOR_BYTES
            if whole == 0:
                self.stats.trailing_bytes += len(data)
                return
            if whole < len(data):
                self.stats.trailing_bytes += len(data) - whole
            raw = np.frombuffer(data[:whole], dtype=np.uint8).reshape(-1, SECTOR_BYTES)
            block = self._decode(raw, index)
            index += len(raw)
            if block is not None:
                yield block
            if whole < self.block_sectors * SECTOR_BYTES:
                return

    def _decode(self, raw: np.ndarray, first_index: int) -> Block | None:
        st = self.stats
        sec = raw.view(SECTOR_DTYPE).reshape(-1)
        st.sectors += len(sec)
        is_data = (sec["magic"] == DATA_MAGIC) & (sec["length"] == DATA_PACKET_LENGTH)
        st.not_data += int((~is_data).sum())
        good = is_data & _checksum_ok(raw)
        bad_sum = is_data & ~good
        st.bad_checksum += int(bad_sum.sum())
        st.bad_checksum_samples += int(sec["count"][bad_sum].sum())
        whole_s, time_ok = unpack_timestamps(sec["timestamp"])
        st.bad_time += int((good & ~time_ok).sum())
        good &= time_ok
        if good.any():
            self._check_format(sec, good, first_index)
        counts = np.minimum(sec["count"].astype(np.int64), self._per_sector())
        # Sector start and end times (skdh's ReadCwa): the first sample `offset` samples before
        # the whole second, the end `count` samples after it; a sector that starts less than a
        # second after the previous decoded one ends is stretched back to that end.
        rate = _rate_hz(sec["rate"])
        start = whole_s - sec["offset"] / rate
        end = start + sec["count"] / rate
        prev_end = np.concatenate([[np.nan], end[:-1]])
        prev_good = np.concatenate([[False], good[:-1]])
        if self._prev_end is not None:
            prev_end[0], prev_good[0] = self._prev_end, True
        chain = prev_good & (prev_end > 0) & (start - prev_end < CHAIN_GAP_S)
        start = np.where(chain, prev_end, start)
        self._prev_end = float(end[-1]) if good[-1] else None
        keep = good & (counts > 0)
        if not keep.any():
            return None
        sec, counts, start, end = sec[keep], counts[keep], start[keep], end[keep]
        st.samples += int(counts.sum())
        values = self._samples(sec)  # [S, per_sector, axes] in counts
        take = np.arange(values.shape[1])[None, :] < counts[:, None]  # [S, per_sector]
        step = (end - start) / sec["count"]  # [S]
        t = start[:, None] + np.arange(values.shape[1])[None, :] * step[:, None]
        t, values = t[take], values[take]  # [N], [N, axes]
        per_g = (1 << (8 + ((sec["light"] >> 13) & 0x07))).astype(np.float64)
        st.counts_per_g.update(int(v) for v in np.unique(per_g))
        per_g = np.repeat(per_g, counts)[:, None]
        if self.stats.axes == 3:
            return Block(t, values[:, :3] / per_g, None)
        gyro_bits = (sec["light"] >> 10) & 0x07
        fallback = self.header.gyro_range_dps or 2000.0
        dps = np.where(gyro_bits > 0, 8000.0 / (1 << gyro_bits), fallback)
        st.gyro_dps.update(float(v) for v in np.unique(dps))
        dps = np.repeat(dps, counts)[:, None]
        return Block(t, values[:, 3:6] / per_g, values[:, 0:3] * dps / 32768.0)

    def _per_sector(self) -> int:
        if self.stats.axes == 0:
            return 0
        return PAYLOAD_BYTES // (4 if self.stats.packed else 2 * self.stats.axes)

    def _check_format(self, sec: np.ndarray, good: np.ndarray, first_index: int) -> None:
        """The axes, packing and rate of every good sector are those of the first one."""
        st = self.stats
        codes, rates = sec["axes_bps"][good], sec["rate"][good]
        if st.axes == 0:
            axes, packing = int(codes[0]) >> 4, int(codes[0]) & 0x0F
            n = first_index + int(np.argmax(good))
            if axes not in (3, 6, 9) or packing not in (0, 2) or (packing == 0 and axes != 3):
                raise FormatError(
                    f"{self.where}: sector {n}: numAxesBPS 0x{codes[0]:02x} is not 3, 6 or 9 "
                    "axes of int16, or 3 packed axes"
                )
            if int(rates[0]) == 0:
                raise FormatError(
                    f"{self.where}: sector {n}: rate code 0 (a pre-2012 CWA layout) is not "
                    "supported; convert it with OmGui"
                )
            st.axes, st.packed, st.rate_code = axes, packing == 0, int(rates[0])
        first_code = (st.axes << 4) | (0 if st.packed else 2)
        odd = (codes != first_code) | (rates != st.rate_code)
        if odd.any():
            n = first_index + int(np.flatnonzero(good)[int(np.argmax(odd))])
            raise FormatError(
                f"{self.where}: sector {n}: numAxesBPS 0x{sec['axes_bps'][n - first_index]:02x}"
                f" and rate code 0x{sec['rate'][n - first_index]:02x} differ from the first "
                f"sector's (0x{first_code:02x}, 0x{st.rate_code:02x}); one configuration per file"
            )

    def _samples(self, sec: np.ndarray) -> np.ndarray:
        """[S, per_sector, axes] raw counts of the given sectors."""
        payload = np.ascontiguousarray(sec["payload"]).view(np.uint8).reshape(len(sec), -1)
        if self.stats.packed:
            return _unpack_dwords(payload)
        per = self._per_sector()
        words = payload.view("<i2").reshape(len(sec), PAYLOAD_BYTES // 2)
        return words[:, : per * self.stats.axes].reshape(len(sec), per, self.stats.axes)


# --- the format ---------------------------------------------------------------------------------


def _head_bytes(container: Container, name: str, n: int) -> bytes:
    try:
        with container.open(name) as f:
            return f.read(n)
    except (FormatError, OSError):
        return b""


def _cwa_members(container: Container) -> list[str]:
    """Members that open with an ``MD`` header block followed by an ``AX`` data sector (or of
    the usual 1020-byte header length: a file with no data yet), not a text file that happens
    to start with "MD"."""
    found = []
    for name in container.names:
        head = _head_bytes(container, name, HEADER_PROBE_BYTES)
        if head[:2] != HEADER_MAGIC or len(head) < 64:
            continue
        length = int.from_bytes(head[2:4], "little")
        data_at = -(-(length + 4) // SECTOR_BYTES) * SECTOR_BYTES
        if length == USUAL_HEADER_PACKET_LENGTH or head[data_at : data_at + 2] == DATA_MAGIC:
            found.append(name)
    return found


def detect(container: Container) -> str | None:
    members = _cwa_members(container)
    if not members:
        return None
    return f"{members[0]}: an Axivity 'MD' header block (CWA)"


def _local_time(t_s: float) -> str:
    return (dt.datetime(1970, 1, 1) + dt.timedelta(seconds=t_s)).isoformat(sep=" ")[:23]


def read(container: Container, options) -> Export:
    name = pick_one(_cwa_members(container), options.device, "CWA recordings", container.path)
    where = container.where(name)
    with container.open(name) as f:
        reader = CwaReader(f, where)
        blocks = list(reader.blocks())
    head, st = reader.header, reader.stats
    if not blocks:
        raise FormatError(
            f"{where}: no readable data sectors ({st.sectors} sectors: {st.not_data} not data, "
            f"{st.bad_checksum} with a bad checksum)"
        )
    t = np.concatenate([b.t_s for b in blocks])
    acc = np.concatenate([b.acc_g for b in blocks])
    rate = float(_rate_hz(st.rate_code))
    rules = [
        f"{head.device_type} {head.device_id} (session {head.session_id}): {st.sectors} sectors, "
        f"{st.axes} axes {'packed 10-bit' if st.packed else 'int16'}, {st.samples} samples, "
        f"configured {rate:g} Hz, ±{16 >> (st.rate_code >> 6)} g",
        "time: the device's local clock (CWA stamps carry no time zone), starting "
        f"{_local_time(float(t[0]))} device-local; seconds count from 1970-01-01 on that clock",
        "sample times spread within each sector from its whole-second stamp and sample offset, "
        "continuing the previous sector's end (as skdh's ReadCwa)",
        f"units: acceleration {'/'.join(f'1/{c}' for c in sorted(st.counts_per_g))} g per count"
        + (
            f", rotation rate ±{'/'.join(f'{d:g}' for d in sorted(st.gyro_dps))} deg/s full scale"
            if st.axes >= 6
            else ""
        ),
        "sign: specific force as the AX accelerometer reports it (+1 g on the axis pointing up "
        "at rest, as Android); no flip",
    ]
    if st.bad_checksum:
        rules.append(
            f"{st.bad_checksum} sectors with a bad checksum left out ({st.bad_checksum_samples} "
            "samples; the join sees the gap)"
        )
    if st.bad_time:
        rules.append(f"{st.bad_time} sectors with an invalid timestamp left out")
    if st.not_data:
        rules.append(f"{st.not_data} sectors that are not data (erased or other types) skipped")
    if st.trailing_bytes:
        rules.append(f"a truncated last sector of {st.trailing_bytes} bytes left out")
    if st.axes == 9:
        rules.append("magnetometer (axes 7-9) not used")
    export = Export(
        format=NAME, series=[], rules=rules, device=f"{head.device_type} {head.device_id}"
    )
    export.series.append(make_series(SensorKind.ACC, t, acc, unit="g", where=where))
    if st.axes >= 6:
        gyro = np.concatenate([b.gyro_dps for b in blocks])
        export.series.append(make_series(SensorKind.GYRO, t, gyro, unit="deg/s", where=where))
    else:
        rules.append(
            f"accelerometer only (header sensorConfig 0x{head.sensor_config:02x}, "
            f"{st.axes} axes per sample): no gyroscope"
        )
    return export


def read_chunks(container: Container, options) -> Iterator[Recording]:
    """The recording one block of sectors at a time (``gaitedge.formats.open_chunks``): what
    :func:`read` and the join give, in pieces, with memory bounded by the block size. Stamps
    are repaired by the streaming ``TimestampRepair`` the join feeds a whole series once."""
    from gaitedge.preprocess import TimestampRepair

    name = pick_one(_cwa_members(container), options.device, "CWA recordings", container.path)
    where = container.where(name)
    repair = TimestampRepair()
    with container.open(name) as f:
        reader = CwaReader(f, where, BLOCK_SECTORS)
        for block in reader.blocks():
            if block.gyro_dps is None and not options.accelerometer_only:
                raise no_gyroscope(str(container.path), NAME, HINTS)
            acc = make_series(SensorKind.ACC, block.t_s, block.acc_g, unit="g", where=where)
            x = acc.xyz  # an AX3 (or AX6 set so): acceleration alone, [N, 3]
            if block.gyro_dps is not None:
                gyro = make_series(
                    SensorKind.GYRO, block.t_s, block.gyro_dps, unit="deg/s", where=where
                )
                x = np.concatenate([acc.xyz, gyro.xyz], axis=1)
            t, imu = repair.process(block.t_s, x)
            if len(t):
                yield Recording(t, imu)
    if not reader.stats.samples:
        st = reader.stats
        raise FormatError(
            f"{where}: no readable data sectors ({st.sectors} sectors: {st.not_data} not data, "
            f"{st.bad_checksum} with a bad checksum)"
        )
    t, imu = repair.flush()
    if len(t):
        yield Recording(t, imu)
