"""The contract between wearable firmware and the host: wire protocol, vectors, emulator.

``protocol`` is the one home of the wire bytes (PROTOCOL.md is its specification), ``convert``
turns decoded frames into SI units, ``golden`` writes the byte-exact vectors, ``emulator``
plays a recording as a device, and ``c/`` is the reference encoder for firmware.

The emulators are imported from ``firmware_bridge.emulator`` and ``firmware_bridge.ble_emulator``
(an emulated BlueZ on a private D-Bus) and not re-exported here: they need POSIX pseudo-terminals
or a ``dbus-daemon``, and the protocol itself must import on every platform a host runs on.
"""

from firmware_bridge.convert import (
    TimestampUnwrapper,
    counts_to_si,
    frame_to_si,
    frames_lost,
    sample_times_s,
    scale_per_count,
    si_to_counts,
)
from firmware_bridge.protocol import (
    DEFAULT_ATT_MTU,
    DEVICE_INFO_CHAR_UUID,
    DEVICE_NAME_PREFIX,
    MAX_MESSAGE_LEN,
    MAX_SAMPLES_PER_FRAME,
    MAX_SERIAL_PACKET_LEN,
    OUTPUT_NO_SAMPLES,
    OUTPUT_RESULTS,
    PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
    SAMPLES_CHAR_UUID,
    SERVICE_UUID,
    CobsError,
    DecoderStats,
    DeviceInfo,
    DropReason,
    Message,
    MessageType,
    NotificationDecoder,
    ProtocolError,
    ResultFrame,
    SampleFrame,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    encode,
    encode_serial,
    frame_serial,
    parse_message,
    samples_per_notification,
)

__all__ = [
    "DEFAULT_ATT_MTU",
    "DEVICE_INFO_CHAR_UUID",
    "DEVICE_NAME_PREFIX",
    "MAX_MESSAGE_LEN",
    "MAX_SAMPLES_PER_FRAME",
    "MAX_SERIAL_PACKET_LEN",
    "OUTPUT_NO_SAMPLES",
    "OUTPUT_RESULTS",
    "PROTOCOL_MAJOR",
    "PROTOCOL_MINOR",
    "SAMPLES_CHAR_UUID",
    "SERVICE_UUID",
    "CobsError",
    "DecoderStats",
    "DeviceInfo",
    "DropReason",
    "Message",
    "MessageType",
    "NotificationDecoder",
    "ProtocolError",
    "ResultFrame",
    "SampleFrame",
    "StreamDecoder",
    "TimestampUnwrapper",
    "cobs_decode",
    "cobs_encode",
    "counts_to_si",
    "encode",
    "encode_serial",
    "frame_serial",
    "frame_to_si",
    "frames_lost",
    "parse_message",
    "sample_times_s",
    "samples_per_notification",
    "scale_per_count",
    "si_to_counts",
]
