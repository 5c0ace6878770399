"""train/results.json (what ``python -m train.summarize --json`` printed for the committed runs)
has the keys checks read, and train/RESULTS.md quotes its figures rather than others."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = json.loads((ROOT / "train/results.json").read_text())
MARKDOWN = (ROOT / "train/RESULTS.md").read_text()


def test_results_json_has_the_keys_checks_read() -> None:
    assert isinstance(RESULTS["hapt6_macro_f1"], float)
    assert isinstance(RESULTS["hapt12_macro_f1"], float)
    folds = RESULTS["sisfall_folds"]
    assert sorted(f["fold"] for f in folds) == [0, 1, 2, 3, 4]
    for f in folds:
        assert 0.0 < f["sensitivity"] <= 1.0 and 0.0 < f["specificity"] <= 1.0
    rows = RESULTS["label_efficiency"]
    assert {r["init"] for r in rows} == {"mae", "scratch", "gbm"}
    for r in rows:
        assert set(r) >= {"init", "labels", "seed", "macro_f1"}
    # At least three seeds of each deep initialisation at 1 % of the labels.
    for init in ("mae", "scratch"):
        seeds = {r["seed"] for r in rows if r["init"] == init and r["labels"] == "1%"}
        assert len(seeds) >= 3, init


def test_results_md_quotes_the_json() -> None:
    figures = [RESULTS["hapt6_macro_f1"], RESULTS["hapt12_macro_f1"]]
    figures += [f[k] for f in RESULTS["sisfall_folds"] for k in ("sensitivity", "specificity")]
    figures += [r["macro_f1_mean"] for r in RESULTS["label_efficiency_summary"]]
    missing = [x for x in figures if f"{x:.4f}" not in MARKDOWN]
    assert not missing, f"RESULTS.md does not quote {missing}"


def test_results_json_students_are_the_shipped_bundles() -> None:
    """``students`` and ``teacher`` in train/results.json are what summarize reads from the
    bundles in gaitedge/models now (a re-released bundle must be re-summarised)."""
    from train.summarize import shipped_students, teacher_figures

    models = ROOT / "gaitedge/models"
    students = shipped_students(models)
    for s in students:
        s["bundle"] = str(Path(s["bundle"]).relative_to(ROOT))
    assert RESULTS["students"] == students
    assert RESULTS["teacher"] == teacher_figures(models / "gaitedge-default.onnx")
    names = [s["name"] for s in students]
    assert "default" in names
    default = students[names.index("default")]
    assert 0 < default["int8_bytes"] < default["params"]  # INT8 weights; biases stay float
