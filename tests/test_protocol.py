"""The wire protocol: COBS, CRC, golden vectors, the decoders' robustness, and SI conversion."""

from __future__ import annotations

import binascii
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from firmware_bridge import (
    MAX_SAMPLES_PER_FRAME,
    PROTOCOL_MAJOR,
    CobsError,
    DeviceInfo,
    DropReason,
    NotificationDecoder,
    ProtocolError,
    SampleFrame,
    StreamDecoder,
    TimestampUnwrapper,
    cobs_decode,
    cobs_encode,
    counts_to_si,
    encode,
    encode_serial,
    frame_serial,
    frame_to_si,
    frames_lost,
    parse_message,
    samples_per_notification,
    si_to_counts,
)
from firmware_bridge.golden import (
    VECTORS_PATH,
    InvalidVector,
    ValidVector,
    build_vectors,
    decode_invalid,
    format_vectors,
    load_vectors,
)
from gaitedge.mounting import parse_axis_map

VECTORS = load_vectors()
VALID = [v for v in VECTORS if isinstance(v, ValidVector)]
INVALID = [v for v in VECTORS if isinstance(v, InvalidVector)]
INFO = DeviceInfo(device_id=0xC0FFEE, sample_rate_millihz=100_000, accel_range_g=16,
                  gyro_range_dps=2000)  # fmt: skip

frames_st = st.builds(
    SampleFrame,
    seq=st.integers(0, 65535),
    timestamp_us=st.integers(0, 2**32 - 1),
    samples=st.integers(1, MAX_SAMPLES_PER_FRAME).flatmap(
        lambda n: arrays(np.int16, (n, 6), elements=st.integers(-32768, 32767))
    ),
)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


