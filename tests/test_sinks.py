"""Alert sinks against real endpoints: a local HTTP server and a real mosquitto broker."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gaitedge.alerts import Alert, AlertType, Confirmation
from gaitedge.mqtt import mqtt_settings
from gaitedge.sinks import (
    FanOut,
    JsonlSink,
    MqttSink,
    StdoutSink,
    WebhookSink,
    alerts_from_jsonl,
    build_sinks,
)
from tests.conftest import missing

CHECKED_KEYS = {"t", "t_event", "type", "label", "p", "device"}
FALL = Alert(12.4, 11.6, AlertType.FALL, "fall", 0.97, "waist", (Confirmation.STILLNESS,))
WALK = Alert(30.0, 28.7, AlertType.ACTIVITY, "walking", 0.88, "waist")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_jsonl_sink_writes_one_object_per_line(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    sink = JsonlSink(path)
    sink.send(FALL)
    assert len(path.read_text().splitlines()) == 1  # flushed before close
    sink.send(WALK)
    sink.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert set(first) >= CHECKED_KEYS and set(second) >= CHECKED_KEYS
    assert first["type"] == "fall" and second == json.loads(WALK.to_json())
    assert alerts_from_jsonl(path) == [first, second]


def test_stdout_sink_writes_one_readable_line() -> None:
    lines: list[str] = []
    sink = StdoutSink(lines.append)
    sink.send(FALL)
    sink.send(WALK)
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert lines[0].startswith("FALL [waist] at 12.40 s (impact 11.60 s, +0.80 s)")
    assert "walking" in lines[1]


class _Recorder(BaseHTTPRequestHandler):
    """Answers 500 to the first ``server.fail_first`` POSTs, then 200; keeps the bodies."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        with server.lock:
            server.attempts += 1
            failing = server.attempts <= server.fail_first
            if not failing:
                server.bodies.append(json.loads(body))
        self.send_response(500 if failing else 200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.lock, server.attempts, server.fail_first, server.bodies = threading.Lock(), 0, 0, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_webhook_retries_5xx_and_delivers(http_server) -> None:
    http_server.fail_first = 2
    url = f"http://127.0.0.1:{http_server.server_address[1]}/alerts"
    sink = WebhookSink(url, retries=3, backoff_s=0.01)
    sink.send(FALL)
    sink.close()
    assert http_server.attempts == 3
    assert http_server.bodies == [json.loads(FALL.to_json())]
    assert (sink.delivered, sink.failed, sink.dropped) == (1, 0, 0)


def test_webhook_down_counts_a_failure_without_blocking() -> None:
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/", retries=2, backoff_s=0.05)
    start = time.perf_counter()
    for _ in range(5):
        sink.send(FALL)
    assert time.perf_counter() - start < 0.05  # queued, never waited on
    sink.close()
    assert sink.delivered == 0 and sink.failed == 5


def test_webhook_full_queue_drops_and_counts() -> None:
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/", retries=50, backoff_s=1.0, queue_size=2)
    for _ in range(10):
        sink.send(FALL)
    sink.close_timeout_s = 0.1
    sink.close()
    assert sink.dropped >= 7
    assert sink.dropped + sink.failed == 10


class _Raising:
    def __init__(self) -> None:
        self.closed = False

    def send(self, alert: Alert) -> None:
        raise OSError("disk full")

    def close(self) -> None:
        self.closed = True
        raise OSError("still full")


def test_fanout_keeps_delivering_when_a_sink_raises() -> None:
    lines: list[str] = []
    broken = _Raising()
    fan = FanOut([broken, StdoutSink(lines.append)])
    fan.send(FALL)
    fan.send(WALK)
    fan.close()
    assert len(lines) == 2
    assert fan.errors == {"_Raising": 2}
    assert broken.closed


def test_a_failing_sink_is_one_line_not_a_traceback_per_alert(caplog) -> None:
    """A JSONL file on a full disk logged a traceback for every alert: one line names the
    failure (the rest are counted as not delivered), and closing it is one line too."""
    fan = FanOut([_Raising()])
    with caplog.at_level("INFO", logger="gaitedge.sinks"):
        for _ in range(5):
            fan.send(FALL)
        fan.close()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        ("ERROR", "alert sink _Raising failed: disk full (its alerts are counted as lost)"),
        ("ERROR", "closing alert sink _Raising failed: still full"),
    ]
    assert not any(r.exc_info for r in caplog.records)
    assert fan.undelivered() == {"_Raising": 5}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("localhost", ("localhost", 1883)),
        ("broker.lan:8883", ("broker.lan", 8883)),
        ("[::1]:1884", ("::1", 1884)),
        ("[::1]", ("::1", 1883)),
    ],
    ids=["host", "host-port", "ipv6-port", "ipv6"],
)
def test_mqtt_address_parses(address, expected) -> None:
    settings = mqtt_settings(address, environ={})
    assert (settings.host, settings.port, settings.tls) == (*expected, False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mqtt": "broker:notaport"}, "port must be a number"),
        ({"mqtt": "broker:70000"}, "port must be a number"),
        ({"mqtt": ":1883"}, "expected HOST"),
        ({"mqtt": "broker", "mqtt_topic": "a/#"}, "without # or \\+"),
        ({"webhook": "ftp://example.org/x"}, "http:// or https://"),
        ({"webhook": "http://"}, "with a host"),
    ],
    ids=["port-text", "port-range", "no-host", "wildcard-topic", "scheme", "no-url-host"],
)
def test_build_sinks_rejects_malformed_options(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_sinks(**kwargs)


def test_build_sinks_opens_what_was_asked(tmp_path: Path) -> None:
    lines: list[str] = []
    fan = build_sinks(alerts_jsonl=tmp_path / "a.jsonl", echo=lines.append)
    assert [type(s) for s in fan.sinks] == [StdoutSink, JsonlSink]
    fan.send(FALL)
    fan.close()
    assert len(lines) == 1 and len(alerts_from_jsonl(tmp_path / "a.jsonl")) == 1


def test_lsl_sink_without_pylsl_fails_clearly() -> None:
    try:
        import pylsl  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="pip install pylsl"):
            build_sinks(lsl=True)
    else:
        pytest.skip("pylsl is installed; the missing-dependency message cannot be checked")


