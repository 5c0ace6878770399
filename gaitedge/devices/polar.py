"""Polar Measurement Data (PMD): Verity Sense streams acceleration and rotation rate.

From Polar's SDK (``polarofficial/polar-ble-sdk``: ``BlePMDClient``, ``PmdControlPointCommand``,
``PmdDataFrame``, ``AccData``, ``GyrData``, ``PmdTimeStampUtils``; the Measurement Data
Specification) and ``/work/shared/reference/vendor-formats.md`` C1:

* Control point ``FB005C81`` (read: ``[0x0F, feature bits]``; write + indicate): commands
  ``[op, type, settings TLV...]``, answered by ``[0xF0, op, type, status, more, params...]``.
  A start's parameters may carry FACTOR (TLV type 5, a float32), which scales every value.
* Data ``FB005C82`` (notify): ``[type][u64 LE ns since 2000-01-01, sensor clock][frame type]
  [payload]``. The stamp belongs to the **last** sample; earlier samples are spread back evenly
  to the previous frame's stamp (the first frame: by the nominal rate).
* Frame type bit 7: delta compressed. A reference sample, then blocks ``[bits][count][count x
  channels deltas of ``bits``, LSB first, two's complement]``, each added to the sample before.
* ACC in mG (x FACTOR; compressed type 0 is in G x FACTOR x 1000); GYRO in deg/s x FACTOR
  (compressed type 1: float32 bit patterns).

H10 and OH1 have no gyroscope: they stream acceleration alone ([N, 3]) when the session can run
a model without one (the shipped accelerometer-only bundle), else they are refused at connect.
"""

from __future__ import annotations

import datetime
import enum
import logging
import struct
from dataclasses import dataclass, field

import numpy as np

from gaitedge.devices.base import (
    DeviceError,
    DropReason,
    GattLink,
    Profile,
    Samples,
    UnsupportedDeviceError,
)
from gaitedge.units import AccelUnit, GyroUnit, accel_to_m_s2, gyro_to_rad_s

log = logging.getLogger(__name__)

NAME = "polar"
TITLE = "Polar Verity Sense over PMD (acc + gyro); H10 and OH1 acc only (accelerometer-only model)"
NEEDS = "a Verity Sense that is not streaming to another app (Polar Flow, Polar Sensor Logger)"

SERVICE_UUID = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
CONTROL_POINT_UUID = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
DATA_UUID = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"
SERVICES = (SERVICE_UUID,)
NAME_PREFIXES = ("Polar ",)

# The sensor clock counts ns from 2000-01-01T00:00Z; 946684800 s after the Unix epoch.
EPOCH_2000_UNIX_NS = 946_684_800_000_000_000
FEATURES_RESPONSE = 0x0F  # first byte of the control point's read value
RESPONSE_CODE = 0xF0  # first byte of every control point indication
FRAME_HEADER_LEN = 10  # type (1) + timestamp (8) + frame type (1)
COMPRESSED = 0x80  # frame type bit 7


class MeasurementType(enum.IntEnum):
    ECG = 0
    PPG = 1
    ACC = 2
    PPI = 3
    GYRO = 5
    MAG = 6
    SDK_MODE = 9


class ControlOp(enum.IntEnum):
    GET_SETTINGS = 1
    START = 2
    STOP = 3


class Setting(enum.IntEnum):
    """Settings TLV types, with their value sizes in :data:`SETTING_SIZES`."""

    SAMPLE_RATE = 0
    RESOLUTION = 1
    RANGE = 2
    RANGE_MILLIUNIT = 3
    CHANNELS = 4
    FACTOR = 5
    SECURITY = 6


SETTING_SIZES = {
    Setting.SAMPLE_RATE: 2,
    Setting.RESOLUTION: 2,
    Setting.RANGE: 2,
    Setting.RANGE_MILLIUNIT: 4,
    Setting.CHANNELS: 1,
    Setting.FACTOR: 4,
    Setting.SECURITY: 16,
}


