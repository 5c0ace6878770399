"""Real devices: the shipped model and the runtime on held-out data sent the way devices send it.

    python bench/devices.py --json [--model M.onnx] [--quick] [--online-only]

Held-out HAPT subjects (activity) and held-out SisFall subjects (falls), plus MobiFall's phone in
a trouser pocket (never trained on; its 9 subjects with walking), re-rendered as:

* ``mount_axis_*``: the 24 axis-aligned mountings; ``mount_random_*``: 20 random rotations;
* ``rate_*``: 20, 25, 52, 100, 104 and 200 Hz with a ±2 % clock error and timing jitter,
  rendered from the 50 Hz data (``datasets.render_rate``): they test the timing and resampling
  path, not aliasing (upsampled 50 Hz data holds nothing above 25 Hz). Real 100 and 200 Hz
  input is ``sisfall_originals`` (:func:`sisfall_originals`): SisFall's 8 original 200 Hz
  trials as recorded and decimated by 2 without anti-aliasing, against the archive's 50 Hz;
* ``stamps_1ms`` / ``stamps_10ms``: phone stamps floored to 1 / 10 ms at 104 Hz (ties);
* ``android_batch``: 5 samples per delivery, all stamped with its arrival time;
* ``ble_loss_1pct`` / ``ble_loss_5pct``: notifications of 4 samples lost at random.

Everything runs through the runtime's own path, as ``gaitedge replay --fast`` does: a
:class:`gaitedge.pipeline.Pipeline` with the bundle's contract (its hop, its mounting), fed by a
:class:`gaitedge.sources.ReplaySource`. A device with automatic mounting starts as a new device
does (cold: no stored estimate) and calibrates online, activity held back until it has; with
``--calibrate-first`` it starts from the estimate ``gaitedge calibrate`` stored for it from the
same rendering of that subject's recordings (look-ahead: the figures before issue 22).
Activity: sample-level macro-F1 of the activity timeline (each activity alert holds from its
``t_event`` until the next), over the 6 basic HAPT activities. Falls: a trial is detected when
it raises a fall alert; latency is the alert's time minus the trial's peak |acc| (the impact).

Last line: one JSON object with ``canonical_activity_f1``, ``worst_activity_f1_drop``,
``canonical_fall_sensitivity``, ``worst_fall_sensitivity_drop``,
``worst_fall_specificity_drop``, ``fall_latency_p95_s`` and ``conditions`` (one row each;
``mounting_start`` says cold or calibrate_first), and, from a cold start (issue 22):

* ``cold_start_activity_f1``, ``calibrated_20s_activity_f1`` (:func:`online_activity`): held-out
  HAPT experiments, each rotated by uniformly random SO(3) mountings (3 per experiment; 1 in
  ``--quick``), streamed by a device that starts cold; the first scores every labelled sample,
  the second the samples from ``t_ready`` = the later of the moment the pipeline's mounting
  reported calibrated and 20 s in (``online_activity`` holds ``whole_recording_activity_f1``,
  the same samples with the mounting calibrated on the whole experiment first, and
  ``activity_f1_from_2min``); macro-F1 over the activities present in the scored samples.
* ``online_falls``: SisFall held-out trials in a random mounting per subject: cold, and
  starting from the estimate reached online after 20 s / 2 min on the subject's other trials.
* ``heading_error_p90_deg`` (:func:`mounting_errors`): the 90th percentile, over every real
  recording of HAPT, SisFall and MobiFall with the labels to judge it (per subject and trial,
  in its own frame, never rotated), of the angle between the estimator's fore-aft axis when it
  first reports calibrated, streamed from cold, and the data's own fore-aft axis
  (:func:`step_axis`: the horizontal axis of largest acceleration at the step frequency of the
  labelled walking; axis only, the sign is not judged), both in the plane normal to the
  reference vertical (gravity while standing still: HAPT's labelled STANDING, SisFall's
  standing start of D15/D16, MobiFall's STD trial). ``mounting_errors`` gives tilt and heading
  error distributions at calibrated, 2 min in and at the end, per dataset; per-trial rows in
  ``mounting_error_trials``.

``--online-only`` measures these cold-start figures alone (the rendered conditions above take
hours on 2 cores): the keys that come from the conditions are then absent.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
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
from gaitedge.engine import DEFAULT_MODEL, cold_start_model, load_engine
from gaitedge.metrics import confusion_matrix, f1_per_class, macro_f1
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


# --- 100 and 200 Hz from SisFall's 200 Hz originals (issue 22 item 6) ---

# The 8 original 200 Hz files in the shared data (sisfall/README.md, "raw_txt_samples/").
SISFALL_ORIGINALS = (
    "SA01/F01_SA01_R01.txt", "SA10/F05_SA10_R02.txt", "SA15/F13_SA15_R03.txt",
    "SE06/F08_SE06_R01.txt", "SA05/D07_SA05_R01.txt", "SA08/D18_SA08_R02.txt",
    "SE03/D15_SE03_R01.txt", "SE10/D11_SE10_R04.txt",
)  # fmt: skip
G = 9.80665


def band_energy(imu: np.ndarray, rate_hz: float, above_hz: float) -> dict:
    """The part of a recording's movement (mean removed per channel) above ``above_hz``: RMS
    per sensor (acceleration m/s², rate rad/s, summed over the 3 axes) and its fraction of the
    movement's energy."""
    x = imu - imu.mean(axis=0)
    power = np.abs(np.fft.rfft(x, axis=0)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate_hz)
    high = freqs > above_hz
    out = {}
    for name, cols in (("acc", slice(0, 3)), ("gyro", slice(3, 6))):
        total, part = power[:, cols].sum(), power[high, cols].sum()
        # Parseval: sum |X_k|^2 over the one-sided spectrum ~ N/2 * sum x^2 away from DC
        out[f"{name}_rms"] = round(float(np.sqrt(2 * part / len(x) ** 2)), 4)
        out[f"{name}_fraction"] = round(float(part / total), 4) if total else 0.0
    return out


