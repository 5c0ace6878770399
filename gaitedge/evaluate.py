"""Held-out evaluation of a model bundle through the runtime's own path, without torch.

Recordings of a dataset (``gaitedge.datasets``) go through the bundle's signal chain
(``run_offline`` with the contract's :class:`~gaitedge.preprocess.ChainConfig`, hop included)
and its engine (ONNX Runtime), and are scored against the labelling rules training uses:

* ``hapt`` (head ``activity``): macro-F1 over the window labels (6 basic activities or all 12
  labels), per-class F1, accuracy and the confusion matrix.
* ``sisfall`` (head ``fall``): window macro-F1 on the labelled windows; trial-level sensitivity
  and specificity, a trial counting as detected when any of its windows has a fall probability
  at or above ``threshold`` (what a streaming detector sees); and the same at the one window
  centred nearest the peak |acc| of each trial (the protocol of the published baselines).

The mounting starts as a live device's does (``gaitedge replay``): an automatic mounting from
the estimate stored for the subject in ``mount_file`` (keyed by subject id, e.g. ``hapt:9``),
else cold, calibrated online while each recording streams (no look-ahead:
:func:`gaitedge.pipeline.feed_chain`). Activity windows scored before the mounting reports
calibrated count as "no output" (the runtime holds activity back until then: the extra column
of the confusion matrix; ``windows_held_back`` says how many); fall windows are scored on the
model's output as the online mounting aligned them. ``calibrate_first`` calibrates each
subject's device on all of that subject's recordings first (look-ahead: what every figure was
before issue 22), every window aligned with it. ``mounting_start`` says which was used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaitedge import datasets as ds
from gaitedge.bundle import ModelContract
from gaitedge.metrics import (
    accuracy,
    confusion_matrix,
    f1_per_class,
    macro_f1,
    sensitivity_specificity,
)
from gaitedge.pipeline import feed_chain
from gaitedge.preprocess import Mounting, StreamingChain, run_offline
from gaitedge.windows import Windows

log = logging.getLogger(__name__)

PREDICT_BATCH = 512


class EvaluationError(ValueError):
    """A model and dataset that cannot be scored together (missing head, unknown classes)."""


@dataclass(frozen=True)
class EvalOptions:
    """What to score: dataset, subject split part, label set and detection threshold."""

    dataset: str = "hapt"
    split: str = "test"
    n_labels: int | None = None  # HAPT: 6 or 12; None = as many as the model's activity head
    threshold: float = 0.5  # SisFall: fall probability at which a window raises a detection
    limit_subjects: int | None = None  # score only the first N subjects (quick checks)
    # none, auto or an axis map (-y,x,z) for every recording; None = the bundle's own mounting
    mount: str | None = None
    # Automatic mounting: calibrate on each subject's recordings first (look-ahead), instead of
    # starting from mount_file's stored estimate (else cold) and calibrating online.
    calibrate_first: bool = False
    mount_file: str | None = None  # stored estimates per subject id (gaitedge.mounting)

    def __post_init__(self) -> None:
        if self.n_labels not in (None, 6, 12):
            raise EvaluationError(f"--labels must be 6 or 12, not {self.n_labels}")
        if not 0.0 <= self.threshold <= 1.0:  # a NaN is not either
            raise EvaluationError(
                f"--threshold is a fall probability from 0 to 1, not {self.threshold:g}"
            )
        if self.limit_subjects is not None and self.limit_subjects < 1:
            raise EvaluationError(
                f"--limit-subjects must be at least 1 subject, not {self.limit_subjects}"
            )


def held_out_subjects(contract: ModelContract, dataset: str, root: Path, part: str) -> list[str]:
    """Subjects of ``part`` of the split: the test (and validation) subjects recorded in the
    bundle where there are some (``training.datasets.<name>.test_subjects``, ``val_subjects``),
    else the dataset's default split (its validation part, without recorded test subjects)."""
    split = ds.dataset_split(dataset, root)
    record = contract.training.get("datasets", {}).get(dataset, {})
    recorded = record.get("test_subjects")
    if recorded:
        test = tuple(recorded)
        everyone = split.subjects("all")
        val = tuple(s for s in record.get("val_subjects", split.val) if s not in test)
        train = tuple(s for s in everyone if s not in test and s not in val)
        split = ds.SubjectSplit(train, test, "bundle", val)
    return list(split.subjects(part))


def _predict(engine, windows: np.ndarray, head: str) -> np.ndarray:
    """[K, n_classes] probabilities of ``head`` for [K, W, C] windows, in batches."""
    n_classes = len(engine.contract.heads[head])
    if not len(windows):
        return np.zeros((0, n_classes), np.float32)
    parts = [
        engine.predict(windows[i : i + PREDICT_BATCH])[head]
        for i in range(0, len(windows), PREDICT_BATCH)
    ]
    return np.concatenate(parts)


