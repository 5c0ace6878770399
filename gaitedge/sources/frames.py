"""Frame assembly shared by the device sources (serial, BLE): decoded ``firmware_bridge``
messages -> :class:`~gaitedge.sources.base.SampleChunk`, with stream time on the device clock
and the host-vs-device clock fit.

A device's sequence number and clock run on through a lost link (PROTOCOL.md 4.1: ``seq``
counts every frame produced and is not reset by a reconnect), so the assembler keeps both
across reconnects: the first frame of a new connection is judged against the last one before
the outage (:func:`continues`). If the device time that passed agrees with the host time that
passed, and the frames the sequence number says are missing could carry the samples the
device time says are missing, the device ran through: every sample it produced meanwhile is
counted lost, and stream time goes on on the device clock (the outage is a gap the chain
bridges or not by its ``max_gap_s`` rule, as for losses on a live link). Otherwise the device
restarted (or another device answers at that address): said so, counted in
``SourceStats.device_restarts``, and a new timeline starts at the host time elapsed.
"""

from __future__ import annotations

import logging

import numpy as np

from firmware_bridge import (
    MAX_SAMPLES_PER_FRAME,
    DeviceInfo,
    ResultFrame,
    SampleFrame,
    TimestampUnwrapper,
    counts_to_si,
    frames_lost,
)
from firmware_bridge.protocol import SEQ_MODULUS, TIMESTAMP_MODULUS_US
from gaitedge.sources.base import DeviceResult, SampleChunk, SourceStats

log = logging.getLogger(__name__)

SEQ_REPEATED = 65535  # what frames_lost() says for a repeated sequence number

# Continuity over an outage: the device time that passed must match the host time that passed
# within the receive latency on either side of it (BLE connection events, a busy host) plus a
# share of the gap (a clock ratio known only from a short fit).
CONTINUITY_LATENCY_S = 0.5
CONTINUITY_TOLERANCE = 0.25
# Without a fitted clock, any device clock within this ratio to the host's passes; a fitted
# ratio outside it is no device clock but a fit gone wrong (or a recording played faster).
MAX_CLOCK_RATIO = 1.5


def continues(device_gap_s: float, host_gap_s: float, ratio: float | None) -> bool:
    """Whether a device ran through an outage: ``device_gap_s`` of its time passed from the last
    sample before the outage to the first after it, while the host measured ``host_gap_s``
    between their arrivals. ``ratio``: device seconds per host second from the clock fit, None
    while there is none. False means its clock started over (a restart) or is another one."""
    if device_gap_s <= 0.0:  # time stood still or went back
        return False
    if ratio is None:
        low = host_gap_s / MAX_CLOCK_RATIO - CONTINUITY_LATENCY_S
        high = host_gap_s * MAX_CLOCK_RATIO + CONTINUITY_LATENCY_S
    else:
        expected = ratio * host_gap_s
        low = expected * (1 - CONTINUITY_TOLERANCE) - ratio * CONTINUITY_LATENCY_S
        high = expected * (1 + CONTINUITY_TOLERANCE) + ratio * CONTINUITY_LATENCY_S
    return low <= device_gap_s <= high


class ClockModel:
    """Host-vs-device clock: offset and drift fitted by least squares on recent frames.

    ``host ≈ offset + (1 + drift) * device``. Used to report drift and end-to-end latency; stream
    time stays on the device clock, whose sample spacing is what the signal chain needs.
    """

    def __init__(self, max_points: int = 512) -> None:
        self._device = np.zeros(max_points)
        self._host = np.zeros(max_points)
        self._n = 0

    def add(self, device_s: float, host_s: float) -> None:
        i = self._n % len(self._device)
        self._device[i], self._host[i] = device_s, host_s
        self._n += 1

    def fit(self) -> tuple[float, float]:
        """(offset_s, drift) where drift is fractional (1e-6 = 1 ppm); (0, 0) until fitted."""
        n = min(self._n, len(self._device))
        if n < 8:
            return 0.0, 0.0
        d, h = self._device[:n], self._host[:n]
        slope = self._slope(d, h)
        if slope is None:  # under a second of data: the slope is noise
            return float((h - d).min()), 0.0
        # The minimum residual (not the mean) tracks the fastest delivery path: queueing
        # delays only ever add latency.
        offset = float((h - slope * d).min())
        return offset, slope - 1.0

    def ratio(self) -> float | None:
        """Device seconds per host second (1.0 for a real device, the playback speed for an
        emulated one), or None until there is a second of data to fit."""
        n = min(self._n, len(self._device))
        if n < 8:
            return None
        slope = self._slope(self._device[:n], self._host[:n])
        return 1.0 / slope if slope is not None and slope > 0 else None

    @staticmethod
    def _slope(d: np.ndarray, h: np.ndarray) -> float | None:
        dc = d - d.mean()
        var = float(dc @ dc)
        if var < 1.0:
            return None
        return float(dc @ (h - h.mean())) / var

    def reset(self) -> None:
        self._n = 0