class _AntiAliasOff:
    """The chain without its anti-aliasing low-pass (what it would do without it): input of any
    rate is resampled by linear interpolation alone. Restores the threshold on exit."""

    def __enter__(self):
        from gaitedge import preprocess

        self._saved = preprocess.ANTIALIAS_RATIO
        preprocess.ANTIALIAS_RATIO = float("inf")

    def __exit__(self, *exc):
        from gaitedge import preprocess

        preprocess.ANTIALIAS_RATIO = self._saved


def _window_error(cfg, fast: tuple, slow: tuple) -> float:
    """Mean over channels of the RMS difference between the chain's windows of two renderings
    of one trial, over the slow one's standard deviation (fixed frame: the rate path alone)."""
    from dataclasses import replace

    from gaitedge.preprocess import run_offline

    cfg = replace(cfg, mounting="none")
    a, b = run_offline(cfg, *fast).data, run_offline(cfg, *slow).data
    n = min(len(a), len(b))
    a, b = a[:n].reshape(-1, a.shape[-1]), b[:n].reshape(-1, b.shape[-1])
    return round(float((np.sqrt(((a - b) ** 2).mean(axis=0)) / b.std(axis=0)).mean()), 4)


def sisfall_originals(engine, root: Path) -> dict:
    """SisFall's 8 original 200 Hz trials as devices at 200 and 100 Hz would send them, against
    the same trials' 50 Hz rendering in the dataset's archive (a zero-phase FIR decimation).

    ``200hz``: the file as recorded. ``100hz``: every second sample, with NO anti-aliasing (a
    device sampling at 100 Hz: whatever lies between 50 and 100 Hz folds into its band).
    ``50hz_archive``: the dataset's own 50 Hz rows. Each runs through the runtime's path
    (``gaitedge replay --fast``: the bundle's chain and hop), from a cold start, with its own
    chain anti-aliasing and (``*_no_antialias``) without it. Per trial and rendering: fall alert
    or not, its latency after the impact (peak |acc| of the 200 Hz original) and the impact
    peak, plus ``energy_above_25hz`` / ``energy_above_50hz`` of the original (what a 50 Hz
    model cannot see / what a 100 Hz device aliases) and ``window_error_vs_50hz`` (the chain's
    windows vs the archive's, with and without the chain's anti-aliasing). 8 trials (4 falls,
    4 ADLs, 3 of them held-out subjects): an account of each, not a sensitivity estimate.
    """
    split = ds.dataset_split("sisfall", root)
    rows_csv = ds.csv_rows(root / "sisfall" / "trials.csv")
    cfg = engine.contract.chain
    trials = []
    for name in SISFALL_ORIGINALS:
        raw = ds.sisfall_raw_trial(root, name)
        index = next(int(r["trial"]) for r in rows_csv if r["file"] == name)
        slow = next(r for r in ds.sisfall_recordings(root, [raw.subject]) if r.group == index)
        t_impact = raw.impact_index() / raw.rate_hz
        renderings = {
            "200hz": (raw.timestamp_s, raw.imu),
            "100hz": (raw.timestamp_s[::2], raw.imu[::2]),
            "50hz_archive": (slow.timestamp_s, slow.imu),
        }
        row = {
            "file": name,
            "subject": raw.subject,
            "activity": raw.activity,
            "is_fall": bool(raw.is_fall),
            "split": "test" if raw.subject in split.test else
                     "val" if raw.subject in split.val else "train",
            "seconds": round(len(raw.imu) / raw.rate_hz, 1),
            "energy_above_25hz": band_energy(raw.imu, raw.rate_hz, 25.0),
            "energy_above_50hz": band_energy(raw.imu, raw.rate_hz, 50.0),
        }  # fmt: skip
        for key, (t, x) in renderings.items():
            for suffix, aa in (("", True), ("_no_antialias", False)):
                if key == "50hz_archive" and not aa:
                    continue  # 50 Hz input is never low-passed by the chain
                if aa:
                    alerts = replay(engine, Recording(t, x), None, raw.subject, raw.acc_range_g)
                else:
                    with _AntiAliasOff():
                        alerts = replay(engine, Recording(t, x), None, raw.subject, raw.acc_range_g)
                falls = [a for a in alerts if a.type is AlertType.FALL]
                row[key + suffix] = {
                    "fall_alert": bool(falls),
                    "latency_s": round(falls[0].t - t_impact, 3) if falls else None,
                    "impact_g": falls[0].extra.get("impact_g") if falls else None,
                    "input_peak_g": round(float(np.linalg.norm(x[:, :3], axis=1).max() / G), 2),
                }
        slow_tx = renderings["50hz_archive"]
        row["window_error_vs_50hz"] = {}
        for key in ("200hz", "100hz"):
            row["window_error_vs_50hz"][key] = _window_error(cfg, renderings[key], slow_tx)
            with _AntiAliasOff():
                row["window_error_vs_50hz"][key + "_no_antialias"] = _window_error(
                    cfg, renderings[key], slow_tx
                )
        log.info("%s", row)
        trials.append(row)
    summary = {}
    for key in ("200hz", "200hz_no_antialias", "100hz", "100hz_no_antialias", "50hz_archive"):
        summary[key] = {
            "falls_alerted": sum(r[key]["fall_alert"] for r in trials if r["is_fall"]),
            "adls_alerted": sum(r[key]["fall_alert"] for r in trials if not r["is_fall"]),
        }
    return {
        "trials": trials,
        "summary": summary,
        "falls": sum(r["is_fall"] for r in trials),
        "adls": sum(not r["is_fall"] for r in trials),
        "held_out_trials": [r["file"] for r in trials if r["split"] == "test"],
        "mounting_start": "cold",
        "note": "8 trials: an account of each, not a sensitivity or specificity estimate",
    }