def _window_geometry(contract: ModelContract, rec: ds.LabelledRecording, t_start_s: np.ndarray):
    """Window starts and length in the recording's own samples (its rate may differ)."""
    length = round(contract.chain.window_s * rec.rate_hz)
    return ds.window_starts(t_start_s, rec.rate_hz), length


class _Streams:
    """Each recording's windows as the runtime makes them, with the mounting's readiness."""

    def __init__(self, contract: ModelContract, recordings, options: EvalOptions) -> None:
        from dataclasses import replace

        from gaitedge.mounting import MountStore

        self.recordings = list(recordings)
        self.cfg = cfg = contract.chain
        self.mode = options.mount or cfg.mounting
        self.fixed: dict = {}
        self.store = MountStore(options.mount_file) if options.mount_file else None
        if self.mode == "auto" and options.calibrate_first:
            self.start = "calibrate_first"
            auto = replace(cfg, mounting="auto")
            self.fixed = ds.subject_mountings(auto, self.recordings)
        elif Mounting.for_chain(cfg, self.mode).estimator is None:
            self.start = "fixed"
        else:
            self.start = "stored" if self.store is not None else "cold"

    def __iter__(self):
        """(recording, windows, ready [K] bool: the mounting calibrated when it was made)."""
        for rec in self.recordings:
            if self.start == "calibrate_first" or self.start == "fixed":
                m = self.fixed.get(rec.subject) or Mounting.for_chain(self.cfg, self.mode)
                w = run_offline(self.cfg, rec.timestamp_s, rec.imu, mounting=m)
                yield rec, w, np.ones(len(w), bool)
                continue
            stored = None
            if self.store is not None:
                stored = self.store.get(rec.subject, self.cfg.sample_rate_hz)
            chain = StreamingChain(
                self.cfg, mounting=Mounting.for_chain(self.cfg, self.mode, stored)
            )
            parts, ready = [], []
            for _, w, _ in feed_chain(chain, rec.timestamp_s, rec.imu):
                parts.append(w)
                ready.append(np.full(len(w), chain.mounting.calibrated))
            parts.append(chain.flush())
            ready.append(np.full(len(parts[-1]), chain.mounting.calibrated))
            keep = [i for i, w in enumerate(parts) if len(w)]
            if not keep:
                continue
            w = Windows.concat([parts[i] for i in keep])
            yield rec, w, np.concatenate([ready[i] for i in keep])


def _require_head(contract: ModelContract, dataset: str) -> str:
    head = ds.DATASET_HEAD[dataset]
    if head not in contract.heads:
        raise EvaluationError(
            f"model {contract.name!r} has no {head!r} head (heads: {sorted(contract.heads)}); "
            f"--dataset {dataset} scores that head"
        )
    return head


def _activity_mapping(contract: ModelContract, n_labels: int | None) -> tuple[int, np.ndarray]:
    """(number of HAPT labels scored, [n_labels] model column of each HAPT label)."""
    classes = contract.heads["activity"]
    if n_labels is None:
        n_labels = 12 if len(classes) >= 12 else 6
    missing = [c for c in ds.HAPT_LABELS[:n_labels] if c not in classes]
    if missing:
        raise EvaluationError(
            f"model {contract.name!r} activity head has no classes {missing}; it predicts "
            f"{list(classes)} (try --labels 6)"
        )
    return n_labels, np.array([classes.index(c) for c in ds.HAPT_LABELS[:n_labels]])


def evaluate_hapt(
    engine,
    recordings: Sequence[ds.LabelledRecording] | object,
    n_labels: int | None,
    mount: str | None = None,
    options: EvalOptions | None = None,
) -> dict:
    """Window-level activity scores of ``engine`` on HAPT recordings (``options``: the
    mounting's start, see the module docstring; ``mount`` overrides ``options.mount``)."""
    contract = engine.contract
    n_labels, columns = _activity_mapping(contract, n_labels)
    n_model = len(contract.heads["activity"])
    # Model column -> HAPT label index, or n_labels ("another class") for the rest.
    to_label = np.full(n_model, n_labels)
    to_label[columns] = np.arange(n_labels)
    y_true, y_pred, subjects, held_back = [], [], set(), 0
    streams = _Streams(contract, recordings, _options(options, mount))
    for rec, w, ready in streams:
        start, length = _window_geometry(contract, rec, w.t_start_s)
        labels = ds.activity_window_labels(rec.sample_label, start, length, n_labels)
        keep = labels != ds.IGNORE
        probs = _predict(engine, w.data[keep], "activity")
        y_true.append(labels[keep])
        # Held back (mounting not calibrated yet): no output, the extra column.
        y_pred.append(np.where(ready[keep], to_label[probs.argmax(axis=1)], n_labels))
        held_back += int((~ready[keep]).sum())
        subjects.add(rec.subject)
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    # One extra column for predictions of model classes outside the scored labels.
    cm = confusion_matrix(y_true, y_pred, n_labels, n_labels + 1)
    names = ds.HAPT_LABELS[:n_labels]
    return {
        "head": "activity",
        "classes": list(names),
        "n_classes": n_labels,
        "n_windows": len(y_true),
        "n_subjects": len(subjects),
        "macro_f1": round(macro_f1(cm), 4),
        "accuracy": round(accuracy(cm), 4),
        "per_class_f1": dict(zip(names, np.round(f1_per_class(cm), 4).tolist(), strict=True)),
        "confusion": cm.tolist(),
        "mounting_start": streams.start,
        "windows_held_back": held_back,
    }


