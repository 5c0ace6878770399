"""The wire protocol between wearable firmware and the host: the bytes, and nowhere else.

Three messages, all little-endian, each starting with one header byte ``major << 4 | type``:

* ``SampleFrame`` (type 1): ``u8 header, u16 seq, u32 timestamp_us, N x (i16 ax ay az gx gy gz)``;
  N is implied by the length, 1 <= N <= MAX_SAMPLES_PER_FRAME.
* ``DeviceInfo`` (type 2): ``u8 header, u8 protocol_minor, u32 device_id,
  u32 sample_rate_millihz, u8 accel_range_g, u16 gyro_range_dps, u8 firmware_major,
  u8 firmware_minor``, and from minor 1 ``3 x u8 mounting`` (which sensor axis, and its sign,
  is body x, y, z), from minor 2 ``u8 outputs`` (result frames on, raw samples off); a newer
  minor version may append fields, which this host ignores.
* ``ResultFrame`` (type 3, from minor 2): the device's own decision for one window: ``u8 header,
  u16 seq, u32 timestamp_us, u8 activity, u8 activity_p, u8 flags, u16 change_p,
  u16 change_lead_ms, u16 fall_p, u16 fall_lead_ms, u16 impact_cg`` (20 bytes).

Transports:

* Serial: ``COBS(message + CRC-16/CCITT-FALSE little-endian) + 0x00``; ``StreamDecoder``.
* BLE: one message per GATT notification, no COBS or CRC (the link layer already checks a
  CRC-24 per packet); ``NotificationDecoder``.

PROTOCOL.md is the full specification; this module is its reference implementation.
"""

from __future__ import annotations

import binascii
import enum
import struct
import uuid
from dataclasses import dataclass, field

import numpy as np

# Compatibility rule: a host decodes messages whose major version equals PROTOCOL_MAJOR and
# refuses every other major (counted as UNSUPPORTED_VERSION). Within a major, a newer minor may
# only append fields to DeviceInfo or add new message types, which older hosts skip (counted as
# UNKNOWN_TYPE) without losing the stream. The major lives in the header byte's high nibble, so
# 1..15 are possible; 0 is never valid, which keeps a zeroed buffer from parsing as a message.
PROTOCOL_MAJOR = 1
# Minor 1 appended the declared mounting to DeviceInfo; minor 2 added the result frame and
# appended the outputs byte (results on, raw samples off) to DeviceInfo.
PROTOCOL_MINOR = 2


class MessageType(enum.IntEnum):
    """The low nibble of the header byte."""

    SAMPLES = 1
    DEVICE_INFO = 2
    RESULT = 3  # from 1.2


# One sample is six int16 counts: accel x, y, z then gyro x, y, z.
AXES_PER_SAMPLE = 6
SAMPLE_LEN = 12
# header u8 + seq u16 + timestamp_us u32.
SAMPLE_HEADER_LEN = 7
# The default ATT MTU of 23 bytes leaves 20 bytes of notification payload (3 bytes of ATT
# header); 7 + 12 = 19 bytes, so one sample always fits a notification on any BLE link.
DEFAULT_ATT_MTU = 23
ATT_HEADER_LEN = 3
# 20 samples make a 247-byte message; with the 2-byte CRC that is 249 <= 254 bytes, so COBS adds
# exactly one byte and never needs a 0xFF block split, and a device buffer of
# MAX_SERIAL_PACKET_LEN + 1 bytes always suffices. On BLE, 247 bytes need an ATT MTU of 250.
MAX_SAMPLES_PER_FRAME = 20
MAX_MESSAGE_LEN = SAMPLE_HEADER_LEN + SAMPLE_LEN * MAX_SAMPLES_PER_FRAME
CRC_LEN = 2
# COBS overhead for a packet of at most 254 bytes is one byte; the 0x00 delimiter is not counted.
MAX_SERIAL_PACKET_LEN = MAX_MESSAGE_LEN + CRC_LEN + 1
# u16 sequence numbers wrap after 65536 frames; u32 microseconds wrap after 2**32 us = 71.6 min.
SEQ_MODULUS = 1 << 16
TIMESTAMP_MODULUS_US = 1 << 32
# binascii.crc_hqx is CRC-16/CCITT-FALSE (poly 0x1021, no reflection, no final XOR) when
# started at 0xFFFF: check value 0x29B1 for b"123456789".
CRC_INIT = 0xFFFF
# Full scale of an int16 sensor reading: +range maps to 32768 counts (saturating at 32767).
FULL_SCALE_COUNTS = 32768

