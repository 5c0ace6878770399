"""Signed webhooks: how alerts are signed (:func:`sign`), how a receiver checks them
(:func:`verify_webhook`), and the sender's settings (:func:`webhook_settings`).

The signature is Stripe's scheme (GitHub's HMAC-SHA256, with a timestamp): the header

    X-Gaitedge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

signs the exact bytes of the body together with the time it was sent, so a receiver can tell
a real alert from a forged one, and an old one replayed from a fresh one. A receiver checks it
in three lines::

    from gaitedge.webhook import SIGNATURE_HEADER, verify_webhook

    alert = verify_webhook(secret, body, headers.get(SIGNATURE_HEADER))  # raises if forged/old

Several ``v1=`` values may be sent while a secret is rotated; one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gaitedge.private import is_loopback, read_secret, tls_context

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Gaitedge-Signature"
SCHEME = "v1"
# Stripe's default tolerance: wide enough for clock skew and retries, narrow for replays.
TOLERANCE_S = 300
SECRET_ENV = "GAITEDGE_WEBHOOK_SECRET"
TOKEN_ENV = "GAITEDGE_WEBHOOK_TOKEN"
SECRET_CREDENTIAL = "gaitedge.webhook-secret"
TOKEN_CREDENTIAL = "gaitedge.webhook-token"


class WebhookSignatureError(ValueError):
    """A webhook whose signature is missing, malformed, wrong or too old. One line."""


@dataclass(frozen=True)
class WebhookSettings:
    """Where alerts are POSTed and how: ``secret`` signs them, ``token`` is sent as
    ``Authorization: Bearer``; ``ca_file`` is trusted besides the system's CAs."""

    url: str
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    ca_file: Path | None = None


def sign(secret: str | bytes, body: bytes, timestamp_s: int) -> str:
    """The signature header's value for ``body`` sent at ``timestamp_s`` (unix seconds)."""
    return f"t={timestamp_s},{SCHEME}={_digest(secret, body, timestamp_s)}"


def verify_webhook(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    *,
    tolerance_s: float = TOLERANCE_S,
    now_s: float | None = None,
) -> dict:
    """Check ``header`` (the ``X-Gaitedge-Signature`` value) against ``body``, the request's
    exact bytes, and return the alert it carries.

    Raises WebhookSignatureError if the header is missing or malformed, no signature matches
    (forged, or signed with another secret, or the body was changed), or the timestamp is more
    than ``tolerance_s`` from ``now_s`` (default: the clock), which refuses replays.
    """
    if not header:
        raise WebhookSignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp_s, signatures = _parse(header)
    expected = _digest(secret, body, timestamp_s)
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookSignatureError("signature does not match the body")
    now_s = time.time() if now_s is None else now_s
    if abs(now_s - timestamp_s) > tolerance_s:
        raise WebhookSignatureError(
            f"signed {now_s - timestamp_s:+.0f} s from now, outside ±{tolerance_s:.0f} s "
            "(a replay, or a clock off)"
        )
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookSignatureError(f"signed body is not JSON: {exc}") from None


def webhook_settings(
    url: str,
    *,
    ca_file: str | os.PathLike | None = None,
    secret_file: str | os.PathLike | None = None,
    token_file: str | os.PathLike | None = None,
    environ: Mapping[str, str] | None = None,
) -> WebhookSettings:
    """Settings for ``url``: the secret from ``secret_file``, ``$GAITEDGE_WEBHOOK_SECRET`` or
    the systemd credential ``gaitedge.webhook-secret``; the token likewise (``..._TOKEN``,
    ``gaitedge.webhook-token``).

    Raises ValueError (one line) for a malformed URL, an unreadable file, a CA for an
    ``http://`` URL, or a token that would cross the network in clear text.
    """
    check_url(url)
    parts = urlsplit(url)
    secret = read_secret(
        "webhook secret", file=secret_file, env=SECRET_ENV, credential=SECRET_CREDENTIAL,
        environ=environ,
    )  # fmt: skip
    token = read_secret(
        "webhook token", file=token_file, env=TOKEN_ENV, credential=TOKEN_CREDENTIAL,
        environ=environ,
    )  # fmt: skip
    if parts.scheme == "http":
        if ca_file is not None:
            raise ValueError(f"webhook {url}: a CA file needs an https:// URL")
        if not is_loopback(parts.hostname or ""):
            if token is not None:
                raise ValueError(
                    f"webhook {url}: the token would cross the network in clear text; use https://"
                )
            log.warning("webhook %s: alerts travel in clear text; use https://", url)
    else:
        tls_context(ca_file)  # an unreadable CA file fails now, not at the first alert
    if secret is None:
        log.warning(
            "webhook %s: alerts are not signed (set $%s or --webhook-secret-file)",
            url,
            SECRET_ENV,
        )
    return WebhookSettings(
        url, secret=secret, token=token, ca_file=None if ca_file is None else Path(ca_file)
    )


def check_url(url: str) -> None:
    """Raise ValueError unless ``url`` is an http(s) URL with a host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook must be an http:// or https:// URL with a host, got {url!r}")


def _digest(secret: str | bytes, body: bytes, timestamp_s: int) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, b"%d." % timestamp_s + body, hashlib.sha256).hexdigest()


def _parse(header: str) -> tuple[int, list[str]]:
    timestamp_s, signatures = None, []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp_s = int(value)
        elif key == SCHEME and value:
            signatures.append(value)
    if timestamp_s is None or not signatures:
        raise WebhookSignatureError(
            f"{SIGNATURE_HEADER} {header[:80]!r}: expected t=<unix seconds>,{SCHEME}=<hex>"
        )
    return timestamp_s, signatures
