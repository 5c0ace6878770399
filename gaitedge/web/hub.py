"""What the web view knows about a session, shared between the pipeline and the web server.

The pipeline's side (the source tap, the alert sink, the status hook) only appends to bounded
buffers under a lock and returns: no I/O, no JSON, nothing that waits for a browser. The web
server's side takes what is new at its own rate (:meth:`Hub.collect`) or the whole recent
picture for a client that joins or fell behind (:meth:`Hub.snapshot`).
"""

from __future__ import annotations

import collections
import enum
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from gaitedge.alerts import Alert
from gaitedge.status import DeviceStatus

# The browser draws at most this many samples per second per device (a 200 Hz sensor is
# thinned for display only; the pipeline sees every sample).
PLOT_RATE_HZ = 50.0
# Seconds of signal a joining browser gets (the page shows the last 10).
HISTORY_S = 12.0
# Alerts kept for a joining browser (the newest ones).
MAX_ALERTS = 5000  # ~14 h of activity changes; a 90-min replay has ~630 alerts
# No sample for this long (host clock) and a live link reads as dropped: BLE notifications and
# serial frames arrive every few tens of milliseconds at 50 Hz, and the sources' watchdogs
# give up on a link after 2-3 s, so 1 s shows a dead link well before the reconnect starts.
STALE_AFTER_S = 1.0


class LinkState(str, enum.Enum):
    LIVE = "live"
    DROPPED = "dropped"  # no data for STALE_AFTER_S: the link is down (or reconnecting)
    ENDED = "ended"  # the session is over (a replay reached its end)


@dataclass
class _Device:
    history: collections.deque = field(default_factory=collections.deque)  # (t [n], imu [n, 6])
    pending_t: list[np.ndarray] = field(default_factory=list)
    pending_imu: list[np.ndarray] = field(default_factory=list)
    last_rx_s: float = 0.0  # host monotonic time of the last sample
    next_plot_t: float = -np.inf  # decimation carry: the next stream time to draw
    status: dict | None = None


class Hub:
    """The session's state for the page. Producers: :meth:`add_samples`, :meth:`add_alert`,
    :meth:`set_status`, :meth:`finish` (any thread). Consumer: the web server's publisher."""

    def __init__(self, session: dict | None = None, *, clock=time.monotonic) -> None:
        self.session = dict(session or {})
        self._clock = clock
        self._lock = threading.Lock()
        self._devices: dict[str, _Device] = {}
        self._alerts: collections.deque[dict] = collections.deque(maxlen=MAX_ALERTS)
        self._new_alerts: list[dict] = []
        self._finished = False
        self.alerts_seen = 0

    def _device(self, name: str) -> _Device:
        dev = self._devices.get(name)
        if dev is None:
            dev = self._devices[name] = _Device(last_rx_s=self._clock())
        return dev

    def add_samples(self, device: str, t_s: np.ndarray, imu: np.ndarray) -> None:
        """Samples as the pipeline received them ([n] stream times, [n, 6] SI units)."""
        if not len(t_s):
            return
        with self._lock:
            dev = self._device(device)
            dev.last_rx_s = self._clock()
            # Thin to PLOT_RATE_HZ on the stream clock: keep a sample when a new plot slot
            # (1 / PLOT_RATE_HZ wide) begins. The slots are offset by a tenth so that samples
            # on a regular grid (25, 50, 100, 200 Hz...) never sit on a slot edge, where float
            # rounding would put two in one slot or none.
            slot = np.floor(np.asarray(t_s) * PLOT_RATE_HZ + 0.1)
            keep = np.concatenate(([slot[0] >= dev.next_plot_t], slot[1:] > slot[:-1]))
            if not keep.any():
                return
            t_kept, imu_kept = np.asarray(t_s)[keep], np.asarray(imu)[keep]
            dev.next_plot_t = slot[keep][-1] + 1
            if dev.history and t_kept[0] < dev.history[-1][0][-1]:
                dev.history.clear()  # stream time went back: a new stream under this name
            dev.pending_t.append(t_kept)
            dev.pending_imu.append(imu_kept)
            # a large chunk (a fast replay's: minutes) keeps only its last HISTORY_S
            recent = int(np.searchsorted(t_kept, t_kept[-1] - HISTORY_S))
            dev.history.append((t_kept[recent:], imu_kept[recent:]))
            while dev.history[0][0][-1] < t_kept[-1] - HISTORY_S:
                dev.history.popleft()

    def add_alert(self, alert: Alert) -> None:
        row = alert.to_dict()
        with self._lock:
            self._device(alert.device)
            self._alerts.append(row)
            self._new_alerts.append(row)
            self.alerts_seen += 1

    def set_status(self, rows: list[DeviceStatus]) -> None:
        with self._lock:
            for row in rows:
                self._device(row.device).status = row.to_dict()

    def finish(self) -> None:
        """The session is over: every device reads as ended, not dropped."""
        with self._lock:
            self._finished = True

    def _link_state(self, dev: _Device, now: float) -> LinkState:
        if self._finished:
            return LinkState.ENDED
        return LinkState.DROPPED if now - dev.last_rx_s > STALE_AFTER_S else LinkState.LIVE

    def collect(self) -> dict:
        """What is new since the last call (the pushed ``update`` message)."""
        now = self._clock()
        with self._lock:
            devices = {}
            for name, dev in self._devices.items():
                devices[name] = {
                    "status": dev.status,
                    "link": self._link_state(dev, now).value,
                    "samples": _samples(dev.pending_t, dev.pending_imu),
                }
                dev.pending_t, dev.pending_imu = [], []
            alerts, self._new_alerts = self._new_alerts, []
        return {"kind": "update", "devices": devices, "alerts": alerts}

    def snapshot(self) -> dict:
        """The whole recent picture (the first message, and a resync after an overflow)."""
        now = self._clock()
        with self._lock:
            devices = {
                name: {
                    "status": dev.status,
                    "link": self._link_state(dev, now).value,
                    "samples": _samples([h[0] for h in dev.history], [h[1] for h in dev.history]),
                }
                for name, dev in self._devices.items()
            }
            alerts = list(self._alerts)
        return {"kind": "snapshot", "session": self.session, "devices": devices, "alerts": alerts}


def _samples(ts: list[np.ndarray], imus: list[np.ndarray]) -> dict:
    """JSON-ready columns: ``t`` [n] and ``imu`` [6][n], rounded to what a plot can show."""
    if not ts:
        return {"t": [], "imu": [[] for _ in range(6)]}
    t = np.concatenate(ts)
    imu = np.concatenate(imus)
    return {
        "t": np.round(t, 3).tolist(),
        "imu": np.round(imu.T, 3).tolist(),  # [6, n]
    }