# BLE GATT: devices advertise SERVICE_UUID; the scan response carries the name
# DEVICE_NAME_PREFIX + device_id as 8 lowercase hex digits.
SERVICE_UUID = uuid.UUID("9c5a0001-cd44-4ed1-8528-49a84ea41756")
SAMPLES_CHAR_UUID = uuid.UUID("9c5a0002-cd44-4ed1-8528-49a84ea41756")
DEVICE_INFO_CHAR_UUID = uuid.UUID("9c5a0003-cd44-4ed1-8528-49a84ea41756")
DEVICE_NAME_PREFIX = "gaitedge-"

_SAMPLE_HEAD = struct.Struct("<BHI")
_DEVICE_INFO = struct.Struct("<BBIIBHBB")
# 15 bytes in 1.0, the shortest device info a host accepts; 18 from 1.1 (the mounting bytes);
# 19 from 1.2 (the outputs byte).
DEVICE_INFO_1_0_LEN = _DEVICE_INFO.size
DEVICE_INFO_1_1_LEN = DEVICE_INFO_1_0_LEN + 3
DEVICE_INFO_LEN = DEVICE_INFO_1_1_LEN + 1
# DeviceInfo.outputs (1.2): bit 0 the device sends result frames, bit 1 it sends no sample
# frames. 0, what a zero-initialised 1.2 struct holds, is what every 1.0/1.1 device does.
OUTPUT_RESULTS = 0x01
OUTPUT_NO_SAMPLES = 0x02
_OUTPUTS_KNOWN = OUTPUT_RESULTS | OUTPUT_NO_SAMPLES
# ResultFrame (1.2): 20 bytes, so it fits a notification at the default ATT MTU.
_RESULT = struct.Struct("<BHIBBBHHHHH")
RESULT_LEN = _RESULT.size
RESULT_ACTIVITY_CHANGE = 0x01  # the window's activity became the current (smoothed) one
RESULT_FALL = 0x02  # a fall was confirmed at this window's end
RESULT_STILLNESS = 0x04  # ... confirmed by post-impact stillness
RESULT_ORIENTATION = 0x08  # ... confirmed by an orientation change
_RESULT_FLAGS_KNOWN = 0x0F
NO_ACTIVITY = 0xFF  # ResultFrame.activity on the wire when the model has no activity head
# A mounting byte: 1, 2, 3 = sensor x, y, z, ORed with MOUNTING_NEGATIVE when the body axis points
# along the sensor axis's negative direction; three zero bytes = not declared.
MOUNTING_NEGATIVE = 0x80
_AXIS_NAMES = "xyz"
_SAMPLES_BYTE = PROTOCOL_MAJOR << 4 | MessageType.SAMPLES
_INT16 = np.dtype("<i2")


class DropReason(enum.Enum):
    """Why a decoder discarded a packet or notification."""

    COBS_ERROR = "cobs_error"  # a COBS code byte points past the end of the packet
    TOO_SHORT = "too_short"  # shorter than a header byte plus the CRC
    TOO_LONG = "too_long"  # longer than MAX_SERIAL_PACKET_LEN / MAX_MESSAGE_LEN
    BAD_CRC = "bad_crc"
    UNSUPPORTED_VERSION = "unsupported_version"  # another major version
    UNKNOWN_TYPE = "unknown_type"  # a type this host does not know (perhaps a newer minor)
    BAD_LENGTH = "bad_length"  # a length that does not fit the message type
    BAD_FIELD = "bad_field"  # a zero rate or range, a bad mounting, outputs or result flags


