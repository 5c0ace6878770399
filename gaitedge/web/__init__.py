"""The live web view (``--web [HOST:]PORT`` on ``listen``, ``replay`` and ``demo``).

hub.py       the session's state for the page (bounded buffers, filled by the pipeline)
server.py    stdlib asyncio HTTP server on its own thread: the page, server-sent events
session.py   WebSession: attaches a hub to a running pipeline and serves it
static/      the page itself (plain JavaScript and canvas; no build step, no internet)
"""

from gaitedge.web.hub import Hub, LinkState
from gaitedge.web.server import WebAddress, WebError, WebServer, load_token, parse_address
from gaitedge.web.session import WebSession, WebSink, WebTap

__all__ = [
    "Hub",
    "LinkState",
    "WebAddress",
    "WebError",
    "WebServer",
    "WebSession",
    "WebSink",
    "WebTap",
    "load_token",
    "parse_address",
]
