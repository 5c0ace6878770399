"""Held-out evaluation: metrics, the CLI's JSON line on real data, no torch, clear refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from gaitedge.cli import app
from gaitedge.engine import DEFAULT_MODEL
from gaitedge.evaluate import (
    confusion_matrix,
    f1_per_class,
    macro_f1,
    sensitivity_specificity,
)

runner = CliRunner()
needs_shipped = pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model yet")


def test_macro_f1_by_hand():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 2, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # F1 = 2TP / (2TP + FP + FN): class 0 4/5, class 1 2/4, class 2 2/3.
    np.testing.assert_allclose(f1_per_class(cm), [0.8, 0.5, 2 / 3])
    assert macro_f1(y_true, y_pred, 3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_macro_f1_averages_only_classes_that_occur():
    # Class 3 (a model class outside the scored labels) is predicted but never true.
    assert macro_f1(np.array([0, 1]), np.array([0, 3]), 4) == pytest.approx(0.5)


def test_sensitivity_and_specificity():
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0], bool)
    hit = np.array([1, 1, 1, 0, 0, 0, 0, 0, 1], bool)
    assert sensitivity_specificity(truth, hit) == pytest.approx((0.75, 0.8))


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


@needs_shipped
@pytest.mark.parametrize("dataset", ["hapt", "sisfall"])
def test_evaluate_prints_a_json_last_line_on_real_data(data_root, hapt_dir, sisfall_dir, dataset):
    args = ["evaluate", "--dataset", dataset, "--data-root", str(data_root), "--json",
            "--limit-subjects", "2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    res = _last_json(result.output)
    assert res["dataset"] == dataset and res["n_windows"] > 100 and res["n_subjects"] == 2
    assert 0 <= res["macro_f1"] <= 1
    assert res["n_classes"] == (6 if dataset == "hapt" else 2)
    if dataset == "sisfall":
        assert 0 <= res["sensitivity"] <= 1 and 0 <= res["specificity"] <= 1
        assert set(res["subjects"]) <= {"sisfall:SA03", "sisfall:SA08", "sisfall:SA13"}
    else:
        assert res["macro_f1"] > 0.7  # the shipped model, on held-out subjects
        assert set(res["subjects"]) <= {f"hapt:{s}" for s in (2, 4, 9, 10, 12, 13, 18, 20, 24)}


@needs_shipped
def test_evaluate_does_not_import_torch(data_root, hapt_dir):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gaitedge.cli import app\n"
        f"r = CliRunner().invoke(app, ['evaluate', '--data-root', {str(data_root)!r}, '--json',"
        " '--limit-subjects', '1'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules and 'train' not in sys.modules\n"
        "print(r.output.strip().splitlines()[-1])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["dataset"] == "hapt"


def test_evaluate_refuses_a_model_without_the_head(tmp_path, data_root, sisfall_dir):
    from tests._bundles import export_tiny

    windows = np.random.default_rng(0).standard_normal((8, 128, 9)).astype(np.float32)
    only_activity = {"activity": ("WALKING", "SITTING")}
    path = export_tiny(tmp_path / "a.onnx", windows, heads=only_activity)
    result = runner.invoke(
        app, ["evaluate", "--model", str(path), "--dataset", "sisfall", "--data-root",
              str(data_root)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "has no 'fall' head" in result.output
    result = runner.invoke(app, ["evaluate", "--model", str(path), "--data-root", str(data_root)])
    assert result.exit_code == 2 and "activity head has no classes" in result.output


def test_evaluate_reports_a_missing_dataset_clearly(tmp_path):
    result = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "none.onnx")])
    assert result.exit_code == 2 and "no such model file" in result.output
