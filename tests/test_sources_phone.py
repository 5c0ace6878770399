"""Phones over the network: Sensor Logger's push over real HTTP(S) and a real mosquitto broker,
phyphox's remote access over real HTTP, and ``gaitedge listen --http`` end to end.

The emulated phones (``firmware_bridge.phones``) encode a held-out HAPT recording (the shipped
demo's subject) as the apps do; the vendors' documented payloads pin both sides."""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from firmware_bridge.phones import (
    EmulatedPhyphox,
    PushConfig,
    PushingPhone,
    delivery_order,
    free_port,
    http_sender,
    java_sci,
    post,
    push_messages,
    reading_json,
)
from gaitedge.cli import app
from gaitedge.demo import DEMO_RECORDING
from gaitedge.formats.base import Export, SensorKind
from gaitedge.formats.join import Convention, make_series, to_recording
from gaitedge.recording import read_recording
from gaitedge.sources import HttpSource, MqttSource, PhyphoxSource, PushError, parse_push
from gaitedge.sources.base import SourceStats
from gaitedge.sources.device import SourceError
from gaitedge.sources.phone import PhoneStream, Reorder
from gaitedge.sources.phyphox import find_buffers

# PUSHING.md's schema with the README's documented accelerometer reading and location record
# (values nested under "values": UNITS.md), verbatim numbers.
DOCUMENTED_PUSH = """{
    "messageId": 0,
    "sessionId": "identifier",
    "deviceId": "identifier",
    "payload": [
        {"name": "accelerometer", "time": 1698501144401773000,
         "values": {"z": -0.10382747650146484, "y": -0.0009566396474838257,
                    "x": 0.06110857427120209}},
        {"name": "location", "time": 1698501145514000000,
         "values": {"bearingAccuracy": 0, "speed": 0, "altitude": 214.1999969482422,
                    "longitude": 0.0, "latitude": 0.0}}
    ]
}"""


@pytest.fixture(scope="module")
def held_out():
    """The first 40 s of the shipped demo recording (a held-out HAPT test subject)."""
    rec = read_recording(DEMO_RECORDING)
    n = int(40 * rec.median_rate_hz)
    return rec.timestamp_s[:n], rec.imu[:n]


def test_documented_push_message_decodes() -> None:
    msg = parse_push(DOCUMENTED_PUSH)
    assert (msg.message_id, msg.session_id, msg.device_id, msg.skipped) == (
        0,
        "identifier",
        "identifier",
        1,
    )
    ns, xyz = msg.sensors["accelerometer"]
    assert ns.tolist() == [1698501144401773000]
    assert xyz.tolist() == [[0.06110857427120209, -0.0009566396474838257, -0.10382747650146484]]


def test_emulated_phone_writes_the_documented_reading() -> None:
    """The emulator's reading is the documented one, number for number (JavaScript printing:
    the ms stamp times 1e6 as 19 digits)."""
    text = reading_json(
        "accelerometer",
        1698501144401.773,
        np.array([0.06110857427120209, -0.0009566396474838257, -0.10382747650146484]),
        None,
    )
    documented = json.loads(DOCUMENTED_PUSH)["payload"][0]
    assert json.loads(text) == documented
    assert '"time":1698501144401773000,' in text


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"messageId": 0, "payload": []}', "no sessionId, deviceId"),
        ('{"messageId": -1, "sessionId": "s", "deviceId": "d", "payload": []}', "messageId"),
        ('{"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": {}}', "not a list"),
        (
            '{"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": '
            '[{"name": "gyroscope", "time": 1, "values": {"x": 1, "y": 2}}]}',
            "payload[0] (gyroscope): values need numeric x, y, z",
        ),
        (
            '{"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": '
            '[{"name": "gyroscope", "time": "soon", "values": {"x": 1, "y": 2, "z": 3}}]}',
            "is not epoch ns",
        ),
        # a stamp past int64 (a float, an integer) or NaN after a good reading: the batch's
        # fast parse overflowed and the reading-by-reading one found nothing (UnboundLocalError,
        # ValueError: the listener stopped on one bad MQTT message)
        (
            '{"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": '
            '[{"name": "gyroscope", "time": 5, "values": {"x": 1, "y": 2, "z": 3}}, '
            '{"name": "gyroscope", "time": 1e30, "values": {"x": 1, "y": 2, "z": 3}}]}',
            "payload[1] (gyroscope): time 1e+30 is not epoch ns",
        ),
        (
            '{"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": '
            '[{"name": "gyroscope", "time": 1000000000000000000000000000000, '
            '"values": {"x": 1, "y": 2, "z": 3}}]}',
            "is not epoch ns",
        ),
        (
            '{"messageId": 0, "sessionId": "s", "deviceId": "d", "payload": '
            '[{"name": "gyroscope", "time": NaN, "values": {"x": 1, "y": 2, "z": 3}}]}',
            "time nan is not epoch ns",
        ),
    ],
    ids=[
        "not-json",
        "array",
        "no-ids",
        "negative-id",
        "payload-object",
        "no-z",
        "time-text",
        "time-float-past-int64",
        "time-int-past-int64",
        "time-nan",
    ],
)
def test_malformed_push_is_refused_clearly(body: str, says: str) -> None:
    with pytest.raises(PushError, match=re_escape(says)):
        parse_push(body)


