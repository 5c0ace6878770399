"""Real devices: the shipped model and the runtime on held-out data sent the way devices send it.

    python bench/devices.py --json [--model M.onnx] [--quick]

Held-out HAPT subjects (activity) and held-out SisFall subjects (falls), plus MobiFall's phone in
a trouser pocket (never trained on; its 9 subjects with walking), re-rendered as:

* ``mount_axis_*``: the 24 axis-aligned mountings; ``mount_random_*``: 20 random rotations;
* ``rate_*``: 20, 25, 52, 100, 104 and 200 Hz with a ±2 % clock error and timing jitter;
* ``stamps_1ms`` / ``stamps_10ms``: phone stamps floored to 1 / 10 ms at 104 Hz (ties);
* ``android_batch``: 5 samples per delivery, all stamped with its arrival time;
* ``ble_loss_1pct`` / ``ble_loss_5pct``: notifications of 4 samples lost at random.

Everything runs through the runtime's own path, as ``gaitedge replay --fast`` does: a
:class:`gaitedge.pipeline.Pipeline` with the bundle's contract (its hop, its mounting), fed by a
:class:`gaitedge.sources.ReplaySource`. A device with automatic mounting starts from the estimate
that ``gaitedge calibrate`` stored for it from the same rendering of that subject's recordings
(as a device worn the same way by the same person). Activity: sample-level macro-F1 of the
activity timeline (each activity alert holds from its ``t_event`` until the next), over the 6
basic HAPT activities. Falls: a trial is detected when it raises a fall alert; latency is the
alert's time minus the trial's peak |acc| (the impact).

Last line: one JSON object with ``canonical_activity_f1``, ``worst_activity_f1_drop``,
``canonical_fall_sensitivity``, ``worst_fall_sensitivity_drop``,
``worst_fall_specificity_drop``, ``fall_latency_p95_s`` and ``conditions`` (one row each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import data_root
from gaitedge import datasets as ds
from gaitedge.alerts import AlertType
from gaitedge.engine import load_engine
from gaitedge.metrics import confusion_matrix, macro_f1
from gaitedge.mounting import MountStore
from gaitedge.pipeline import Pipeline
from gaitedge.recording import Recording
from gaitedge.runner import stream
from gaitedge.sinks import FanOut, ListSink
from gaitedge.sources.replay import ReplaySource

log = logging.getLogger("bench.devices")


@dataclass(frozen=True)
class Condition:
    """How a device sends the same movement."""

    name: str
    rotation: tuple[tuple[float, ...], ...] | None = None
    rate_hz: float = 50.0
    clock_error: float = 0.0  # the device clock runs this much fast (0.02 = +2 %)
    jitter: float = 0.0  # stamp noise, uniform, as a fraction of a sample interval
    stamp_resolution_s: float | None = None
    batch: int = 1  # samples per delivery sharing one arrival stamp
    loss: float = 0.0  # fraction of 4-sample notifications lost

    def render(self, imu: np.ndarray, rate_hz: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """[N, 6] at ``rate_hz`` -> (stamps [M], samples [M, 6]) as this device sends them."""
        rng = np.random.default_rng(seed)
        x = imu
        if self.rotation is not None:
            r = np.asarray(self.rotation)
            x = np.concatenate([x[:, :3] @ r.T, x[:, 3:] @ r.T], axis=1)
        x = ds.render_rate(x, rate_hz, self.rate_hz)
        dt = (1 + self.clock_error) / self.rate_hz
        t = np.arange(len(x)) * dt
        if self.jitter:
            t = t + rng.uniform(-self.jitter, self.jitter, len(t)) * dt
        if self.stamp_resolution_s:
            t = np.floor(t / self.stamp_resolution_s) * self.stamp_resolution_s
        if self.batch > 1:
            last = np.minimum((np.arange(len(t)) // self.batch + 1) * self.batch - 1, len(t) - 1)
            t = t[last]
        if self.loss:
            frame = np.arange(len(t)) // 4
            lost = rng.random(frame[-1] + 1) < self.loss
            keep = ~lost[frame]
            keep[0] = True
            t, x = t[keep], x[keep]
        return t, x

    def time_scale(self) -> float:
        """Stream seconds per recording second (a fast device clock stretches stream time)."""
        return 1 + self.clock_error


def conditions(quick: bool) -> list[Condition]:
    out = [Condition("canonical")]
    axis_maps = Rotation.create_group("O").as_matrix()  # the 24 axis-aligned rotations
    randoms = Rotation.random(20, random_state=7).as_matrix()
    n_axis, n_random = (4, 3) if quick else (24, 20)
    for i, r in enumerate(axis_maps[:n_axis]):
        out.append(Condition(f"mount_axis_{i:02d}", rotation=_tup(r)))
    for i, r in enumerate(randoms[:n_random]):
        out.append(Condition(f"mount_random_{i:02d}", rotation=_tup(r)))
    rates = (20.0, 100.0) if quick else (20.0, 25.0, 52.0, 100.0, 104.0, 200.0)
    for k, rate in enumerate(rates):
        err = 0.02 if k % 2 == 0 else -0.02
        out.append(Condition(f"rate_{rate:g}hz", rate_hz=rate, clock_error=err, jitter=0.2))
    out += [
        Condition("stamps_1ms", rate_hz=104.0, stamp_resolution_s=0.001),
        Condition("stamps_10ms", rate_hz=104.0, stamp_resolution_s=0.01),
        Condition("android_batch", rate_hz=104.0, batch=5),
        Condition("ble_loss_1pct", loss=0.01),
        Condition("ble_loss_5pct", loss=0.05),
    ]
    return out


def _tup(r: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in r)


def replay(engine, recording: Recording, store: MountStore | None, device: str, range_g=None):
    """The alerts ``gaitedge replay --fast`` raises for one recording."""
    sink = ListSink()
    pipe = Pipeline(engine, FanOut([sink]), mount_store=store, acc_range_g=range_g)
    source = ReplaySource(recording=recording, fast=True, device=device)
    asyncio.run(stream(pipe, source))
    return sink.alerts


def calibrated_store(engine, cond: Condition, recs, seed: int) -> MountStore | None:
    """Per subject, the estimate `gaitedge calibrate` would store from this rendering."""
    cfg = engine.contract.chain
    if cfg.mounting != "auto":
        return None
    store = MountStore(None)  # in memory
    rendered = ds.subject_estimates(
        cfg, recs, render=lambda r: cond.render(r.imu, r.rate_hz, seed + r.group)
    )
    for subject, est in rendered.items():
        store.put(subject, est)
    return store


def activity_f1(engine, cond: Condition, recs, seed: int) -> float:
    store = calibrated_store(engine, cond, recs, seed)
    y_true, y_pred = [], []
    for rec in recs:
        t, x = cond.render(rec.imu, rec.rate_hz, seed + rec.group)
        alerts = [
            a
            for a in replay(engine, Recording(t, x), store, rec.subject)
            if a.type is AlertType.ACTIVITY
        ]
        times = rec.timestamp_s * cond.time_scale()
        pred = np.full(len(times), -1)
        for a in sorted(alerts, key=lambda a: a.t_event):
            label = ds.HAPT_BASIC_LABELS.index(a.label) if a.label in ds.HAPT_BASIC_LABELS else 6
            pred[times >= a.t_event] = label
        keep = (rec.sample_label >= 1) & (rec.sample_label <= 6)
        y_true.append(rec.sample_label[keep] - 1)
        y_pred.append(np.where(pred[keep] < 0, 6, pred[keep]))
    # Six scored classes; column 6 holds "no activity reported yet" and transitions' labels.
    return macro_f1(confusion_matrix(np.concatenate(y_true), np.concatenate(y_pred), 6, 7))


def fall_scores(engine, cond: Condition, recs, seed: int) -> dict:
    store = calibrated_store(engine, cond, recs, seed)
    hits, truth, latency = [], [], []
    for rec in recs:
        t, x = cond.render(rec.imu, rec.rate_hz, seed + rec.group)
        falls = [
            a
            for a in replay(engine, Recording(t, x), store, rec.subject, rec.acc_range_g)
            if a.type is AlertType.FALL
        ]
        truth.append(bool(rec.is_fall))
        hits.append(bool(falls))
        if rec.is_fall and falls:
            t_impact = rec.impact_index() / rec.rate_hz * cond.time_scale()
            latency.append(falls[0].t - t_impact)
    truth, hits = np.array(truth), np.array(hits)
    return {
        "sensitivity": round(float(hits[truth].mean()), 4),
        "specificity": round(float(1 - hits[~truth].mean()), 4),
        "latency_p95_s": round(float(np.percentile(latency, 95)), 3) if latency else None,
        "fall_trials": int(truth.sum()),
        "adl_trials": int((~truth).sum()),
    }


def run(model: Path | None, quick: bool, with_mobifall: bool) -> dict:
    root = data_root()
    engine = load_engine(model)
    contract = engine.contract
    hapt_test = ds.dataset_split("hapt", root).test
    sis_test = ds.SISFALL_TEST_SUBJECTS
    hapt = list(ds.hapt_recordings(root, hapt_test))
    sisfall = list(ds.sisfall_recordings(root, [f"sisfall:{s}" for s in sis_test]))
    mobi = []
    if with_mobifall:
        mobi = list(ds.mobifall_recordings(root, ds.mobifall_adl_subjects(root)))
    if quick:
        hapt = [r for r in hapt if r.subject in hapt_test[:3]]
        sisfall = sisfall[::4]
        mobi = mobi[::3]
    rows = []
    for cond in conditions(quick):
        t0 = time.perf_counter()
        row = {"condition": cond.name, "activity_f1": round(activity_f1(engine, cond, hapt, 0), 4)}
        falls = fall_scores(engine, cond, sisfall, 1)
        row |= {f"fall_{k}": v for k, v in falls.items()}
        if mobi and (cond.name == "canonical" or cond.name.startswith("mount_random_0")):
            row |= {f"mobifall_{k}": v for k, v in fall_scores(engine, cond, mobi, 2).items()}
        row["seconds"] = round(time.perf_counter() - t0, 1)
        log.info("%s", row)
        rows.append(row)
    canon = rows[0]
    return {
        "model": contract.name,
        "model_version": contract.model_version,
        "hop_samples": contract.chain.hop_samples,
        "mounting": contract.chain.mounting,
        "canonical_activity_f1": canon["activity_f1"],
        "worst_activity_f1_drop": round(
            max(canon["activity_f1"] - r["activity_f1"] for r in rows), 4
        ),
        "canonical_fall_sensitivity": canon["fall_sensitivity"],
        "canonical_fall_specificity": canon["fall_specificity"],
        "worst_fall_sensitivity_drop": round(
            max(canon["fall_sensitivity"] - r["fall_sensitivity"] for r in rows), 4
        ),
        "worst_fall_specificity_drop": round(
            max(canon["fall_specificity"] - r["fall_specificity"] for r in rows), 4
        ),
        "fall_latency_p95_s": canon["fall_latency_p95_s"],
        "worst_fall_latency_p95_s": max(
            r["fall_latency_p95_s"] for r in rows if r["fall_latency_p95_s"] is not None
        ),
        "hapt_subjects": sorted({r.subject for r in hapt}),
        "sisfall_subjects": sorted({r.subject for r in sisfall}),
        "mobifall_subjects": sorted({r.subject for r in mobi}),
        "quick": quick,
        "conditions": rows,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="a few conditions and subjects")
    p.add_argument("--no-mobifall", action="store_true")
    p.add_argument("--json", action="store_true", help="only the JSON line")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    result = run(args.model, args.quick, not args.no_mobifall)
    if not args.json:
        for row in result["conditions"]:
            print(row)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