class Status(enum.IntEnum):
    """Control point status codes, reported by name."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13


def status_name(code: int) -> str:
    try:
        return Status(code).name
    except ValueError:
        return f"UNKNOWN_STATUS_{code}"


@dataclass(frozen=True)
class StreamSettings:
    """What to ask one measurement for (the Verity's defaults: 52 Hz, 16 bit, 3 channels)."""

    rate_hz: int = 52
    resolution_bits: int = 16
    range: int = 8  # g for ACC, deg/s for GYRO
    channels: int = 3

    def tlv(self) -> bytes:
        out = b""
        for kind, value in (
            (Setting.SAMPLE_RATE, self.rate_hz),
            (Setting.RESOLUTION, self.resolution_bits),
            (Setting.RANGE, self.range),
            (Setting.CHANNELS, self.channels),
        ):
            out += bytes([kind, 1]) + value.to_bytes(SETTING_SIZES[kind], "little")
        return out


def start_command(kind: MeasurementType, settings: StreamSettings) -> bytes:
    """``[0x02, type, TLV...]``: the bytes that start one measurement."""
    return bytes([ControlOp.START, kind]) + settings.tlv()


def stop_command(kind: MeasurementType) -> bytes:
    return bytes([ControlOp.STOP, kind])


@dataclass(frozen=True)
class ControlResponse:
    op: int
    kind: int
    status: int
    more: bool
    params: dict[Setting, int] = field(default_factory=dict)

    @property
    def factor(self) -> float:
        """FACTOR as a float (1.0 when the response carries none)."""
        bits = self.params.get(Setting.FACTOR)
        return 1.0 if bits is None else struct.unpack("<f", bits.to_bytes(4, "little"))[0]


def parse_settings(data: bytes) -> dict[Setting, int]:
    """Settings TLV -> {setting: value}; the last value of a list (as the SDK selects)."""
    out, i = {}, 0
    while i + 2 <= len(data):
        try:
            kind = Setting(data[i])
        except ValueError as exc:
            raise DeviceError(f"Polar: unknown setting type {data[i]} in {data.hex(' ')}") from exc
        count, size = data[i + 1], SETTING_SIZES[kind]
        end = i + 2 + count * size
        if count == 0 or end > len(data):
            raise DeviceError(f"Polar: truncated setting {kind.name} in {data.hex(' ')}")
        out[kind] = int.from_bytes(data[end - size : end], "little")
        i = end
    return out


def parse_response(data: bytes) -> ControlResponse:
    if len(data) < 5 or data[0] != RESPONSE_CODE:
        raise DeviceError(f"Polar: not a control point response: {data.hex(' ')}")
    params = parse_settings(data[5:]) if data[1] == ControlOp.START else {}
    return ControlResponse(data[1], data[2], data[3], bool(data[4]), params)


def parse_features(data: bytes) -> set[MeasurementType]:
    """The measurement types the control point's read value says the sensor has."""
    if len(data) < 2 or data[0] != FEATURES_RESPONSE:
        raise DeviceError(f"Polar: unexpected control point value {data.hex(' ')}")
    bits = int.from_bytes(data[1:3], "little")
    return {t for t in MeasurementType if bits >> t & 1}


def _signed(values: np.ndarray, bits: int) -> np.ndarray:
    return np.where(values >= 1 << (bits - 1), values - (1 << bits), values)


def _little_endian_ints(data: bytes, width: int, count: int) -> np.ndarray:
    """``count`` little-endian signed integers of ``width`` bytes."""
    raw = np.frombuffer(data[: width * count], np.uint8).reshape(count, width).astype(np.int64)
    values = (raw << (8 * np.arange(width))).sum(axis=1)
    return _signed(values, 8 * width)


def unpack_deltas(data: bytes, bits: int, n_values: int) -> np.ndarray:
    """``n_values`` two's complement values of ``bits`` bits, packed LSB first."""
    stream = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
    chunk = stream[: n_values * bits].reshape(n_values, bits).astype(np.int64)
    return _signed((chunk << np.arange(bits)).sum(axis=1), bits)


def decode_delta_frame(payload: bytes, channels: int, ref_bytes: int) -> np.ndarray:
    """A delta-compressed payload -> [N, channels] integer samples (reference first).

    Raises:
        DeviceError: a block runs past the payload, or a block of zero-bit deltas.
    """
    ref_len = channels * ref_bytes
    if len(payload) < ref_len:
        raise DeviceError(f"Polar: delta frame of {len(payload)} bytes has no reference sample")
    rows = [_little_endian_ints(payload[:ref_len], ref_bytes, channels).reshape(1, channels)]
    i = ref_len
    while i < len(payload):
        if i + 2 > len(payload):
            raise DeviceError("Polar: delta block header cut off")
        bits, count = payload[i], payload[i + 1]
        size = -(-count * channels * bits // 8)
        if bits == 0 or bits > 32 or i + 2 + size > len(payload):
            raise DeviceError(f"Polar: bad delta block ({bits} bits x {count}) at byte {i}")
        deltas = unpack_deltas(payload[i + 2 : i + 2 + size], bits, count * channels)
        rows.append(rows[-1][-1] + np.cumsum(deltas.reshape(count, channels), axis=0))
        i += 2 + size
    return np.vstack(rows)


@dataclass(frozen=True)
class DataFrame:
    kind: MeasurementType
    timestamp_ns: int
    frame_type: int  # low 7 bits
    compressed: bool
    values: np.ndarray  # [N, 3] in the measurement's unit (mG or deg/s), FACTOR applied


# (type, compressed, frame type) -> (reference/sample bytes per channel, unit scale, floats)
_LAYOUTS = {
    (MeasurementType.ACC, False, 0): (1, 1.0, False),
    (MeasurementType.ACC, False, 1): (2, 1.0, False),
    (MeasurementType.ACC, False, 2): (3, 1.0, False),
    (MeasurementType.ACC, True, 0): (2, 1000.0, False),  # G x FACTOR x 1000 = mG
    (MeasurementType.ACC, True, 1): (2, 1.0, False),
    (MeasurementType.GYRO, True, 0): (2, 1.0, False),
    (MeasurementType.GYRO, True, 1): (4, 1.0, True),
}


def parse_frame(data: bytes, factor: float = 1.0) -> DataFrame:
    """One PMD data notification (ACC or GYRO, 3 channels).

    Raises:
        DeviceError: too short, a type or frame type this profile does not stream, or a
            payload that is no whole number of samples.
    """
    if len(data) < FRAME_HEADER_LEN:
        raise DeviceError(f"Polar: data frame of {len(data)} bytes")
    try:
        kind = MeasurementType(data[0])
    except ValueError as exc:
        raise DeviceError(f"Polar: unknown measurement type {data[0]}") from exc
    timestamp_ns = int.from_bytes(data[1:9], "little")
    compressed, frame_type = bool(data[9] & COMPRESSED), data[9] & 0x7F
    layout = _LAYOUTS.get((kind, compressed, frame_type))
    if layout is None:
        raise DeviceError(f"Polar: {kind.name} frame type {data[9]:#04x} is not streamed here")
    width, unit_scale, floats = layout
    payload = data[FRAME_HEADER_LEN:]
    if compressed:
        ints = decode_delta_frame(payload, 3, width)
    else:
        if len(payload) % (3 * width):
            raise DeviceError(f"Polar: {len(payload)} bytes is no whole number of samples")
        ints = _little_endian_ints(payload, width, len(payload) // width).reshape(-1, 3)
    if floats:  # deltas accumulate on the float32 bit patterns
        values = (ints & 0xFFFFFFFF).astype(np.uint32).view(np.float32).astype(np.float64)
    else:
        values = ints.astype(np.float64)
    return DataFrame(kind, timestamp_ns, frame_type, compressed, values * factor * unit_scale)


def sample_times_ns(
    timestamp_ns: int, previous_ns: int | None, n: int, rate_hz: float
) -> tuple[np.ndarray, int]:
    """Each sample's time, and how many samples were lost before the frame.

    The stamp is the last sample's. With the previous frame's stamp the samples are spread
    evenly between the two (the SDK's rule), unless the gap holds more than 1.5 periods beyond
    ``n`` samples: then frames were lost, counted from the gap, and the samples are spaced by
    the nominal rate back from the stamp (as on a first frame).
    """
    period_ns = 1e9 / rate_hz
    lost = 0
    if previous_ns is not None:
        gap_ns = timestamp_ns - previous_ns
        if gap_ns <= (n + 1.5) * period_ns:
            step = gap_ns / n
            return previous_ns + step * np.arange(1, n + 1), 0
        lost = round(gap_ns / period_ns) - n
    return timestamp_ns - period_ns * np.arange(n - 1, -1, -1), lost


def sensor_time(timestamp_ns: int) -> datetime.datetime:
    """A stamp as a UTC date on the sensor's clock (which may never have been set: 2017, 2019)."""
    return datetime.datetime.fromtimestamp(
        (timestamp_ns + EPOCH_2000_UNIX_NS) / 1e9, tz=datetime.timezone.utc
    )


class PolarProfile(Profile):
    """ACC (mG) and GYRO (deg/s) from a Verity Sense, paired on the sensor clock."""

    name = NAME
    services = SERVICES
    samples_per_notification = 8

    def __init__(
        self, acc: StreamSettings | None = None, gyro: StreamSettings | None = None
    ) -> None:
        super().__init__()
        self.acc = acc or StreamSettings(range=8)
        self.gyro = gyro or StreamSettings(range=2000)
        self.rate_hz = float(self.acc.rate_hz)
        self.acc_range_g = float(self.acc.range)
        self.factors = {MeasurementType.ACC: 1.0, MeasurementType.GYRO: 1.0}
        self.acc_only = False  # an H10 or OH1: acceleration alone, [N, 3]
        self.reset()

    def reset(self) -> None:
        self._previous: dict[MeasurementType, int] = {}
        self._acc_t = np.zeros(0)
        self._acc = np.zeros((0, 3))
        self._gyro_t = np.zeros(0)
        self._gyro = np.zeros((0, 3))
        self._lost = 0

    async def start(self, link: GattLink) -> None:
        features = parse_features(await link.read(CONTROL_POINT_UUID))
        self.model = link.name or "Polar"
        if MeasurementType.ACC not in features:
            raise UnsupportedDeviceError(f"{self.model}: no accelerometer stream offered over PMD")
        self.acc_only = MeasurementType.GYRO not in features
        if self.acc_only and self.no_gyroscope_refusal is not None:
            raise UnsupportedDeviceError(
                f"{self.model} has an accelerometer but no gyroscope (H10, OH1): "
                f"{self.no_gyroscope_refusal}"
            )
        await link.subscribe(CONTROL_POINT_UUID)
        await link.subscribe(DATA_UUID)
        streams = [(MeasurementType.ACC, self.acc), (MeasurementType.GYRO, self.gyro)]
        for kind, settings in streams[:1] if self.acc_only else streams:
            self.factors[kind] = await self._start_one(link, kind, settings)

    async def _start_one(self, link: GattLink, kind: MeasurementType, settings) -> float:
        command = start_command(kind, settings)
        response = await self._request(link, command)
        if response.status == Status.ALREADY_IN_STATE:  # left running by an earlier host
            await self._request(link, stop_command(kind))
            response = await self._request(link, command)
        if response.status != Status.SUCCESS:
            raise DeviceError(
                f"{self.model}: starting {kind.name} at {settings.rate_hz} Hz failed: "
                f"{status_name(response.status)}"
            )
        log.info("%s: %s started, factor %g", self.model, kind.name, response.factor)
        return response.factor

    @staticmethod
    async def _request(link: GattLink, command: bytes) -> ControlResponse:
        def answers(data: bytes) -> bool:
            return len(data) >= 3 and data[0] == RESPONSE_CODE and data[1:3] == command[:2]

        reply = await link.request(
            CONTROL_POINT_UUID, command, reply_uuid=CONTROL_POINT_UUID, accept=answers
        )
        return parse_response(reply)

    def decode(self, uuid: str, payload: bytes) -> list[Samples]:
        if uuid != DATA_UUID:
            self.stats.drop(DropReason.UNKNOWN, f"notification on {uuid}")
            return []
        kind = MeasurementType(payload[0]) if payload and payload[0] in (2, 5) else None
        try:
            frame = parse_frame(payload, self.factors.get(kind, 1.0))
        except DeviceError as exc:
            self.stats.drop(DropReason.MALFORMED, str(exc))
            return []
        previous = self._previous.get(frame.kind)
        if previous is not None and frame.timestamp_ns <= previous:
            self.stats.drop(DropReason.REPEATED, f"stamp {frame.timestamp_ns} again")
            return []
        times, lost = sample_times_ns(frame.timestamp_ns, previous, len(frame.values), self.rate_hz)
        self._previous[frame.kind] = frame.timestamp_ns
        t_s = times * 1e-9
        if frame.kind is MeasurementType.ACC:
            self._lost += lost
            self._acc_t = np.concatenate([self._acc_t, t_s])
            self._acc = np.vstack([self._acc, frame.values])
        else:
            self._gyro_t = np.concatenate([self._gyro_t, t_s])
            self._gyro = np.vstack([self._gyro, frame.values])
        return self._paired()

    def _paired(self) -> list[Samples]:
        """ACC samples up to the newest GYRO sample, with GYRO interpolated at their times
        (without a gyroscope: every ACC sample, [N, 3])."""
        if self.acc_only and len(self._acc_t):
            out = [Samples(accel_to_m_s2(self._acc, AccelUnit.MG), self._acc_t, self._lost)]
            self._acc_t, self._acc, self._lost = np.zeros(0), np.zeros((0, 3)), 0
            return out
        if not len(self._gyro_t) or not len(self._acc_t):
            return []
        half = 0.5 / self.rate_hz
        ready = self._acc_t <= self._gyro_t[-1] + half
        early = self._acc_t < self._gyro_t[0] - half  # before the gyroscope started
        take = ready & ~early
        out = []
        if take.any():
            t = self._acc_t[take]
            gyro = np.column_stack([np.interp(t, self._gyro_t, g) for g in self._gyro.T])
            acc_si = accel_to_m_s2(self._acc[take], AccelUnit.MG)
            gyro_si = gyro_to_rad_s(gyro, GyroUnit.DEG_S)
            out.append(Samples(np.hstack([acc_si, gyro_si]), t, self._lost))
            self._lost = 0
        self._acc_t, self._acc = self._acc_t[~ready], self._acc[~ready]
        if take.any():  # keep the gyroscope from the last sample used on, to interpolate on
            keep = self._gyro_t >= t[-1] - 2 * half
            keep[-1] = True
            self._gyro_t, self._gyro = self._gyro_t[keep], self._gyro[keep]
        return out


def profile(**options) -> PolarProfile:
    return PolarProfile(**options)
