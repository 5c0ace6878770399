"""Typed status of a running session: one :class:`DeviceStatus` per device, built in one place
(``Pipeline.device_status`` plus the source's link health) and read by the CLI's status lines,
``--stats`` and tests alike."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LinkStatus:
    """Health of a live device's link (absent for recordings)."""

    rate_hz: float
    lost_frames: int
    corrupt: int
    reconnects: int
    clock_drift_ppm: float | None = None  # device vs host clock; only for device sources
    device_type: str | None = None  # the profile it speaks (polar, metawear, ..., gaitedge)
    # SourceStats: samples the device made that never arrived (outages it counted through
    # included), and reconnects at which its counter or clock had started over
    lost_samples: int = 0
    device_restarts: int = 0


@dataclass(frozen=True)
class DeviceStatus:
    """What the pipeline knows about one device right now."""

    device: str
    t_s: float
    activity: str | None
    p: float
    windows: int
    dropped: int
    segments: int
    latency_p95_ms: float
    mounting: str = "none"  # none, fixed, calibrating (...), calibrated (...)
    tied: int = 0  # samples whose timestamps were repaired (ties, batches, backward jitter)
    clock_resets: int = 0
    outliers: int = 0  # lone glitched stamps put back between their neighbours
    bridged: int = 0  # short losses interpolated over
    link: LinkStatus | None = None
    decisions: str = "host"  # "device": it sends its own decisions (protocol 1.2 results)
    # listen --shadow: the host model beside the device (gaitedge.shadow.ShadowStats.to_dict)
    shadow: dict | None = None
    # The model this device runs when it is not the session's (a sensor without a gyroscope
    # runs the accelerometer-only bundle): "name version"; None: the session's model
    model: str | None = None
    # Why the model refused this device's data (its units); None: not refused. The other
    # devices of the session go on (gaitedge.runner.stream).
    refused: str | None = None

    def line(self, playback_speed: float = 1.0) -> str:
        """The live status line (``listen`` and ``demo`` print it to stderr).

        ``playback_speed``: an emulator playing faster than real time (the demo); the device's
        clock drift is shown relative to it, not as the -75 % a 4x playback would read."""
        link = ""
        if self.link is not None:
            k = self.link
            drift = ""
            if k.clock_drift_ppm is not None:
                ppm = ((1 + k.clock_drift_ppm * 1e-6) * playback_speed - 1) * 1e6
                drift = f"clock_drift={ppm:.1f}ppm "
            kind = f"type={k.device_type} " if k.device_type else ""
            link = (
                f"{kind}rate={k.rate_hz}Hz lost_frames={k.lost_frames} "
                f"lost_samples={k.lost_samples} corrupt={k.corrupt} reconnects={k.reconnects} "
                f"device_restarts={k.device_restarts} {drift}"
            )
        repaired = ""
        if self.tied or self.clock_resets or self.bridged:
            repaired = f"tied={self.tied} clock_resets={self.clock_resets} bridged={self.bridged} "
        if self.outliers:
            repaired += f"outliers={self.outliers} "
        if self.decisions != "host":
            repaired += f"decisions={self.decisions} "
        if self.model is not None:
            repaired += f"model={self.model.replace(' ', '@')} "
        if self.shadow is not None:
            s = self.shadow
            repaired += f"shadow={s['windows']}w/{s['disagreements']}disagree "
        if self.refused is not None:
            return f"[{self.device}] refused: {self.refused}"
        return (
            f"[{self.device}] t={self.t_s:.1f}s mounting={self.mounting} "
            f"activity={self.activity} p={self.p:.2f} "
            f"{link}{repaired}windows={self.windows} dropped={self.dropped} "
            f"segments={self.segments} latency_p95={self.latency_p95_ms}ms"
        )

    def to_dict(self) -> dict:
        """Flat JSON-ready form: the pipeline's keys, then the link's where there is one."""
        row = asdict(self)
        link = row.pop("link")
        if link is not None:
            row |= {k: v for k, v in link.items() if v is not None}
        return row
