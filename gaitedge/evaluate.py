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
from gaitedge.preprocess import run_offline

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


def _with_mountings(
    contract: ModelContract, recordings, mount: str | None = None
) -> tuple[list, dict]:
    """Per subject, the mounting its recordings are aligned with. Automatic: each subject's device
    is calibrated on all of that subject's recordings, as a stored estimate would be
    (``gaitedge.datasets.subject_mountings``); ``none`` or an axis map: the same for everyone."""
    from dataclasses import replace

    from gaitedge.preprocess import Mounting

    recordings = list(recordings)
    cfg = contract.chain
    mode = mount or cfg.mounting
    if mode == "auto":
        return recordings, ds.subject_mountings(replace(cfg, mounting="auto"), recordings)
    fixed = Mounting.for_chain(cfg, mode)
    return recordings, {rec.subject: fixed for rec in recordings}


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
) -> dict:
    """Window-level activity scores of ``engine`` on HAPT recordings."""
    contract = engine.contract
    n_labels, columns = _activity_mapping(contract, n_labels)
    n_model = len(contract.heads["activity"])
    # Model column -> HAPT label index, or n_labels ("another class") for the rest.
    to_label = np.full(n_model, n_labels)
    to_label[columns] = np.arange(n_labels)
    y_true, y_pred, subjects = [], [], set()
    recordings, mountings = _with_mountings(contract, recordings, mount)
    for rec in recordings:
        w = run_offline(
            contract.chain, rec.timestamp_s, rec.imu, mounting=mountings.get(rec.subject)
        )
        start, length = _window_geometry(contract, rec, w.t_start_s)
        labels = ds.activity_window_labels(rec.sample_label, start, length, n_labels)
        keep = labels != ds.IGNORE
        probs = _predict(engine, w.data[keep], "activity")
        y_true.append(labels[keep])
        y_pred.append(to_label[probs.argmax(axis=1)])
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
    }


def evaluate_sisfall(engine, recordings, threshold: float, mount: str | None = None) -> dict:
    """Window and trial-level fall scores of ``engine`` on SisFall trials."""
    contract = engine.contract
    fall_col = contract.heads["fall"].index("fall")
    y_true, y_pred, trial_truth, any_hit, peak_hit, subjects = [], [], [], [], [], set()
    recordings, mountings = _with_mountings(contract, recordings, mount)
    for rec in recordings:
        w = run_offline(
            contract.chain, rec.timestamp_s, rec.imu, mounting=mountings.get(rec.subject)
        )
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
        scores = evaluate_hapt(engine, recs, options.n_labels, options.mount)
    else:
        scores = evaluate_sisfall(engine, recs, options.threshold, options.mount)
    header = {
        "dataset": options.dataset,
        "split": options.split,
        "model": contract.name,
        "model_version": contract.model_version,
        "hop_samples": contract.chain.hop_samples,
        "subjects": subjects,
    }
    return header | scores