class FrameAssembler:
    """Decoded messages from one device, over all its connections -> SampleChunks.

    Sample frames need the device's DeviceInfo (rate and scale); frames that arrive before it
    are kept (up to ``max_pending``) and released once it comes, counted if dropped.
    """

    def __init__(self, device: str, stats: SourceStats, max_pending: int = 256) -> None:
        self.device = device
        self.stats = stats
        self.max_pending = max_pending
        self.info: DeviceInfo | None = None
        self.clock = ClockModel()
        self._pending: list[tuple[SampleFrame, float]] = []
        self._last_t_s: float | None = None  # the last sample: stream time and arrival
        self._last_host_s = 0.0
        self._new_connection = True
        self._reconnected = False
        self._other_device = False
        self._start_timeline()

    def _start_timeline(self) -> None:
        """Forget the device's counter and clock: a first connection, or after a restart."""
        self._unwrap = TimestampUnwrapper()
        self._wrap_us = 0  # whole clock wraps an outage hid from the unwrapper
        self._t0_us: int | None = None
        self._offset_s = 0.0
        self._prev_seq: int | None = None
        self._last_raw_us = 0  # the last frame's raw timestamp and samples
        self._last_frame_t_s = 0.0  # the last frame's first sample: stream time
        self._result_unwrap = TimestampUnwrapper()  # result times when no samples come
        self._prev_result_seq: int | None = None
        self._last_n = 0
        self._frame_n: int | None = None  # samples per frame while every frame had as many
        self._frame_n_varies = False

    def reset(self) -> None:
        """A new connection. Whether the device ran through the outage (its counter and clock
        went on) or restarted is judged at its first frame."""
        self._new_connection = True
        self._reconnected = self._prev_seq is not None

    def add(
        self, message: SampleFrame | DeviceInfo | ResultFrame, host_rx_s: float
    ) -> list[SampleChunk | DeviceResult]:
        if isinstance(message, ResultFrame):
            return [self._result(message, host_rx_s)]
        if isinstance(message, DeviceInfo):
            if self.info is not None and (
                message.device_id != self.info.device_id
                or message.sample_rate_millihz != self.info.sample_rate_millihz
            ):
                self._other_device = self._prev_seq is not None  # not the timeline we had
            self.info = message
            self.stats.rate_hz = message.sample_rate_hz
            pending, self._pending = self._pending, []
            return [c for f, h in pending for c in self._convert(f, h)]
        if self.info is None:
            if len(self._pending) < self.max_pending:
                self._pending.append((message, host_rx_s))
            else:
                self.stats.frames_before_info += 1
            return []
        return self._convert(message, host_rx_s)

    def _convert(self, frame: SampleFrame, host_rx_s: float) -> list[SampleChunk]:
        n = len(frame.samples)
        rate = self.info.sample_rate_hz
        lost = lost_samples = 0
        continued = False
        if self._prev_seq is not None:
            step_us = (frame.timestamp_us - self._last_raw_us) % TIMESTAMP_MODULUS_US
            lost = frames_lost(self._prev_seq, frame.seq)
            if lost == SEQ_REPEATED and step_us == 0:
                return []  # a duplicated frame, not 65535 lost ones
            if self._other_device:
                gap = None
            elif (
                self._reconnected
                or lost
                or step_us * 1e-6 > self._last_n / rate + CONTINUITY_LATENCY_S
            ):
                gap = self._gap(frame, step_us, host_rx_s)  # an outage, a loss, a clock jump
            else:
                gap = (0, 0, 0)
            self._reconnected = self._other_device = False
            if gap is None:
                self._restarted(frame, host_rx_s)
                lost = 0
            else:
                lost, lost_samples, wraps = gap
                self._wrap_us += wraps * TIMESTAMP_MODULUS_US
                continued = self._new_connection
        self._prev_seq = frame.seq
        self._last_raw_us, self._last_n = frame.timestamp_us, n
        if self._frame_n is None:
            self._frame_n = n
        elif n != self._frame_n:
            self._frame_n_varies = True
        t_us = self._unwrap.unwrap(frame.timestamp_us) + self._wrap_us
        if self._t0_us is None:  # a new timeline: after the last sample by the host time passed
            self._t0_us = t_us
            if self._last_t_s is not None:
                self._offset_s = self._last_t_s + (host_rx_s - self._last_host_s)
        t_s = self._offset_s + (t_us - self._t0_us) * 1e-6 + np.arange(n) / rate
        self._last_frame_t_s = float(t_s[0])
        self._last_t_s, self._last_host_s = float(t_s[-1]), host_rx_s
        self.clock.add(float(t_s[-1]), host_rx_s)
        self.stats.lost_frames += lost
        self.stats.lost_samples += lost_samples
        self.stats.chunks += 1
        self.stats.samples += n
        chunk = SampleChunk(
            device=self.device,
            t_s=t_s,
            imu=counts_to_si(frame.samples, self.info),
            host_rx_s=host_rx_s,
            seq=frame.seq,
            lost_frames=lost,
            new_connection=self._new_connection,
            # A protocol minor that declares the mounting (older devices: None, estimated).
            declared_mounting=getattr(self.info, "mounting_axis_map", None),
            acc_range_g=float(self.info.accel_range_g),
            lost_samples=lost_samples,
            continued=continued,
            device_decides=self.info.sends_results,
        )
        self._new_connection = False
        return [chunk]

    def _result(self, frame: ResultFrame, host_rx_s: float) -> DeviceResult:
        """A result frame on the samples' timeline: its time relative to the last sample frame
        (a result may be sent before the frame that holds its window's last sample), or on the
        device clock for a device that sends no samples."""
        lost = 0
        if self._prev_result_seq is not None:
            lost = frames_lost(self._prev_result_seq, frame.seq)
            lost = 0 if lost == SEQ_REPEATED else lost
        self._prev_result_seq = frame.seq
        if self._t0_us is not None:
            step = (frame.timestamp_us - self._last_raw_us) % TIMESTAMP_MODULUS_US
            step -= TIMESTAMP_MODULUS_US if step >= TIMESTAMP_MODULUS_US // 2 else 0
            t_s = self._last_frame_t_s + step * 1e-6
        else:
            t_s = self._offset_s + self._result_unwrap.unwrap(frame.timestamp_us) * 1e-6
        self.stats.results += 1
        self.stats.lost_results += lost
        return DeviceResult(self.device, t_s, frame, host_rx_s, lost)

    def _gap(self, frame: SampleFrame, step_us: int, host_rx_s: float):
        """(frames lost, samples lost, whole clock wraps) between the last frame and ``frame``,
        ``step_us`` apart modulo the clock's wrap; None if the device did not run through."""
        rate = self.info.sample_rate_hz
        host_gap_s = host_rx_s - self._last_host_s
        ratio = self.clock.ratio()
        # An outage longer than the clock's wrap (71.6 min): the host clock says how many wraps.
        expected_us = host_gap_s * (ratio or 1.0) * 1e6
        wraps = max(0, round((expected_us - step_us) / TIMESTAMP_MODULUS_US))
        step_s = (step_us + wraps * TIMESTAMP_MODULUS_US) * 1e-6
        if not continues(step_s - (self._last_n - 1) / rate, host_gap_s, ratio):
            return None
        by_time = round(step_s * rate) - self._last_n  # samples between the two frames
        # The sequence number, modulo 65536 frames: the device time says how many times over.
        frames = frames_lost(self._prev_seq, frame.seq)
        per_frame = self._frame_n if self._frame_n else max(1, len(frame.samples))
        frames += SEQ_MODULUS * max(0, round((by_time / per_frame - frames) / SEQ_MODULUS))
        slack = 2 + 2e-3 * by_time  # rounding, and the device clock's drift over a long gap
        if not frames - slack <= by_time <= frames * MAX_SAMPLES_PER_FRAME + slack:
            return None  # the counter and the clock disagree: one of them started over
        # Every frame so far had N samples: the counter says exactly what was produced (the
        # device time may also hold samples no frame carried, within one frame).
        exact = self._frame_n and not self._frame_n_varies
        if exact and abs(frames * self._frame_n - by_time) <= slack + self._frame_n:
            return frames, frames * self._frame_n, wraps
        return frames, max(by_time, frames), wraps

    def _restarted(self, frame: SampleFrame, host_rx_s: float) -> None:
        """The device's counter or clock started over (or another device answers): a new
        timeline, placed at the host time elapsed, and a new segment."""
        self.stats.device_restarts += 1
        log.warning(
            "%s restarted (sequence number %d after %d, device clock no longer continuous): "
            "what it produced before the restart is not counted",
            self.device,
            frame.seq,
            self._prev_seq,
        )
        self._start_timeline()
        self.clock.reset()
        self._new_connection = True

    def drift_ppm(self) -> float:
        return self.clock.fit()[1] * 1e6