def replay(engine, recording: Recording, store: MountStore | None, device: str, range_g=None):
    """The alerts ``gaitedge replay --fast`` raises for one recording."""
    return replay_session(engine, recording, store, device, range_g)[0]


def replay_session(engine, recording: Recording, store, device: str, range_g=None):
    """(alerts, the device's :class:`gaitedge.pipeline.DeviceState` at the end) of one
    ``gaitedge replay --fast``: the mounting from ``store``'s estimate for ``device``, else
    cold, calibrated online."""
    sink = ListSink()
    cold = None
    if COLD_START is not None and engine.contract.chain.mounting == "auto":
        cold = functools.partial(_cold_start_engine, COLD_START)
    pipe = Pipeline(
        engine, FanOut([sink]), mount_store=store, acc_range_g=range_g, cold_start_engine=cold
    )
    source = ReplaySource(recording=recording, fast=True, device=device)
    asyncio.run(stream(pipe, source))
    return sink.alerts, pipe.devices.get(device)


# The cold-start model the runtime runs beside a calibrating device (``gaitedge replay`` and
# ``listen`` with the shipped models: the shipped one; ``--no-cold-start``: None).
COLD_START: Path | None = None


@functools.lru_cache(maxsize=2)
def _cold_start_engine(path: Path):
    return load_engine(path)