class ProtocolError(ValueError):
    """A message that cannot be decoded; ``reason`` says why."""

    def __init__(self, reason: DropReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason


class CobsError(ValueError):
    """Bytes that are not a valid COBS packet."""


@dataclass(frozen=True, slots=True, eq=False)
class SampleFrame:
    """N consecutive IMU samples in raw int16 counts.

    Attributes:
        seq: uint16 frame counter, +1 per frame, wrapping; gaps mean lost frames.
        timestamp_us: uint32 device clock in microseconds at the first sample, wrapping.
        samples: [N, 6] int16 counts: acc_x, acc_y, acc_z, gyro_x, gyro_y, gyro_z.
    """

    seq: int
    timestamp_us: int
    samples: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SampleFrame):
            return NotImplemented
        return (
            self.seq == other.seq
            and self.timestamp_us == other.timestamp_us
            and np.array_equal(self.samples, other.samples)
        )

    __hash__ = None  # type: ignore[assignment]  # equality is by array contents


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What a host needs to interpret sample frames; sent at connect and then periodically.

    Attributes:
        device_id: uint32 identifier, unique per device (e.g. from the chip's serial number).
        sample_rate_millihz: the nominal sample rate in mHz, so 204.8 Hz is exact (204800).
        accel_range_g: accelerometer full scale in g: 32768 counts = +accel_range_g.
        gyro_range_dps: gyroscope full scale in deg/s: 32768 counts = +gyro_range_dps.
        firmware_major, firmware_minor: the firmware's own version, for the logs.
        protocol_minor: the minor protocol version the device speaks.
        mounting: how the sensor is worn (minor >= 1), or None when not declared (the host
            estimates it). For body x (up), y (walking direction) and z = x cross y, the sensor
            axis it reads as a signed 1-based index: 1 = x, 2 = y, 3 = z, negative = reversed;
            ``(-2, 1, 3)`` is the axis map ``"-y,x,z"``. A proper rotation: each axis once, no
            mirroring (``ValueError`` otherwise).
        outputs: what the device sends (minor >= 2): ``OUTPUT_RESULTS`` (result frames, its own
            decisions) and/or ``OUTPUT_NO_SAMPLES`` (raw streaming off); 0: samples only.
    """

    device_id: int
    sample_rate_millihz: int
    accel_range_g: int
    gyro_range_dps: int
    firmware_major: int = 0
    firmware_minor: int = 0
    protocol_minor: int = PROTOCOL_MINOR
    mounting: tuple[int, int, int] | None = None
    outputs: int = 0

    def __post_init__(self) -> None:
        if self.outputs & ~_OUTPUTS_KNOWN or self.outputs == OUTPUT_NO_SAMPLES:
            raise ValueError(
                f"outputs {self.outputs:#x}: a device sends result frames, sample frames or both"
            )
        if self.mounting is not None:
            error = mounting_error(self.mounting)
            if error:
                raise ValueError(error)
            object.__setattr__(self, "mounting", tuple(int(a) for a in self.mounting))

    @property
    def mounting_axis_map(self) -> str | None:
        """The declared mounting as an axis map such as ``"-y,x,z"``, or None when unknown.

        ``gaitedge.mounting.parse_axis_map`` turns it into the sensor-to-body rotation.
        """
        if self.mounting is None:
            return None
        return ",".join(("-" if a < 0 else "") + _AXIS_NAMES[abs(a) - 1] for a in self.mounting)

    @property
    def sample_rate_hz(self) -> float:
        return self.sample_rate_millihz / 1000.0

    @property
    def sends_results(self) -> bool:
        """The device decides on its own and sends result frames (1.2)."""
        return bool(self.outputs & OUTPUT_RESULTS)

    @property
    def sends_samples(self) -> bool:
        """The device streams raw sample frames (every 1.0/1.1 device does)."""
        return not self.outputs & OUTPUT_NO_SAMPLES

    @property
    def name(self) -> str:
        """The BLE local name the device advertises."""
        return f"{DEVICE_NAME_PREFIX}{self.device_id:08x}"


@dataclass(frozen=True, slots=True)
class ResultFrame:
    """The device's own decision for one window (1.2), in wire units.

    Attributes:
        seq: uint16 result counter, +1 per result frame (its own, not the sample frames'),
            wrapping; gaps mean lost results.
        timestamp_us: uint32 device clock at the window's last sample (the decision time).
        activity: the window's arg-max activity class (an index into the model's activity
            classes), or None when the model has no activity head.
        activity_p_q8: that class's probability in 1/255 (for display; rounded).
        flags: ``RESULT_ACTIVITY_CHANGE``, ``RESULT_FALL``, ``RESULT_STILLNESS``,
            ``RESULT_ORIENTATION``.
        change_p_q16: activity change: the mean probability of its winning votes, in 1/65535.
        change_lead_ms: activity change: decision time minus the change's estimated start.
        fall_p_q16: fall: the highest fall probability of the impact's windows, in 1/65535.
        fall_lead_ms: fall: decision time minus the impact's time.
        impact_cg: fall: the impact's peak |a| in 0.01 g.
    """

    seq: int
    timestamp_us: int
    activity: int | None
    activity_p_q8: int = 0
    flags: int = 0
    change_p_q16: int = 0
    change_lead_ms: int = 0
    fall_p_q16: int = 0
    fall_lead_ms: int = 0
    impact_cg: int = 0

    def __post_init__(self) -> None:
        error = _result_error(self.flags, self.activity)
        if error:
            raise ValueError(error)

    @property
    def activity_p(self) -> float:
        return self.activity_p_q8 / 255.0

    @property
    def activity_change(self) -> bool:
        """The window's activity became the current (smoothed) activity here."""
        return bool(self.flags & RESULT_ACTIVITY_CHANGE)

    @property
    def change_p(self) -> float:
        return self.change_p_q16 / 65535.0

    @property
    def fall(self) -> bool:
        return bool(self.flags & RESULT_FALL)

    @property
    def fall_p(self) -> float:
        return self.fall_p_q16 / 65535.0

    @property
    def impact_g(self) -> float:
        return self.impact_cg / 100.0

    @property
    def confirmed_by(self) -> tuple[str, ...]:
        """``stillness`` and/or ``orientation`` (``gaitedge.alerts.Confirmation`` values)."""
        return tuple(
            name
            for bit, name in ((RESULT_STILLNESS, "stillness"), (RESULT_ORIENTATION, "orientation"))
            if self.flags & bit
        )


def _result_error(flags: int, activity: int | None) -> str | None:
    if flags & ~_RESULT_FLAGS_KNOWN:
        return f"result flags {flags:#04x}: reserved bits set"
    confirmations = flags & (RESULT_STILLNESS | RESULT_ORIENTATION)
    if bool(flags & RESULT_FALL) != bool(confirmations):
        return f"result flags {flags:#04x}: a fall needs a confirmation, and only a fall has one"
    if flags & RESULT_ACTIVITY_CHANGE and activity is None:
        return "an activity change without an activity class"
    if activity is not None and not 0 <= activity < NO_ACTIVITY:
        return f"activity class {activity} outside 0..254"
    return None


Message = SampleFrame | DeviceInfo | ResultFrame


def mounting_error(mounting: tuple[int, ...]) -> str | None:
    """Why ``mounting`` (signed 1-based sensor axes) is not a proper rotation, or None if it is."""
    axes = [abs(int(a)) for a in mounting if int(a) == a]
    if len(mounting) != 3 or len(axes) != 3 or not all(1 <= a <= 3 for a in axes):
        return f"mounting {mounting}: expected three of 1, 2, 3, -1, -2, -3 (sensor x, y, z)"
    if sorted(axes) != [1, 2, 3]:
        return f"mounting {mounting}: uses a sensor axis twice"
    # A signed permutation is a rotation when the permutation's parity matches the number of
    # reversed axes' parity (det = sign(permutation) * product of signs = +1).
    odd_permutation = axes not in ([1, 2, 3], [2, 3, 1], [3, 1, 2])
    odd_negatives = sum(a < 0 for a in mounting) % 2 == 1
    if odd_permutation != odd_negatives:
        return f"mounting {mounting}: mirrors the axes (reverse the sign of one of them)"
    return None


def _mounting_bytes(mounting: tuple[int, int, int] | None) -> bytes:
    if mounting is None:
        return bytes(3)
    return bytes(abs(a) | (MOUNTING_NEGATIVE if a < 0 else 0) for a in mounting)


def _parse_mounting(raw: bytes) -> tuple[int, int, int] | None:
    if raw == bytes(3):
        return None
    if any(b & ~(MOUNTING_NEGATIVE | 0x03) or not b & 0x03 for b in raw):
        raise ProtocolError(DropReason.BAD_FIELD, f"mounting bytes {raw.hex()}")
    a, b, c = (-(v & 0x03) if v & MOUNTING_NEGATIVE else v for v in raw)
    error = mounting_error((a, b, c))
    if error:
        raise ProtocolError(DropReason.BAD_FIELD, error)
    return a, b, c


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name}={value} outside [{low}, {high}]")