def _options(options: EvalOptions | None, mount: str | None) -> EvalOptions:
    from dataclasses import replace

    options = options or EvalOptions()
    return replace(options, mount=mount) if mount is not None else options


def evaluate_sisfall(
    engine, recordings, threshold: float, mount: str | None = None, options=None
) -> dict:
    """Window and trial-level fall scores of ``engine`` on SisFall trials (``options``: the
    mounting's start, see the module docstring)."""
    contract = engine.contract
    fall_col = contract.heads["fall"].index("fall")
    y_true, y_pred, trial_truth, any_hit, peak_hit, subjects = [], [], [], [], [], set()
    streams = _Streams(contract, recordings, _options(options, mount))
    before = 0
    for rec, w, ready in streams:
        before += int((~ready).sum())
        start, length = _window_geometry(contract, rec, w.t_start_s)
        p_fall = _predict(engine, w.data, "fall")[:, fall_col]
        labels = ds.sisfall_window_labels(rec, start, length)
        keep = labels != ds.IGNORE
        y_true.append(labels[keep])
        y_pred.append((p_fall[keep] >= threshold).astype(np.int64))
        peak = ds.peak_window(start, length, rec.impact_index())
        trial_truth.append(bool(rec.is_fall))
        any_hit.append(bool((p_fall >= threshold).any()))
        peak_hit.append(peak >= 0 and bool(p_fall[peak] >= threshold))
        subjects.add(rec.subject)
    if not trial_truth:
        raise EvaluationError("no SisFall trials for these subjects")
    y_true, y_pred = np.concatenate(y_true), np.concatenate(y_pred)
    sens, spec = sensitivity_specificity(trial_truth, any_hit)
    peak_sens, peak_spec = sensitivity_specificity(trial_truth, peak_hit)
    cm = confusion_matrix(y_true, y_pred, 2)
    return {
        "head": "fall",
        "classes": list(ds.FALL_CLASSES),
        "n_classes": 2,
        "n_windows": len(y_true),
        "n_subjects": len(subjects),
        "macro_f1": round(macro_f1(cm), 4),
        "per_class_f1": dict(
            zip(ds.FALL_CLASSES, np.round(f1_per_class(cm), 4).tolist(), strict=True)
        ),
        "confusion": cm.tolist(),
        "threshold": threshold,
        "n_trials": len(trial_truth),
        "n_fall_trials": int(np.sum(trial_truth)),
        "sensitivity": round(sens, 4),
        "specificity": round(spec, 4),
        "peak_window_sensitivity": round(peak_sens, 4),
        "peak_window_specificity": round(peak_spec, 4),
        "mounting_start": streams.start,
        "windows_before_calibrated": before,
    }


def evaluate(engine, root: Path, options: EvalOptions) -> dict:
    """Score ``engine`` (anything with ``.contract`` and ``.predict``) on a held-out split.

    Returns a JSON-ready dict with at least ``dataset``, ``macro_f1``, ``n_classes`` and
    ``n_windows`` (and trial-level ``sensitivity``/``specificity`` for SisFall).
    """
    if options.dataset not in ds.DATASETS:
        raise EvaluationError(f"unknown dataset {options.dataset!r}; choose from {ds.DATASETS}")
    contract = engine.contract
    _require_head(contract, options.dataset)
    subjects = held_out_subjects(contract, options.dataset, root, options.split)
    if options.limit_subjects is not None:
        subjects = subjects[: options.limit_subjects]
    log.info("%s %s: %d subjects", options.dataset, options.split, len(subjects))
    recs = ds.recordings(options.dataset, root, subjects)
    if options.dataset == "hapt":
        scores = evaluate_hapt(engine, recs, options.n_labels, options=options)
    else:
        scores = evaluate_sisfall(engine, recs, options.threshold, options=options)
    header = {
        "dataset": options.dataset,
        "split": options.split,
        "model": contract.name,
        "model_version": contract.model_version,
        "hop_samples": contract.chain.hop_samples,
        "subjects": subjects,
    }
    return header | scores