# Set by --calibrate-first: the conditions start from the estimate calibrated on the same
# rendering of the subject's recordings (look-ahead, the figures before issue 22).
CALIBRATE_FIRST = False


def calibrated_store(engine, cond: Condition, recs, seed: int) -> MountStore | None:
    """Per subject, the estimate `gaitedge calibrate` would store from this rendering, with
    ``--calibrate-first``; else None (every recording starts cold, as a new device)."""
    cfg = engine.contract.chain
    if cfg.mounting != "auto" or not CALIBRATE_FIRST:
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


# --- issue 22: what a live device says from a cold start, and mountings judged by the data ---

HAPT_STANDING, HAPT_WALKS = 5, (1, 2, 3)  # HAPT label ids: STANDING; walking, up/downstairs
WARM_S = (20.0, 120.0)  # "at 20 s" and "at 2 min" of wear before the scored stretch


def _timeline(alerts, times: np.ndarray) -> np.ndarray:
    """Per sample, the activity index reported at that time (-1: nothing reported yet)."""
    pred = np.full(len(times), -1)
    for a in sorted(alerts, key=lambda a: a.t_event):
        if a.type is AlertType.ACTIVITY:
            label = ds.HAPT_BASIC_LABELS.index(a.label) if a.label in ds.HAPT_BASIC_LABELS else 6
            pred[times >= a.t_event] = label
    return pred


def _f1(parts: list[tuple[np.ndarray, np.ndarray]]) -> float | None:
    """Sample-level macro-F1 over the basic activities present in the scored samples (a span
    from 20 s or 2 min on may hold no posture at all); no output counts as wrong."""
    parts = [(t, p) for t, p in parts if len(t)]
    if not parts:
        return None
    y_true = np.concatenate([t for t, _ in parts])
    y_pred = np.concatenate([p for _, p in parts])
    cm = confusion_matrix(y_true, np.where(y_pred < 0, 6, y_pred), 6, 7)
    present = cm.sum(axis=1) > 0
    return round(float(f1_per_class(cm)[present].mean()), 4)


def _mounting(subject: str, group: int, k: int) -> Condition:
    """A uniformly random real mounting (SO(3)), seeded by recording and draw."""
    seed = (sum(ord(c) * 31**i for i, c in enumerate(subject)) + 1009 * group + 7 * k) % 2**32
    r = Rotation.random(random_state=seed).as_matrix()
    return Condition(f"random_{k}", rotation=_tup(r))


