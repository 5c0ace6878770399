"""What gaitedge keeps private, in one place: the files it writes, the secrets it reads and the
TLS it speaks.

Alerts and recordings are health data about identifiable people, so:

- files are created readable by their owner only (0600, directories 0700), whatever the umask;
  a whole file is written to a temporary file beside it and renamed over it, so a reader never
  sees half of it; an append-only file is opened with ``O_CREAT`` and the mode, so it is never
  world-readable even for an instant; an existing file that others can read is warned about
  (not changed: the owner may have meant it);
- secrets (passwords, signing keys, tokens) come from a file, an environment variable or a
  systemd credential (``LoadCredential=``, read from ``$CREDENTIALS_DIRECTORY``), never from a
  command-line argument, which ``ps`` shows to every user;
- TLS checks the server's certificate and name, always; a CA file adds to the system's CAs.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700
# Where systemd puts a unit's credentials (systemd.exec(5), "Credentials").
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
# A secret is a password or a key, not a document: a larger file is a wrong path.
MAX_SECRET_BYTES = 64 * 1024


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents 0700; existing directories are left as they are."""
    path = Path(path)
    missing = []
    for parent in (path, *path.parents):
        if parent.is_dir():
            break
        missing.append(parent)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created meanwhile by another process: fine if a directory
            if not folder.is_dir():
                raise
    return path


def warn_if_exposed(path: str | os.PathLike, what: str = "file") -> bool:
    """Log one warning if other users can read or write ``path``; True if they can."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        log.warning(
            "%s %s is readable by other users (mode %03o): chmod 600 it",
            what,
            path,
            stat.S_IMODE(mode),
        )
        return True
    return False


def write_private(path: str | os.PathLike, data: str | bytes, *, encoding: str = "utf-8") -> Path:
    """Write ``data`` as the whole of ``path``, atomically, mode 0600.

    The data goes to a temporary file in the same directory (``mkstemp`` creates it 0600),
    is flushed to disk and renamed over ``path``: a crash leaves the old file or the new one,
    never half of either. On any error the temporary file is removed and the old file stays.
    """
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, PRIVATE_FILE_MODE)  # mkstemp's mode already; said where it matters
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def open_private_append(
    path: str | os.PathLike, *, encoding: str = "utf-8", newline: str | None = None
) -> IO[str]:
    """Open ``path`` for appending text; a new file is created 0600 (its directory 0700), an
    existing one that others can read is warned about."""
    path = Path(path)
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, PRIVATE_FILE_MODE)
    try:
        warn_if_exposed(path)
        return os.fdopen(fd, "a", encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        raise


def read_secret(
    what: str,
    *,
    file: str | os.PathLike | None = None,
    env: str | None = None,
    credential: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """A secret from, in this order: ``file``; the environment variable ``env``; the systemd
    credential ``credential`` (a file in ``$CREDENTIALS_DIRECTORY``). None when none is set.

    ``what`` names the secret in errors (``MQTT password``). Trailing line ends are dropped
    (``echo secret > file`` writes one). Raises ValueError (one line) for an unreadable or
    empty file; a file that other users can read is warned about.
    """
    environ = os.environ if environ is None else environ
    if file is None and env and environ.get(env):
        return environ[env]
    if file is None and credential and environ.get(CREDENTIALS_ENV):
        candidate = Path(environ[CREDENTIALS_ENV]) / credential
        if candidate.is_file():
            file = candidate
    if file is None:
        return None
    try:
        with open(file, "rb") as f:
            raw = f.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{what} file {file}: {exc.strerror or exc}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"{what} file {file}: over {MAX_SECRET_BYTES} bytes, not a secret")
    try:
        secret = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ValueError(f"{what} file {file}: not UTF-8 text") from None
    if not secret:
        raise ValueError(f"{what} file {file} is empty")
    warn_if_exposed(file, f"{what} file")
    return secret


def tls_context(
    ca_file: str | os.PathLike | None = None,
    cert_file: str | os.PathLike | None = None,
    key_file: str | os.PathLike | None = None,
) -> ssl.SSLContext:
    """A client TLS context that checks the server's certificate chain and host name.

    ``ca_file`` (PEM) is trusted in addition to the system's CAs; ``cert_file`` / ``key_file``
    present a client certificate (the key may sit in ``cert_file``). There is deliberately no
    way to turn the checks off. Raises ValueError (one line) for an unreadable file.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=os.fspath(ca_file))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"CA file {ca_file}: {_reason(exc)}") from None
    if key_file is not None and cert_file is None:
        raise ValueError(f"key file {key_file} given without a certificate file")
    if cert_file is not None:
        try:
            context.load_cert_chain(
                os.fspath(cert_file), None if key_file is None else os.fspath(key_file)
            )
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"client certificate {cert_file}: {_reason(exc)}") from None
    return context


def tls_error(exc: ssl.SSLError, server: str) -> str:
    """One line saying why a TLS handshake with ``server`` failed."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"{server}: certificate not trusted ({exc.verify_message})"
    return f"{server}: TLS handshake failed ({_reason(exc)})"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: traffic that never leaves the machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return exc.strerror or str(exc)
