"""The web view's HTTP server: one page, its static files, and server-sent events.

A stdlib asyncio server on its own thread and event loop, so nothing a browser does (or fails
to do) runs on the pipeline's loop. A publisher task takes what is new from the
:class:`~gaitedge.web.hub.Hub` ``push_hz`` times a second, encodes it once, and offers it to
each client's bounded queue; a client whose queue is full (it reads slower than the session
produces) loses its queued updates and gets one snapshot instead, so memory per client stays
bounded and the pipeline never waits. Server-sent events rather than WebSocket: the page only
listens, EventSource reconnects by itself, and the stdlib serves it in a few lines.

Routes: ``/`` (the page), ``/static/<file>``, ``/events`` (the stream), ``/api/snapshot``
(the same picture as JSON), ``/api/signal?device=&t0=&t1=`` (a replay's recording, any
stretch: the timeline's jumps).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import math
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from gaitedge.web.hub import Hub

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
TOKEN_ENV = "GAITEDGE_WEB_TOKEN"
TOKEN_FILE_ENV = "GAITEDGE_WEB_TOKEN_FILE"
TOKEN_COOKIE = "gaitedge_token"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
# A request head larger than this is refused: the page's requests are a few hundred bytes.
MAX_HEAD_BYTES = 16 * 1024
HEAD_TIMEOUT_S = 10.0
# Kernel send buffer of an event stream. Linux grows a loopback socket's to megabytes, which
# would hide a stalled reader for minutes of updates; kept small, a slow reader's writes back
# up into its (bounded) queue within a few updates, and it is resynced.
STREAM_SNDBUF_BYTES = 32 * 1024

SignalProvider = Callable[[str, float, float], dict]


class WebError(ValueError):
    """A --web option that cannot be served (malformed address, no token, port in use)."""


@dataclass(frozen=True)
class WebAddress:
    host: str
    port: int

    @property
    def local(self) -> bool:
        """Loopback only: reachable from this machine alone."""
        if self.host in LOCAL_HOSTS:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{port or self.port}/"


def parse_address(text: str) -> WebAddress:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT``; the host defaults to 127.0.0.1."""
    host, port_text = "127.0.0.1", text
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1 : end + 2] != ":":
            raise WebError(f"--web {text!r}: expected [IPv6]:PORT")
        host, port_text = text[1:end], text[end + 2 :]
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise WebError(f"--web {text!r}: expected [HOST:]PORT with a port in 0..65535")
    return WebAddress(host, int(port_text))


def load_token(environ: os._Environ | dict | None = None) -> str | None:
    """The access token: ``$GAITEDGE_WEB_TOKEN``, else the first line of the file named by
    ``$GAITEDGE_WEB_TOKEN_FILE``, else the live-ingest token phones push with
    (``$GAITEDGE_HTTP_TOKEN`` or the systemd credential ``gaitedge.http-token``: one token for a
    deployment's HTTP endpoints); None when none is set. Never from the command line, where any
    user of the machine could read it (``ps``)."""
    env = os.environ if environ is None else environ
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV].strip()
    path = env.get(TOKEN_FILE_ENV)
    if not path:
        from gaitedge.private import read_secret

        try:
            return read_secret(
                "HTTP token", env="GAITEDGE_HTTP_TOKEN", credential="gaitedge.http-token",
                environ=env,
            )  # fmt: skip
        except ValueError as exc:
            raise WebError(str(exc)) from exc
    try:
        token = Path(path).read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise WebError(f"{TOKEN_FILE_ENV}={path}: cannot read the token: {exc.strerror}") from exc
    if not token or not token[0].strip():
        raise WebError(f"{TOKEN_FILE_ENV}={path}: the file holds no token")
    return token[0].strip()


class _Client:
    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)