def online_activity(engine, hapt, n_mountings: int) -> dict:
    """HAPT held-out experiments, each in ``n_mountings`` uniformly random mountings, streamed
    through the runtime (``replay --fast``) by a device that starts cold and calibrates online.

    * ``cold_start_activity_f1``: every labelled sample from the first one (nothing reported
      yet counts as wrong).
    * ``calibrated_20s_activity_f1``: the samples from ``t_ready`` on, where ``t_ready`` is the
      later of the stream time at which the pipeline's mounting first reported calibrated
      (``DeviceState.calibrated_at_s``: 20 s of walking for ``auto``; the first samples for a
      mode that needs only the vertical) and 20 s; an experiment whose mounting never
      calibrates contributes nothing (``calibrated_never``).
    * ``whole_recording_activity_f1``: the same renderings, the mounting calibrated on the whole
      experiment first (look-ahead), scored on the same samples as ``calibrated_20s``;
      ``whole_recording_all_activity_f1`` on every sample.
    * ``activity_f1_from_2min``: the online path on the samples from 120 s on.
    """
    from gaitedge.preprocess import calibrate

    cfg = engine.contract.chain
    cold, ready, whole_ready, whole_all, late, t_ready_all, never = [], [], [], [], [], [], 0
    for rec in hapt:
        keep = (rec.sample_label >= 1) & (rec.sample_label <= 6)
        y = rec.sample_label - 1
        for k in range(n_mountings):
            cond = _mounting(rec.subject, rec.group, k)
            t, x = cond.render(rec.imu, rec.rate_hz, 0)
            alerts, state = replay_session(engine, Recording(t, x), None, rec.subject)
            pred = _timeline(alerts, rec.timestamp_s)
            cold.append((y[keep], pred[keep]))
            late.append(
                (y[keep & (rec.timestamp_s >= 120.0)], pred[keep & (rec.timestamp_s >= 120.0)])
            )
            if state.chain.mounting.calibrated:
                at = state.calibrated_at_s if state.calibrated_at_s is not None else 0.0
                t_ready = max(at, 20.0)
                t_ready_all.append(at)
                sel = keep & (rec.timestamp_s >= t_ready)
                ready.append((y[sel], pred[sel]))
            else:
                never += 1
                sel = np.zeros(len(y), bool)
            store = None
            if cfg.mounting == "auto":
                store = MountStore(None)
                store.put(rec.subject, calibrate(cfg, [(t, x)]))
            first = _timeline(replay(engine, Recording(t, x), store, rec.subject), rec.timestamp_s)
            whole_ready.append((y[sel], first[sel]))
            whole_all.append((y[keep], first[keep]))
    return {
        "cold_start_activity_f1": _f1(cold),
        "calibrated_20s_activity_f1": _f1(ready),
        "whole_recording_activity_f1": _f1(whole_ready),
        "whole_recording_all_activity_f1": _f1(whole_all),
        "activity_f1_from_2min": _f1(late),
        "calibrated_at_s_p50": round(float(np.median(t_ready_all)), 1) if t_ready_all else None,
        "calibrated_at_s_p90": (
            round(float(np.percentile(t_ready_all, 90)), 1) if t_ready_all else None
        ),
        "calibrated_never": never,
        "streams": len(cold),
    }


def _wear_before(recs, rec, seconds: float):
    """The first ``seconds`` of what the same subject wore before ``rec``: the subject's other
    trials in order (SisFall: walking D01, D02, ... first), concatenated."""
    parts, n = [], round(seconds * rec.rate_hz)
    for other in recs:
        if other.subject == rec.subject and other.group != rec.group:
            parts.append(other.imu)
            if sum(map(len, parts)) >= n:
                break
    imu = np.concatenate(parts)[:n] if parts else np.zeros((0, 6))
    return np.arange(len(imu)) / rec.rate_hz, imu


def online_falls(engine, sisfall, n_mountings: int) -> dict:
    """SisFall held-out trials in random mountings through the runtime: ``cold`` (a new
    device), and ``20s`` / ``2min`` (the device starts from the estimate it reached online after
    that long on the same subject's other trials, in the same mounting, when that estimate is
    calibrated: a stored estimate is only ever saved calibrated; else cold)."""
    from gaitedge.preprocess import calibrate

    cfg = engine.contract.chain
    out = {}
    for start in ("cold", "20s", "2min"):
        hits, truth, calibrated = [], [], 0
        for rec in sisfall:
            for k in range(n_mountings):
                cond = _mounting(rec.subject, 0, k)  # one mounting per subject and draw
                store = None
                if start != "cold" and cfg.mounting == "auto":
                    wt, wx = _wear_before(sisfall, rec, 20.0 if start == "20s" else 120.0)
                    if len(wt):
                        est = calibrate(cfg, [cond.render(wx, rec.rate_hz, 0)])
                        if est.calibrated:
                            store = MountStore(None)
                            store.put(rec.subject, est)
                            calibrated += 1
                t, x = cond.render(rec.imu, rec.rate_hz, 1 + rec.group)
                alerts = replay(engine, Recording(t, x), store, rec.subject, rec.acc_range_g)
                truth.append(bool(rec.is_fall))
                hits.append(any(a.type is AlertType.FALL for a in alerts))
        truth, hits = np.array(truth), np.array(hits)
        out[start] = {
            "fall_sensitivity": round(float(hits[truth].mean()), 4),
            "fall_specificity": round(float(1 - hits[~truth].mean()), 4),
            "started_calibrated": calibrated,
            "trials": len(truth),
        }
    return out


