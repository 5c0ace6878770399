"""Phones publishing over MQTT: Sensor Logger's "MQTT Publish", or any gateway republishing the
same messages (``gaitedge listen --mqtt-in mqtt(s)://[USER@]HOST[:PORT]/TOPIC``).

The schema is the HTTP push's (PUSHING.md: "the same as the HTTP Push ones"); the app publishes
at QoS 0, so messages can be lost or reordered, and ``PhoneHub`` counts and re-orders them. The
app publishes over WebSockets only; the broker hands its messages to TCP subscribers like this
one on the same topic.

The connection (URL, TLS, login from the environment or files, first-connect refusal) is
``gaitedge.mqtt``'s, shared with the alert sink. paho-mqtt's network thread only enqueues each
payload with its receive time; decoding happens in the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import urllib.parse

from gaitedge.sources.device import SourceError
from gaitedge.sources.phone import PhoneHub

log = logging.getLogger(__name__)


class MqttSource(PhoneHub):
    """Subscribe to the phones' push messages on a broker; each phone is one device.

    Args:
        url: ``mqtt://HOST[:PORT]/TOPIC`` or ``mqtts://`` (the topic may hold wildcards); the
            password comes from ``$GAITEDGE_MQTT_PASSWORD`` or ``password_file``
            (``gaitedge.mqtt.mqtt_settings``).
        connect_timeout_s: how long the first subscription may take before it is an error
            (later drops are reconnected by paho and counted in ``stats.reconnects``).
    """

    def __init__(
        self,
        url: str,
        *,
        password_file: str | os.PathLike | None = None,
        ca_file: str | os.PathLike | None = None,
        connect_timeout_s: float = 10.0,
        **options,
    ) -> None:
        from gaitedge.mqtt import mqtt_settings

        # Not the alert sink's client id: one id on one broker makes it drop the older client.
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        client_id = (
            None if "client_id" in query else f"gaitedge-in-{socket.gethostname()}-{os.getpid()}"
        )
        self.settings = mqtt_settings(
            url, password_file=password_file, ca_file=ca_file, client_id=client_id
        )
        if not self.settings.topic:
            raise ValueError(f"--mqtt-in {url!r}: give the topic the phones publish to (.../TOPIC)")
        super().__init__(f"{self.settings.address}/{self.settings.topic}", **options)
        self.connect_timeout_s = connect_timeout_s
        self._client = None
        self._subscribed = threading.Event()
        self._connects = 0
        self._refused: str | None = None

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            return  # gaitedge.mqtt.start reports a refused first login
        self._connects += 1
        if self._connects > 1:
            self._loop.call_soon_threadsafe(self._reconnected)
        client.subscribe(self.settings.topic, qos=0)  # the app publishes at QoS 0

    def _reconnected(self) -> None:
        self.stats.reconnects += 1
        log.warning("%s: reconnected to the broker", self.device)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        if any(rc.is_failure for rc in reason_codes):
            self._refused = f"the broker refused the subscription to {self.settings.topic!r}"
        self._subscribed.set()

    def _on_message(self, _client, _userdata, message) -> None:
        self.put_threadsafe((bytes(message.payload), time.monotonic()))

    async def _start(self) -> None:
        from gaitedge.mqtt import MqttRefusedError, new_client, start

        try:
            client = new_client(self.settings)
        except RuntimeError as exc:  # no paho-mqtt
            raise SourceError(str(exc)) from exc
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        try:
            await asyncio.to_thread(start, client, self.settings)
        except MqttRefusedError as exc:
            raise SourceError(f"--mqtt-in: {exc}") from exc
        self._client = client
        subscribed = await asyncio.to_thread(self._subscribed.wait, self.connect_timeout_s)
        if self._refused or not subscribed:
            await self._stop()
            why = self._refused or f"no broker answered in {self.connect_timeout_s:g} s"
            raise SourceError(f"cannot subscribe to {self.device}: {why}")
        log.info("subscribed to %s", self.device)

    async def _stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
