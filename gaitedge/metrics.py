"""Classification and detection scores, numpy only: the one definition used by train/, export/
and ``gaitedge evaluate``, so RESULTS.md, the model card and the CLI report the same figures.

* **macro-F1** is the unweighted mean of the per-class F1 over *all* classes of the head, the
  classes the head is scored on. A class that never occurs and is never predicted scores 0
  (it pulls the mean down rather than silently leaving it), so a figure over a subset of
  subjects that lacks a class is lower than one over the classes present.
* Predictions outside the scored classes (a model class that the scoring leaves out, e.g. HAPT's
  six transitions when only the six basic activities are scored) are misses of the true class:
  pass ``n_predicted`` > ``n_classes`` and they land in the extra columns of the confusion matrix.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int, n_predicted: int | None = None
) -> np.ndarray:
    """[n_classes, n_predicted] counts, rows = true class, columns = predicted class.

    ``n_predicted`` (default ``n_classes``) leaves room for predicted classes that are not
    scored; every ``y_true`` must be below ``n_classes``.
    """
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if len(y_true) and y_true.max() >= n_classes:
        raise ValueError(f"true class {y_true.max()} outside the {n_classes} scored classes")
    cm = np.zeros((n_classes, n_predicted or n_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """[n_classes] F1 = 2TP / (2TP + FP + FN) of each row's class of a confusion matrix
    (0 for a class never true nor predicted)."""
    n = cm.shape[0]
    tp = np.diag(cm)[:n].astype(np.float64)
    denom = (cm.sum(axis=0)[:n] + cm.sum(axis=1)).astype(np.float64)
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(cm: np.ndarray) -> float:
    """Unweighted mean F1 over all classes (rows) of a confusion matrix."""
    return float(f1_per_class(cm).mean())


def accuracy(cm: np.ndarray) -> float:
    """Fraction of windows predicted as their true class (NaN with no windows)."""
    total = cm.sum()
    return float(np.trace(cm[:, : cm.shape[0]]) / total) if total else float("nan")


def sensitivity_specificity(truth: np.ndarray, detected: np.ndarray) -> tuple[float, float]:
    """(true-positive rate, true-negative rate) of boolean decisions; NaN where undefined."""
    truth, detected = np.asarray(truth, bool), np.asarray(detected, bool)
    pos, neg = truth.sum(), (~truth).sum()
    sens = float((detected & truth).sum() / pos) if pos else float("nan")
    spec = float((~detected & ~truth).sum() / neg) if neg else float("nan")
    return sens, spec
