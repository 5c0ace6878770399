"""How gaitedge reaches an MQTT broker: connection settings from a URL, the environment and
files (:func:`mqtt_settings`), a configured paho-mqtt client (:func:`new_client`) and a first
connection that tells a refusal from an absent broker (:func:`start`).

Shared by the alert sink (``gaitedge.sinks.MqttSink``) and any MQTT ingest source, so both
speak the same TLS, login and session rules:

- ``mqtts://[USER@]HOST[:PORT][/TOPIC][?client_id=ID]`` is TLS (default port 8883) with the
  server's certificate and name checked; ``mqtt://`` or a bare ``HOST[:PORT]`` is plain text
  (default port 1883);
- the password comes from ``--mqtt-password-file``, ``$GAITEDGE_MQTT_PASSWORD`` or the systemd
  credential ``gaitedge.mqtt-password``; one written into the URL is refused, since ``ps``
  shows every command line to every user;
- MQTT v5 with a persistent session (clean start off, a session expiry): QoS 1 messages
  published while the broker is away wait in the client and go out when it is back.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from gaitedge.private import is_loopback, read_secret, tls_context, tls_error

if TYPE_CHECKING:
    import paho.mqtt.client as paho

log = logging.getLogger(__name__)

PLAIN_PORT = 1883
TLS_PORT = 8883
PASSWORD_ENV = "GAITEDGE_MQTT_PASSWORD"
USERNAME_ENV = "GAITEDGE_MQTT_USERNAME"
PASSWORD_CREDENTIAL = "gaitedge.mqtt-password"
_URL_FORM = "HOST[:PORT] or mqtt(s)://[USER@]HOST[:PORT][/TOPIC]"


class MqttRefusedError(ConnectionError):
    """The broker (or its certificate) refused us: retrying would not help. One line."""


@dataclass(frozen=True)
class MqttSettings:
    """Everything needed to reach one broker. ``topic``: the URL's path, if it had one."""

    host: str
    port: int
    tls: bool = False
    topic: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    # One per process by default: two clients with one id make the broker drop the older.
    client_id: str = field(default_factory=lambda: f"gaitedge-{socket.gethostname()}-{os.getpid()}")
    # How long the broker keeps our session (and QoS 1 messages for our subscriptions) while
    # we are away.
    session_expiry_s: int = 3600
    keepalive_s: int = 30
    connect_timeout_s: float = 5.0

    @property
    def address(self) -> str:
        """The URL without password or topic, for messages."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"


def mqtt_settings(
    url: str,
    *,
    username: str | None = None,
    password_file: str | os.PathLike | None = None,
    ca_file: str | os.PathLike | None = None,
    cert_file: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
    client_id: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> MqttSettings:
    """Settings from ``url`` (see the module's docstring), the options and the environment.

    Raises ValueError (one line) for a malformed URL, a password in it, TLS files without
    ``mqtts://`` or an unreadable file; nothing connects here.
    """
    environ = os.environ if environ is None else environ
    scheme, host, port, url_user, topic, url_client_id = _split(url)
    tls = scheme == "mqtts"
    if not tls and any(f is not None for f in (ca_file, cert_file, key_file)):
        raise ValueError(f"MQTT {url!r}: a CA or client certificate needs an mqtts:// URL")
    if tls:
        tls_context(ca_file, cert_file, key_file)  # unreadable files fail now, not at connect
    user = username or url_user or environ.get(USERNAME_ENV) or None
    password = read_secret(
        "MQTT password", file=password_file, env=PASSWORD_ENV, credential=PASSWORD_CREDENTIAL,
        environ=environ,
    )  # fmt: skip
    if password is not None and user is None:
        raise ValueError(f"MQTT {url!r}: a password needs a user name (USER@ in the URL)")
    settings = MqttSettings(
        host=host,
        port=port or (TLS_PORT if tls else PLAIN_PORT),
        tls=tls,
        topic=topic,
        username=user,
        password=password,
        ca_file=_path(ca_file),
        cert_file=_path(cert_file),
        key_file=_path(key_file),
        **({"client_id": cid} if (cid := client_id or url_client_id) else {}),
    )
    if not tls and password is not None and not is_loopback(host):
        log.warning("MQTT %s: password and alerts travel in clear text; use mqtts://", url)
    return settings


def new_client(settings: MqttSettings) -> paho.Client:
    """A paho-mqtt client for ``settings``: MQTT v5, TLS and login set, not yet connected.

    Set its callbacks, then call :func:`start`.
    """
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise RuntimeError("MQTT needs paho-mqtt: pip install 'gaitedge[sinks]'") from exc
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.password)
    if settings.tls:
        client.tls_set_context(tls_context(settings.ca_file, settings.cert_file, settings.key_file))
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.connect_timeout = settings.connect_timeout_s
    return client


def start(client: paho.Client, settings: MqttSettings) -> None:
    """Connect ``client`` and start its network thread.

    A broker that cannot be reached now (down, restarting, network not up yet) is logged and
    retried in the background by paho. A refusal is raised as :class:`MqttRefusedError`: an
    untrusted certificate or one for another name, a TLS mismatch, or a login the broker
    refuses (wrong password, not authorised).
    """
    first = _FirstAnswer(client, settings.tls)
    args = _connect_args(settings)
    try:
        client.connect(settings.host, settings.port, **args)
    except ssl.SSLError as exc:
        raise MqttRefusedError(tls_error(exc, settings.address)) from None
    except OSError as exc:
        log.warning(
            "MQTT %s not reachable now (%s): retrying in the background",
            settings.address,
            exc.strerror or exc,
        )
        client.connect_async(settings.host, settings.port, **args)
        client.loop_start()
        return
    client.loop_start()
    refusal = first.wait(settings.connect_timeout_s)
    if refusal is not None:
        client.disconnect()
        client.loop_stop()
        raise MqttRefusedError(f"{settings.address}: {refusal}")


class _FirstAnswer:
    """Catches the broker's answer to the first CONNECT, then passes callbacks on unchanged."""

    def __init__(self, client: paho.Client, tls: bool) -> None:
        # A closed connection before CONNACK: with TLS, the handshake went through but the
        # broker then hung up (TLS 1.3 reports a missing client certificate that way); without,
        # a TLS listener heard plain text.
        self._hint = "does it want a client certificate?" if tls else "a TLS port needs mqtts://"
        self._done = threading.Event()
        self._refusal: str | None = None
        self._on_connect = client.on_connect
        self._on_disconnect = client.on_disconnect
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected

    def wait(self, timeout_s: float) -> str | None:
        """The refusal, if the broker refused; None if it accepted or did not answer in time."""
        if not self._done.wait(timeout_s):
            log.warning("MQTT broker did not answer within %.0f s: retrying", timeout_s)
        return self._refusal

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if not self._done.is_set() and reason_code.is_failure:
            self._refusal = f"the broker refused the login ({reason_code})"
        self._done.set()
        # A refused first login is raised by start(), the one line the user sees; the
        # caller's callbacks hear nothing of a client that is being stopped.
        if self._on_connect is not None and self._refusal is None:
            self._on_connect(client, userdata, flags, reason_code, properties)

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        if not self._done.is_set():
            self._refusal = (
                f"the broker closed the connection before answering ({reason_code}); " + self._hint
            )
            self._done.set()
        if self._on_disconnect is not None and self._refusal is None:
            self._on_disconnect(client, userdata, flags, reason_code, properties)


def _connect_args(settings: MqttSettings) -> dict[str, Any]:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = settings.session_expiry_s
    return {"keepalive": settings.keepalive_s, "clean_start": False, "properties": properties}


def _split(url: str) -> tuple[str, str, int | None, str | None, str | None, str | None]:
    """(scheme, host, port, user, topic, client_id) from ``url``; ValueError if malformed."""
    text = url if "://" in url else f"mqtt://{url}"
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError(f"MQTT address {url!r}: expected {_URL_FORM}")
    if parts.password is not None:
        shown = text.replace(f":{parts.password}@", ":***@")
        raise ValueError(
            f"MQTT address {shown!r}: a password in a command line is visible to every user "
            f"(ps); put it in ${PASSWORD_ENV}, --mqtt-password-file or the systemd "
            f"credential {PASSWORD_CREDENTIAL}"
        )
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"MQTT address {url!r}: port must be a number in 1..65535")
    if not parts.hostname:
        raise ValueError(f"MQTT address {url!r}: expected {_URL_FORM}")
    query = parse_qs(parts.query, keep_blank_values=True)
    if set(query) - {"client_id"}:
        raise ValueError(f"MQTT address {url!r}: the only query parameter is client_id")
    client_id = query.get("client_id", [None])[-1]
    topic = unquote(parts.path.lstrip("/")) or None
    user = unquote(parts.username) if parts.username else None
    return parts.scheme, parts.hostname, port, user, topic, client_id


def _path(value: str | os.PathLike | None) -> Path | None:
    return None if value is None else Path(value)