def encode(message: Message) -> bytes:
    """The message bytes, as sent in one BLE notification (and inside a serial packet).

    Raises:
        ValueError: a field outside its wire range, or a sample count outside
            1..MAX_SAMPLES_PER_FRAME.
    """
    if isinstance(message, SampleFrame):
        return _encode_samples(message)
    if isinstance(message, DeviceInfo):
        return _encode_device_info(message)
    if isinstance(message, ResultFrame):
        return _encode_result(message)
    raise TypeError(f"not a protocol message: {type(message).__name__}")


def _encode_samples(frame: SampleFrame) -> bytes:
    samples = np.asarray(frame.samples)
    if samples.ndim != 2 or samples.shape[1] != AXES_PER_SAMPLE:
        raise ValueError(f"samples must be [N, 6], got shape {samples.shape}")
    _check_range("samples per frame", len(samples), 1, MAX_SAMPLES_PER_FRAME)
    if (
        not np.issubdtype(samples.dtype, np.integer)
        or samples.min() < -32768
        or samples.max() > 32767
    ):
        raise ValueError("samples must be int16 counts")
    _check_range("seq", frame.seq, 0, SEQ_MODULUS - 1)
    _check_range("timestamp_us", frame.timestamp_us, 0, TIMESTAMP_MODULUS_US - 1)
    head = _SAMPLE_HEAD.pack(_SAMPLES_BYTE, frame.seq, frame.timestamp_us)
    return head + samples.astype(_INT16).tobytes()


