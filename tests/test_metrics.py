"""gaitedge.metrics: the one macro-F1, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gaitedge.metrics import (
    accuracy,
    confusion_matrix,
    f1_per_class,
    macro_f1,
    sensitivity_specificity,
)


def test_macro_f1_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # F1 = 2TP / (2TP + FP + FN): class 0 4/5, class 1 2/4, class 2 2/3.
    np.testing.assert_allclose(f1_per_class(cm), [0.8, 0.5, 2 / 3])
    assert macro_f1(cm) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert accuracy(cm) == pytest.approx(4 / 6)


def test_macro_f1_averages_over_all_classes_of_the_head():
    # Class 2 never occurs and is never predicted: it scores 0 and counts in the mean.
    cm = confusion_matrix(np.array([0, 1]), np.array([0, 1]), 3)
    assert f1_per_class(cm).tolist() == [1.0, 1.0, 0.0]
    assert macro_f1(cm) == pytest.approx(2 / 3)


def test_predictions_outside_the_scored_classes_are_misses():
    # Two scored classes; column 2 is a model class that is not scored (e.g. a transition).
    cm = confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1]), 2, n_predicted=3)
    assert cm.tolist() == [[1, 0, 1], [0, 2, 0]]
    np.testing.assert_allclose(f1_per_class(cm), [2 / 3, 1.0])  # class 0: TP 1, FN 1
    assert accuracy(cm) == pytest.approx(0.75)


def test_a_true_class_outside_the_head_is_refused():
    with pytest.raises(ValueError, match="outside the 2 scored classes"):
        confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)


def test_sensitivity_and_specificity():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    hit = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1], bool)
    assert sensitivity_specificity(truth, hit) == pytest.approx((0.75, 0.8))
    sens, spec = sensitivity_specificity(np.array([True]), np.array([True]))
    assert sens == 1.0 and np.isnan(spec)
