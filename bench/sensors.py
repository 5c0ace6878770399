"""Sensors people own: held-out recordings streamed through each emulated device, scored.

    python bench/sensors.py --json [--quick [--all-falls]] [--calibrate-first] [--speed 20]
                            [--drops 2] [--rows polar ...] [--model M.onnx]

Held-out HAPT subjects (activity) and held-out SisFall subjects (falls), as ``bench/devices.py``
selects them, are played back to back by each emulated sensor (``firmware_bridge.peripherals``:
encoded exactly as that device encodes them) on the emulated BlueZ, received by
``gaitedge.sources.BleSource`` through bleak's real BlueZ backend with the device's profile
(``gaitedge.devices``), with ``--drops`` deliberate link drops per stream. What arrived is cut
back into the recordings and scored exactly as ``bench/devices.py`` scores its conditions
(``activity_f1``, ``fall_scores``), against the canonical stream (the recordings as they are),
both under the same mounting start (``mounting_start``: cold by default, as bench/devices.py;
``--calibrate-first``: the estimate from the same rendering of the subject's recordings).
``--all-falls`` keeps quick mode's activity and ADL trials but streams every held-out fall
trial (quick mode has 37: one fall is 0.027 of sensitivity); ``--fall-every K`` every K-th of
them (3: 150 falls, one is 0.0067).

Outages: a drop loses the link for as long as BlueZ's supervision timeout, the outage and the
reconnect take on the wall clock, and the emulated device's clock runs at the wall clock's pace
meanwhile (``PlaybackConfig.outage_speed=1``), as a real sensor's does: played at 20x, a 0.8-s
reconnect loses 0.8 s of samples, not 16 s (before 2026-12-06 it lost ``speed`` times as much,
and an outage cut into a fall's impact several times a run).

Per row, ``lost_falls`` / ``gained_falls`` name the fall trials the device path decided
otherwise than canonical, with ``in_outage`` (a deliberate outage cut into the trial) and the
trial's peak |acc| canonical and as delivered.

Stream time: within a connection, the samples keep the stream time the runtime gave them; each
connection is placed at its device time (playing faster than real time, the host clock would
shrink the outages), so recordings can be cut and labelled.

Rows: :data:`ROWS` maps a name to a function streaming (t, imu) and returning what arrived
(:class:`Streamed`); a new path (the phone sources) is one function and one line there. A sensor
without a gyroscope (:data:`ACCELEROMETER_ONLY`: the Polar H10) runs the shipped
accelerometer-only bundle, as the runtime picks it, and is compared with the canonical stream
through that bundle (``canonical_accelerometer_only``); each row names its ``model``.

Last line: ``{"devices": {name: {"activity_f1", "fall_sensitivity", "fall_latency_p95_s",
"lost_samples", "reconnects", "drops"}}, "worst_activity_f1_drop",
"worst_fall_sensitivity_drop", ...}``. ``lost_samples``: samples the device sent on a live link
that never came out of the source (outages are not loss: they are counted in ``outage_s``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import devices as dev
from bench._data import data_root, held_out_recordings
from bench.devices import Condition, activity_f1, fall_scores
from gaitedge.alerts import AlertType
from gaitedge.datasets import render_rate
from gaitedge.engine import accelerometer_only_model, load_engine

log = logging.getLogger("bench.sensors")


@dataclass(frozen=True)
class Streamed:
    """What one path delivered for a stream of recordings played back to back.

    Attributes:
        t_s: [M] device-aligned stream time (0 = the first sample played).
        imu: [M, 6] what came out of the source.
        lost_samples: sent on a live link, never delivered.
        reconnects, drops: the source's reconnects, the deliberate link drops.
        outage_s: device time not streamed because the link was down.
        queue_overflows: notifications the host dropped because its consumer fell behind
            (faster-than-real-time playback outrunning the decoder): must be 0 for a row.
    """

    t_s: np.ndarray
    imu: np.ndarray
    lost_samples: int
    reconnects: int
    drops: int
    outage_s: float
    queue_overflows: int = 0
    speed: float = 1.0


async def _collect(source, device, drops: int, duration_s: float) -> list:
    """Chunks until the recording ended, with ``drops`` link drops spread over it."""
    chunks = []

    async def consume():
        async with source:
            async for chunk in source.chunks():
                chunks.append(chunk)

    task = asyncio.ensure_future(consume())
    peripheral = device.peripheral
    for k in range(drops):
        while peripheral.position < (k + 1) * duration_s * peripheral.rate_hz / (drops + 1):
            _raise_if_done(task)
            await asyncio.sleep(0.02)
        device.drop_link(outage_s=0.05)
    while not peripheral.stats.finished:
        _raise_if_done(task)
        await asyncio.sleep(0.05)
    # The last notifications in flight (a busy bus delivers them late): until 1 s brings none.
    arrived = -1
    while arrived != source.stats.samples:
        arrived = source.stats.samples
        await asyncio.sleep(1.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return chunks


def _raise_if_done(task: asyncio.Future) -> None:
    """The receiving side ended before the recording did: its error (a refused device), not
    a wait for samples that never come."""
    if task.done():
        task.result()
        raise RuntimeError("the source stopped before the recording ended")


def stream_ble(name: str, t: np.ndarray, imu: np.ndarray, drops: int, speed: float) -> Streamed:
    """``imu`` played by the emulated ``name`` sensor, received through BleSource."""
    from firmware_bridge.ble_emulator import emulated_bluez
    from firmware_bridge.peripherals import PlaybackConfig, make_peripheral
    from gaitedge.sources import BleSource

    config = PlaybackConfig(speed=speed, start_on_command=True, outage_speed=1.0)
    with emulated_bluez() as bluez:
        device = bluez.add_peripheral(make_peripheral(name, t, imu, config))
        source = BleSource(
            device.address,
            watchdog_s=2.0,
            max_backoff_s=0.2,
            max_reconnects=5,
            # a sensor without a gyroscope streams [N, 3] (its row runs the acc-only bundle)
            no_gyroscope_refusal=None if name in ACCELEROMETER_ONLY else "",
        )
        chunks = asyncio.run(_collect(source, device, drops, float(t[-1])))
    peripheral = device.peripheral
    sent = sorted(set.intersection(*(peripheral.stats.sent[s] for s in peripheral.sensors)))
    # Each connection streamed one run of consecutive device samples: place it there.
    runs = np.split(np.array(sent), np.flatnonzero(np.diff(sent) > 1) + 1)
    starts = [i for i, c in enumerate(chunks) if c.new_connection] + [len(chunks)]
    times, values = [], []
    for run, a, b in zip(runs, starts[:-1], starts[1:], strict=False):
        t_conn = np.concatenate([c.t_s for c in chunks[a:b]])
        times.append(t_conn - t_conn[0] + run[0] / peripheral.rate_hz)
        values.append(np.concatenate([c.imu for c in chunks[a:b]]))
    received = sum(len(v) for v in values)
    return Streamed(
        t_s=np.concatenate(times),
        imu=np.concatenate(values),
        lost_samples=len(sent) - received,
        reconnects=source.stats.reconnects,
        drops=device.stats.link_drops,
        outage_s=round((len(peripheral.imu) - len(sent)) / peripheral.rate_hz, 2),
        queue_overflows=source.queue_overflows,
        speed=speed,
    )


def ble_row(name: str, max_speed: float) -> Callable[..., Streamed]:
    """A sensor's row; ``max_speed`` caps the playback speed where each sample is one or more
    notifications: the emulated BlueZ (marshalling a D-Bus signal per notification) and the
    host (bleak unmarshalling it, the profile decoding it, one chunk per notification) share
    one Python process, and past ~800 signals a second sustained on a busy 2-core machine the
    host falls behind until its queue overflows (``queue_overflows``, which must stay 0;
    MetaWear at 20x, 2 000 a second, lost 456 samples so). At real time the heaviest row (CSV
    lines in 20-byte pieces) is 150 notifications a second."""
    return lambda t, imu, drops, speed: stream_ble(name, t, imu, drops, min(speed, max_speed))


# name -> how that path streams (t, imu); one line per sensor (phone paths join here).
ROWS: dict[str, Callable[..., Streamed]] = {
    "polar": ble_row("polar", 20.0),
    "metawear": ble_row("metawear", 8.0),
    "movesense": ble_row("movesense", 20.0),
    "thingy": ble_row("thingy", 16.0),
    "science-journal": ble_row("science-journal", 8.0),
    "uart-csv": ble_row("uart-csv", 5.0),
    "polar-h10": ble_row("polar-h10", 20.0),
}
# Rows whose sensor has no gyroscope: scored with the shipped accelerometer-only bundle (what
# the runtime picks for them), against the canonical stream through that same bundle.
ACCELEROMETER_ONLY = frozenset({"polar-h10"})


class Delivered(Condition):
    """A bench/devices condition whose rendering is what a path delivered for each recording."""

    def __init__(self, name: str, cuts: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        super().__init__(name)
        object.__setattr__(self, "cuts", cuts)

    def render(self, imu: np.ndarray, rate_hz: float, seed: int):
        return self.cuts[id(imu)]


def deliver(row: Callable[..., Streamed], recs: list, drops: int, speed: float):
    """Play ``recs`` back to back through ``row``; cut what arrived back per recording.

    Returns (what arrived, {id(rec.imu): (t, imu)}, ids of the recordings an outage cut into:
    more than :data:`OUTAGE_GAP_S` of their span missing)."""
    rate_hz = recs[0].rate_hz
    imu = np.concatenate([r.imu for r in recs])
    bounds = np.cumsum([0] + [len(r.imu) for r in recs]) / rate_hz
    got = row(np.arange(len(imu)) / rate_hz, imu, drops, speed)
    cuts, in_outage = {}, set()
    for rec, start, end in zip(recs, bounds[:-1], bounds[1:], strict=True):
        keep = (got.t_s >= start) & (got.t_s < end)
        edges = np.concatenate(([start], got.t_s[keep], [end]))
        if np.diff(edges).max() > OUTAGE_GAP_S:
            in_outage.add(id(rec.imu))
        if keep.sum() < 2:  # a recording lost whole in an outage: nothing to score it on
            keep[np.searchsorted(got.t_s, start) :][:2] = True
        cuts[id(rec.imu)] = (got.t_s[keep] - start, got.imu[keep])
    return got, cuts, in_outage


# A recording missing more than this much in one piece was cut into by a deliberate outage.
OUTAGE_GAP_S = 0.5


@contextlib.contextmanager
def replays() -> Iterator[list]:
    """The alerts of every ``bench.devices.replay`` run while open, in order (its scoring runs
    the recordings in order): to name the trials a path decided otherwise than canonical."""
    calls: list = []
    real = dev.replay

    def recorded(*args, **kwargs):
        alerts = real(*args, **kwargs)
        calls.append(alerts)
        return alerts

    dev.replay = recorded
    try:
        yield calls
    finally:
        dev.replay = real


def _fell(alerts) -> bool:
    return any(a.type is AlertType.FALL for a in alerts)


def fall_differences(sisfall, canonical: list, device: list, cuts: dict, in_outage: set) -> dict:
    """The fall trials canonical detected and the device path did not (and the reverse): each
    with its SisFall trial, whether a deliberate outage cut into it, and its peak |acc| (g) as
    the canonical stream and the device path delivered it (the impact rule: 2.5 g)."""
    out: dict[str, list] = {"lost_falls": [], "gained_falls": []}
    for rec, c, d in zip(sisfall, canonical, device, strict=True):
        if not rec.is_fall or _fell(c) == _fell(d):
            continue
        canon = render_rate(rec.imu, rec.rate_hz, CANONICAL_HZ)
        row = {
            "trial": f"{rec.subject} {rec.activity} #{rec.group}",
            "in_outage": id(rec.imu) in in_outage,
            "canonical_peak_g": round(float(np.linalg.norm(canon[:, :3], axis=1).max() / G), 3),
            "device_peak_g": round(
                float(np.linalg.norm(cuts[id(rec.imu)][1][:, :3], axis=1).max() / G), 3
            ),
        }
        out["lost_falls" if _fell(c) else "gained_falls"].append(row)
    return out


CANONICAL_HZ, G = 50.0, 9.80665


def canonical_scores(engine, hapt: list, sisfall: list) -> tuple[dict, list]:
    """The canonical stream's figures through ``engine``, and its replays' alerts."""
    canonical = Condition("canonical")
    base = {"activity_f1": round(activity_f1(engine, canonical, hapt, 0), 4)}
    with replays() as canonical_replays:
        falls = fall_scores(engine, canonical, sisfall, 1)
    base |= {
        "fall_sensitivity": falls["sensitivity"],
        "fall_specificity": falls["specificity"],
        "fall_latency_p95_s": falls["latency_p95_s"],
    }
    return base, canonical_replays


def run(
    model: Path | None,
    quick: bool,
    speed: float,
    drops: int,
    rows: list[str],
    all_falls: bool = False,
    calibrate_first: bool = False,
    fall_every: int | None = None,
) -> dict:
    dev.CALIBRATE_FIRST = calibrate_first  # the same mounting start for canonical and devices
    root = data_root()
    engine = load_engine(model)
    hapt, sisfall = held_out_recordings(root, 2 if quick else None, 12 if quick else 1)
    fall_every = 1 if all_falls else fall_every
    if fall_every and quick:  # more held-out fall trials (one is 0.027 of quick mode's 37)
        _, every = held_out_recordings(root, 0, 1)
        falls = {id(r) for r in [r for r in every if r.is_fall][::fall_every]}
        sisfall = [
            r for i, r in enumerate(every) if id(r) in falls or (not r.is_fall and i % 12 == 0)
        ]
    base, canonical_replays = canonical_scores(engine, hapt, sisfall)
    acc = None  # (engine, canonical figures, replays) for the sensors without a gyroscope
    devices = {}
    for name in rows:
        t0 = time.perf_counter()
        row_engine, row_base, row_replays = engine, base, canonical_replays
        if name in ACCELEROMETER_ONLY:  # as the runtime: the shipped accelerometer-only bundle
            if acc is None:
                acc_engine = load_engine(accelerometer_only_model())
                acc = (acc_engine, *canonical_scores(acc_engine, hapt, sisfall))
            row_engine, row_base, row_replays = acc
        got_hapt, hapt_cuts, _ = deliver(ROWS[name], hapt, drops, speed)
        got_fall, fall_cuts, in_outage = deliver(ROWS[name], sisfall, drops, speed)
        f1 = activity_f1(row_engine, Delivered(name, hapt_cuts), hapt, 0)
        with replays() as device_replays:
            fall = fall_scores(row_engine, Delivered(name, fall_cuts), sisfall, 1)
        diff = fall_differences(sisfall, row_replays, device_replays, fall_cuts, in_outage)
        devices[name] = {
            "model": f"{row_engine.contract.name} {row_engine.contract.model_version}",
            "canonical_activity_f1": row_base["activity_f1"],
            "canonical_fall_sensitivity": row_base["fall_sensitivity"],
            "activity_f1": round(f1, 4),
            "fall_sensitivity": fall["sensitivity"],
            "fall_specificity": fall["specificity"],
            "fall_latency_p95_s": fall["latency_p95_s"],
            "lost_samples": got_hapt.lost_samples + got_fall.lost_samples,
            "reconnects": got_hapt.reconnects + got_fall.reconnects,
            "drops": got_hapt.drops + got_fall.drops,
            "outage_s": round(got_hapt.outage_s + got_fall.outage_s, 2),
            "queue_overflows": got_hapt.queue_overflows + got_fall.queue_overflows,
            "speed": got_fall.speed,
            "fall_trials_in_outages": sum(r.is_fall and id(r.imu) in in_outage for r in sisfall),
            **diff,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log.info("%s: %s", name, devices[name])
    return {
        "devices": devices,
        "canonical": base,
        "canonical_accelerometer_only": None if acc is None else acc[1],
        # Each device against the canonical stream through the model it runs.
        "worst_activity_f1_drop": round(
            max(d["canonical_activity_f1"] - d["activity_f1"] for d in devices.values()), 4
        ),
        "worst_fall_sensitivity_drop": round(
            max(d["canonical_fall_sensitivity"] - d["fall_sensitivity"] for d in devices.values()),
            4,
        ),
        "worst_fall_latency_p95_s": max(
            d["fall_latency_p95_s"] for d in devices.values() if d["fall_latency_p95_s"]
        ),
        "hapt_subjects": sorted({r.subject for r in hapt}),
        "sisfall_trials": len(sisfall),
        "sisfall_falls": sum(r.is_fall for r in sisfall),
        "hapt_hours": round(sum(len(r.imu) / r.rate_hz for r in hapt) / 3600, 2),
        "speed": speed,
        "drops_per_stream": drops,
        "quick": quick,
        "all_falls": all_falls,
        "fall_every": fall_every,
        "outage_clock": "wall clock (a real device's pace)",
        "mounting_start": "calibrate_first" if calibrate_first else "cold",
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="2 HAPT subjects, 1 in 12 SisFall trials")
    p.add_argument("--speed", type=float, default=20.0, help="playback speed of the devices")
    p.add_argument("--drops", type=int, default=2, help="deliberate link drops per stream")
    p.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    p.add_argument(
        "--all-falls",
        action="store_true",
        help="with --quick: every held-out SisFall fall trial (and quick's 1 in 12 ADL trials)",
    )
    p.add_argument(
        "--fall-every",
        type=int,
        default=None,
        help="with --quick: every K-th held-out SisFall fall trial (and quick's ADL trials)",
    )
    p.add_argument(
        "--calibrate-first",
        action="store_true",
        help="canonical and devices start from the estimate calibrated on the same rendering "
        "(bench/devices.py's option, look-ahead); default: cold, calibrated online",
    )
    p.add_argument("--json", action="store_true", help="only the JSON line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    logging.getLogger("bleak.backends.bluezdbus.version").setLevel(logging.ERROR)
    result = run(
        args.model,
        args.quick,
        args.speed,
        args.drops,
        args.rows,
        args.all_falls,
        args.calibrate_first,
        args.fall_every,
    )
    if not args.json:
        for name, row in result["devices"].items():
            print(name, row)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