def _encode_device_info(info: DeviceInfo) -> bytes:
    _check_range("sample_rate_millihz", info.sample_rate_millihz, 1, 2**32 - 1)
    _check_range("accel_range_g", info.accel_range_g, 1, 255)
    _check_range("gyro_range_dps", info.gyro_range_dps, 1, 2**16 - 1)
    if info.mounting is not None and info.protocol_minor < 1:
        raise ValueError("a declared mounting needs protocol_minor >= 1")
    if info.outputs and info.protocol_minor < 2:
        raise ValueError("declared outputs need protocol_minor >= 2")
    try:
        head = _DEVICE_INFO.pack(
            PROTOCOL_MAJOR << 4 | MessageType.DEVICE_INFO,
            info.protocol_minor,
            info.device_id,
            info.sample_rate_millihz,
            info.accel_range_g,
            info.gyro_range_dps,
            info.firmware_major,
            info.firmware_minor,
        )
    except struct.error as exc:
        raise ValueError(f"device info field out of range: {exc}") from exc
    # Each minor's layout exactly: a 1.0 message stays 15 bytes, a 1.1 message 18.
    if info.protocol_minor < 1:
        return head
    head += _mounting_bytes(info.mounting)
    return head if info.protocol_minor < 2 else head + bytes([info.outputs])


