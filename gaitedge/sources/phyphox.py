"""A phone running phyphox with remote access on (``gaitedge listen --phyphox http://PHONE:8080``).

phyphox serves its experiment over HTTP and is polled (``RemoteServer.java``; vendor-formats.md
§A2): ``/config`` names each sensor input's buffers, ``/control?cmd=start`` starts the run, and
``/get?acc_time=T&accX=T|acc_time&...`` returns every value whose time is past ``T`` (the app
nudges ``T`` up by about 1e-7 of itself, as its numbers have 8 significant digits). Buffers are
kept on the phone, so a dropped poll or a dropped Wi-Fi link loses nothing: the next poll asks
from the last time received.

An experiment with the accelerometer (with g) and the gyroscope is needed: a simple experiment
with both ticked (buffers ``acc_time, accX..`` and ``gyr_time, gyrX..``) or any other whose
``/config`` names them. Values are m/s² and rad/s in Android's sign on both platforms; time is
the experiment's, in seconds (the phone's clock, through the one clock model). The two sensors
are joined onto one timeline as a phyphox export is (``gaitedge.formats.join``'s rule,
:class:`~gaitedge.sources.phone.ImuJoin`). A new session id (the experiment reloaded, data
cleared) starts a new segment.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator

import numpy as np

from gaitedge.formats.base import SensorKind
from gaitedge.formats.join import make_series
from gaitedge.sources.base import SampleChunk, SourceStats
from gaitedge.sources.device import SourceError
from gaitedge.sources.phone import ImuJoin, StreamClock, emit

log = logging.getLogger(__name__)

SENSORS = {"acc": "accelerometer", "gyro": "gyroscope"}
# Where /config is missing (an old phyphox): a simple experiment's buffer names.
SIMPLE_BUFFERS = {
    "acc": ("acc_time", "accX", "accY", "accZ"),
    "gyro": ("gyr_time", "gyrX", "gyrY", "gyrZ"),
}
HINT = (
    "in phyphox, create a simple experiment (+, 'Simple experiment') with Accelerometer and "
    "Gyroscope ticked, open it and enable remote access (menu, 'Allow remote access')"
)


class PhyphoxSource:
    """Poll a phyphox experiment; one phone, one device.

    Args:
        url: the address phyphox shows under "remote access" (``http://192.168.1.20:8080``).
        poll_s: time between polls.
        start: send ``/control?cmd=start`` (the run may also be started on the phone).
        timeout_s: one request.
        max_reconnects: consecutive failed polls before giving up (None: never).
    """

    def __init__(
        self,
        url: str,
        *,
        poll_s: float = 0.1,
        start: bool = True,
        timeout_s: float = 5.0,
        max_backoff_s: float = 5.0,
        max_reconnects: int | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--phyphox {url!r}: expected http://PHONE:8080")
        self.url = url.rstrip("/")
        self.device = f"phyphox:{parts.hostname}:{parts.port or 80}"
        self.poll_s, self.start, self.timeout_s = poll_s, start, timeout_s
        self.max_backoff_s, self.max_reconnects = max_backoff_s, max_reconnects
        self.stats = SourceStats()
        self.clock = StreamClock()
        self.buffers: dict[str, tuple[str, str, str, str]] = {}
        self.session: str | None = None
        self.polls = 0
        self._reset_session()

    def _reset_session(self) -> None:
        # Experiment time in seconds at full resolution: stamps increase (a tie is dropped and
        # counted), so the newest sample is not held back for the next poll.
        self.imu = ImuJoin(repair=False)
        self._last = {k: None for k in SENSORS}  # last experiment time received per sensor
        self.clock.new_session()

    def _request(self, path: str) -> dict | list:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise SourceError(
                f"phyphox at {self.url}{path.split('?')[0]}: HTTP {exc.code}"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"cannot reach phyphox at {self.url}: {reason}") from exc
        except json.JSONDecodeError as exc:
            raise SourceError(
                f"phyphox at {self.url}{path.split('?')[0]}: not JSON ({exc})"
            ) from exc

    async def _get(self, path: str) -> dict | list:
        return await asyncio.to_thread(self._request, path)

    async def __aenter__(self) -> PhyphoxSource:
        config = await self._get("/config")
        self.buffers = find_buffers(config, self.url)
        if self.start:
            answer = await self._get("/control?cmd=start")
            if not (isinstance(answer, dict) and answer.get("result") is True):
                raise SourceError(f"phyphox at {self.url} did not start the run: {answer}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def query(self) -> str:
        """``/get``'s query: every buffer past the last time received (``full`` at first)."""
        params = []
        for sensor, (t_name, *axes) in self.buffers.items():
            last = self._last[sensor]
            threshold = "full" if last is None else repr(last)
            params.append((t_name, threshold))
            params += [(a, threshold if last is None else f"{threshold}|{t_name}") for a in axes]
        return "/get?" + urllib.parse.urlencode(params, safe="|")

    async def chunks(self) -> AsyncIterator[SampleChunk]:
        backoff, failures = 0.2, 0
        while True:
            started = time.monotonic()
            try:
                answer = await self._get(self.query())
            except SourceError as exc:
                failures += 1
                if self.max_reconnects is not None and failures > self.max_reconnects:
                    raise SourceError(f"{exc} ({failures} polls failed in a row)") from exc
                log.warning("%s: %s; retrying", self.device, exc)
                await asyncio.sleep(backoff / 2 + random.uniform(0, backoff / 2))
                backoff = min(2 * backoff, self.max_backoff_s)
                continue
            if failures:
                self.stats.reconnects += 1
                failures, backoff = 0, 0.2
            self.polls += 1
            for chunk in self._add(answer, time.monotonic()):
                yield chunk
            await asyncio.sleep(max(0.0, self.poll_s - (time.monotonic() - started)))

    def _add(self, answer: dict, host_rx_s: float) -> list[SampleChunk]:
        """One ``/get`` answer's new samples; an answer not shaped as phyphox's (a proxy's
        page, a status or buffer of the wrong type, a value that is not a number) is counted
        (``bad_answer``) and skipped: the next poll asks for the same samples again."""
        try:
            read = self._read(answer)
        except (AttributeError, TypeError, ValueError) as exc:
            log.warning("%s: an answer phyphox would not send, skipped: %s", self.device, exc)
            read = None
        if read is None:
            self.stats.decoder_drops["bad_answer"] = (
                self.stats.decoder_drops.get("bad_answer", 0) + 1
            )
            return []
        session, columns = read
        if session != self.session:
            if self.session is not None:
                log.info("%s: new session %s", self.device, session)
                self._reset_session()
            self.session = session
        for sensor, (t, xyz) in columns.items():
            names = self.buffers[sensor]
            if not len(t):
                continue
            self._last[sensor] = float(t[-1])
            kind = SensorKind.ACC if sensor == "acc" else SensorKind.GYRO
            unit = "m/s^2" if sensor == "acc" else "rad/s"
            s = make_series(kind, t, xyz, unit=unit, where=f"{self.device} {names[0]}")
            self.imu.add(sensor, s.t_s, s.xyz)
        return emit(self.imu, self.stats, self.clock, self.device, host_rx_s)

    def _read(self, answer: object) -> tuple[str, dict] | None:
        """(session, each sensor's (t, xyz)) of an answer, None when it has no buffers;
        AttributeError, TypeError or ValueError where its parts are not phyphox's."""
        if not isinstance(answer, dict) or not isinstance(answer.get("buffer"), dict):
            return None
        session = str(answer.get("status", {}).get("session", ""))
        columns = {k: _columns(answer["buffer"], names) for k, names in self.buffers.items()}
        return session, columns

    def drift_ppm(self) -> float:
        return self.clock.clock.fit()[1] * 1e6


def find_buffers(config: object, url: str = "phyphox") -> dict[str, tuple[str, str, str, str]]:
    """Each sensor's (time, x, y, z) buffer names from ``/config``'s inputs."""
    inputs = config.get("inputs", []) if isinstance(config, dict) else []
    found = {}
    for key, source in SENSORS.items():
        entry = next((i for i in inputs if str(i.get("source", "")).lower() == source), None)
        if entry is None:
            continue
        outputs = {k: v for o in entry.get("outputs", []) for k, v in o.items()}
        if all(c in outputs for c in "txyz"):
            found[key] = (outputs["t"], outputs["x"], outputs["y"], outputs["z"])
    if set(found) != set(SENSORS):
        have = ", ".join(str(i.get("source")) for i in inputs) or "none"
        raise SourceError(
            f"phyphox at {url}: the experiment has no "
            + " and no ".join(SENSORS[k] for k in SENSORS if k not in found)
            + f" input (its inputs: {have}); the model needs acceleration with g and rotation "
            f"rate, never zeros; {HINT}"
        )
    return found


def _columns(buffers: dict, names: tuple[str, str, str, str]) -> tuple[np.ndarray, np.ndarray]:
    """One sensor's time and x, y, z from a ``/get`` answer; rows with a null dropped."""
    cols = []
    for name in names:
        values = buffers.get(name, {}).get("buffer", [])
        cols.append(np.array([np.nan if v is None else v for v in values], dtype=np.float64))
    n = min(len(c) for c in cols)
    table = np.stack([c[:n] for c in cols], axis=1)  # [n, 4]: t, x, y, z
    table = table[np.isfinite(table).all(axis=1)]
    return table[:, 0], table[:, 1:]