def re_escape(text: str) -> str:
    import re

    return re.escape(text)


def test_reorder_restores_order_counts_late_and_lost() -> None:
    r = Reorder(window=4, wait_s=1.0)
    assert r.add(1, "m1", 0.0) == []  # the session's first id is the smallest within wait_s
    assert r.add(0, "m0", 0.1) == []
    assert r.release(1.0) == ["m0", "m1"]
    assert r.add(3, "m3", 1.1) == []  # 2 is missing: wait
    assert r.add(2, "m2", 1.2) == ["m2", "m3"]
    assert r.add(2, "again", 1.3) == [] and r.late == 1
    assert r.add(5, "m5", 1.4) == []  # 4 never comes
    assert r.release(2.0) == []
    assert r.release(2.5) == ["m5"] and r.lost == 1
    assert r.add(6, "m6", 2.6) == ["m6"]
    for i in range(8, 14):  # a window's worth held behind a gap releases without waiting
        r.add(i, f"m{i}", 2.7)
    assert r.expected == 14 and r.lost == 2


@pytest.mark.parametrize(
    ("platform", "stamp_ms"),
    [("android", 0), ("ios", 0), ("android", 10), ("ios", 10), ("android", 50)],
    ids=["android", "ios", "android-10ms-ties", "ios-10ms-ties", "android-50ms-ties"],
)  # (an iOS phone at 50 ms is not told from Android: its sensors' shared stamps are the clue)
def test_live_join_equals_the_file_join(held_out, platform: str, stamp_ms: int) -> None:
    """Messages decoded one at a time give what ``formats.join`` gives for the whole session:
    the same sign and gravity rules, the same timeline, the same interpolated values; also
    when the phone stamps at 10 or 50 ms (runs of tied stamps: the live join dropped every
    sample whose stamp did not increase, two in three at 50 ms, uncounted on the status line;
    both joins now repair them the same way)."""
    t, imu = held_out
    bodies = push_messages(t, imu, PushConfig(platform=platform))

    def parsed(body: str):
        msg = parse_push(body)
        if stamp_ms:  # the phone's clock read at a coarser step
            step = stamp_ms * 1_000_000
            for name, (ns, xyz) in list(msg.sensors.items()):
                msg.sensors[name] = (ns // step * step, xyz)
        return msg

    phone = PhoneStream("p", SourceStats())
    chunks = [c for b in bodies for c in phone.add(parsed(b), 0.0, 0.0)]
    chunks += phone.expire(10.0, everything=True)
    live_t = np.concatenate([c.t_s for c in chunks])
    live = np.concatenate([c.imu for c in chunks])

    msgs = [parsed(b) for b in bodies]
    ns0 = min(int(ns[0]) for ns, _ in msgs[0].sensors.values())
    convention = Convention.ANDROID if platform == "android" else Convention.IOS

    def series(name: str, kind: SensorKind, unit: str = "m/s^2"):
        ns = np.concatenate([m.sensors[name][0] for m in msgs])
        xyz = np.concatenate([m.sensors[name][1] for m in msgs])
        t_s = (ns - ns0) * 1e-9
        return make_series(kind, t_s, xyz, unit=unit, where=name, convention=convention)

    gyro = series("gyroscope", SensorKind.GYRO, "rad/s")
    if platform == "android":
        acc = [series("totalacceleration", SensorKind.ACC)]
    else:
        acc = [
            series("accelerometer", SensorKind.LINEAR_ACC),
            series("gravity", SensorKind.GRAVITY),
        ]
    offline = to_recording(Export("sensorlogger", [*acc, gyro], []), "push")
    assert phone.decided.convention is convention
    assert len(live_t) == len(offline.timestamp_s)
    np.testing.assert_allclose(live, offline.imu, rtol=0, atol=1e-12)
    # The file join spreads the few stamps the emulator clipped at the recording's end; the
    # live path hands them to the chain, which repairs them the same way.
    assert np.abs(live_t - offline.timestamp_s).max() < 2e-3
    # Back in the canonical frame and units: the recording's mean gravity within 0.05 m/s².
    np.testing.assert_allclose(live[:, :3].mean(axis=0), imu[:, :3].mean(axis=0), atol=0.05)


def test_a_phone_clock_stepping_back_loses_nothing(held_out) -> None:
    """The phone's clock steps back 60 s mid-session (an NTP correction): the live join
    dropped every sample until the clock passed its old newest stamp (half the session, no
    counter); the repair carries stream time on, every sample kept, counted as a reset."""
    t, imu = held_out
    bodies = push_messages(t, imu, PushConfig(platform="android"))

    def live(step_back_s: int):
        phone = PhoneStream("p", SourceStats())
        chunks = []
        for k, body in enumerate(bodies):
            msg = parse_push(body)
            if k >= len(bodies) // 2:
                for name, (ns, xyz) in list(msg.sensors.items()):
                    msg.sensors[name] = (ns - step_back_s * 1_000_000_000, xyz)
            chunks += phone.add(msg, 0.0, 0.0)
        chunks += phone.expire(10.0, everything=True)
        return phone, np.concatenate([c.t_s for c in chunks])

    (steady, want), (phone, got) = live(0), live(60)
    assert not phone.imu.acc_is_timeline  # the gyroscope's stamps are the timeline
    # all but a few at the step (each sensor's time carried on from its own newest stamp)
    assert len(want) - 8 <= len(got) <= len(want) and len(want) > 15000
    assert (np.diff(got) > 0).all()
    assert phone.imu.join.repaired["clock_resets"] == 2  # one per sensor
    assert steady.imu.join.repaired["clock_resets"] == 0


def test_a_phones_stamp_repairs_are_on_its_status_line(held_out) -> None:
    """A phone stamping at 50 ms: its join repairs two stamps in three before the chain sees
    them (increasing), so the status line said tied=0 while 'every repair is counted'."""
    from gaitedge.engine import load_engine
    from gaitedge.pipeline import Pipeline
    from gaitedge.runner import status
    from gaitedge.sinks import FanOut

    t, imu = held_out
    source = HttpSource("127.0.0.1", 0, token="t")
    step = 50_000_000
    chunks = []
    for body in push_messages(t[:1500], imu[:1500], PushConfig(platform="android")):
        msg = parse_push(body)
        for name, (ns, xyz) in list(msg.sensors.items()):
            msg.sensors[name] = (ns // step * step, xyz)
        chunks += source._add(msg, 0.0, 0.0)
    (phone,) = source.phones.values()
    chunks += phone.expire(10.0, everything=True)
    with Pipeline(load_engine(None), FanOut([])) as pipe:
        for chunk in chunks:
            pipe.process(chunk)
        (row,) = status(pipe, [source])
    repaired = phone.imu.join.repaired["tied"]
    assert repaired > 1500  # both sensors' tied stamps
    assert row.tied >= repaired and f"tied={row.tied} " in row.line()


def run_source(source, until, timeout_s: float):
    """Stream ``source`` until ``until(chunks)`` or the timeout; returns the chunks."""
    chunks = []

    async def main():
        async with source:

            async def consume():
                async for chunk in source.chunks():
                    chunks.append(chunk)
                    if until(chunks):
                        return

            task = asyncio.ensure_future(consume())
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                task.cancel()

    asyncio.run(main())
    return chunks


def samples(chunks, device=None) -> int:
    return sum(len(c.t_s) for c in chunks if device is None or c.device == device)


def test_http_push_reorders_counts_loss_and_refuses_the_unauthenticated(held_out) -> None:
    t, imu = held_out[0][:500], held_out[1][:500]  # 10 s
    config = PushConfig(platform="ios", batch_s=0.25)
    bodies = push_messages(t, imu, config)
    dropped = 9
    order = delivery_order(len(bodies), swap_p=0.4, drop=frozenset({dropped}), seed=2)
    expected = sum(len(parse_push(b).sensors["gyroscope"][0]) for b in bodies)
    lost_samples = len(parse_push(bodies[dropped]).sensors["gyroscope"][0])
    source = HttpSource("127.0.0.1", free_port(), token="t0ken", reorder_wait_s=0.5)
    codes: list[int] = []
    refused: list[int] = []
    url = source.push_url

    def intruders() -> None:
        time.sleep(0.3)
        refused.append(post(url.replace("t0ken", "wrong"), bodies[0]))
        refused.append(post(url.split("?")[0], bodies[0]))  # no token at all
        refused.append(post(url.split("?")[0], "{}", headers={"Authorization": "Bearer t0ken"}))
        # bodies json gives up on (recursion; digits past its limit): no answer at all before
        refused.append(post(url, "[" * 100_000 + "]" * 100_000))
        refused.append(post(url, '{"messageId": ' + "9" * 5000 + "}"))

    with PushingPhone(http_sender(url, codes=codes), bodies, order, batch_s=0.25, speed=5.0):
        threading.Thread(target=intruders, daemon=True).start()
        chunks = run_source(
            source, lambda c: samples(c) >= expected - lost_samples - 5, timeout_s=15
        )
    phone = source.phones[config.device_id]
    assert set(codes) == {200}
    assert refused == [401, 401, 400, 400, 400]  # a valid Bearer header gets to the schema
    assert source.stats.decoder_drops == {"unauthorised": 2, "bad_message": 3}
    assert source.refused_line() == (  # what `listen` prints at the end
        f"{source.device}: 5 messages refused before any phone: bad_message 3, unauthorised 2"
    )
    assert phone.stats.lost_frames == 1 and source.stats.lost_frames == 1
    assert sum(c.lost_frames for c in chunks) == 1
    # Everything but the dropped batch arrived, in time order, whatever the delivery order.
    got = samples(chunks)
    assert expected - lost_samples - 5 <= got <= expected - lost_samples
    t_all = np.concatenate([c.t_s for c in chunks])
    assert (np.diff(t_all) > 0).all()
    assert {c.device for c in chunks} == {config.device_id}


def test_https_with_a_certificate_and_two_phones(tmp_path: Path, held_out) -> None:
    from tests.certs import make_pki

    pki = make_pki(tmp_path)
    t, imu = held_out[0][:250], held_out[1][:250]
    phones = [
        PushConfig(platform="android", device_id="phone-a", batch_s=0.25),
        PushConfig(platform="ios", device_id="phone-b", batch_s=0.25),
    ]
    source = HttpSource(
        "127.0.0.1",
        free_port(),
        token="t0ken",
        certfile=pki.server_cert,
        keyfile=pki.server_key,
        reorder_wait_s=0.3,
    )
    assert source.push_url.startswith("https://")
    trusted = ssl.create_default_context(cafile=pki.ca)
    streams = [push_messages(t, imu, c) for c in phones]
    with (
        PushingPhone(
            http_sender(source.push_url, context=trusted),
            streams[0],
            list(range(len(streams[0]))),
            batch_s=0.25,
            speed=5.0,
        ),
        PushingPhone(
            http_sender(source.push_url, context=trusted),
            streams[1],
            list(range(len(streams[1]))),
            batch_s=0.25,
            speed=5.0,
        ),
    ):
        chunks = run_source(
            source,
            lambda c: samples(c, "phone-a") > 1500 and samples(c, "phone-b") > 400,
            timeout_s=15,
        )
        plain = source.push_url.replace("https://", "http://")
        with pytest.raises(OSError):  # nothing in clear text on the TLS port
            urllib.request.urlopen(urllib.request.Request(plain, data=b"{}"), timeout=3)
    assert set(source.phones) == {"phone-a", "phone-b"}
    assert source.phones["phone-a"].decided.convention is Convention.ANDROID
    assert source.phones["phone-b"].decided.convention is Convention.IOS
    for name in ("phone-a", "phone-b"):
        acc = np.concatenate([c.imu[:, :3] for c in chunks if c.device == name])
        np.testing.assert_allclose(acc.mean(axis=0), imu[:, :3].mean(axis=0), atol=0.1)


def test_http_listener_refuses_a_bad_certificate(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    source = HttpSource("127.0.0.1", free_port(), token="t", certfile=tmp_path / "cert.pem")
    with pytest.raises(SourceError, match="cannot serve HTTPS with certificate"):
        run_source(source, lambda c: True, timeout_s=1)


def test_http_listener_requires_a_token() -> None:
    with pytest.raises(ValueError, match="needs a token"):
        HttpSource("127.0.0.1", 0, token="")


def test_mqtt_source_on_a_real_broker(tmp_path: Path, held_out) -> None:
    import paho.mqtt.client as mqtt

    from tests.test_sinks import mosquitto_binary, running_mosquitto

    t, imu = held_out[0][:500], held_out[1][:500]
    config = PushConfig(platform="android", batch_s=0.25)
    bodies = push_messages(t, imu, config)
    order = delivery_order(len(bodies), swap_p=0.3, drop=frozenset({5}), seed=3)
    expected = sum(len(parse_push(bodies[i]).sensors["gyroscope"][0]) for i in order)
    with running_mosquitto(mosquitto_binary(), free_port(), tmp_path) as port:
        source = MqttSource(f"mqtt://127.0.0.1:{port}/sensor-logger", reorder_wait_s=0.5)
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        publisher.connect("127.0.0.1", port)
        publisher.loop_start()

        def publish(body: str, _stop) -> None:
            publisher.publish("sensor-logger", body, qos=0).wait_for_publish(5)

        try:
            # QoS 0 keeps nothing for a subscriber not there yet: the phone starts after 1 s.
            with PushingPhone(publish, bodies, order, batch_s=0.25, speed=5.0, delay_s=1.0):
                chunks = run_source(source, lambda c: samples(c) >= expected - 10, timeout_s=15)
        finally:
            publisher.loop_stop()
            publisher.disconnect()
    assert source.phones[config.device_id].stats.lost_frames == 1
    assert expected - 10 <= samples(chunks) <= expected
    assert {c.device for c in chunks} == {config.device_id}


def test_mqtt_source_without_a_broker_fails_clearly() -> None:
    source = MqttSource(f"mqtt://127.0.0.1:{free_port()}/sensor-logger", connect_timeout_s=0.5)
    with pytest.raises(SourceError, match=r"cannot subscribe to mqtt://127\.0\.0\.1"):
        run_source(source, lambda c: True, timeout_s=5)


def test_phyphox_documented_number_format_and_answer() -> None:
    """``0.#######E0``: 8 significant digits, trailing zeros dropped (the README's values of
    vendor-formats.md §A2 at the remote interface's precision)."""
    assert java_sci(3.674579167e-2) == "3.6745792E-2"
    assert java_sci(9.095835114) == "9.0958351E0"
    assert java_sci(-2.1157003780) == "-2.1157004E0"
    assert java_sci(0.0) == "0E0" and java_sci(1.0) == "1E0" and java_sci(1234.5) == "1.2345E3"


def test_phyphox_source_polls_every_sample(held_out) -> None:
    t, imu = held_out[0][:500], held_out[1][:500]
    with EmulatedPhyphox(t, imu, speed=10.0) as phone:
        answer = json.loads(urllib.request.urlopen(phone.url + "/get?acc_time=full").read())
        assert (
            answer["status"]["measuring"] is False and answer["buffer"]["acc_time"]["buffer"] == []
        )
        source = PhyphoxSource(phone.url, poll_s=0.05)
        (ta, _), (tg, _) = phone.acc, phone.gyro
        expected = int(((tg >= ta[0]) & (tg <= ta[-1])).sum())  # the join's span, 200 Hz stamps
        chunks = run_source(source, lambda c: samples(c) >= expected, timeout_s=10)
        phone.stop()
    assert source.buffers == {
        "acc": ("acc_time", "accX", "accY", "accZ"),
        "gyro": ("gyr_time", "gyrX", "gyrY", "gyrZ"),
    }
    assert samples(chunks) == expected
    assert source.polls > 5
    imu_all = np.concatenate([c.imu for c in chunks])
    # The 8 significant digits phyphox sends keep every value within 1e-6 of itself.
    np.testing.assert_allclose(imu_all[:, :3].mean(axis=0), imu[:, :3].mean(axis=0), atol=0.05)


def test_phyphox_wifi_drop_is_one_reconnect_and_loses_nothing(held_out) -> None:
    t, imu = held_out[0][:500], held_out[1][:500]
    with EmulatedPhyphox(t, imu, speed=10.0) as phone:
        source = PhyphoxSource(phone.url, poll_s=0.05, timeout_s=0.5)
        (ta, _), (tg, _) = phone.acc, phone.gyro
        expected = int(((tg >= ta[0]) & (tg <= ta[-1])).sum())

        def until(chunks) -> bool:
            if source.polls == 5:
                phone.offline_for(0.4)
            return samples(chunks) >= expected

        chunks = run_source(source, until, timeout_s=10)
    assert source.stats.reconnects == 1
    assert samples(chunks) == expected
    t_all = np.concatenate([c.t_s for c in chunks])
    assert (np.diff(t_all) > 0).all()


def test_phyphox_answers_it_would_not_send_are_counted_and_skipped(held_out) -> None:
    """Answers shaped otherwise (a proxy's page, a status or buffer of the wrong type, a value
    that is not a number) are counted and skipped, not raised out of the source (AttributeError,
    ValueError: the listener ended); the emulated phone's next answer is read as ever."""
    t, imu = held_out[0][:500], held_out[1][:500]
    with EmulatedPhyphox(t, imu, speed=10.0) as phone:
        source = PhyphoxSource(phone.url, poll_s=0.05)
        source.buffers = {
            "acc": ("acc_time", "accX", "accY", "accZ"),
            "gyro": ("gyr_time", "gyrX", "gyrY", "gyrZ"),
        }
        good = {"status": {"session": "s"}, "buffer": {n: {"buffer": [0.1, 0.2]}
                for names in source.buffers.values() for n in names}}  # fmt: skip
        bad = [
            "<html>captive portal</html>",
            {"status": [], "buffer": {}},
            {"status": {}, "buffer": {"acc_time": []}},
            {"status": {}, "buffer": {"acc_time": {"buffer": 7}}},
            {"status": {}, "buffer": {**good["buffer"], "accX": {"buffer": ["x", 1]}}},
        ]
        for answer in bad:
            assert source._add(answer, 0.0) == []
        assert source.stats.decoder_drops["bad_answer"] == len(bad)
        source.stats.decoder_drops.clear()
        chunks = run_source(source, lambda c: samples(c) >= 100, timeout_s=10)
        phone.stop()
    assert samples(chunks) >= 100 and not source.stats.decoder_drops


def test_phyphox_experiment_without_gyroscope_is_refused() -> None:
    config = {
        "inputs": [
            {
                "source": "accelerometer",
                "outputs": [{"x": "accX"}, {"y": "accY"}, {"z": "accZ"}, {"t": "acc_time"}],
            }
        ]
    }
    with pytest.raises(SourceError, match=r"no gyroscope input .* simple experiment"):
        find_buffers(config)


def test_phyphox_unreachable_is_one_clear_error() -> None:
    source = PhyphoxSource(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(SourceError, match=r"cannot reach phyphox at http://127\.0\.0\.1"):
        run_source(source, lambda c: True, timeout_s=3)


def test_listen_http_end_to_end_raises_alerts(tmp_path: Path) -> None:
    """``gaitedge listen --http`` in-process, an emulated phone pushing the demo recording:
    activity alerts come out of the JSONL sink, stamped with the phone as the device."""
    rec = read_recording(DEMO_RECORDING)
    n = int(60 * rec.median_rate_hz)
    port = free_port()
    config = PushConfig(platform="ios", batch_s=0.5)
    bodies = push_messages(rec.timestamp_s[:n], rec.imu[:n], config)
    url = f"http://127.0.0.1:{port}/push?token=s3cret"
    alerts = tmp_path / "alerts.jsonl"
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with PushingPhone(http_sender(url), bodies, list(range(len(bodies))), batch_s=0.5, speed=12.0):
        result = CliRunner().invoke(
            app,
            [
                "listen", "--http", f"127.0.0.1:{port}", "--http-token-file", str(token_file),
                "--mount", "none", "--duration", "7", "--alerts-jsonl", str(alerts), "-q",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in alerts.read_text().splitlines()]
    assert lines, result.output
    assert {a["device"] for a in lines} == {config.device_id}
    assert {a["type"] for a in lines} == {"activity"}


def test_listen_network_options_fail_with_one_line() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["listen", "--http", "8000"])
    assert result.exit_code == 2 and "expected HOST:PORT" in result.output
    result = runner.invoke(app, ["listen", "--mqtt-in", "mqtt://broker"])
    assert result.exit_code == 2 and "give the topic" in result.output
    result = runner.invoke(app, ["listen", "--phyphox", "phone:8080"])
    assert result.exit_code == 2 and "expected http://PHONE:8080" in result.output
    result = runner.invoke(app, ["listen", "--http-token-file", "x", "--serial", "/dev/null"])
    assert result.exit_code == 2 and "go with --http" in result.output


def _gaitedge() -> str:
    import sys

    return str(Path(sys.executable).with_name("gaitedge"))


def test_listen_http_on_a_busy_port_is_one_line_and_no_url() -> None:
    """A port another process holds: one line naming it, exit 1, and no push URL given out
    before it (the URL was printed first, then the bind failed)."""
    import socket
    import subprocess

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            [_gaitedge(), "listen", "--http", f"127.0.0.1:{port}", "--duration", "5"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ], done.stderr


def test_listen_http_port_0_gives_the_port_it_bound() -> None:
    """``--http 127.0.0.1:0``: the push URL names the port the system chose (it said :0), and
    a phone posting to that URL is answered by the listener."""
    import re
    import subprocess
    import urllib.error

    proc = subprocess.Popen(
        [_gaitedge(), "listen", "--http", "127.0.0.1:0", "--duration", "20", "-q"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stderr.readline()
        m = re.match(r"phones: push to (http://127\.0\.0\.1:(\d+)/push\?token=\S+) ", line)
        assert m and int(m.group(2)) != 0, line
        request = urllib.request.Request(m.group(1), data=b"not json", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400  # heard, authorised, the body refused
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_phone_the_model_refuses_stops_alone(tmp_path: Path) -> None:
    """Two phones pushing to one listener, one in g (acceleration divided by 9.81): that phone
    is refused and its pushes no longer read, the other's alerts come out, and the refusal
    is raised when the listener ends (it stopped the listener, and every phone, at once)."""
    from gaitedge.bundle import ContractError
    from gaitedge.runner import SinkOptions, open_pipeline, run_sources

    rec = read_recording(DEMO_RECORDING)
    n = int(60 * rec.median_rate_hz)
    in_g = rec.imu[:n].copy()
    in_g[:, :3] /= 9.80665
    good = PushConfig(platform="android", batch_s=0.5, device_id="good-phone")
    bad = PushConfig(platform="android", batch_s=0.5, device_id="phone-in-g")
    source = HttpSource("127.0.0.1", 0, token="s3cret")
    source.listen()
    url = f"http://127.0.0.1:{source.port}/push?token=s3cret"
    jsonl = tmp_path / "alerts.jsonl"
    phones = []
    for config, imu in ((good, rec.imu[:n]), (bad, in_g)):
        bodies = push_messages(rec.timestamp_s[:n], imu, config)
        phones.append(PushingPhone(http_sender(url), bodies, list(range(len(bodies))),
                                   batch_s=0.5, speed=12.0))  # fmt: skip
    with open_pipeline(None, SinkOptions(alerts_jsonl=jsonl), echo=lambda s: None) as pipe:
        with phones[0], phones[1], pytest.raises(ContractError, match="phone-in-g: median"):
            run_sources(pipe, [source], duration_s=7)
        devices = {row.device for row in pipe.device_status()}
    alerts = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert alerts and {a["device"] for a in alerts} == {"good-phone"}
    assert "good-phone" in devices
