"""Where alerts go: stdout, a JSONL file, a webhook, MQTT, LSL — all at once through FanOut.

A sink must never stop the pipeline: :class:`FanOut` catches and counts a failing sink's errors
so the others still get the alert, and sinks that talk to the network (webhook, MQTT) hand the
alert to a background thread and return at once.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import urlsplit

from gaitedge.alerts import Alert, AlertType

log = logging.getLogger(__name__)

DEFAULT_MQTT_PORT = 1883
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
    return f"activity{device}: {alert.label} since {alert.t_event:.2f} s (p={alert.p:.2f})"


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
    """Appends one JSON object per line to ``path``, flushed per alert so a crash loses none."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

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
    """HTTP POST of each alert's JSON, from a background thread with a bounded queue.

    Connection errors, timeouts and 5xx answers are retried ``retries`` times with exponential
    backoff (``backoff_s``, then twice that, ...); 4xx answers are not (the request itself is
    wrong). When the queue is full the new alert is dropped and counted, so a dead endpoint
    costs the pipeline nothing. Counters: ``delivered``, ``failed``, ``dropped``.
    """

    # How often an idle worker checks whether close() was called.
    _POLL_S = 0.1

    def __init__(
        self,
        url: str,
        retries: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        queue_size: int = 100,
        close_timeout_s: float = 5.0,
    ) -> None:
        check_url(url)
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.close_timeout_s = close_timeout_s
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
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
            if self._post_with_retries(alert.to_json().encode()):
                self.delivered += 1
            else:
                self.failed += 1
                log.error("webhook %s: alert at t=%.2f s not delivered", self.url, alert.t)
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
                log.warning("webhook %s unreachable (attempt %d): %s", self.url, attempt + 1, exc)
        return False

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
            response.read()

    def _drain_as_failed(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self.failed += 1


class MqttSink:
    """Publishes each alert's JSON with paho-mqtt 2.x; the network loop runs in paho's thread.

    ``topic`` may name ``{device}`` and ``{type}``, e.g. ``gaitedge/{device}/{type}``. paho
    reconnects by itself (1 s, backing off to 30 s) and keeps QoS >= 1 messages published while
    disconnected until the broker is back.
    """

    def __init__(
        self,
        host: str,
        port: int = DEFAULT_MQTT_PORT,
        topic: str = DEFAULT_MQTT_TOPIC,
        qos: int = 1,
        client_id: str = "",
        close_timeout_s: float = 5.0,
    ) -> None:
        try:
            import paho.mqtt.client as mqtt
        except ImportError as exc:
            raise RuntimeError(
                "the MQTT sink needs paho-mqtt: pip install 'gaitedge[sinks]'"
            ) from exc
        self.host, self.port, self.topic, self.qos = host, port, topic, qos
        self.close_timeout_s = close_timeout_s
        self.published = 0
        self.acknowledged = 0
        self._acked = threading.Condition()
        self._mqtt = mqtt
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.connect_async(host, port)
        self._client.loop_start()

    def send(self, alert: Alert) -> None:
        topic = self.topic.format(device=alert.device or "default", type=alert.type.value)
        # While disconnected paho answers MQTT_ERR_NO_CONN but keeps a QoS >= 1 message and
        # sends it on reconnect, so only a full queue means the alert is lost.
        info = self._client.publish(topic, alert.to_json(), qos=self.qos)
        if info.rc == self._mqtt.MQTT_ERR_QUEUE_SIZE:
            raise RuntimeError(f"MQTT {self.host}:{self.port}: outgoing queue full")
        with self._acked:
            self.published += 1

    def close(self) -> None:
        """Wait up to ``close_timeout_s`` for the broker to acknowledge every alert."""
        with self._acked:
            done = self._acked.wait_for(
                lambda: self.acknowledged >= self.published or self.qos == 0,
                timeout=self.close_timeout_s,
            )
        if not done:
            log.error(
                "MQTT %s:%d: %d alerts not acknowledged by the broker",
                self.host,
                self.port,
                self.published - self.acknowledged,
            )
        self._client.disconnect()
        self._client.loop_stop()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._acked:
            self.acknowledged += 1
            self._acked.notify_all()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT %s:%d refused the connection: %s", self.host, self.port, reason_code)
        else:
            log.info("MQTT connected to %s:%d", self.host, self.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code != 0:
            log.warning(
                "MQTT %s:%d disconnected (%s); reconnecting", self.host, self.port, reason_code
            )


class LslSink:
    """A Lab Streaming Layer marker stream (one JSON string per alert), for lab recordings."""

    def __init__(self, name: str = "gaitedge-alerts", source_id: str = "gaitedge") -> None:
        try:
            import pylsl
        except ImportError as exc:
            raise RuntimeError("the LSL sink needs pylsl: pip install pylsl") from exc
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
            except Exception:  # any sink bug or I/O error: the other sinks still get the alert
                name = type(sink).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                log.exception("alert sink %s failed", name)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("closing alert sink %s failed", type(sink).__name__)


def check_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook must be an http:// or https:// URL with a host, got {url!r}")


def parse_mqtt_address(address: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6addr]:PORT`` for IPv6) -> (host, port)."""
    host, port = address, DEFAULT_MQTT_PORT
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or (end + 1 < len(address) and address[end + 1] != ":"):
            raise ValueError(f"MQTT address {address!r}: expected [IPv6]:PORT")
        host, rest = address[1:end], address[end + 2 :]
        port_text = rest or None
    else:
        host, _, port_text = address.partition(":")
        port_text = port_text if ":" in address else None
    if port_text is not None:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"MQTT address {address!r}: port must be a number in 1..65535")
        port = int(port_text)
    if not host:
        raise ValueError(f"MQTT address {address!r}: expected HOST[:PORT]")
    return host, port


def build_sinks(
    alerts_jsonl: Path | None = None,
    webhook: str | None = None,
    mqtt: str | None = None,
    mqtt_topic: str = DEFAULT_MQTT_TOPIC,
    lsl: bool = False,
    echo: Callable[[str], object] | None = None,
) -> FanOut:
    """The sinks the CLI options ask for; ValueError says which option is malformed.

    Every option is checked before any sink opens, so a bad one leaves no thread or file behind.
    """
    if webhook is not None:
        check_url(webhook)
    if mqtt is not None:
        if not mqtt_topic or any(c in mqtt_topic for c in "#+"):
            raise ValueError(f"MQTT topic {mqtt_topic!r}: must be non-empty, without # or +")
        host, port = parse_mqtt_address(mqtt)
    sinks: list[Sink] = [StdoutSink(echo)]
    if alerts_jsonl is not None:
        sinks.append(JsonlSink(alerts_jsonl))
    if webhook is not None:
        sinks.append(WebhookSink(webhook))
    if mqtt is not None:
        sinks.append(MqttSink(host, port, mqtt_topic))
    if lsl:
        sinks.append(LslSink())
    return FanOut(sinks)


def alerts_from_jsonl(path: str | Path) -> list[dict]:
    """Read back an alert JSONL file (one object per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
