"""Where alerts go: stdout, a JSONL file, a webhook, MQTT, LSL — all at once through FanOut.

A sink must never stop the pipeline: :class:`FanOut` catches and counts a failing sink's errors
so the others still get the alert, and sinks that talk to the network (webhook, MQTT) hand the
alert to a background thread and return at once.

Alerts are health data: the JSONL file is created private (``gaitedge.private``), webhooks are
signed and sent over checked HTTPS (``gaitedge.webhook``), MQTT speaks TLS with a login
(``gaitedge.mqtt``). Network sinks count each alert ``delivered``, ``pending`` or ``failed``
(:meth:`FanOut.stats`).
"""

from __future__ import annotations

import json
import logging
import queue
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Protocol

from gaitedge import __version__
from gaitedge.alerts import Alert, AlertType
from gaitedge.mqtt import MqttSettings, mqtt_settings
from gaitedge.private import open_private_append, tls_context, tls_error
from gaitedge.webhook import SIGNATURE_HEADER, WebhookSettings, sign, webhook_settings

log = logging.getLogger(__name__)

DEFAULT_MQTT_TOPIC = "gaitedge/alerts"


class Sink(Protocol):
    def send(self, alert: Alert) -> None:
        """Deliver (or queue) one alert; may raise, FanOut contains it."""
        ...

    def close(self) -> None:
        """Flush what can be flushed and release resources."""
        ...


def format_alert(alert: Alert) -> str:
    """One human-readable line, e.g. ``FALL at 12.40 s (impact 11.60 s, +0.80 s) p=0.97``."""
    device = f" [{alert.device}]" if alert.device else ""
    if alert.type is AlertType.FALL:
        how = "+".join(c.value for c in alert.confirmed_by) or "model"
        return (
            f"FALL{device} at {alert.t:.2f} s (impact {alert.t_event:.2f} s, "
            f"+{alert.latency_s:.2f} s) p={alert.p:.2f} confirmed by {how}"
        )
    # Not the device's calibrated model: the cold-start model's, or what was held back.
    how = alert.extra.get("mounting")
    note = f", {how}" if how in ("cold start", "uncalibrated") else ""
    return f"activity{device}: {alert.label} since {alert.t_event:.2f} s (p={alert.p:.2f}{note})"


class StdoutSink:
    """One readable line per alert through ``write`` (e.g. ``typer.echo``), else the log."""

    def __init__(self, write: Callable[[str], object] | None = None) -> None:
        self._write = write

    def send(self, alert: Alert) -> None:
        line = format_alert(alert)
        if self._write is not None:
            self._write(line)
        elif alert.type is AlertType.FALL:
            log.warning(line)
        else:
            log.info(line)

    def close(self) -> None:
        pass