# Published examples (Wikipedia, "Consistent Overhead Byte Stuffing"), without the delimiter.
COBS_EXAMPLES = [
    ("one_zero", b"\x00", b"\x01\x01"),
    ("two_zeros", b"\x00\x00", b"\x01\x01\x01"),
    ("zero_x_zero", b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    ("mixed", b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    ("no_zero", b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    ("trailing_zeros", b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    ("254_nonzero", bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    ("zero_then_254", bytes(range(255)), b"\x01\xff" + bytes(range(1, 255))),
    ("255_nonzero", bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    ("254_then_zero", bytes(range(2, 256)) + b"\x00",
     b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    ("253_zero_one", bytes(range(3, 256)) + b"\x00\x01",
     b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "encoded"), [e[1:] for e in COBS_EXAMPLES],
                         ids=[e[0] for e in COBS_EXAMPLES])  # fmt: skip
def test_cobs_matches_published_examples(data: bytes, encoded: bytes) -> None:
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


@given(st.binary(max_size=1200))
def test_cobs_round_trips_without_zero_bytes(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert b"\x00" not in encoded
    assert len(encoded) <= len(data) + 1 + len(data) // 254
    assert cobs_decode(encoded) == data


@pytest.mark.parametrize(
    "packet",
    [b"", b"\x03\x00\x01", b"\x05\x01\x02", b"\x02"],
    ids=["empty", "zero_inside", "code_past_end", "code_past_end_short"],
)
def test_cobs_decode_rejects_invalid_packets(packet: bytes) -> None:
    with pytest.raises(CobsError):
        cobs_decode(packet)


def test_crc_is_ccitt_false() -> None:
    # The catalogue's check value pins the variant: poly 0x1021, init 0xFFFF, no reflection.
    assert binascii.crc_hqx(b"123456789", 0xFFFF) == 0x29B1


def test_committed_vectors_match_the_codec() -> None:
    assert VECTORS_PATH.read_text(encoding="ascii") == format_vectors(build_vectors())
    assert len(VALID) >= 10 and len(INVALID) >= 10


@pytest.mark.parametrize("vector", VALID, ids=[v.name for v in VALID])
def test_valid_vector_encodes_and_decodes(vector: ValidVector) -> None:
    assert encode(vector.decoded) == vector.message
    assert encode_serial(vector.decoded) == vector.serial
    assert parse_message(vector.message) == vector.decoded
    assert NotificationDecoder().decode(vector.message) == vector.decoded
    assert StreamDecoder().feed(vector.serial) == [vector.decoded]


@pytest.mark.parametrize("vector", VALID, ids=[v.name for v in VALID])
def test_valid_vector_fed_one_byte_at_a_time(vector: ValidVector) -> None:
    decoder = StreamDecoder()
    out = [m for i in range(len(vector.serial)) for m in decoder.feed(vector.serial[i : i + 1])]
    assert out == [vector.decoded]
    assert decoder.stats.dropped_total == 0 and decoder.stats.messages_ok == 1


@pytest.mark.parametrize("chunk_size", [None, 1], ids=["whole", "byte_by_byte"])
@pytest.mark.parametrize("vector", INVALID, ids=[f"{v.transport}-{v.name}" for v in INVALID])
def test_invalid_vector_is_dropped_for_its_reason(
    vector: InvalidVector, chunk_size: int | None
) -> None:
    n_ok, stats = decode_invalid(vector, chunk_size)
    assert n_ok == vector.messages_ok == stats.messages_ok
    assert stats.dropped[vector.reason] == 1
    assert stats.dropped_total == 1


def test_device_info_from_a_newer_minor_keeps_its_known_fields() -> None:
    body = encode(DeviceInfo(5, 50_000, 4, 250, protocol_minor=3)) + b"\x01\x02\x03"
    assert parse_message(body) == DeviceInfo(5, 50_000, 4, 250, protocol_minor=3)


SIGNED_AXES = [(-3, -2, -1, 1, 2, 3)] * 3


def _rotation(mounting: tuple[int, ...]) -> np.ndarray:
    rot = np.zeros((3, 3))
    for row, axis in enumerate(mounting):
        rot[row, abs(axis) - 1] = np.sign(axis)
    return rot


def test_device_info_1_0_still_decodes_with_the_mounting_unknown() -> None:
    old = encode(DeviceInfo(5, 50_000, 4, 250, protocol_minor=0))
    assert len(old) == 15
    info = parse_message(old)
    assert info == DeviceInfo(5, 50_000, 4, 250, protocol_minor=0)
    assert info.mounting is None and info.mounting_axis_map is None
    # Bytes a newer minor would append are ignored by a 1.0 message's parse.
    assert parse_message(old + b"\x83\x83\x83") == info


def test_every_proper_rotation_round_trips_and_parse_axis_map_takes_it() -> None:
    proper = [m for m in itertools.product(*SIGNED_AXES) if len({abs(a) for a in m}) == 3]
    proper = [m for m in proper if np.linalg.det(_rotation(m)) > 0]
    assert len(proper) == 24
    for mounting in proper:
        info = DeviceInfo(1, 100_000, 16, 2000, mounting=mounting)
        body = encode(info)
        assert len(body) == 19 and info.protocol_minor == 2
        decoded = parse_message(body)
        assert decoded == info and decoded.mounting == mounting
        # body = R @ sensor: row k of R picks the sensor axis that body axis k reads.
        rot = parse_axis_map(decoded.mounting_axis_map)
        np.testing.assert_array_equal(rot, _rotation(mounting))


def test_mounting_axis_map_spells_the_belt_clip_example() -> None:
    info = DeviceInfo(1, 100_000, 16, 2000, mounting=(-2, 1, 3))
    assert info.mounting_axis_map == "-y,x,z"
    assert encode(info)[15:18] == bytes([0x82, 0x01, 0x03])
    assert DeviceInfo(1, 100_000, 16, 2000).mounting_axis_map is None


@pytest.mark.parametrize("mounting", [(-2, -1, 3), (1, 2, -3), (1, 1, 3), (0, 2, 3), (1, 2, 4)])
def test_device_info_refuses_a_mirrored_or_repeated_mounting(mounting: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="mounting"):
        DeviceInfo(1, 100_000, 16, 2000, mounting=mounting)


def test_a_mounting_needs_minor_1() -> None:
    with pytest.raises(ValueError, match="protocol_minor"):
        encode(DeviceInfo(1, 100_000, 16, 2000, protocol_minor=0, mounting=(1, 2, 3)))


def test_every_mounting_byte_triple_decodes_to_a_rotation_or_is_bad_field() -> None:
    codes = [0x00, 0x01, 0x02, 0x03, 0x80, 0x81, 0x82, 0x83, 0x04, 0x41, 0xFF]
    head = encode(DeviceInfo(9, 100_000, 16, 2000))[:15]
    stream, n_bad, n_ok = StreamDecoder(), 0, 0
    for raw in itertools.product(codes, repeat=3):
        try:
            info = parse_message(head + bytes(raw) + b"\0")
        except ProtocolError as exc:
            assert exc.reason is DropReason.BAD_FIELD
            n_bad += 1
        else:
            n_ok += 1
            assert (info.mounting is None) == (raw == (0, 0, 0))
            if info.mounting is not None:
                assert np.linalg.det(parse_axis_map(info.mounting_axis_map)) == pytest.approx(1)
        stream.feed(frame_serial(head + bytes(raw) + b"\0"))
    assert n_ok == 25  # 24 rotations and "unknown"
    assert stream.stats.messages_ok == n_ok
    assert stream.stats.dropped[DropReason.BAD_FIELD] == n_bad == len(codes) ** 3 - n_ok
    assert stream.stats.dropped_total == n_bad


def test_newer_minor_keeps_the_mounting_and_ignores_what_follows() -> None:
    info = DeviceInfo(5, 50_000, 4, 250, protocol_minor=2, mounting=(2, 3, 1))
    assert parse_message(encode(info) + b"\x07\x00") == info


def test_device_info_1_1_without_its_mounting_bytes_is_bad_length() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_message(encode(DeviceInfo(5, 50_000, 4, 250))[:16])
    assert info.value.reason is DropReason.BAD_LENGTH


def test_another_major_version_is_refused() -> None:
    body = bytearray(encode(INFO))
    body[0] = (PROTOCOL_MAJOR + 1) << 4 | body[0] & 0x0F
    with pytest.raises(ProtocolError) as info:
        parse_message(bytes(body))
    assert info.value.reason is DropReason.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    "frame",
    [
        SampleFrame(0, 0, np.zeros((0, 6), np.int16)),
        SampleFrame(0, 0, np.zeros((MAX_SAMPLES_PER_FRAME + 1, 6), np.int16)),
        SampleFrame(0, 0, np.zeros((1, 5), np.int16)),
        SampleFrame(0, 0, np.full((1, 6), 40000)),
        SampleFrame(0, 0, np.zeros((1, 6))),
        SampleFrame(65536, 0, np.zeros((1, 6), np.int16)),
        SampleFrame(0, 2**32, np.zeros((1, 6), np.int16)),
    ],
    ids=["no_samples", "too_many", "five_axes", "beyond_int16", "float", "seq_16_bits", "ts_32"],
)
def test_encode_refuses_values_the_wire_cannot_carry(frame: SampleFrame) -> None:
    with pytest.raises(ValueError):
        encode(frame)


@pytest.mark.parametrize(("mtu", "n"), [(21, 0), (23, 1), (34, 2), (247, 19), (250, 20), (517, 20)])
def test_samples_per_notification(mtu: int, n: int) -> None:
    assert samples_per_notification(mtu) == n
    if n:
        frame = SampleFrame(1, 2, np.zeros((n, 6), np.int16))
        assert len(encode(frame)) <= mtu - 3


@settings(max_examples=300)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=8))
def test_stream_decoder_never_raises(data: bytes, cuts: list[int]) -> None:
    decoder = StreamDecoder()
    for piece in _split(data, cuts):
        decoder.feed(piece)
    assert decoder.stats.bytes_received == len(data)
    assert decoder.stats.bytes_discarded <= len(data)


@settings(max_examples=300)
@given(st.binary(max_size=600))
def test_notification_decoder_never_raises(data: bytes) -> None:
    decoder = NotificationDecoder()
    message = decoder.decode(data)
    assert (message is None) == (decoder.stats.dropped_total == 1)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(frames_st, st.just(INFO)), min_size=1, max_size=12),
    st.lists(st.integers(0, 4000), max_size=10),
)
def test_valid_frames_survive_any_split(messages: list, cuts: list[int]) -> None:
    stream = b"".join(encode_serial(m) for m in messages)
    decoder = StreamDecoder()
    out = [m for piece in _split(stream, cuts) for m in decoder.feed(piece)]
    assert out == messages
    assert decoder.stats.dropped_total == 0


def _corrupt(stream: bytes, rate: float, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """Flip each byte with probability ``rate`` to a different value; returns the positions."""
    data = np.frombuffer(stream, np.uint8).copy()
    hit = np.flatnonzero(rng.random(len(data)) < rate)
    data[hit] ^= rng.integers(1, 256, len(hit)).astype(np.uint8)
    return data.tobytes(), hit


def test_random_corruption_loses_only_the_corrupted_frames() -> None:
    rng = np.random.default_rng(1234)
    frames = [
        SampleFrame(i % 65536, i * 40_000, rng.integers(-3000, 3000, (int(rng.integers(1, 9)), 6)))
        for i in range(4000)
    ]
    packets = [encode_serial(f) for f in frames]
    ends = np.cumsum([len(p) for p in packets])
    stream, hit = _corrupt(b"".join(packets), 1e-3, rng)
    owner = np.searchsorted(ends, hit, side="right")  # the frame each corrupted byte belongs to
    lost = set(owner.tolist())
    # A corrupted delimiter (a packet's last byte) merges the next packet into the damaged one.
    lost |= {int(k) + 1 for k, pos in zip(owner, hit, strict=True) if pos == ends[k] - 1}
    decoder = StreamDecoder()
    out = [m for i in range(0, len(stream), 4096) for m in decoder.feed(stream[i : i + 4096])]
    kept = [f for k, f in enumerate(frames) if k not in lost]
    assert 50 < len(lost) < len(frames) // 10
    assert out == kept
    stats = decoder.stats
    assert stats.messages_ok == len(frames) - len(lost)
    runs = sum(1 for k in lost if k - 1 not in lost)
    assert runs <= stats.dropped_total <= 2 * len(hit)
    assert stats.bytes_discarded > 0
    # The runtime sees exactly the lost frames as sequence gaps.
    seqs = [0xFFFF, *(m.seq for m in out), len(frames)]
    assert sum(frames_lost(a, b) for a, b in itertools.pairwise(seqs)) == len(lost)


def _mutate(stream: bytes, rng: np.random.Generator) -> bytes:
    """Flip, insert, delete and duplicate random spans: what a noisy, lossy UART produces."""
    data = bytearray(stream)
    for _ in range(int(rng.integers(1, 40))):
        at, span = int(rng.integers(0, len(data))), int(rng.integers(1, 300))
        op = rng.integers(0, 4)
        if op == 0:
            data[at] ^= int(rng.integers(1, 256))
        elif op == 1:
            data[at:at] = rng.integers(0, 256, span, dtype=np.uint8).tobytes()
        elif op == 2:
            del data[at : at + span]
        else:
            data[at:at] = data[at : at + span]
    return bytes(data)


def test_fuzz_mutated_streams_never_raise_and_never_invent_frames() -> None:
    rng = np.random.default_rng(99)
    frames = [SampleFrame(i, i * 10_000, np.full((1 + i % 20, 6), i - 100, np.int16))
              for i in range(200)]  # fmt: skip
    valid = {(f.seq, f.samples.tobytes()) for f in frames}
    stream = b"".join(encode_serial(f) for f in [INFO, *frames])
    for _ in range(200):
        data = _mutate(stream, rng)
        decoder = StreamDecoder()
        cuts = np.sort(rng.integers(0, len(data), int(rng.integers(0, 30))))
        out = [m for piece in _split(data, cuts.tolist()) for m in decoder.feed(piece)]
        # A message that survives is one that was sent (CRC-16 misses 1 in 65536 damaged ones).
        assert all(m == INFO or (m.seq, m.samples.tobytes()) in valid for m in out)
        assert decoder.stats.messages_ok == len(out)
        assert decoder.stats.bytes_discarded <= decoder.stats.bytes_received == len(data)


def test_connecting_mid_packet_costs_one_drop_then_resyncs() -> None:
    frames = [SampleFrame(i, i * 10_000, np.full((2, 6), i, np.int16)) for i in range(5)]
    stream = b"".join(encode_serial(f) for f in frames)
    decoder = StreamDecoder()
    out = decoder.feed(stream[7:])
    assert out == frames[1:]
    assert decoder.stats.dropped_total == 1


def test_an_unterminated_flood_is_dropped_once_and_the_stream_recovers() -> None:
    decoder = StreamDecoder()
    for _ in range(50):
        assert decoder.feed(b"\x07" * 100) == []
    frame = SampleFrame(3, 4, np.ones((1, 6), np.int16))
    assert decoder.feed(b"\x00" + encode_serial(frame)) == [frame]
    assert decoder.stats.dropped == {**dict.fromkeys(DropReason, 0), DropReason.TOO_LONG: 1}
    assert decoder.stats.bytes_discarded == 5000


@pytest.mark.parametrize(("prev", "seq", "lost"),
                         [(0, 1, 0), (65535, 0, 0), (65534, 1, 2), (10, 20, 9), (5, 5, 65535)],
                         ids=["next", "wrap", "two_across_wrap", "nine", "repeat"])  # fmt: skip
def test_frames_lost(prev: int, seq: int, lost: int) -> None:
    assert frames_lost(prev, seq) == lost


def test_timestamp_unwrapper_crosses_the_32_bit_wrap() -> None:
    unwrap = TimestampUnwrapper()
    raw = [2**32 - 20_000, 2**32 - 10_000, 0, 10_000, 2**32 - 1, 5]
    assert [unwrap.unwrap(t) for t in raw[:4]] == [
        2**32 - 20_000,
        2**32 - 10_000,
        2**32,
        2**32 + 10_000,
    ]
    assert unwrap.unwrap(raw[4]) == 2 * 2**32 - 1  # a whole wrap later, monotone
    assert unwrap.unwrap(raw[5]) == 2 * 2**32 + 5
    unwrap.reset()
    assert unwrap.unwrap(7) == 7


def test_si_round_trip_is_within_half_a_count() -> None:
    rng = np.random.default_rng(0)
    imu = np.column_stack([rng.normal(0, 30, (500, 3)), rng.normal(0, 5, (500, 3))])
    back = counts_to_si(si_to_counts(imu, INFO), INFO)
    step = np.array([16 * 9.80665] * 3 + [np.deg2rad(2000)] * 3) / 32768
    assert np.all(np.abs(back - imu) <= step / 2 + 1e-12)


def test_si_to_counts_saturates_at_full_scale() -> None:
    g = 9.80665
    imu = np.array([[16 * g, -16 * g, 100 * g, -100 * g, np.nan, 0.0]])
    assert si_to_counts(imu, INFO).tolist() == [[32767, -32768, 32767, -32768, 0, 0]]


def test_frame_to_si_times_and_units() -> None:
    frame = SampleFrame(0, 2_000_000, np.array([[2048, 0, -2048, 0, 0, 16384]] * 3, np.int16))
    t, imu = frame_to_si(frame, INFO)
    np.testing.assert_allclose(t, [2.0, 2.01, 2.02])
    np.testing.assert_allclose(imu[0], [9.80665, 0, -9.80665, 0, 0, np.deg2rad(1000)])
    t, _ = frame_to_si(frame, INFO, first_timestamp_us=2**32 + 2_000_000)
    assert t[0] == pytest.approx(2**32 * 1e-6 + 2.0)