# --- reference orientations from the data itself --------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def step_axis(acc: np.ndarray, up: np.ndarray, rate_hz: float) -> np.ndarray | None:
    """The anterior-posterior axis of walking ``acc`` [N, 3]: the horizontal (to ``up``) axis
    of largest acceleration at the step frequency. At the trunk the fore-aft acceleration
    repeats every step and the sideways sway every stride (half the step frequency), so the
    step-frequency band singles out fore-aft without the estimator's criteria (all-band
    variance, skewness). The sign is not judged (a 180° turn is not seen by this reference)."""
    from scipy import signal

    if len(acc) < 4 * rate_hz:
        return None
    vert = (acc - acc.mean(axis=0)) @ up
    f, pxx = signal.welch(vert, fs=rate_hz, nperseg=min(len(vert), round(8 * rate_hz)))
    band = (f >= 1.2) & (f <= 3.0)
    if not band.any():
        return None
    f_step = float(f[band][np.argmax(pxx[band])])
    lo, hi = max(0.5, f_step - 0.3), min(rate_hz / 2 - 0.5, f_step + 0.3)
    sos = signal.butter(2, [lo, hi], btype="band", fs=rate_hz, output="sos")
    h = acc - np.outer(acc @ up, up)
    b = signal.sosfiltfilt(sos, h, axis=0)
    _, vec = np.linalg.eigh(b.T @ b)
    return _unit(vec[:, -1] - (vec[:, -1] @ up) * up)


def orientation_errors(est_rotation: np.ndarray, up_ref: np.ndarray, fwd_ref) -> tuple:
    """(tilt error, heading axis error in [0, 90]) in degrees of an estimate (rows: body up,
    forward, side in sensor axes) against the references."""
    from gaitedge.mounting import angle_deg

    tilt = angle_deg(est_rotation[0], up_ref)
    if fwd_ref is None:
        return tilt, None
    f = est_rotation[1] - (est_rotation[1] @ up_ref) * up_ref
    heading = angle_deg(f, fwd_ref)
    return tilt, min(heading, 180.0 - heading)


def online_estimates(cfg, t: np.ndarray, imu: np.ndarray) -> dict:
    """The automatic estimator streamed over one recording from cold, as the chain runs it (in
    0.5 s chunks: :data:`gaitedge.pipeline.CALIBRATING_PIECE_S`): its rotation when it first
    reports calibrated (``at_calibrated``), 2 min in (if calibrated by then) and at the end."""
    from dataclasses import replace

    from gaitedge.mounting import MountingEstimator
    from gaitedge.pipeline import CALIBRATING_PIECE_S
    from gaitedge.preprocess import Mounting, StreamingChain

    est = MountingEstimator(cfg.sample_rate_hz)
    probe = replace(cfg, mounting="none", norm_mean=None, norm_std=None)
    chain = StreamingChain(probe, mounting=Mounting(estimator=est))
    snaps: dict[str, np.ndarray] = {}
    cuts = np.flatnonzero(np.diff(np.floor((t - t[0]) / CALIBRATING_PIECE_S))) + 1
    for a, b in zip((0, *cuts), (*cuts, len(t)), strict=True):
        chain.process(t[a:b], imu[a:b])
        if est.calibrated and "at_calibrated" not in snaps:
            snaps["at_calibrated"] = est.rotation.copy()
        if "at_2min" not in snaps and t[b - 1] - t[0] >= 120.0:
            snaps["at_2min"] = est.rotation.copy() if est.calibrated else None
    chain.flush()
    if est.calibrated:
        snaps["at_end"] = est.rotation.copy()
    return snaps