class ListSink:
    """Keeps every alert in :attr:`alerts`, for programs that run the pipeline in-process."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.alerts.append(alert)

    def close(self) -> None:
        pass


class JsonlSink:
    """Appends one JSON object per line to ``path``, flushed per alert so a crash loses none.

    A new file is created 0600 (its directory 0700); an existing one others can read is warned
    about.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] | None = open_private_append(self.path)
        except OSError as exc:  # the one line a user sees: which file, and why
            raise OSError(f"alerts file {self.path}: cannot write: {exc.strerror or exc}") from exc

    def send(self, alert: Alert) -> None:
        if self._file is None:
            raise RuntimeError(f"JSONL sink {self.path} is closed")
        self._file.write(alert.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class WebhookSink:
    """HTTP(S) POST of each alert's JSON, signed, from a background thread with a bounded queue.

    With a secret each request carries ``X-Gaitedge-Signature: t=...,v1=...`` (a fresh
    timestamp per attempt; see ``gaitedge.webhook``), with a token ``Authorization: Bearer``.
    HTTPS checks the server's certificate and name (``ca_file`` adds a CA); redirects are not
    followed, so the token never goes anywhere but ``url``.

    Connection errors, timeouts and 5xx answers are retried ``retries`` times with exponential
    backoff (``backoff_s``, then twice that, ...); 4xx answers and an untrusted certificate are
    not (retrying would not change them). When the queue is full the new alert is dropped and
    counted, so a dead endpoint costs the pipeline nothing. Counters: ``delivered``,
    ``failed``, ``dropped``.
    """

    # How often an idle worker checks whether close() was called.
    _POLL_S = 0.1

    def __init__(
        self,
        settings: WebhookSettings | str,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        queue_size: int = 100,
        close_timeout_s: float = 5.0,
    ) -> None:
        self.settings = webhook_settings(settings) if isinstance(settings, str) else settings
        self.url = self.settings.url
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.close_timeout_s = close_timeout_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._sending = 0
        context = tls_context(self.settings.ca_file) if self.url.startswith("https:") else None
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _NoRedirect()
        )
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=queue_size)
        self._closing = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gaitedge-webhook", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            log.error("webhook %s: queue full, alert at t=%.2f s dropped", self.url, alert.t)

    def delivery_stats(self) -> dict[str, int]:
        pending = self._queue.qsize() + self._sending
        return {
            "delivered": self.delivered,
            "pending": pending,
            "failed": self.failed + self.dropped,
        }

    def close(self) -> None:
        """Deliver what is queued, waiting at most ``close_timeout_s``, then give up."""
        self._closing.set()
        self._thread.join(self.close_timeout_s)
        self._stop.set()  # cuts any backoff wait short; what is left counts as failed
        self._thread.join(self.timeout_s + 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                alert = self._queue.get(timeout=self._POLL_S)
            except queue.Empty:
                if self._closing.is_set():
                    return
                continue
            self._sending = 1
            if self._post_with_retries(alert.to_json().encode()):
                self.delivered += 1
            else:
                self.failed += 1
                log.error("webhook %s: alert at t=%.2f s not delivered", self.url, alert.t)
            self._sending = 0
        self._drain_as_failed()

    def _post_with_retries(self, body: bytes) -> bool:
        # Not urllib3's Retry nor tenacity: urllib3 is no dependency (+53 ms import,
        # bench/libraries.py) and its Retry sleeps inside the request, where close() could not
        # cut a backoff short; tenacity (+22 ms) would wrap these dozen lines without removing
        # the 4xx/5xx distinction or the interruptible wait (self._stop.wait) they hold.
        for attempt in range(self.retries + 1):
            if attempt and self._stop.wait(self.backoff_s * 2 ** (attempt - 1)):
                return False
            try:
                self._post(body)
                return True
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    log.error("webhook %s answered %d; not retried", self.url, exc.code)
                    return False
                log.warning("webhook %s answered %d (attempt %d)", self.url, exc.code, attempt + 1)
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, ssl.SSLError):
                    log.error("webhook %s; not retried", tls_error(reason, self.url))
                    return False
                log.warning(
                    "webhook %s unreachable (attempt %d): %s", self.url, attempt + 1, reason
                )
        return False

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": f"gaitedge/{__version__}"}
        if self.settings.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.settings.secret, body, int(time.time()))
        if self.settings.token is not None:
            headers["Authorization"] = f"Bearer {self.settings.token}"
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)
        with self._opener.open(request, timeout=self.timeout_s) as response:
            response.read()

    def _drain_as_failed(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self.failed += 1


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as the error it is for an alert endpoint (a 3xx, not retried):
    following it would re-send the token and the alert to wherever it points."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class MqttSink:
    """Publishes each alert's JSON at QoS 1 over MQTT v5 (``gaitedge.mqtt``: TLS, login,
    persistent session); paho's network thread does the I/O.

    ``topic`` may name ``{device}`` and ``{type}``, e.g. ``gaitedge/{device}/{type}``; default:
    the URL's path, else ``gaitedge/alerts``. A refused login or certificate raises
    ``MqttRefusedError`` here; a broker that is away is retried in the background (1 s, backing
    off to 30 s) and alerts published meanwhile wait in paho (up to ``max_queued``) and go out
    when it is back. Each alert is counted ``delivered`` (the broker acknowledged it),
    ``failed`` (refused, e.g. a topic the broker's ACL forbids; queue full; still unsent at
    close) or pending.
    """

    def __init__(
        self,
        settings: MqttSettings | str,
        topic: str | None = None,
        qos: int = 1,
        close_timeout_s: float = 5.0,
        max_queued: int = 1000,
    ) -> None:
        from gaitedge.mqtt import new_client, start

        self.settings = mqtt_settings(settings) if isinstance(settings, str) else settings
        self.topic = topic or self.settings.topic or DEFAULT_MQTT_TOPIC
        check_topic(self.topic)
        self.qos = qos
        self.close_timeout_s = close_timeout_s
        self.published = 0
        self.delivered = 0
        self.failed = 0
        self._counts = threading.Condition()
        self._topics: dict[int, str] = {}  # message id -> topic, until the broker answers
        self._early: dict[int, object] = {}  # answers that came before publish() returned
        self._client = new_client(self.settings)
        self._client.max_queued_messages_set(max_queued)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        start(self._client, self.settings)

    @property
    def pending(self) -> int:
        with self._counts:
            return self.published - self.delivered - self.failed

    def delivery_stats(self) -> dict[str, int]:
        with self._counts:
            pending = self.published - self.delivered - self.failed
            return {"delivered": self.delivered, "pending": pending, "failed": self.failed}

    def send(self, alert: Alert) -> None:
        import paho.mqtt.client as mqtt

        topic = self.topic.format(device=alert.device or "default", type=alert.type.value)
        # While disconnected paho answers MQTT_ERR_NO_CONN but keeps a QoS >= 1 message and
        # sends it on reconnect, so only a full queue means the alert is lost. paho calls
        # on_publish holding its own lock, so none of ours is held across publish().
        info = self._client.publish(topic, alert.to_json(), qos=self.qos)
        with self._counts:
            self.published += 1
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self.failed += 1
                log.error("MQTT %s: outgoing queue full, alert dropped", self.settings.address)
            elif self.qos == 0:
                self.delivered += 1
            elif info.mid in self._early:
                self._answered(topic, self._early.pop(info.mid))
            else:
                self._topics[info.mid] = topic

    def close(self) -> None:
        """Wait up to ``close_timeout_s`` for the broker to answer for every alert; what is
        still unanswered then counts as failed."""
        with self._counts:
            self._counts.wait_for(
                lambda: self.delivered + self.failed >= self.published, self.close_timeout_s
            )
            lost = self.published - self.delivered - self.failed
            self.failed += lost
        if lost:
            log.error("MQTT %s: %d alerts not delivered", self.settings.address, lost)
        self._client.disconnect()
        self._client.loop_stop()

    def _answered(self, topic: str, reason_code) -> None:
        if reason_code.is_failure:
            self.failed += 1
            log.error(
                "MQTT %s refused the alert on topic %s: %s",
                self.settings.address,
                topic,
                reason_code,
            )
        else:
            self.delivered += 1
        self._counts.notify_all()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._counts:
            topic = self._topics.pop(mid, None)
            if topic is None:
                self._early[mid] = reason_code
            else:
                self._answered(topic, reason_code)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT %s refused the connection: %s", self.settings.address, reason_code)
        else:
            log.info("MQTT connected to %s", self.settings.address)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code != 0:
            log.warning(
                "MQTT %s disconnected (%s); reconnecting", self.settings.address, reason_code
            )


class SinkUnavailableError(RuntimeError):
    """A sink asked for whose library this installation lacks (``--lsl`` without pylsl)."""


class LslSink:
    """A Lab Streaming Layer marker stream (one JSON string per alert), for lab recordings."""

    def __init__(self, name: str = "gaitedge-alerts", source_id: str = "gaitedge") -> None:
        try:
            import pylsl
        except (ImportError, RuntimeError) as exc:  # pylsl absent, or its liblsl not found
            raise SinkUnavailableError(
                f"the LSL sink needs pylsl and its liblsl: pip install pylsl ({exc})"
            ) from exc
        info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", source_id)
        self._outlet = pylsl.StreamOutlet(info)

    def send(self, alert: Alert) -> None:
        self._outlet.push_sample([alert.to_json()])

    def close(self) -> None:
        self._outlet = None


class FanOut:
    """Sends every alert to every sink; a sink that raises is logged and counted, not fatal."""

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self.errors: dict[str, int] = {}

    def send(self, alert: Alert) -> None:
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception as exc:  # any sink bug or I/O error: the other sinks still get it
                name = type(sink).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                if self.errors[name] == 1:  # one line; the rest are counted (undelivered)
                    log.error(
                        "alert sink %s failed: %s (its alerts are counted as lost)", name, exc
                    )
                log.debug("alert sink %s failed", name, exc_info=True)

    def stats(self) -> dict[str, dict[str, int]]:
        """Per network sink (``mqtt``, ``webhook``): alerts delivered, pending and failed."""
        names = {WebhookSink: "webhook", MqttSink: "mqtt"}
        return {
            names.get(type(sink), type(sink).__name__): sink.delivery_stats()
            for sink in self.sinks
            if hasattr(sink, "delivery_stats")
        }

    def undelivered(self) -> dict[str, int]:
        """Per sink, alerts that did not get where they were sent: failed or still pending
        (after :meth:`close`, nothing is pending), or lost to the sink raising."""
        lost = {name: s["failed"] + s["pending"] for name, s in self.stats().items()}
        for name, count in self.errors.items():
            lost[name] = lost.get(name, 0) + count
        return {name: count for name, count in lost.items() if count}

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                log.error("closing alert sink %s failed: %s", type(sink).__name__, exc)
                log.debug("closing alert sink %s failed", type(sink).__name__, exc_info=True)


def check_topic(topic: str) -> None:
    """Raise ValueError unless ``topic`` can be published to (non-empty, no wildcard)."""
    if not topic or any(c in topic for c in "#+"):
        raise ValueError(f"MQTT topic {topic!r}: must be non-empty, without # or +")


def build_sinks(
    alerts_jsonl: Path | None = None,
    webhook: WebhookSettings | str | None = None,
    mqtt: MqttSettings | str | None = None,
    mqtt_topic: str | None = None,
    lsl: bool = False,
    echo: Callable[[str], object] | None = None,
) -> FanOut:
    """The sinks the CLI options ask for; ValueError says which option is malformed.

    ``webhook`` / ``mqtt``: settings (``gaitedge.webhook.webhook_settings``,
    ``gaitedge.mqtt.mqtt_settings``), or a URL read with the environment's secrets. Every
    option is checked before any sink opens; the MQTT sink, which may be refused
    (``MqttRefusedError``, an OSError), opens first, so a refusal leaves no file or thread.
    """
    if isinstance(webhook, str):
        webhook = webhook_settings(webhook)
    if isinstance(mqtt, str):
        mqtt = mqtt_settings(mqtt)
    if mqtt is not None:
        if mqtt_topic and mqtt.topic and mqtt_topic != mqtt.topic:
            raise ValueError(
                f"MQTT topic given twice: {mqtt.topic!r} in the URL and {mqtt_topic!r}"
            )
        if mqtt_topic is not None:  # an empty --mqtt-topic is refused, not the default
            check_topic(mqtt_topic)
        check_topic(mqtt_topic or mqtt.topic or DEFAULT_MQTT_TOPIC)
    opened: list[Sink] = []
    try:
        mqtt_sink = MqttSink(mqtt, mqtt_topic) if mqtt is not None else None
        if mqtt_sink is not None:
            opened.append(mqtt_sink)
        sinks: list[Sink] = [StdoutSink(echo)]
        if alerts_jsonl is not None:
            sinks.append(JsonlSink(alerts_jsonl))
            opened.append(sinks[-1])
        if webhook is not None:
            sinks.append(WebhookSink(webhook))
            opened.append(sinks[-1])
        if mqtt_sink is not None:
            sinks.append(mqtt_sink)
        if lsl:
            sinks.append(LslSink())
    except BaseException:
        FanOut(opened).close()
        raise
    return FanOut(sinks)


def alerts_from_jsonl(path: str | Path) -> list[dict]:
    """Read back an alert JSONL file (one object per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
