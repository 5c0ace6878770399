"""``--web``: a running session seen in a browser.

:class:`WebSession` serves the page for one pipeline and its sources. It listens to the session
through the pipeline's own hooks, never by driving it: raw samples through the pipeline's
raw-sample slot (``Pipeline.recorder``, which sees every chunk as received; an existing
``--record`` writer is kept and fed first), alerts as one more sink, and the typed status
(:func:`gaitedge.runner.status`, link health included) at most every ``status_interval_s``.
Each of these only appends to the :class:`~gaitedge.web.hub.Hub`; the server pushes from its
own thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from gaitedge.alerts import Alert
from gaitedge.pipeline import Pipeline
from gaitedge.recording import Recording
from gaitedge.sources.base import Source
from gaitedge.web.hub import HISTORY_S, STALE_AFTER_S, Hub
from gaitedge.web.server import SignalProvider, WebServer, load_token, parse_address

# The most samples /api/signal returns for one stretch (a canvas is ~1000-2000 px wide).
SIGNAL_MAX_POINTS = 2000


class WebSink:
    """Alerts to the page (an alert sink beside stdout, JSONL, MQTT...)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def send(self, alert: Alert) -> None:
        self.hub.add_alert(alert)

    def close(self) -> None:
        pass


class WebTap:
    """Sits in the pipeline's raw-sample slot: forwards each chunk to the writer that was
    there (``--record``), then hands it to the hub, and refreshes the status now and then."""

    def __init__(
        self,
        hub: Hub,
        inner,
        status: Callable[[], list],
        *,
        status_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hub, self.inner, self.status = hub, inner, status
        self.status_interval_s = status_interval_s
        self._clock = clock
        self._next_status_s = 0.0

    def write(
        self,
        timestamp_s: np.ndarray,
        imu: np.ndarray,
        label: str | np.ndarray | None = None,
        device_id: str | np.ndarray | None = None,
    ) -> None:
        self.hub.add_samples(str(device_id), timestamp_s, imu)
        now = self._clock()
        if now >= self._next_status_s:
            self._next_status_s = now + self.status_interval_s
            self.hub.set_status(self.status())
        if self.inner is not None:  # a failing writer is the pipeline's to drop (the tap stays)
            self.inner.write(timestamp_s, imu, label=label, device_id=device_id)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()


def recording_signal(recording: Recording) -> SignalProvider:
    """``/api/signal`` for a replay: the recording's six axes over any stretch of stream time,
    thinned to at most SIGNAL_MAX_POINTS samples."""
    t = recording.timestamp_s - recording.timestamp_s[0]
    imu = recording.imu

    def signal(device: str, t0_s: float, t1_s: float) -> dict:
        if not (math.isfinite(t0_s) and math.isfinite(t1_s)) or t1_s <= t0_s:
            raise ValueError(f"need finite t0 < t1, got {t0_s}, {t1_s}")
        a, b = np.searchsorted(t, [t0_s, t1_s])
        stride = max(1, math.ceil((b - a) / SIGNAL_MAX_POINTS))
        return {
            "device": device,
            "t0": t0_s,
            "t1": t1_s,
            "t": np.round(t[a:b:stride], 3).tolist(),
            "imu": np.round(imu[a:b:stride].T, 3).tolist(),
        }

    return signal


class WebSession:
    """Serve the live page for ``pipeline`` and ``sources`` while the ``with`` block runs.

    Args:
        address: ``[HOST:]PORT`` (default host 127.0.0.1). Any other host needs a token.
        pipeline: the session's pipeline (from ``gaitedge.runner.open_pipeline``).
        sources: the sources that drive it (for their link health).
        command: what runs (``listen``, ``replay``, ``demo``), shown on the page.
        recording: a replay's recording: the page gets a timeline of all of it to jump through.
        hold: after the block, keep serving until Ctrl-C (a replay reviewed after its end).
        token: the access token (default: ``$GAITEDGE_WEB_TOKEN`` or the file named by
            ``$GAITEDGE_WEB_TOKEN_FILE``).
        push_hz: messages per second to each browser at most.

    Raises WebError (malformed address, a non-local host without a token, port in use).
    """

    def __init__(
        self,
        address: str,
        pipeline: Pipeline,
        sources: Sequence[Source],
        *,
        command: str,
        recording: Recording | None = None,
        speed: float = 1.0,
        hold: bool = False,
        token: str | None = None,
        push_hz: float = 10.0,
        status_interval_s: float = 0.2,
    ) -> None:
        addr = parse_address(address)
        self.pipeline, self.sources, self.hold = pipeline, list(sources), hold
        self.status_interval_s = status_interval_s
        contract = pipeline.contract
        self.hub = Hub(
            {
                "command": command,
                "devices": [s.device for s in self.sources],
                "model": f"{contract.name} {contract.model_version}",
                "activity_classes": list(contract.heads.get("activity", ())),
                "duration_s": recording.duration_s if recording is not None else None,
                "speed": speed,
                "history_s": HISTORY_S,
                "stale_after_s": STALE_AFTER_S,
            }
        )
        self.server = WebServer(
            self.hub,
            addr,
            token=token if token is not None else load_token(),
            push_hz=push_hz,
            signal=recording_signal(recording) if recording is not None else None,
        ).start()
        self._sink = WebSink(self.hub)

    @property
    def url(self) -> str:
        """Where the page is (without the token)."""
        return self.server.url

    def _status(self) -> list:
        from gaitedge.runner import status

        return status(self.pipeline, self.sources)

    def __enter__(self) -> WebSession:
        pipe = self.pipeline
        pipe.recorder = WebTap(
            self.hub, pipe.recorder, self._status, status_interval_s=self.status_interval_s
        )
        pipe.sinks.sinks.append(self._sink)
        return self

    def __exit__(self, exc_type, *exc: object) -> None:
        try:
            self.hub.set_status(self._status())
            self.hub.finish()
            if self.hold and exc_type is None:
                wait_for_interrupt()
        finally:
            self.server.stop()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C (SIGINT)."""
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