def test_replay_with_lsl_but_no_pylsl_is_one_line(monkeypatch) -> None:
    """`--lsl` where pylsl is not installed (made so here: its import fails) was a 52-line
    traceback: one line saying what to install, exit 2."""
    from typer.testing import CliRunner

    from gaitedge.cli import app
    from gaitedge.demo import DEMO_RECORDING

    monkeypatch.setitem(sys.modules, "pylsl", None)  # `import pylsl` raises ImportError
    result = CliRunner().invoke(app, ["replay", str(DEMO_RECORDING), "--fast", "-q", "--lsl"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        "error: the LSL sink needs pylsl and its liblsl: pip install pylsl "
        "(import of pylsl halted; None in sys.modules)"
    ]


def mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        missing("mosquitto binary not found (apt-get install mosquitto; .ci/run does)")
    return binary


@contextlib.contextmanager
def running_mosquitto(binary: str, port: int, folder: Path) -> Iterator[int]:
    """A real broker on 127.0.0.1:port, stopped on exit."""
    conf = folder / f"mosquitto-{port}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            return False

    try:
        if not wait_until(listening, 10.0):
            proc.kill()
            pytest.fail(f"mosquitto did not start: {proc.communicate()[1].decode()}")
        yield port
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    with running_mosquitto(mosquitto_binary(), free_port(), tmp_path) as port:
        yield port


def test_mqtt_sink_publishes_to_a_real_broker(mosquitto: int) -> None:
    import paho.mqtt.client as mqtt

    received: list[tuple[str, dict]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe("gaitedge/#", qos=1)
    sub.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    sub.on_message = lambda c, u, m: received.append((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", mosquitto)
    sub.loop_start()
    try:
        assert subscribed.wait(10), "subscriber did not subscribe"
        sink = MqttSink(f"127.0.0.1:{mosquitto}", topic="gaitedge/{device}/{type}")
        sink.send(FALL)  # may go out before the connection is up: paho queues QoS 1
        sink.send(WALK)
        sink.close()
        assert sink.delivered == 2
        assert wait_until(lambda: len(received) == 2, 10.0)
    finally:
        sub.loop_stop()
        sub.disconnect()
    topics = {topic: body for topic, body in received}
    assert set(topics) == {"gaitedge/waist/fall", "gaitedge/waist/activity"}
    assert topics["gaitedge/waist/fall"] == json.loads(FALL.to_json())
    assert set(topics["gaitedge/waist/activity"]) >= CHECKED_KEYS


def test_mqtt_sink_delivers_once_a_late_broker_appears(tmp_path: Path) -> None:
    """Broker down at start: sending never blocks, and paho delivers after reconnecting."""
    binary = mosquitto_binary()
    port = free_port()
    sink = MqttSink(f"127.0.0.1:{port}")
    start = time.perf_counter()
    sink.send(FALL)
    assert time.perf_counter() - start < 0.1
    with running_mosquitto(binary, port, tmp_path):
        sink.close()  # waits (up to 5 s) for the acknowledgement after paho's reconnect
    assert sink.published == 1 and sink.delivered == 1


def test_mqtt_sink_with_no_broker_gives_up_on_close() -> None:
    sink = MqttSink(f"127.0.0.1:{free_port()}", close_timeout_s=0.2)
    sink.send(FALL)
    assert sink.delivery_stats() == {"delivered": 0, "pending": 1, "failed": 0}
    sink.close()
    assert sink.delivery_stats() == {"delivered": 0, "pending": 0, "failed": 1}