@dataclass
class ServerStats:
    """Counters for bench/web.py and tests."""

    clients: int = 0  # connected event streams now
    served: int = 0  # event streams opened in all
    messages: int = 0  # messages handed to client queues
    dropped: int = 0  # queued messages a slow client lost (replaced by a snapshot)
    resyncs: int = 0  # snapshots sent to clients that fell behind


class WebServer:
    """Serves the page for ``hub`` at ``address`` until :meth:`stop`.

    Args:
        hub: the session's state.
        address: where to listen (``WebAddress``; port 0 picks a free one, see :attr:`port`).
        token: required from every request when given (``?token=`` once, then a cookie, or
            ``Authorization: Bearer``).
        push_hz: messages per second to each client at most.
        client_queue: messages a client may fall behind before it is resynced.
        max_clients: event streams served at once; more are refused (503).
        signal: the recording's samples for a stretch of stream time (replay), or None.
    """

    def __init__(
        self,
        hub: Hub,
        address: WebAddress,
        *,
        token: str | None = None,
        push_hz: float = 10.0,
        client_queue: int = 16,
        max_clients: int = 32,
        signal: SignalProvider | None = None,
    ) -> None:
        if not address.local and not token:
            raise WebError(
                f"--web {address.host}:{address.port} is reachable from other machines: set an "
                f"access token in ${TOKEN_ENV} or a file named by ${TOKEN_FILE_ENV}"
            )
        self.hub, self.address, self.token = hub, address, token
        self.push_interval_s = 1.0 / push_hz
        self.client_queue, self.max_clients = client_queue, max_clients
        self.signal = signal
        self.stats = ServerStats()
        self.port = address.port
        self._clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        return self.address.url(self.port)

    def start(self) -> WebServer:
        """Listen (raises WebError if the address cannot be bound) and serve in a thread."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name="gaitedge-web", daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Push what is left, end every stream and stop serving."""
        if self._loop is None or self._stopped.is_set():
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        with contextlib.suppress(Exception):
            future.result(timeout=5.0)
        self._thread.join(timeout=5.0)

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            server = loop.run_until_complete(
                asyncio.start_server(self._handle, self.address.host, self.address.port)
            )
        except OSError as exc:
            where = f"{self.address.host}:{self.address.port}"
            self._error = WebError(f"--web {where}: cannot listen: {exc.strerror or exc}")
            self._stopped.set()
            ready.set()
            loop.close()
            return
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._publisher = loop.create_task(self._publish())
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()
            self._stopped.set()

    async def _shutdown(self) -> None:
        self._publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._publisher
        self._offer()  # the last alerts and the ended state
        for client in self._clients:
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)
        self._server.close()
        await asyncio.sleep(0.2)  # let the streams write their last message
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        self._loop.call_soon(self._loop.stop)

    async def _publish(self) -> None:
        while True:
            await asyncio.sleep(self.push_interval_s)
            self._offer()

    def _offer(self) -> None:
        update = self.hub.collect()  # drained even without clients, so nothing piles up
        if not self._clients:
            return
        data = _event(update)
        snapshot = None
        for client in self._clients:
            if client.queue.full():
                while not client.queue.empty():
                    client.queue.get_nowait()
                    self.stats.dropped += 1
                snapshot = snapshot or _event(self.hub.snapshot())
                client.queue.put_nowait(snapshot)
                self.stats.resyncs += 1
            else:
                client.queue.put_nowait(data)
            self.stats.messages += 1

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT_S)
            await self._respond(head.decode("latin-1"), writer)
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            asyncio.TimeoutError,
            ConnectionError,
        ):
            pass
        except asyncio.CancelledError:  # the server stops: drop the connection at once
            writer.transport.abort()
            return
        writer.close()
        try:
            # A reader that stopped reading never lets the last bytes out: give up on it.
            await asyncio.wait_for(writer.wait_closed(), HEAD_TIMEOUT_S)
        except (asyncio.TimeoutError, asyncio.CancelledError, ConnectionError, OSError):
            writer.transport.abort()

    async def _respond(self, head: str, writer: asyncio.StreamWriter) -> None:
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(head) > MAX_HEAD_BYTES or len(parts) != 3:
            return _reply(writer, HTTPStatus.BAD_REQUEST, "bad request")
        method, target, _ = parts
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if method != "GET":
            return _reply(writer, HTTPStatus.METHOD_NOT_ALLOWED, "only GET")
        if not self._host_allowed(headers.get("host", "")):
            return _reply(writer, HTTPStatus.FORBIDDEN, "unexpected Host header")
        cookie = None
        if self.token is not None:
            given = _given_token(headers, query)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return _reply(writer, HTTPStatus.UNAUTHORIZED, "token required: open /?token=…")
            cookie = f"{TOKEN_COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        if url.path == "/events":
            return await self._events(writer)
        if url.path == "/api/snapshot":
            return _reply(writer, HTTPStatus.OK, to_json(self.hub.snapshot()), "application/json")
        if url.path == "/api/signal":
            return self._signal(writer, query)
        name = "index.html" if url.path == "/" else url.path.removeprefix("/static/")
        path = STATIC_DIR / name
        # Only the files shipped in static/, by name: no path from a request reaches the disk.
        if "/" in name or path.suffix not in CONTENT_TYPES or not path.is_file():
            return _reply(writer, HTTPStatus.NOT_FOUND, "not found")
        return _reply(writer, HTTPStatus.OK, path.read_bytes(), CONTENT_TYPES[path.suffix], cookie)

    def _host_allowed(self, host: str) -> bool:
        """A loopback server answers loopback names only: a web page elsewhere cannot reach it
        through a DNS name re-pointed at 127.0.0.1 (DNS rebinding). A server given a host
        answers any name; its token protects it."""
        if not self.address.local:
            return True
        name = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
        return name in LOCAL_HOSTS or name == self.address.host

    def _signal(self, writer: asyncio.StreamWriter, query: dict) -> None:
        if self.signal is None:
            return _reply(writer, HTTPStatus.NOT_FOUND, "no recording in this session")
        try:
            t0, t1 = float(query["t0"]), float(query["t1"])
            body = self.signal(query.get("device", ""), t0, t1)
        except (KeyError, ValueError) as exc:
            return _reply(writer, HTTPStatus.BAD_REQUEST, f"signal: {exc}")
        return _reply(writer, HTTPStatus.OK, to_json(body), "application/json")

    async def _events(self, writer: asyncio.StreamWriter) -> None:
        if len(self._clients) >= self.max_clients:
            return _reply(writer, HTTPStatus.SERVICE_UNAVAILABLE, "too many viewers")
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SNDBUF_BYTES)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n"
        )
        client = _Client(self.client_queue)
        client.queue.put_nowait(_event(self.hub.snapshot()))
        self._clients.add(client)
        self.stats.clients += 1
        self.stats.served += 1
        try:
            while (data := await client.queue.get()) is not None:
                writer.write(data)
                await writer.drain()
        finally:
            self._clients.discard(client)
            self.stats.clients -= 1


def _given_token(headers: dict, query: dict) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if "token" in query:
        return query["token"]
    for part in headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == TOKEN_COOKIE:
            return value
    return None


def to_json(message: object) -> str:
    """JSON a browser can parse: a non-finite number (a latency before the first window, a NaN
    sample) as ``null``. Python writes ``NaN``, which ``JSON.parse`` refuses: the whole message
    (and the alerts in it) would be lost on the page."""
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _event(message: dict) -> bytes:
    return b"data: " + to_json(message).encode() + b"\n\n"


def _reply(
    writer: asyncio.StreamWriter,
    status: HTTPStatus,
    body: str | bytes,
    content_type: str = "text/plain",
    cookie: str | None = None,
) -> None:
    data = body.encode() if isinstance(body, str) else body
    head = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Content-Type: {content_type}; charset=utf-8",
        f"Content-Length: {len(data)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if cookie:
        head.append(f"Set-Cookie: {cookie}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
