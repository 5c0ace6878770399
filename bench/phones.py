"""Phones over the network: held-out recordings sent the way the phone apps send them, against
the canonical stream.

    python bench/phones.py --json [--model M.onnx] [--quick]

Held-out HAPT subjects (activity) and held-out SisFall subjects (falls), each recording encoded
by the emulated apps (``firmware_bridge.phones``) and decoded by the runtime's own phone path:

* ``sensorlogger_android``: push messages as a Pixel sends them (total acceleration ~100 Hz,
  gyroscope ~400 Hz on their own stamps, float32, Android sign);
* ``sensorlogger_ios``: one CoreMotion update at 100 Hz, acceleration without gravity + gravity,
  iOS sign (inferred, as for an export without Metadata.csv);
* ``sensorlogger_ios_reordered``: the same, 30 % of adjacent messages swapped in delivery
  (re-ordered by ``messageId`` within the window);
* ``phyphox``: a simple experiment's buffers (acc 100 Hz, gyro 200 Hz) as ``/get`` answers them
  (8 significant digits), polled every 0.2 s of experiment time.

Each message goes through ``PhoneStream`` / ``PhyphoxSource._add``, the code ``listen --http``,
``--mqtt-in`` and ``--phyphox`` run after the transport (the transports themselves are under
test in ``tests/test_sources_phone.py``); the decoded stream then runs through the pipeline as
``bench/devices.py`` runs every condition (its scoring, its mounting start: cold, calibrated
online, or with ``--calibrate-first`` the estimate from the same rendering; the canonical row
and the phones always start alike, ``mounting_start`` in the JSON says which).
``lost_samples``: timeline samples the app sent inside the span both sensors cover that never
reached the pipeline (0 when nothing is lost).

Last line: ``{"devices": {name: {"activity_f1", "fall_sensitivity", "fall_latency_p95_s",
"lost_samples", "reconnects", "drops"}}, "worst_activity_f1_drop",
"worst_fall_sensitivity_drop"}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import devices as dev
from bench._data import data_root, held_out_recordings
from firmware_bridge.phones import EmulatedPhyphox, PushConfig, delivery_order, push_messages
from gaitedge.engine import load_engine
from gaitedge.sources.base import SourceStats
from gaitedge.sources.phone import PhoneStream, parse_push
from gaitedge.sources.phyphox import PhyphoxSource

log = logging.getLogger("bench.phones")


@dataclass
class PhonePath:
    """A phone app and its delivery, as a ``bench.devices`` condition (``render``)."""

    name: str
    app: str  # sensorlogger or phyphox
    platform: str = "android"
    swap_p: float = 0.0
    lost_samples: int = 0
    drops: dict[str, int] = field(default_factory=dict)

    def time_scale(self) -> float:
        return 1.0

    def render(self, imu: np.ndarray, rate_hz: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(len(imu)) / rate_hz
        if self.app == "phyphox":
            return self._phyphox(t, imu)
        return self._sensorlogger(t, imu, seed)

    def _sensorlogger(self, t, imu, seed: int):
        config = PushConfig(platform=self.platform, batch_s=0.2)
        bodies = push_messages(t, imu, config)
        msgs = [parse_push(b) for b in bodies]
        phone = PhoneStream("phone", SourceStats(), reorder_wait_s=1.0)
        chunks = []
        for k, i in enumerate(delivery_order(len(bodies), swap_p=self.swap_p, seed=seed)):
            now = k * config.batch_s  # arrival time: one batch period apart
            chunks += phone.add(msgs[i], now, now)
        chunks += phone.expire(1e9, everything=True)
        timeline = "gyroscope" if self.platform == "android" else "accelerometer"
        self._count(msgs, timeline, chunks, phone.stats)
        return _stream(chunks, t[0])

    def _phyphox(self, t, imu):
        phone = EmulatedPhyphox(t, imu)  # its server is never started: /get answered in-process
        phone._server.server_close()
        source = PhyphoxSource("http://phone:8080")
        source.buffers = {
            "acc": ("acc_time", "accX", "accY", "accZ"),
            "gyro": ("gyr_time", "gyrX", "gyrY", "gyrZ"),
        }
        phone.measuring, chunks = True, []
        end = max(phone.acc[0][-1], phone.gyro[0][-1])
        for now in np.arange(0.2, end + 0.4, 0.2):
            phone.experiment_time_s = lambda now=now: now
            params = [(k, v) for k, v in _query_params(source.query())]
            chunks += source._add(json.loads(phone.get(params)), float(now))
        (ta, _), (tg, _) = phone.acc, phone.gyro
        sent = int(((tg >= ta[0]) & (tg <= ta[-1])).sum())
        self.lost_samples += sent - sum(len(c.t_s) for c in chunks)
        return _stream(chunks, t[0])

    def _count(self, msgs, timeline: str, chunks, stats: SourceStats) -> None:
        ns = np.concatenate([m.sensors[timeline][0] for m in msgs])
        joined = ("totalacceleration",) if self.platform == "android" else ("gravity", "gyroscope")
        others = [np.concatenate([m.sensors[s][0] for m in msgs]) for s in joined]
        lo, hi = max(o[0] for o in others), min(o[-1] for o in others)
        sent = int(((ns >= lo) & (ns <= hi)).sum())
        self.lost_samples += sent - sum(len(c.t_s) for c in chunks)
        for reason, n in stats.decoder_drops.items():
            self.drops[reason] = self.drops.get(reason, 0) + n


def _query_params(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    return parse_qsl(urlsplit(query).query, keep_blank_values=True)


def _stream(chunks, t0: float) -> tuple[np.ndarray, np.ndarray]:
    t = np.concatenate([c.t_s for c in chunks]) + t0
    return t, np.concatenate([c.imu for c in chunks])


def paths() -> list:
    return [
        dev.Condition("canonical"),
        PhonePath("sensorlogger_android", "sensorlogger", "android"),
        PhonePath("sensorlogger_ios", "sensorlogger", "ios"),
        PhonePath("sensorlogger_ios_reordered", "sensorlogger", "ios", swap_p=0.3),
        PhonePath("phyphox", "phyphox"),
    ]


def run(
    model: Path | None, quick: bool, calibrate_first: bool = False, only: list[str] | None = None
) -> dict:
    dev.CALIBRATE_FIRST = calibrate_first  # the same mounting start for canonical and phones
    root = data_root()
    engine = load_engine(model)
    hapt, sisfall = held_out_recordings(root, 3 if quick else None, 4 if quick else 1)
    rows = {}
    for path in paths():
        if only and path.name != "canonical" and path.name not in only:
            continue
        t0 = time.perf_counter()
        falls = dev.fall_scores(engine, path, sisfall, 1)
        row = {
            "activity_f1": round(dev.activity_f1(engine, path, hapt, 0), 4),
            "fall_sensitivity": falls["sensitivity"],
            "fall_specificity": falls["specificity"],
            "fall_latency_p95_s": falls["latency_p95_s"],
            "lost_samples": getattr(path, "lost_samples", 0),
            "reconnects": 0,
            "drops": getattr(path, "drops", {}),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log.info("%s %s", path.name, row)
        rows[path.name] = row
    canon = rows["canonical"]
    return {
        "model": engine.contract.name,
        "devices": rows,
        "worst_activity_f1_drop": round(
            max(canon["activity_f1"] - r["activity_f1"] for r in rows.values()), 4
        ),
        "worst_fall_sensitivity_drop": round(
            max(canon["fall_sensitivity"] - r["fall_sensitivity"] for r in rows.values()), 4
        ),
        "hapt_subjects": sorted({r.subject for r in hapt}),
        "sisfall_trials": len(sisfall),
        "quick": quick,
        "mounting_start": "calibrate_first" if calibrate_first else "cold",
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="3 HAPT subjects, a quarter of SisFall")
    p.add_argument(
        "--calibrate-first",
        action="store_true",
        help="canonical and phones start from the estimate calibrated on the same rendering "
        "(bench/devices.py's option, look-ahead); default: cold, calibrated online",
    )
    names = [path.name for path in paths()[1:]]
    p.add_argument("--paths", nargs="*", choices=names, help="only these (canonical always)")
    p.add_argument("--json", action="store_true", help="only the JSON line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    print(json.dumps(run(args.model, args.quick, args.calibrate_first, args.paths)))


if __name__ == "__main__":
    main()
