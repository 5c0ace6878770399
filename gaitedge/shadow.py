"""A device that decides on its own (protocol 1.2 result frames), and ``listen --shadow``.

:func:`result_alerts` turns a device's result frame into the same :class:`~gaitedge.alerts.Alert`
objects the host's own rules raise, so the device's decisions take the normal sink path.
:class:`Shadow` compares them window by window with the host model run beside them on the
device's raw samples: the window's arg-max activity class, and the alerts raised at its end
(type, label and event time). Windows are matched by their end time on the stream timeline
(to the millisecond), whichever side decides first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gaitedge.alerts import Alert, AlertType, Confirmation

# Event times are carried in whole milliseconds by the result frame.
EVENT_TOLERANCE_S = 0.0015


def result_alerts(frame, t_s: float, device: str, activity_classes: Sequence[str]) -> list[Alert]:
    """The alerts a result frame (``firmware_bridge.ResultFrame``) carries, at stream time
    ``t_s`` (the window's end), labelled with the model's activity classes."""
    alerts = []
    if frame.activity_change:
        alerts.append(
            Alert(
                t=t_s,
                t_event=t_s - frame.change_lead_ms / 1000.0,
                type=AlertType.ACTIVITY,
                label=class_name(activity_classes, frame.activity),
                p=frame.change_p,
                device=device,
            )
        )
    if frame.fall:
        alerts.append(
            Alert(
                t=t_s,
                t_event=t_s - frame.fall_lead_ms / 1000.0,
                type=AlertType.FALL,
                label="fall",
                p=frame.fall_p,
                device=device,
                confirmed_by=tuple(Confirmation(c) for c in frame.confirmed_by),
                extra={"impact_g": round(frame.impact_g, 2)},
            )
        )
    return sorted(alerts, key=lambda a: a.t_event)


def class_name(classes: Sequence[str], index: int | None) -> str | None:
    """The model's name for a device's class index (``class N`` beyond the model's list)."""
    if index is None:
        return None
    return classes[index] if 0 <= index < len(classes) else f"class {index}"


@dataclass
class ShadowStats:
    """Device vs host, for the status line and the end-of-session summary."""

    windows: int = 0  # windows both sides decided
    class_disagreements: int = 0  # ... with a different arg-max activity class
    alert_disagreements: int = 0  # ... with different alerts at their end
    device_only: int = 0  # windows only the device decided (so far)
    host_only: int = 0

    @property
    def disagreements(self) -> int:
        return self.class_disagreements + self.alert_disagreements

    def to_dict(self) -> dict[str, int]:
        return {
            "windows": self.windows,
            "disagreements": self.disagreements,
            "class_disagreements": self.class_disagreements,
            "alert_disagreements": self.alert_disagreements,
            "device_only": self.device_only,
            "host_only": self.host_only,
        }


def _key(t_s: float) -> int:
    return round(t_s * 1000.0)


def _same_alerts(a: list[Alert], b: list[Alert]) -> bool:
    if len(a) != len(b):
        return False
    a = sorted(a, key=lambda x: (x.type.value, x.label))
    b = sorted(b, key=lambda x: (x.type.value, x.label))
    return all(
        x.type == y.type and x.label == y.label and abs(x.t_event - y.t_event) <= EVENT_TOLERANCE_S
        for x, y in zip(a, b, strict=True)
    )


class Shadow:
    """Window-by-window comparison of one device's decisions with the host's."""

    def __init__(self) -> None:
        self.stats = ShadowStats()
        # window end (ms) -> (arg-max class, alerts raised at that end), per side
        self._pending: dict[str, dict[int, tuple[int | None, list[Alert]]]] = {
            "device": {},
            "host": {},
        }

    def add_device(self, t_end_s: float, activity: int | None, alerts: list[Alert]) -> None:
        self._add("device", _key(t_end_s), activity, alerts)

    def add_host(
        self, t_end_s: np.ndarray, activity: np.ndarray | None, alerts: list[Alert]
    ) -> None:
        """A batch of host windows: their ends [K], arg-max classes [K] (None without an
        activity head), and the alerts they raised."""
        by_key: dict[int, list[Alert]] = {}
        for alert in alerts:
            by_key.setdefault(_key(alert.t), []).append(alert)
        for i, t in enumerate(np.asarray(t_end_s, np.float64)):
            k = _key(float(t))
            cls = None if activity is None else int(activity[i])
            self._add("host", k, cls, by_key.pop(k, []))

    def _add(self, side: str, key: int, activity: int | None, alerts: list[Alert]) -> None:
        other = "host" if side == "device" else "device"
        mine, theirs = self._pending[side], self._pending[other]
        if key not in theirs:
            mine[key] = (activity, alerts)
        else:
            their_activity, their_alerts = theirs.pop(key)
            self.stats.windows += 1
            self.stats.class_disagreements += int(activity != their_activity)
            self.stats.alert_disagreements += int(not _same_alerts(alerts, their_alerts))
        self.stats.device_only = len(self._pending["device"])
        self.stats.host_only = len(self._pending["host"])
