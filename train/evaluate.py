"""Held-out evaluation: macro-F1, per-class F1, confusion matrix, trial-level fall detection.

``python -m train.evaluate --checkpoint runs/y/checkpoint.pt --out runs/y/eval`` rebuilds the
windows with the checkpoint's chain and scores the checkpoint's held-out subjects only.

Fall detection is scored per trial, as the runtime would see a recording: a trial counts as a
detected fall when any of its windows has a fall probability of at least ``threshold``.
Sensitivity is over fall trials, specificity over ADL trials. The score of the window labelled
``fall`` (the impact window) alone is reported as well, which compares with a baseline that
classifies one window around the peak per trial.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gaitedge import metrics
from gaitedge.entry import at_least, probability, run
from train.data import IGNORE, WindowSet, activity_subset, concat, load_windows
from train.model import IMUMaskedAutoencoder, load_checkpoint

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_probs(
    model: IMUMaskedAutoencoder, data: np.ndarray, batch_size: int = 1024
) -> dict[str, np.ndarray]:
    """Softmax probabilities per head for windows [K, W, C] -> {head: [K, n_classes]}."""
    model.eval()
    out: dict[str, list[np.ndarray]] = {h: [] for h in model.head_names}
    device = next(model.parameters()).device
    for i in range(0, len(data), batch_size):
        x = torch.as_tensor(data[i : i + batch_size], device=device)
        for head, logits in model.classify(x).items():
            out[head].append(torch.softmax(logits.float(), -1).cpu().numpy())
    return {h: np.concatenate(v) if v else np.zeros((0, 0)) for h, v in out.items()}


def classification_report(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """Macro-F1 (``gaitedge.metrics``: over all classes of the head), per-class F1, accuracy and
    confusion matrix over windows with a label."""
    keep = y_true != IGNORE
    y, pred = y_true[keep], probs[keep].argmax(axis=1)
    m = metrics.confusion_matrix(y, pred, len(classes))
    f1 = metrics.f1_per_class(m)
    return {
        "n_windows": int(keep.sum()),
        "accuracy": metrics.accuracy(m),
        "macro_f1": metrics.macro_f1(m),
        "per_class_f1": {c: round(float(v), 4) for c, v in zip(classes, f1, strict=True)},
        "confusion_matrix": m.tolist(),
        "classes": list(classes),
    }


def trial_max_prob(
    fall_prob: np.ndarray, group: np.ndarray, trial_is_fall: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per trial: (trial ids, highest window fall probability, is a fall trial)."""
    trials, inverse = np.unique(group, return_inverse=True)
    max_prob = np.full(len(trials), -np.inf)
    np.maximum.at(max_prob, inverse, fall_prob)
    is_fall = np.zeros(len(trials), bool)
    is_fall[inverse] = trial_is_fall == 1
    return trials, max_prob, is_fall


def fall_trial_report(
    fall_prob: np.ndarray,
    group: np.ndarray,
    trial_is_fall: np.ndarray,
    window_label: np.ndarray,
    threshold: float = 0.5,
) -> dict:
    """Trial-level fall sensitivity / specificity (any window >= threshold) and impact windows.

    Args:
        fall_prob: [K] probability of ``fall`` per window; group: [K] trial ids;
        trial_is_fall: [K] the trial's label; window_label: [K] 1 impact, 0 no-fall, -1 none.
    """
    trials, max_prob, is_fall = trial_max_prob(fall_prob, group, trial_is_fall)
    detected = max_prob >= threshold
    impact = window_label == 1
    sensitivity, specificity = metrics.sensitivity_specificity(is_fall, detected)
    return {
        "threshold": threshold,
        "n_fall_trials": int(is_fall.sum()),
        "n_adl_trials": int((~is_fall).sum()),
        "trial_sensitivity": sensitivity,
        "trial_specificity": specificity,
        "impact_window_sensitivity": float((fall_prob[impact] >= threshold).mean())
        if impact.any()
        else float("nan"),
        "missed_fall_trials": [int(t) for t in trials[is_fall & ~detected]][:50],
        "false_alarm_trials": [int(t) for t in trials[~is_fall & detected]][:50],
    }


