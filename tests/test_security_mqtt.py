"""MQTT with TLS and a login, against a real mosquitto started here: a TLS listener checked by
a CA made in the test, a password file made by ``mosquitto_passwd``, an ACL, and a second
listener that requires a client certificate. Every refusal is one line; an alert published
while the broker is away is delivered when it is back."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL
from gaitedge.mqtt import MqttRefusedError, MqttSettings, mqtt_settings, new_client, start
from gaitedge.recording import Recording, write_recording
from gaitedge.sinks import MqttSink
from tests.certs import Pki, make_pki
from tests.conftest import missing
from tests.test_sinks import FALL, WALK, free_port, mosquitto_binary, wait_until

PASSWORDS = {"device": "dev1ce-pw", "reader": "r3ader-pw"}
# The device may only publish under gaitedge/; the reader may only subscribe there.
ACL = "user device\ntopic write gaitedge/#\n\nuser reader\ntopic read gaitedge/#\n"


@dataclass(frozen=True)
class Broker:
    port: int  # TLS + password
    cert_port: int  # TLS + password + client certificate
    pki: Pki
    conf: Path


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def running(broker: Broker) -> Iterator[None]:
    proc = subprocess.Popen(
        [mosquitto_binary(), "-c", str(broker.conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if not wait_until(lambda: _listening(broker.port) and _listening(broker.cert_port)):
            proc.kill()
            pytest.fail(f"mosquitto did not start: {proc.communicate()[1].decode()}")
        yield
    finally:
        proc.terminate()  # mosquitto saves its persistence database on the way out
        proc.wait(5)


@pytest.fixture(scope="module")
def broker_config(tmp_path_factory: pytest.TempPathFactory) -> Broker:
    folder = tmp_path_factory.mktemp("mosquitto")
    # The server certificate names localhost only: connecting to 127.0.0.1 tests the name check.
    pki = make_pki(folder / "pki", server_ip=False)
    passwd_tool = shutil.which("mosquitto_passwd")
    if passwd_tool is None:
        missing("mosquitto_passwd not found (Debian package mosquitto; .ci/run installs it)")
    passwd = folder / "passwd"
    for n, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if n == 0 else []
        subprocess.run([passwd_tool, "-b", *create, str(passwd), user, password], check=True)
    (folder / "acl").write_text(ACL)
    for private in (passwd, folder / "acl"):  # mosquitto >= 2.0.16 warns about readable ones
        private.chmod(0o600)
    (folder / "db").mkdir()
    tls = f"cafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
    port, cert_port = free_port(), free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(
        # As root mosquitto would drop to its own user, who cannot read the test's files.
        ("user root\n" if os.geteuid() == 0 else "")
        + "per_listener_settings false\nallow_anonymous false\n"
        + f"password_file {passwd}\nacl_file {folder / 'acl'}\n"
        + f"persistence true\npersistence_location {folder / 'db'}/\n"
        + f"listener {port} 127.0.0.1\n{tls}"
        + f"listener {cert_port} 127.0.0.1\n{tls}require_certificate true\n"
    )
    return Broker(port, cert_port, pki, conf)


@pytest.fixture
def broker(broker_config: Broker) -> Iterator[Broker]:
    with running(broker_config):
        yield broker_config


def settings(broker: Broker, user: str = "device", path: str = "", **kw) -> MqttSettings:
    environ = {"GAITEDGE_MQTT_PASSWORD": kw.pop("password", None) or PASSWORDS[user]}
    url = f"mqtts://{user}@localhost:{kw.pop('port', broker.port)}{path}"
    return mqtt_settings(url, ca_file=kw.pop("ca_file", broker.pki.ca), environ=environ, **kw)


class Subscriber:
    """The reader, built from the same settings and client as any MQTT ingest would be: a
    persistent session (fixed client id), QoS 1, so what is published while it is away waits."""

    def __init__(self, broker: Broker, client_id: str) -> None:
        # One id per test: the broker keeps each session (and what it queued) across tests.
        self.messages: list[tuple[str, dict]] = []
        self.subscribed = threading.Event()
        self.settings = settings(broker, "reader", client_id=client_id)
        self.client = new_client(self.settings)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("gaitedge/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, json.loads(m.payload))
        )
        start(self.client, self.settings)
        assert self.subscribed.wait(10), "the reader did not subscribe"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_alerts_reach_a_tls_broker_with_a_login(broker: Broker) -> None:
    reader = Subscriber(broker, "reader-login")
    try:
        sink = MqttSink(settings(broker, path="/gaitedge/{device}/{type}"))
        assert sink.topic == "gaitedge/{device}/{type}"  # the URL's path
        sink.send(FALL)
        sink.send(WALK)
        sink.close()
        assert sink.delivery_stats() == {"delivered": 2, "pending": 0, "failed": 0}
        assert wait_until(lambda: len(reader.messages) == 2)
    finally:
        reader.close()
    assert dict(reader.messages) == {
        "gaitedge/waist/fall": json.loads(FALL.to_json()),
        "gaitedge/waist/activity": json.loads(WALK.to_json()),
    }


def test_client_certificate_and_password_file(broker: Broker, tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text(PASSWORDS["device"] + "\n")  # as `echo pw > file` writes it
    secret.chmod(0o600)
    url = f"mqtts://device@localhost:{broker.cert_port}"
    files = {"ca_file": broker.pki.ca, "password_file": secret}
    pki = broker.pki
    sink = MqttSink(mqtt_settings(url, cert_file=pki.client_cert, key_file=pki.client_key, **files))
    sink.send(FALL)
    sink.close()
    assert sink.delivery_stats() == {"delivered": 1, "pending": 0, "failed": 0}
    with pytest.raises(MqttRefusedError, match="want a client certificate") as refused:
        MqttSink(mqtt_settings(url, **files))  # no client certificate
    assert "\n" not in str(refused.value)


REFUSALS = {
    "wrong-password": (
        lambda b: settings(b, password="not-the-password"),
        r"refused the login \(Not authorized\)",
    ),
    "unknown-user": (lambda b: settings(b, "nobody", password="x"), r"refused the login"),
    "untrusted-ca": (
        lambda b: settings(b, ca_file=b.pki.other_ca),
        r"certificate not trusted \(self.signed certificate",
    ),
    "wrong-name": (
        lambda b: replace(settings(b), host="127.0.0.1"),
        r"certificate is not valid for '127\.0\.0\.1'",
    ),
    "plain-to-tls": (
        lambda b: replace(settings(b), tls=False, ca_file=None),
        r"closed the connection before answering.*needs mqtts://",
    ),
}


@pytest.mark.parametrize(("make", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_are_one_line(broker: Broker, make, message: str) -> None:
    with pytest.raises(MqttRefusedError, match=message) as refused:
        MqttSink(make(broker))
    assert "\n" not in str(refused.value)


def test_forbidden_topic_is_counted_and_said_in_one_line(broker: Broker, caplog) -> None:
    sink = MqttSink(settings(broker, path="/elsewhere/alerts"))
    with caplog.at_level(logging.ERROR, logger="gaitedge.sinks"):
        sink.send(FALL)
        sink.close()
    assert sink.delivery_stats() == {"delivered": 0, "pending": 0, "failed": 1}
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert "elsewhere/alerts" in errors[0] and "Not authorized" in errors[0]


def test_alert_sent_while_the_broker_is_away_arrives_when_it_is_back(
    broker_config: Broker,
) -> None:
    with running(broker_config):
        reader = Subscriber(broker_config, "reader-away")
        reader.close()  # away too: its persistent session keeps what is published meanwhile
        sink = MqttSink(settings(broker_config), close_timeout_s=15.0)
    sink.send(FALL)  # the broker is down
    assert sink.delivery_stats() == {"delivered": 0, "pending": 1, "failed": 0}
    with running(broker_config):
        sink.close()  # waits for paho's reconnect (1 s backoff) and the acknowledgement
        assert sink.delivery_stats() == {"delivered": 1, "pending": 0, "failed": 0}
        reader = Subscriber(broker_config, "reader-away")  # its session: the alert waits there
        try:
            assert wait_until(lambda: len(reader.messages) == 1)
        finally:
            reader.close()
    assert reader.messages == [("gaitedge/alerts", json.loads(FALL.to_json()))]


def test_password_in_the_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="visible to every user") as refused:
        mqtt_settings("mqtts://device:hunter2@broker.example/alerts", environ={})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "kwargs", "message"),
    [
        ("mqtt://broker.lan", {"ca_file": "ca.pem"}, "needs an mqtts:// URL"),
        ("mqtts://broker.lan", {"ca_file": "/nonexistent/ca.pem"}, "CA file .*No such file"),
        ("mqtts://broker.lan", {"key_file": "k.pem"}, "without a certificate"),
        ("mqtts://broker.lan", {"password_file": "/nonexistent/pw"}, "MQTT password file"),
        ("http://broker.lan", {}, "expected HOST"),
        ("mqtts://broker.lan?qos=2", {}, "only query parameter is client_id"),
    ],
    ids=["ca-without-tls", "missing-ca", "key-without-cert", "missing-password-file",
         "scheme", "query"],
)  # fmt: skip
def test_malformed_settings_are_one_line(url: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        mqtt_settings(url, environ={}, **kwargs)
    assert "\n" not in str(refused.value)


def test_url_parts_and_defaults() -> None:
    s = mqtt_settings(
        "mqtts://ward3@broker.lan/care/%7Bdevice%7D?client_id=hub-1",
        environ={"GAITEDGE_MQTT_PASSWORD": "pw"},
    )
    assert (s.host, s.port, s.tls, s.username, s.password) == (
        "broker.lan",
        8883,
        True,
        "ward3",
        "pw",
    )
    assert (s.topic, s.client_id) == ("care/{device}", "hub-1")
    assert "pw" not in repr(s)  # settings may be logged; the password is not in them
    assert s.address == "mqtts://ward3@broker.lan:8883"
    assert mqtt_settings("[::1]", environ={}).address == "mqtt://[::1]:1883"


@pytest.fixture
def short_recording(hapt_experiment, tmp_path: Path) -> Path:
    t, x, _ = hapt_experiment
    path = tmp_path / "hapt.csv"
    write_recording(path, Recording(t[:3000], x[:3000]))  # a minute of postures: 6 alerts
    return path


def test_cli_replay_publishes_over_tls_and_refuses_a_wrong_password(
    broker: Broker, short_recording: Path, tmp_path: Path
) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORDS["device"])
    args = [
        "replay", str(short_recording), "--model", str(DEFAULT_MODEL), "--fast",
        "--mount", "none", "--mqtt", f"mqtts://device@localhost:{broker.port}/gaitedge/{{type}}",
        "--mqtt-ca", str(broker.pki.ca), "--stats",
    ]  # fmt: skip
    reader = Subscriber(broker, "reader-cli")
    try:
        result = CliRunner().invoke(app, [*args, "--mqtt-password-file", str(pw)])
        assert result.exit_code == 0, result.output
        alerts = json.loads(result.stdout.strip().splitlines()[-1])["alerts"]
        assert alerts >= 1 and wait_until(lambda: len(reader.messages) == alerts)
    finally:
        reader.close()
    assert {topic for topic, _ in reader.messages} <= {"gaitedge/activity", "gaitedge/fall"}

    # The console script itself, so that log lines would show beside the error if any came.
    gaitedge = Path(sys.executable).with_name("gaitedge")
    env = {**os.environ, "GAITEDGE_MQTT_PASSWORD": "wrong"}
    done = subprocess.run([gaitedge, *args], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the login (Not authorized)" in lines[0], done.stderr


def test_cli_replay_fails_when_its_alerts_were_not_delivered(short_recording: Path) -> None:
    # Nothing listens on either port: a broker that is down, a webhook server that is down. The
    # replay goes on (alerts queue, retries run out), then says so and exits non-zero, so a
    # script publishing a recording's alerts does not read success.
    gaitedge = Path(sys.executable).with_name("gaitedge")
    args = [
        gaitedge, "replay", str(short_recording), "--model", str(DEFAULT_MODEL), "--fast",
        "--mount", "none", "--mqtt", f"mqtt://127.0.0.1:{free_port()}",
        "--webhook", f"http://127.0.0.1:{free_port()}/alerts", "-q",
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    alerts = json.loads(done.stdout.strip().splitlines()[-1])["alerts"]
    assert alerts >= 1
    last = done.stderr.strip().splitlines()[-1]
    each = f"{alerts} of {alerts}"
    assert last == f"error: alerts not delivered: {each} to webhook, {each} to mqtt", done.stderr
    assert "Traceback" not in done.stderr
