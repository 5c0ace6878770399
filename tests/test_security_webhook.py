"""Signed webhooks against a real local HTTPS server (``http.server`` + ``ssl`` with a
certificate made in the test), checked by gaitedge's own verifier and by Stripe's library
(the scheme's reference implementation, a third party)."""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL
from gaitedge.recording import Recording, write_recording
from gaitedge.sinks import WebhookSink
from gaitedge.webhook import (
    SIGNATURE_HEADER,
    WebhookSettings,
    WebhookSignatureError,
    sign,
    verify_webhook,
    webhook_settings,
)
from tests.certs import Pki, make_pki
from tests.conftest import missing
from tests.test_sinks import FALL, WALK

SECRET = "whsec_gaitedge-test-secret"
TOKEN = "bearer-token-42"


class _Receiver(BaseHTTPRequestHandler):
    """Keeps every request (path, headers, exact body); answers ``server.status`` (a list
    consumed one per request, then 200)."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server = self.server
        with server.lock:
            server.requests.append((self.path, dict(self.headers), body))
            status = server.status.pop(0) if server.status else 200
        self.send_response(status)
        if status in (301, 302, 307, 308):
            self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_server(pki: Pki) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.lock, server.requests, server.status = threading.Lock(), [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url_of(server: ThreadingHTTPServer, host: str = "localhost") -> str:
    return f"https://{host}:{server.server_address[1]}/alerts"


def test_signed_alert_reaches_an_https_receiver(https_server, pki: Pki) -> None:
    settings = WebhookSettings(url_of(https_server), SECRET, TOKEN, pki.ca)
    sink = WebhookSink(settings, retries=0)
    sink.send(FALL)
    sink.send(WALK)
    sink.close()
    assert sink.delivery_stats() == {"delivered": 2, "pending": 0, "failed": 0}
    assert len(https_server.requests) == 2
    for (path, headers, body), alert in zip(https_server.requests, (FALL, WALK), strict=True):
        assert path == "/alerts"
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        # The receiver's three lines: the exact body and the header give back the alert.
        assert verify_webhook(SECRET, body, headers[SIGNATURE_HEADER]) == json.loads(
            alert.to_json()
        )


def test_stripes_own_verifier_accepts_our_signature_and_ours_accepts_stripes(
    https_server, pki: Pki
) -> None:
    try:
        import stripe
    except ImportError:
        missing("stripe (a dev dependency) is not installed")
    sink = WebhookSink(WebhookSettings(url_of(https_server), SECRET, None, pki.ca), retries=0)
    sink.send(FALL)
    sink.close()
    (_, headers, body), = https_server.requests  # fmt: skip
    header = headers[SIGNATURE_HEADER]
    assert abs(int(header.split(",")[0].removeprefix("t=")) - time.time()) < 60
    stripe.WebhookSignature.verify_header(body, header, SECRET, tolerance=300)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header(body, header, "whsec_another", tolerance=300)
    theirs = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET)
    assert verify_webhook(SECRET, body, theirs) == json.loads(FALL.to_json())


BODY = FALL.to_json().encode()
NOW = 1_700_000_000
REFUSED = {
    "wrong-secret": (sign("another secret", BODY, NOW), BODY, NOW, "does not match"),
    "body-changed": (sign(SECRET, BODY, NOW), BODY.replace(b"0.97", b"0.10"), NOW, "not match"),
    "replayed": (sign(SECRET, BODY, NOW), BODY, NOW + 301, "outside ±300 s"),
    "from-the-future": (sign(SECRET, BODY, NOW + 301), BODY, NOW, "outside ±300 s"),
    "no-header": (None, BODY, NOW, f"no {SIGNATURE_HEADER}"),
    "no-signature": (f"t={NOW}", BODY, NOW, "expected t=<unix seconds>,v1=<hex>"),
    "timestamp-moved": (
        sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 100}"), BODY, NOW + 100,
        "does not match",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("header", "body", "now", "message"), REFUSED.values(), ids=REFUSED)
def test_verification_refuses_forgeries_and_replays(header, body, now, message) -> None:
    with pytest.raises(WebhookSignatureError, match=message) as refused:
        verify_webhook(SECRET, body, header, now_s=now)
    assert "\n" not in str(refused.value)


def test_verification_accepts_a_rotated_secret_and_the_edge_of_tolerance() -> None:
    both = f"{sign(SECRET, BODY, NOW)},v1={sign('old secret', BODY, NOW).split('v1=')[1]}"
    assert verify_webhook("old secret", BODY, both, now_s=NOW + 300)["type"] == "fall"
    assert verify_webhook(SECRET, BODY, both, now_s=NOW - 300)["type"] == "fall"


def test_untrusted_certificate_fails_once_in_one_line(https_server, caplog) -> None:
    # No --webhook-ca: the system's CAs do not know the test's CA.
    sink = WebhookSink(WebhookSettings(url_of(https_server), SECRET), retries=3, backoff_s=0.5)
    with caplog.at_level(logging.ERROR, logger="gaitedge.sinks"):
        start = time.perf_counter()
        sink.send(FALL)
        sink.close()
    assert time.perf_counter() - start < 2.0  # not retried with backoff
    assert sink.delivery_stats() == {"delivered": 0, "pending": 0, "failed": 1}
    assert https_server.requests == []
    certificate = [r.getMessage() for r in caplog.records if "certificate" in r.getMessage()]
    assert len(certificate) == 1 and "certificate not trusted" in certificate[0]


def test_name_is_checked(https_server, pki: Pki, caplog) -> None:
    other = make_pki(pki.ca.parent / "no-ip", server_ip=False)  # names localhost only
    https_server.socket.context.load_cert_chain(other.server_cert, other.server_key)
    sink = WebhookSink(WebhookSettings(url_of(https_server, "127.0.0.1"), SECRET, None, other.ca))
    with caplog.at_level(logging.ERROR, logger="gaitedge.sinks"):
        sink.send(FALL)
        sink.close()
    assert sink.failed == 1 and https_server.requests == []
    assert "certificate is not valid for '127.0.0.1'" in caplog.text


def test_redirect_is_not_followed(https_server, pki: Pki) -> None:
    https_server.status = [302]
    sink = WebhookSink(WebhookSettings(url_of(https_server), SECRET, TOKEN, pki.ca), retries=2)
    sink.send(FALL)
    sink.close()
    assert sink.failed == 1
    assert [path for path, _, _ in https_server.requests] == ["/alerts"]  # never /elsewhere


@pytest.mark.parametrize(
    ("url", "kwargs", "environ", "message"),
    [
        ("http://alerts.example/x", {}, {"GAITEDGE_WEBHOOK_TOKEN": "t"}, "clear text"),
        ("http://alerts.example/x", {"ca_file": "ca.pem"}, {}, "needs an https:// URL"),
        ("https://alerts.example/x", {"ca_file": "/nonexistent.pem"}, {}, "CA file"),
        ("https://alerts.example/x", {"secret_file": "/nonexistent"}, {}, "webhook secret file"),
    ],
    ids=["token-over-http", "ca-over-http", "missing-ca", "missing-secret-file"],
)
def test_unsafe_or_broken_settings_are_one_line(url, kwargs, environ, message) -> None:
    with pytest.raises(ValueError, match=message) as refused:
        webhook_settings(url, environ=environ, **kwargs)
    assert "\n" not in str(refused.value)


def test_secrets_come_from_files_env_or_systemd_credentials(tmp_path: Path) -> None:
    url = "https://alerts.example/x"
    (tmp_path / "secret").write_text("from-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "gaitedge.webhook-secret").write_text("from-systemd")
    (creds / "gaitedge.webhook-token").write_text("token-from-systemd")
    environ = {"CREDENTIALS_DIRECTORY": str(creds)}
    s = webhook_settings(url, secret_file=tmp_path / "secret", environ=environ)
    assert (s.secret, s.token) == ("from-file", "token-from-systemd")
    s = webhook_settings(url, environ={**environ, "GAITEDGE_WEBHOOK_SECRET": "from-env"})
    assert s.secret == "from-env"
    assert webhook_settings(url, environ=environ).secret == "from-systemd"
    assert SECRET not in repr(WebhookSettings(url, SECRET, TOKEN))


def test_cli_replay_signs_its_webhooks(hapt_experiment, https_server, pki, tmp_path) -> None:
    t, x, _ = hapt_experiment
    recording = tmp_path / "hapt.csv"
    write_recording(recording, Recording(t[:3000], x[:3000]))
    secret = tmp_path / "webhook-secret"
    secret.write_text(SECRET)
    result = CliRunner().invoke(
        app,
        [
            "replay", str(recording), "--model", str(DEFAULT_MODEL), "--fast", "--mount", "none",
            "--webhook", url_of(https_server), "--webhook-ca", str(pki.ca),
            "--webhook-secret-file", str(secret),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.stdout.strip().splitlines()[-1])["alerts"]
    assert alerts >= 1 and len(https_server.requests) == alerts  # close() delivered them all
    for _, headers, body in https_server.requests:
        assert verify_webhook(SECRET, body, headers[SIGNATURE_HEADER])["device"] == "hapt.csv"
