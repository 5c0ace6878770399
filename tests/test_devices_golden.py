"""Device profiles and emulated peripherals against the vendors' own bytes.

``firmware_bridge/vectors/devices.json`` holds exchanges and frames from the vendors (Polar's
SDK tests and a Verity Sense log, a MetaWear debug log); both the decoders (``gaitedge.devices``)
and the emulated peripherals (``firmware_bridge.peripherals``) are checked against them, never
only against each other.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.peripherals import make_peripheral
from firmware_bridge.peripherals import polar as polar_device
from gaitedge.devices import DropReason, detect, list_devices, metawear, movesense, polar, thingy
from gaitedge.devices.gatt import GattProfile, LayoutError, load_layout
from gaitedge.units import STANDARD_GRAVITY_M_S2

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "firmware_bridge/vectors/devices.json").read_text()
)
POLAR, METAWEAR = VECTORS["polar"], VECTORS["metawear"]


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


def peripheral(name: str, **options):
    t = np.arange(200) / 50.0
    imu = np.column_stack([0 * t, 0 * t, 9.81 + 0 * t, 0 * t, 0 * t, 0 * t])
    device = make_peripheral(name, t, imu, **options)
    replies = []
    device.connected(lambda uuid, payload, _sent: replies.append((uuid, payload)))
    return device, replies


def test_polar_verity_start_exchange_is_the_real_one():
    golden = POLAR["verity_acc_start"]
    settings = polar.StreamSettings(**golden["settings"])
    assert polar.start_command(polar.MeasurementType.ACC, settings) == hexbytes(golden["command"])
    response = polar.parse_response(hexbytes(golden["response"]))
    assert polar.status_name(response.status) == golden["response_status"]
    assert response.factor == golden["response_factor"] and not response.more
    # The emulated Verity answers the real start with the real indication.
    device, replies = peripheral("polar")
    device.write(polar_device.CONTROL_POINT, hexbytes(golden["command"]))
    assert replies == [(polar_device.CONTROL_POINT, hexbytes(golden["response"]))]
    assert device.streaming == {"acc": 0}


def test_polar_status_codes_are_reported_by_name():
    assert polar.status_name(8) == "INVALID_SAMPLE_RATE"
    assert polar.status_name(13) == "DEVICE_IN_CHARGER"
    assert polar.status_name(99) == "UNKNOWN_STATUS_99"
    device, replies = peripheral("polar")
    asked = polar.start_command(polar.MeasurementType.ACC, polar.StreamSettings(rate_hz=104))
    device.write(polar_device.CONTROL_POINT, asked)
    status = polar.parse_response(replies[0][1]).status
    assert polar.status_name(status) == "INVALID_SAMPLE_RATE"


def test_polar_verity_first_frame_header_and_reference_sample():
    golden = POLAR["verity_first_frame_prefix"]
    prefix = hexbytes(golden["bytes"])
    bits, count = golden["first_block"]["bits"], golden["first_block"]["count"]
    # Only the first 18 bytes are known: the deltas (8 bits x 10 samples x 3 axes = 30 bytes)
    # are filled with zeros, so the 10 samples after the reference repeat it.
    frame = polar.parse_frame(prefix + bytes(count * 3 * bits // 8))
    assert frame.kind is polar.MeasurementType.ACC
    assert frame.timestamp_ns == golden["timestamp_ns"]
    assert polar.sensor_time(frame.timestamp_ns).isoformat().startswith(golden["sensor_time_utc"])
    assert frame.compressed and 0x80 | frame.frame_type == golden["frame_type"]
    np.testing.assert_array_equal(frame.values, [golden["reference_mg"]] * (1 + count))
    with pytest.raises(polar.DeviceError, match="bad delta block"):
        polar.parse_frame(prefix)  # the block runs past the notification


@pytest.mark.parametrize(
    "name", ["sdk_acc_compressed_type0", "sdk_acc_compressed_type1", "sdk_gyro_compressed_type0"]
)
def test_polar_sdk_delta_frames_decode_as_the_sdk_does(name):
    golden = POLAR[name]
    frame = polar.parse_frame(hexbytes(golden["bytes"]), golden["factor"])
    assert frame.timestamp_ns == golden["timestamp_ns"]
    if "first_counts" in golden:  # compressed type 0: G x factor x 1000 = mG
        assert len(frame.values) == golden["samples"]
        expected = np.array(golden["first_counts"]) * golden["factor"] * 1000
        np.testing.assert_allclose(frame.values[:2], expected, rtol=1e-12)
        assert np.abs(frame.values).max() <= golden["range_g"] * 1000
    else:
        expected = golden.get("mg", golden.get("dps"))
        np.testing.assert_array_equal(frame.values, expected)


def test_polar_sdk_float_gyro_frame_accumulates_on_bit_patterns():
    golden = POLAR["sdk_gyro_compressed_type1_factor"]
    frame = polar.parse_frame(hexbytes(golden["bytes"]), golden["factor"])
    bits = np.array([[int(b, 16) for b in row] for row in golden["float_bits"]], np.uint32)
    np.testing.assert_array_equal(frame.values, bits.view(np.float32) * golden["factor"])


def test_polar_sample_times_last_sample_carries_the_stamp():
    golden = POLAR["sdk_acc_compressed_type1"]
    times, lost = polar.sample_times_ns(
        golden["timestamp_ns"], golden["previous_timestamp_ns"], 2, 52
    )
    np.testing.assert_allclose(times, [100.5, 101.0])
    assert lost == 0
    # First frame: spaced back from the stamp by the nominal rate.
    times, _ = polar.sample_times_ns(1_000_000_000, None, 3, 50)
    np.testing.assert_allclose(times, [960_000_000, 980_000_000, 1_000_000_000])
    # Two frames of 9 lost between: counted from the stamps, spacing kept nominal.
    times, lost = polar.sample_times_ns(1_000_000_000 + 27 * 20_000_000, 1_000_000_000, 9, 50)
    assert lost == 18
    np.testing.assert_allclose(np.diff(times), 20_000_000)


def test_emulated_polar_delta_packing_matches_the_sdk_frame_byte_for_byte():
    golden = POLAR["sdk_acc_compressed_type0"]
    data = hexbytes(golden["bytes"])
    counts = polar.decode_delta_frame(data[10:], 3, 2)  # the SDK frame's own integers
    assert polar_device.delta_block(counts, bits=10) == data[10:]
    assert polar_device.delta_bits(np.diff(counts, axis=0).reshape(-1)) <= 10


def test_metawear_setup_writes_and_sample_are_the_real_ones():
    golden = METAWEAR["setup_and_sample"]
    writes = metawear.acc_setup(metawear.AccPart.BMI160, **{"rate_hz": 50, "range_g": 2})
    assert writes == [hexbytes(w) for w in golden["writes"]]
    counts = metawear.parse_xyz(hexbytes(golden["notification"]))
    np.testing.assert_allclose(
        counts[0] / metawear.ACC_LSB_PER_G[2], golden["g"], atol=golden["tolerance_g"]
    )
    gyro = METAWEAR["gyro_sample"]
    np.testing.assert_array_equal(
        metawear.parse_xyz(hexbytes(gyro["notification"]))[0], gyro["counts"]
    )
    # The emulated board, set up by the real writes at +-2 g, sends the real bytes for the
    # sample it was given.
    device, _ = peripheral("metawear")
    for write in golden["writes"]:
        device.write(metawear.COMMAND_UUID, hexbytes(write))
    assert device.acc_range_g == 2 and device.streaming == {"acc": 0}
    device.imu[:] = 0
    device.imu[0, :3] = np.array([1512, -356, 17011]) / 16384 * 9.80665
    (note,) = device.encode(0, 1)
    assert note[1] == hexbytes(golden["notification"])


def test_metawear_profile_pairs_acc_and_gyro_from_their_registers():
    profile = metawear.MetaWearProfile(range_g=2)
    assert (
        profile.decode(metawear.NOTIFY_UUID, hexbytes(METAWEAR["setup_and_sample"]["notification"]))
        == []
    )
    (samples,) = profile.decode(
        metawear.NOTIFY_UUID, hexbytes(METAWEAR["gyro_sample"]["notification"])
    )
    np.testing.assert_allclose(samples.imu[0, 2], 17011 / 16384 * STANDARD_GRAVITY_M_S2)
    np.testing.assert_allclose(np.rad2deg(samples.imu[0, 3:]), np.array([-6, 2, 4]) / 16.4)
    assert samples.t_device_s is None  # MetaWear sends no time while streaming
    profile.decode(metawear.NOTIFY_UUID, b"\x03\x04\x00")
    assert profile.stats.dropped[DropReason.MALFORMED] == 1


def test_movesense_subscribe_and_imu6_packet():
    assert movesense.subscribe_command(52, 99) == bytes([1, 99]) + b"/Meas/IMU6/52"
    acc = [[0.1, 0.2, 9.8], [0.3, 0.4, 9.7]]
    gyro = [[10.0, -20.0, 30.0], [1.0, 2.0, 3.0]]
    floats = np.concatenate([acc, gyro]).reshape(-1)
    packet = bytes([2, movesense.REFERENCE]) + struct.pack("<I12f", 5000, *floats)
    stamp, values = movesense.parse_data(packet)
    assert stamp == 5000
    np.testing.assert_allclose(values, np.hstack([acc, gyro]), rtol=1e-6)
    profile = movesense.MovesenseProfile(52)
    (first,) = profile.decode(movesense.NOTIFY_UUID, packet)
    # The next packet starts 6 samples later: the 2 of this one, then 4 lost.
    later = bytes([2, movesense.REFERENCE]) + struct.pack("<I12f", 5115, *floats)
    (second,) = profile.decode(movesense.NOTIFY_UUID, later)
    assert first.lost_samples == 0 and second.lost_samples == 4
    np.testing.assert_allclose(second.t_device_s, [0.115, 0.115 + 1 / 52])
    np.testing.assert_allclose(first.t_device_s, [0, 1 / 52])


def test_thingy_raw_data_fixed_point():
    # Q6.10 g and Q11.5 deg/s: the gyroscope divides by 32 (not 256, a decoder seen in the wild).
    raw = struct.pack("<9h", 1024, 0, -512, 32, -64, 16, 100, 100, 100)
    np.testing.assert_allclose(thingy.parse_raw(raw), [[1.0, 0.0, -0.5, 1.0, -2.0, 0.5]])
    with pytest.raises(thingy.DeviceError, match="18"):
        thingy.parse_raw(raw[:12])


def test_shipped_layouts_and_bad_layouts(tmp_path):
    layout = load_layout("arduino-science-journal")
    assert layout.service == "555a0002-0000-467a-9538-01f0652c74e8"
    assert [c.uuid[:13] for c in layout.chars] == ["555a0002-0011", "555a0002-0012"]
    profile = GattProfile(layout)
    acc, gyro = layout.chars[0].uuid, layout.chars[1].uuid
    assert profile.decode(acc, struct.pack("<3f", 0.0, 0.0, 1.0)) == []
    (samples,) = profile.decode(gyro, struct.pack("<3f", 90.0, 0.0, 0.0))
    np.testing.assert_allclose(samples.imu[0], [0, 0, STANDARD_GRAVITY_M_S2, np.pi / 2, 0, 0])
    uart = GattProfile(load_layout("nordic-uart-csv"))
    tx = uart.layout.chars[0].uuid
    # Subscribed mid-line: the tail of "-0.12345,0,1,0,0,0" has six cells but a wrong first
    # one; nothing before the first newline is used, and it is not a decoder error.
    assert uart.decode(tx, b"45,0,1,0,") == []
    assert uart.decode(tx, b"0,0\n0,0,1,0,0,") == []  # a line split across notifications
    (samples,) = uart.decode(tx, b"0\n1,0,0,0,0,0\nbroken line\n0,1")
    np.testing.assert_allclose(samples.imu[:, 2], [STANDARD_GRAVITY_M_S2, 0])
    assert uart.stats.dropped == {DropReason.MALFORMED: 1}
    # A cell sent as nan, inf or past float's range is a malformed line, counted, never a
    # sample (it reached the chain, with numpy warnings on stderr); so is a float field of a
    # binary layout sent as NaN.
    (samples,) = uart.decode(
        tx, b",0,0,0,0\nnan,0,1,0,0,0\n0,0,1e400,0,0,0\n0,0,3,0,0,inf\n0,0,4,0,0,0\n"
    )  # the first completes the pending "0,1": acc_y 1 g
    np.testing.assert_allclose(
        samples.imu[:, 1:3], [[STANDARD_GRAVITY_M_S2, 0], [0, 4 * STANDARD_GRAVITY_M_S2]]
    )
    assert uart.stats.dropped == {DropReason.MALFORMED: 4}
    assert profile.decode(acc, struct.pack("<6f", 0.0, 0.0, 1.0, float("nan"), 0.0, 1.0)) == []
    (samples,) = profile.decode(gyro, struct.pack("<6f", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0))
    assert len(samples.imu) == 1 and profile.stats.dropped == {DropReason.MALFORMED: 1}
    uart.reset()  # a reconnect: the stream is joined mid-line again
    assert uart.decode(tx, b"0,0,1,0,0,0\n") == []
    (samples,) = uart.decode(tx, b"0,0,2,0,0,0\n")
    np.testing.assert_allclose(samples.imu[0, 2], 2 * STANDARD_GRAVITY_M_S2)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"service": "x", "rate_hz": 50, "characteristics": [
        {"uuid": "a", "struct": "<3f", "fields": ["acc_x", "acc_y"]}]}))  # fmt: skip
    with pytest.raises(LayoutError, match="holds 3 values, 2 named"):
        load_layout(bad)
    with pytest.raises(LayoutError, match="no such file or shipped layout"):
        load_layout(tmp_path / "missing.json")


def test_detection_by_services_then_name():
    assert detect({polar.SERVICE_UUID.upper()}) == "polar"
    assert detect({"0000180d-0000-1000-8000-00805f9b34fb"}, "Polar Sense 1A2B3C4D") == "polar"
    assert detect({metawear.SERVICE_UUID}) == "metawear"
    assert detect(set(), "Movesense 220330000123") == "movesense"
    assert detect({thingy.CONFIGURATION_SERVICE_UUID}) == "thingy"
    assert detect({"555a0002-0000-467a-9538-01f0652c74e8"}) == "gatt"
    assert detect({"0000180f-0000-1000-8000-00805f9b34fb"}, "headphones") is None
    assert {d.name for d in list_devices()} >= {"polar", "metawear", "movesense", "thingy"}


def test_host_clocked_loss_is_inferred_from_arrival_times():
    """MetaWear and Thingy send no time: a second of missing notifications shows in the host
    clock, is counted, and moves stream time on (arrivals jitter by up to 30 ms)."""
    from gaitedge.devices import Samples
    from gaitedge.devices.stream import DeviceAssembler
    from gaitedge.sources import SourceStats

    stats = SourceStats()
    assembler = DeviceAssembler("board", stats, rate_hz=50.0)
    rng = np.random.default_rng(0)
    chunks = []
    for k in list(range(200)) + list(range(250, 400)):  # samples 200..249 never arrive
        host = 100.0 + k / 50.0 + rng.uniform(0.0, 0.03)
        chunks += assembler.add(Samples(np.zeros((1, 6))), host)
    t = np.concatenate([c.t_s for c in chunks])
    assert stats.lost_frames == 50 and sum(c.lost_frames for c in chunks) == 50
    np.testing.assert_allclose(t[200] - t[199], 51 / 50.0)
    np.testing.assert_allclose(np.delete(np.diff(t), 199), 1 / 50.0)