def _references(root: Path, quick: bool):
    """(dataset, subject, trial, t, imu, rate, up_ref, fwd_ref) of every real recording with
    the labels to judge a mounting by, in the recording's own frame (never rotated).

    * HAPT (held-out experiments): up = the mean acceleration over the experiment's labelled
      STANDING samples; fore-aft = :func:`step_axis` of its labelled walking (level, up and
      down stairs).
    * SisFall (held-out subjects' walking trials D01-D04, 100 s): up = the subject's standing
      still (the first 1 s of its D15/D16 trials, which start standing); fore-aft from the
      trial after its first 5 s.
    * MobiFall (the 9 subjects with ADLs, phone in a trouser pocket): up = the mean over the
      subject's STD trial (5 min standing); fore-aft from its WAL trial (5 min walking).
    """
    hapt_test = ds.dataset_split("hapt", root).test
    for rec in ds.hapt_recordings(root, hapt_test[:3] if quick else hapt_test):
        stand = rec.sample_label == HAPT_STANDING
        walk = np.isin(rec.sample_label, HAPT_WALKS)
        if stand.sum() < 50 or walk.sum() < 500:
            continue
        up = _unit(rec.imu[stand, :3].mean(axis=0))
        yield (
            "hapt",
            rec.subject,
            rec.group,
            rec.timestamp_s,
            rec.imu,
            rec.rate_hz,
            up,
            (step_axis(rec.imu[walk, :3], up, rec.rate_hz)),
        )
    subjects = ds.SISFALL_TEST_SUBJECTS[:3] if quick else ds.SISFALL_TEST_SUBJECTS
    recs = list(ds.sisfall_recordings(root, [f"sisfall:{s}" for s in subjects]))
    for subject in sorted({r.subject for r in recs}):
        mine = [r for r in recs if r.subject == subject]
        still = [r.imu[: round(r.rate_hz), :3].mean(axis=0) for r in mine
                 if r.activity in ("D15", "D16")]  # fmt: skip
        if not still:
            continue
        up = _unit(np.median(np.array([_unit(v) for v in still]), axis=0))
        for r in mine:
            if r.activity in ("D01", "D02", "D03", "D04"):
                fwd = step_axis(r.imu[round(5 * r.rate_hz) :, :3], up, r.rate_hz)
                yield "sisfall", subject, r.group, r.timestamp_s, r.imu, r.rate_hz, up, fwd
    mobi = list(ds.mobifall_recordings(root, ds.mobifall_adl_subjects(root)))
    for subject in sorted({r.subject for r in mobi}):
        mine = [r for r in mobi if r.subject == subject]
        std = [r for r in mine if r.activity == "STD"]
        wal = [r for r in mine if r.activity == "WAL"]
        if not std or not wal:
            continue
        up = _unit(std[0].imu[:, :3].mean(axis=0))
        for r in wal:
            fwd = step_axis(r.imu[:, :3], up, r.rate_hz)
            t = np.arange(len(r.imu)) / r.rate_hz
            yield "mobifall", subject, r.group, t, r.imu, r.rate_hz, up, fwd


def mounting_errors(cfg, root: Path, quick: bool) -> dict:
    """Tilt and heading errors of the online estimate against the references from the data,
    per dataset and moment (at calibrated, 2 min in, at the end), with per-trial rows."""
    from dataclasses import replace

    auto = replace(cfg, mounting="auto")
    rows = []
    for dataset, subject, trial, _, imu, rate, up, fwd in _references(root, quick):
        imu50 = (
            ds.render_rate(imu, rate, auto.sample_rate_hz) if rate != auto.sample_rate_hz else imu
        )
        t50 = np.arange(len(imu50)) / auto.sample_rate_hz
        snaps = online_estimates(auto, t50, imu50)
        row = {"dataset": dataset, "subject": subject, "trial": int(trial)}
        for moment, rot in snaps.items():
            if rot is None:  # not calibrated 2 min in: nothing to judge (counted)
                continue
            tilt, heading = orientation_errors(rot, up, fwd)
            row[f"tilt_{moment}_deg"] = round(tilt, 1)
            row[f"heading_{moment}_deg"] = None if heading is None else round(heading, 1)
        rows.append(row)
    summary: dict = {}
    for dataset in ("hapt", "sisfall", "mobifall", "all"):
        mine = [r for r in rows if dataset == "all" or r["dataset"] == dataset]
        entry = {
            "trials": len(mine),
            "calibrated": sum("tilt_at_calibrated_deg" in r for r in mine),
            "calibrated_by_2min": sum("tilt_at_2min_deg" in r for r in mine),
        }
        for moment in ("at_calibrated", "at_2min", "at_end"):
            for kind in ("tilt", "heading"):
                key = f"{kind}_{moment}_deg"
                v = np.array([r[key] for r in mine if r.get(key) is not None])
                if len(v):
                    entry[f"{kind}_{moment}_p50_deg"] = round(float(np.median(v)), 1)
                    entry[f"{kind}_{moment}_p90_deg"] = round(float(np.percentile(v, 90)), 1)
                    entry[f"{kind}_{moment}_over_30deg"] = int((v > 30).sum())
        summary[dataset] = entry
    return {"summary": summary, "trials": rows}


