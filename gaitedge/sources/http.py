"""Phones pushing over HTTP: Sensor Logger's "HTTP Push" (``gaitedge listen --http HOST:PORT``).

A ``ThreadingHTTPServer`` (standard library) answers each POST in its own thread: it checks the
token, decodes the body (``gaitedge.sources.phone.parse_push``) so a malformed one gets its 400
at once, and only enqueues the message with its receive time; ``PhoneHub.chunks`` is the one
consumer (re-ordering, joining, stream time).

Nothing unauthenticated is accepted: every request needs the token, as ``Authorization: Bearer
<token>`` or, for apps that cannot set a header, a ``token`` query parameter. Sensor Logger's
push settings take a URL and nothing else (PUSHING.md), so it is given
``http://HOST:PORT/push?token=<token>`` (:attr:`HttpSource.push_url`). A wrong or missing token
is answered 401 and counted (``unauthorised``), before the body is read. With a certificate and
key the listener serves HTTPS only; the handshake runs in the request's thread, so a slow or
broken client never stalls the others.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gaitedge.sources.device import SourceError
from gaitedge.sources.phone import MAX_BODY_BYTES, PhoneHub, PushError, parse_push

log = logging.getLogger(__name__)

PUSH_PATH = "/push"


def parse_listen_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT``) -> (host, port); ValueError saying what is wrong."""
    host, sep, port = address.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(
            f"--http {address!r}: expected HOST:PORT (0.0.0.0:8000 for every interface)"
        )
    return host, int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def handle_error(self, request, client_address) -> None:
        # A client that fails the TLS handshake or drops mid-request: one line, no traceback.
        import sys

        log.info("request from %s failed: %s", client_address[0], sys.exc_info()[1])

    def get_request(self):
        sock, address = super().get_request()
        if self.tls is not None:  # handshake on first read, in the request's own thread
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address


class HttpSource(PhoneHub):
    """Listen for phones pushing over HTTP(S); each phone (``deviceId``) is one device.

    Args:
        host, port: where to listen (port 0: any free port; see :attr:`port`).
        token: the secret every request must carry (required, non-empty).
        certfile, keyfile: serve HTTPS with this certificate chain and key (PEM).
        reorder_window, reorder_wait_s, convention: see ``PhoneHub`` / ``PhoneStream``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        token: str,
        certfile: str | Path | None = None,
        keyfile: str | Path | None = None,
        **options,
    ) -> None:
        if not token:
            raise ValueError(
                "the HTTP listener needs a token (nothing unauthenticated is accepted)"
            )
        if keyfile is not None and certfile is None:
            raise ValueError("--http-key needs --http-cert")
        super().__init__(f"http:{host}:{port}", **options)
        self.host, self.port, self.token = host, port, token
        self.certfile, self.keyfile = certfile, keyfile
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"

    @property
    def push_url(self) -> str:
        """The URL to give the phone (token in the query: Sensor Logger sets no headers)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        query = urllib.parse.urlencode({"token": self.token})
        return f"{self.scheme}://{host}:{self.port}{PUSH_PATH}?{query}"

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise SourceError(
                f"cannot serve HTTPS with certificate {self.certfile}"
                + (f" and key {self.keyfile}" if self.keyfile else "")
                + f": {exc}"
            ) from exc
        return context

    def listen(self) -> None:
        """Bind the address now (the certificate loaded too), so that :attr:`push_url` names
        the port bound (port 0: the one the system chose) and a busy port or a bad
        certificate is said before any URL is given out; requests wait until the source runs.

        Raises:
            SourceError: the address cannot be bound, or the certificate cannot be served.
        """
        if self._server is not None:
            return
        tls = self._tls_context() if self.certfile else None
        try:
            server = _Server((self.host, self.port), self._handler())
        except OSError as exc:
            raise SourceError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            ) from exc
        server.tls = tls
        self._server = server
        self.port = server.server_address[1]
        self.device = f"{self.scheme}:{self.host}:{self.port}"

    async def _start(self) -> None:
        self.listen()
        server = self._server
        self._thread = threading.Thread(target=server.serve_forever, name="http-push", daemon=True)
        self._thread.start()
        log.info("listening for phones on %s", self.push_url.replace(self.token, "<token>"))

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.shutdown)
            server.server_close()

    def _authorised(self, headers, query: str) -> bool:
        given = ""
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        else:
            given = dict(urllib.parse.parse_qsl(query)).get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: a phone posts every batch period
            server_version = "gaitedge"

            def log_message(self, fmt: str, *args) -> None:
                log.debug("%s " + fmt, self.address_string(), *args)

            def _reply(self, status: int, doc: dict, close: bool = False) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="gaitedge"')
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if close:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)

            def _refuse(self, status: int, reason: str, message: str) -> None:
                hub._loop.call_soon_threadsafe(hub.count, reason)
                self._reply(status, {"error": message}, close=True)

            def do_GET(self) -> None:
                if not hub._authorised(self.headers, urllib.parse.urlsplit(self.path).query):
                    return self._refuse(401, "unauthorised", "a token is required")
                self._reply(405, {"error": "POST Sensor Logger's push messages here"})

            def do_POST(self) -> None:
                if not hub._authorised(self.headers, urllib.parse.urlsplit(self.path).query):
                    return self._refuse(401, "unauthorised", "a token is required")
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    return self._refuse(411, "bad_message", "Content-Length is required")
                if not 0 <= length <= MAX_BODY_BYTES:
                    return self._refuse(413, "bad_message", f"over {MAX_BODY_BYTES} bytes")
                body = self.rfile.read(length)
                host_rx_s = time.monotonic()
                try:
                    message = parse_push(body)
                except PushError as exc:
                    log.warning("push from %s refused: %s", self.address_string(), exc)
                    return self._refuse(400, "bad_message", str(exc))
                hub.put_threadsafe((message, host_rx_s))
                self._reply(200, {"ok": True})

        return Handler