def evaluate_windows(
    model: IMUMaskedAutoencoder,
    ws: WindowSet,
    heads: dict[str, Sequence[str]],
    fall_threshold: float = 0.5,
    probs: dict[str, np.ndarray] | None = None,
) -> dict:
    """Every head's report on ``ws`` (held-out windows); ``probs``: the model's
    :func:`predict_probs` on ``ws`` when the caller already has them."""
    if probs is None:
        probs = predict_probs(model, ws.data)
    report = {}
    for head, classes in heads.items():
        labelled = ws.labels[head] != IGNORE
        if not labelled.any():
            continue
        r = classification_report(ws.labels[head], probs[head], classes)
        if head == "fall":
            fall = ws.fall_trials() >= 0
            r |= fall_trial_report(
                probs[head][fall, 1],
                ws.group[fall],
                ws.fall_trials()[fall],
                ws.labels[head][fall],
                fall_threshold,
            )
        report[head] = r
    return report


def subject_windows(
    names: Sequence[str],
    chain,
    heads: dict[str, Sequence[str]],
    subjects: Sequence[str],
    root: Path | None,
    cache_dir: Path | None,
) -> WindowSet:
    """The windows of ``subjects`` in datasets ``names``, cut by ``chain`` (its normalisation and
    hop: e.g. the streaming hop for scoring a model trained at another)."""
    sets = []
    for name in names:
        ws = load_windows(name, chain, root, cache_dir)
        if name.partition("@")[0] == "hapt" and "activity" in heads:
            ws = activity_subset(ws, len(heads["activity"]))
        sets.append(ws)
    ws = concat(sets)
    return ws.take(np.isin(ws.subject, list(subjects)))


def checkpoint_test_windows(ckpt: dict, root: Path | None, cache_dir: Path | None) -> WindowSet:
    """The held-out windows of a checkpoint's split, cut with its chain (incl. normalisation)."""
    from gaitedge.preprocess import ChainConfig

    chain = ChainConfig.from_dict(ckpt["chain"])
    return subject_windows(
        ckpt["datasets"], chain, ckpt["heads"], ckpt["split"]["test"], root, cache_dir
    )


def choose_fall_threshold(
    model: IMUMaskedAutoencoder,
    ws: WindowSet,
    min_sensitivity: float = 0.99,
    probs: dict[str, np.ndarray] | None = None,
) -> float:
    """The fall-probability threshold for trial-level detection, chosen on ``ws`` (validation
    subjects): the highest that still detects ``min_sensitivity`` of their fall trials (so the
    most specific one at that sensitivity), at most ``1 - 1e-4``."""
    fall = ws.fall_trials() >= 0
    if not fall.any():
        raise ValueError("no SisFall trials among the validation windows")
    if probs is None:
        prob = predict_probs(model, ws.data[fall])["fall"][:, 1]
    else:  # the model's probabilities on all of ``ws``
        prob = probs["fall"][fall, 1]
    _, max_prob, is_fall = trial_max_prob(prob, ws.group[fall], ws.fall_trials()[fall])
    fall_max = np.sort(max_prob[is_fall])
    misses = int(np.floor((1 - min_sensitivity) * len(fall_max) + 1e-9))
    return float(min(fall_max[misses], 1 - 1e-4))


def write_report(report: dict, out_dir: Path, title: str = "") -> None:
    """``report.json`` and one confusion-matrix PNG per head."""
    from train.plots import plot_confusion

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    for head, r in report.items():
        name = f"{title} {head}: macro-F1 {r['macro_f1']:.3f} (held-out subjects)".strip()
        plot_confusion(
            np.array(r["confusion_matrix"]), r["classes"], out_dir / f"confusion_{head}.png", name
        )


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a fine-tuned checkpoint.pt")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: beside it)")
    p.add_argument("--data-root", type=Path, default=None, help="datasets folder")
    p.add_argument("--cache-dir", type=Path, default=Path("runs/cache"), help="window cache")
    p.add_argument("--fall-threshold", type=probability, default=0.5, help="fall probability cut")
    p.add_argument("--threads", type=at_least(1), default=2, help="torch CPU threads")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(args.threads)
    model, ckpt = load_checkpoint(args.checkpoint)
    ws = checkpoint_test_windows(ckpt, args.data_root, args.cache_dir)
    report = evaluate_windows(model, ws, ckpt["heads"], args.fall_threshold)
    out = args.out or args.checkpoint.parent / "eval"
    write_report(report, out)
    for head, r in report.items():
        log.info("%s: macro-F1 %.4f on %d held-out windows", head, r["macro_f1"], r["n_windows"])
    return report


if __name__ == "__main__":
    run(main)