def run(
    model: Path | None,
    quick: bool,
    with_mobifall: bool,
    calibrate_first: bool = False,
    cold_start: bool = True,
    online_only: bool = False,
) -> dict:
    global CALIBRATE_FIRST, COLD_START
    CALIBRATE_FIRST = calibrate_first
    # As the runtime: the shipped cold-start model beside the shipped model (none given).
    COLD_START = cold_start_model() if cold_start and model is None else None
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
    if online_only:
        return _online_only(engine, hapt, sisfall, root, quick, model or DEFAULT_MODEL)
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
    t0 = time.perf_counter()
    online = _cold_start_figures(engine, hapt, sisfall, root, quick)
    log.info("online figures: %.0f s", time.perf_counter() - t0)
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
        "calibrate_first": calibrate_first,
        "mounting_start": "calibrate_first" if calibrate_first else "cold",
        "cold_start_model": COLD_START.name if COLD_START is not None else None,
        "conditions": rows,
        # issue 22: a live device from a cold start in random real mountings (online_activity)
        **online,
        # issue 22 item 6: real 100/200 Hz input (8 trials, not a sensitivity estimate)
        "sisfall_originals": sisfall_originals(engine, root),
    }


def _cold_start_figures(engine, hapt, sisfall, root: Path, quick: bool) -> dict:
    """The issue-22 figures from a cold start: online activity (random real mountings) and
    falls, and the mounting errors against the data's own references."""
    n_mountings = 1 if quick else 3
    online = online_activity(engine, hapt, n_mountings)
    errors = mounting_errors(engine.contract.chain, root, quick)
    return {
        "cold_start_activity_f1": online["cold_start_activity_f1"],
        "calibrated_20s_activity_f1": online["calibrated_20s_activity_f1"],
        "heading_error_p90_deg": errors["summary"]["all"].get("heading_at_calibrated_p90_deg"),
        "online_activity": online | {"mountings_per_experiment": n_mountings},
        "online_falls": online_falls(engine, sisfall, 1),
        "mounting_errors": errors["summary"],
        "mounting_error_trials": errors["trials"],
    }


def _online_only(engine, hapt, sisfall, root: Path, quick: bool, model: Path) -> dict:
    """``--online-only``: :func:`_cold_start_figures` on the same subjects, without the
    rendered conditions (hours on 2 cores); the keys that come from the conditions are absent,
    never filled in."""
    contract = engine.contract
    t0 = time.perf_counter()
    online = _cold_start_figures(engine, hapt, sisfall, root, quick)
    return {
        "model": contract.name,
        "model_version": contract.model_version,
        "model_sha256": _sha256(model),
        "cold_start_model_sha256": _sha256(COLD_START) if COLD_START is not None else None,
        "hop_samples": contract.chain.hop_samples,
        "mounting": contract.chain.mounting,
        "hapt_subjects": sorted({r.subject for r in hapt}),
        "sisfall_subjects": sorted({r.subject for r in sisfall}),
        "quick": quick,
        "online_only": True,
        "mounting_start": "cold",
        "cold_start_model": COLD_START.name if COLD_START is not None else None,
        **online,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=None, help="bundle (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="a few conditions and subjects")
    p.add_argument("--no-mobifall", action="store_true")
    p.add_argument(
        "--calibrate-first",
        action="store_true",
        help="conditions start from an estimate calibrated on the same rendering (look-ahead)",
    )
    p.add_argument(
        "--no-cold-start",
        action="store_true",
        help="no cold-start model beside a calibrating device (activity held back meanwhile)",
    )
    p.add_argument(
        "--online-only",
        action="store_true",
        help="only the figures from a cold start (online activity and falls, mounting errors)",
    )
    p.add_argument("--json", action="store_true", help="only the JSON line")
    args = p.parse_args(argv)
    if args.online_only and args.calibrate_first:
        p.error("--online-only measures from a cold start; --calibrate-first does not apply")
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    result = run(
        args.model,
        args.quick,
        not args.no_mobifall,
        args.calibrate_first,
        not args.no_cold_start,
        args.online_only,
    )
    if not args.json and not args.online_only:
        for row in result["conditions"]:
            print(row)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