def _encode_result(r: ResultFrame) -> bytes:
    try:
        return _RESULT.pack(
            PROTOCOL_MAJOR << 4 | MessageType.RESULT,
            r.seq,
            r.timestamp_us,
            NO_ACTIVITY if r.activity is None else r.activity,
            r.activity_p_q8,
            r.flags,
            r.change_p_q16,
            r.change_lead_ms,
            r.fall_p_q16,
            r.fall_lead_ms,
            r.impact_cg,
        )
    except struct.error as exc:
        raise ValueError(f"result frame field out of range: {exc}") from exc


def encode_serial(message: Message) -> bytes:
    """One serial packet: COBS(message + CRC) followed by the 0x00 delimiter."""
    return frame_serial(encode(message))


def frame_serial(body: bytes) -> bytes:
    """Append the CRC-16/CCITT-FALSE (little-endian), COBS-encode, and add the delimiter."""
    crc = binascii.crc_hqx(body, CRC_INIT)
    return cobs_encode(body + crc.to_bytes(CRC_LEN, "little")) + b"\x00"


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing (Cheshire & Baker 1999): the result has no 0x00 byte.

    Canonical form, as in the paper's reference code: a final block of exactly 254 bytes is
    not followed by an empty 0x01 block.
    """
    out = bytearray()
    blocks = bytes(data).split(b"\x00")
    last = len(blocks) - 1
    for k, block in enumerate(blocks):
        while len(block) >= 254:
            out.append(0xFF)
            out += block[:254]
            block = block[254:]
            if not block and k == last:
                return bytes(out)
        out.append(len(block) + 1)
        out += block
    return bytes(out)


def cobs_decode(packet: bytes) -> bytes:
    """Invert ``cobs_encode`` for one packet without its delimiter.

    Raises:
        CobsError: an empty packet, a 0x00 inside it, or a code byte pointing past its end.
    """
    packet = bytes(packet)
    if not packet or b"\x00" in packet:
        raise CobsError("a COBS packet is non-empty and has no 0x00 byte")
    return _cobs_decode_nonzero(packet)


def _cobs_decode_nonzero(packet: bytes) -> bytes:
    # Each code byte says where the next one is; every code byte but the first stands for a
    # 0x00 in the data, unless the code before it was 0xFF (a full block with no zero). So walk
    # the chain (one step per zero in the data, not per byte) and patch the copy in place.
    n = len(packet)
    out = bytearray(packet)
    full_blocks = None
    i = 0
    while True:
        code = packet[i]
        j = i + code
        if j >= n:
            break
        if code == 0xFF:
            full_blocks = [j] if full_blocks is None else [*full_blocks, j]
        else:
            out[j] = 0
        i = j
    if j > n:
        raise CobsError(f"code byte at {i} points {j - n} bytes past the end")
    if full_blocks:
        for j in reversed(full_blocks):
            del out[j]
    del out[0]
    return bytes(out)


def parse_message(body: bytes) -> Message:
    """Parse one message (a BLE notification, or a serial packet after COBS and CRC).

    Raises:
        ProtocolError: with the DropReason.
    """
    body = bytes(body)
    if len(body) > MAX_MESSAGE_LEN:
        raise ProtocolError(DropReason.TOO_LONG, f"{len(body)} > {MAX_MESSAGE_LEN} bytes")
    return _parse(body, len(body))


def _parse(buf: bytes, end: int) -> Message:
    """Parse the message in ``buf[:end]`` (the serial path leaves the CRC after ``end``)."""
    if end < 1:
        raise ProtocolError(DropReason.TOO_SHORT, "empty message")
    head = buf[0]
    if head == _SAMPLES_BYTE:
        return _parse_samples(buf, end)
    if head >> 4 != PROTOCOL_MAJOR:
        raise ProtocolError(
            DropReason.UNSUPPORTED_VERSION, f"major {head >> 4}, this host speaks {PROTOCOL_MAJOR}"
        )
    if head & 0x0F == MessageType.DEVICE_INFO:
        return _parse_device_info(buf, end)
    if head & 0x0F == MessageType.RESULT:
        return _parse_result(buf, end)
    raise ProtocolError(DropReason.UNKNOWN_TYPE, f"message type {head & 0x0F}")


def _parse_samples(buf: bytes, end: int) -> SampleFrame:
    count, extra = divmod(end - SAMPLE_HEADER_LEN, SAMPLE_LEN)
    if extra or not 1 <= count <= MAX_SAMPLES_PER_FRAME:
        raise ProtocolError(DropReason.BAD_LENGTH, f"{end} bytes is not 7 + 12 N, 1 <= N <= 20")
    _, seq, timestamp_us = _SAMPLE_HEAD.unpack_from(buf)
    samples = np.frombuffer(buf, _INT16, count * AXES_PER_SAMPLE, SAMPLE_HEADER_LEN)
    return SampleFrame(seq, timestamp_us, samples.reshape(count, AXES_PER_SAMPLE))


def _parse_device_info(buf: bytes, end: int) -> DeviceInfo:
    if end < DEVICE_INFO_1_0_LEN:
        raise ProtocolError(DropReason.BAD_LENGTH, f"device info of {end} < 15 bytes")
    _, minor, device_id, rate, accel_g, gyro_dps, fw_major, fw_minor = _DEVICE_INFO.unpack_from(buf)
    if not (rate and accel_g and gyro_dps):
        raise ProtocolError(DropReason.BAD_FIELD, "zero sample rate or sensor range")
    mounting, outputs = None, 0
    if minor >= 1:
        need = DEVICE_INFO_1_1_LEN if minor == 1 else DEVICE_INFO_LEN
        if end < need:
            raise ProtocolError(
                DropReason.BAD_LENGTH, f"device info 1.{minor} of {end} < {need} bytes"
            )
        mounting = _parse_mounting(buf[DEVICE_INFO_1_0_LEN:DEVICE_INFO_1_1_LEN])
    if minor >= 2:
        # Bits a newer minor may define are ignored; "no samples and no results" is no device.
        outputs = buf[DEVICE_INFO_1_1_LEN] & _OUTPUTS_KNOWN
        if outputs == OUTPUT_NO_SAMPLES:
            raise ProtocolError(DropReason.BAD_FIELD, "outputs: neither samples nor results")
    return DeviceInfo(
        device_id, rate, accel_g, gyro_dps, fw_major, fw_minor, minor, mounting, outputs
    )


def _parse_result(buf: bytes, end: int) -> ResultFrame:
    # A newer minor may append fields (ignored); a shorter frame is not a 1.2 result.
    if end < RESULT_LEN:
        raise ProtocolError(DropReason.BAD_LENGTH, f"result frame of {end} < {RESULT_LEN} bytes")
    _, seq, ts, activity, p8, flags, change_p, change_lead, fall_p, fall_lead, impact = (
        _RESULT.unpack_from(buf)
    )
    activity = None if activity == NO_ACTIVITY else activity
    error = _result_error(flags, activity)
    if error:
        raise ProtocolError(DropReason.BAD_FIELD, error)
    return ResultFrame(
        seq, ts, activity, p8, flags, change_p, change_lead, fall_p, fall_lead, impact
    )


@dataclass
class DecoderStats:
    """What a decoder kept and dropped since it was created.

    Attributes:
        messages_ok: messages decoded and returned.
        dropped: packets (or notifications) discarded, per reason.
        bytes_received: every byte fed in.
        bytes_discarded: bytes of the discarded packets, delimiters not counted.
    """

    messages_ok: int = 0
    dropped: dict[DropReason, int] = field(default_factory=lambda: dict.fromkeys(DropReason, 0))
    bytes_received: int = 0
    bytes_discarded: int = 0

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def _drop(self, reason: DropReason, n_bytes: int) -> None:
        self.dropped[reason] += 1
        self.bytes_discarded += n_bytes


class StreamDecoder:
    """Incremental serial decoder: ``feed(bytes) -> list[Message]``.

    Any split of the byte stream gives the same messages. A bad packet costs only itself: the
    next 0x00 delimiter resynchronises. Never raises on any bytes; see ``stats`` for what was
    dropped and why.
    """

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._pending = b""
        # True after discarding an over-long packet's start, until its delimiter arrives.
        self._skipping = False

    def feed(self, data: bytes) -> list[Message]:
        """Decode every complete packet in the stream so far."""
        stats = self.stats
        stats.bytes_received += len(data)
        packets = (self._pending + bytes(data)).split(b"\x00")
        tail = packets.pop()
        start = 0
        if self._skipping:
            if packets:
                stats.bytes_discarded += len(packets[0])
                start, self._skipping = 1, False
            else:
                stats.bytes_discarded += len(tail)
                tail = b""
        if len(tail) > MAX_SERIAL_PACKET_LEN:
            stats._drop(DropReason.TOO_LONG, len(tail))
            tail, self._skipping = b"", True
        self._pending = tail
        out = []
        for k in range(start, len(packets)):
            message = self._decode_packet(packets[k])
            if message is not None:
                out.append(message)
        stats.messages_ok += len(out)
        return out

    def _decode_packet(self, packet: bytes) -> Message | None:
        n = len(packet)
        if n == 0:
            return None  # back-to-back delimiters: allowed, a device may send one to resync
        if n > MAX_SERIAL_PACKET_LEN:
            self.stats._drop(DropReason.TOO_LONG, n)
            return None
        try:
            raw = _cobs_decode_nonzero(packet)
        except CobsError:
            self.stats._drop(DropReason.COBS_ERROR, n)
            return None
        end = len(raw) - CRC_LEN
        if end < 1:
            self.stats._drop(DropReason.TOO_SHORT, n)
            return None
        if binascii.crc_hqx(raw[:end], CRC_INIT) != raw[end] | raw[end + 1] << 8:
            self.stats._drop(DropReason.BAD_CRC, n)
            return None
        try:
            return _parse(raw, end)
        except ProtocolError as exc:
            self.stats._drop(exc.reason, n)
            return None


class NotificationDecoder:
    """BLE decoder: one message per notification; never raises, counts drops in ``stats``."""

    def __init__(self) -> None:
        self.stats = DecoderStats()

    def decode(self, payload: bytes) -> Message | None:
        """The message in one notification payload, or None (counted in ``stats``)."""
        self.stats.bytes_received += len(payload)
        try:
            message = parse_message(payload)
        except ProtocolError as exc:
            self.stats._drop(exc.reason, len(payload))
            return None
        self.stats.messages_ok += 1
        return message


def samples_per_notification(att_mtu: int = DEFAULT_ATT_MTU) -> int:
    """How many samples one notification carries at a negotiated ATT MTU (0 if none fit)."""
    return max(0, min(MAX_SAMPLES_PER_FRAME, (att_mtu - ATT_HEADER_LEN - SAMPLE_HEADER_LEN) // 12))
