"""Collect the figures of the runs behind ``train/RESULTS.md`` into tables and one JSON object.

    python -m train.summarize --runs runs --figures train/figures          # Markdown tables
    python -m train.summarize --runs runs --json --write train/results.json

Runs it reads (the layout ``train/run_results.sh`` writes):

* ``le/<init>-<labels>-s<seed>/``: label efficiency on HAPT (6 activities); ``init`` is ``mae``
  or ``scratch`` (``checkpoint.pt`` of ``train.finetune``) or ``gbm`` (``result.json`` of
  ``train.baseline``); ``labels`` is ``1pct``, ``5pct``, ``10pct``, ``100pct`` (of each class's
  labelled windows) or ``1subj``, ``3subj`` (every label of that many fitting subjects).
* ``abl/<variant>/``: MAE ablations: ``pretrain/checkpoint.pt`` and its ``ft1pct-s<seed>`` (full
  fine-tune on 1 % of labels) and ``probe-s<seed>`` (frozen encoder, linear probe, all labels).
* ``sisfall/fold<k>/`` (fall head on SisFall subject fold k of 5) and ``hapt12/`` (12 labels).
* the shipped bundle (``--bundle``): its held-out figures, measured by ``gaitedge evaluate`` at
  release, give ``hapt6_macro_f1``.

Validation figures (subjects drawn from the training side) are printed beside the held-out ones
because every choice was made on them; held-out (test) figures are only reported.

With ``--json`` the last line printed is one JSON object; its keys ``hapt6_macro_f1``,
``hapt12_macro_f1``, ``sisfall_folds`` ([{fold, sensitivity, specificity}]) and
``label_efficiency`` ([{init, labels, seed, macro_f1}]), ``students`` (every bundle in the
shipped bundle's folder: [{name, params, macs, int8_bytes, hapt6_macro_f1, sisfall_sensitivity,
sisfall_specificity, distilled}], held-out figures from each contract) and ``teacher`` ({variant,
steps, corpus_hours, hapt6_macro_f1} of the shipped bundle's teacher, null when it was trained on
labels alone) are read by checks: keep them.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
from collections.abc import Sequence
from pathlib import Path

import torch

from gaitedge import entry

LABELS = {  # run-name token -> what the JSON and tables say
    "1pct": "1%",
    "5pct": "5%",
    "10pct": "10%",
    "100pct": "100%",
    "1subj": "1 subject",
    "3subj": "3 subjects",
}
INITS = ("mae", "scratch", "gbm")
_LE_RUN = re.compile(r"^(?P<init>[a-z0-9]+)-(?P<labels>[a-z0-9]+)-s(?P<seed>\d+)$")


def checkpoint_metrics(path: Path) -> dict | None:
    """The ``metrics`` a training run stored in its checkpoint (None when it is missing or has
    not finished: a periodic checkpoint carries no held-out scores)."""
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    metrics = ckpt.get("metrics") or {}
    if "test" not in metrics and "test_reconstruction_loss" not in metrics:
        return None
    return metrics | {
        "_train_windows": ckpt.get("train_windows"),
        "_model": ckpt.get("model_config"),
    }


def _run_result(run: Path, init: str) -> dict | None:
    """{macro_f1, val_macro_f1, train_windows} of one label-efficiency run."""
    if init == "gbm":
        path = run / "result.json"
        if not path.exists():
            return None
        r = json.loads(path.read_text())
        return {
            "macro_f1": r["test_macro_f1"],
            "val_macro_f1": r.get("val_macro_f1"),
            "train_windows": r.get("train_windows"),
        }
    m = checkpoint_metrics(run / "checkpoint.pt")
    if m is None or "activity" not in m.get("test", {}):
        return None
    return {
        "macro_f1": m["test"]["activity"]["macro_f1"],
        "val_macro_f1": m.get("val", {}).get("activity", {}).get("macro_f1"),
        "train_windows": m["_train_windows"],
    }


def label_efficiency(runs: Path) -> list[dict]:
    """One row per finished run under ``runs/le``, ordered by labels, init, seed."""
    rows = []
    for run in sorted((runs / "le").glob("*")):
        match = _LE_RUN.match(run.name)
        if not match or match["labels"] not in LABELS or match["init"] not in INITS:
            continue
        r = _run_result(run, match["init"])
        if r is not None:
            rows.append(
                {
                    "init": match["init"],
                    "labels": LABELS[match["labels"]],
                    "seed": int(match["seed"]),
                }
                | r
            )
    order = list(LABELS.values())
    return sorted(rows, key=lambda r: (order.index(r["labels"]), INITS.index(r["init"]), r["seed"]))


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def label_efficiency_table(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (labels, init), test and validation."""
    out = []
    for labels in dict.fromkeys(r["labels"] for r in rows):
        for init in INITS:
            group = [r for r in rows if r["labels"] == labels and r["init"] == init]
            if not group:
                continue
            mean, std = _mean_std([r["macro_f1"] for r in group])
            vals = [r["val_macro_f1"] for r in group if r["val_macro_f1"] is not None]
            val_mean, val_std = _mean_std(vals) if vals else (float("nan"), 0.0)
            out.append(
                {
                    "labels": labels,
                    "init": init,
                    "seeds": len(group),
                    "macro_f1_mean": round(mean, 4),
                    "macro_f1_std": round(std, 4),
                    "val_macro_f1_mean": round(val_mean, 4),
                    "val_macro_f1_std": round(val_std, 4),
                    "train_windows": group[0]["train_windows"],
                }
            )
    return out


def ablations(runs: Path) -> list[dict]:
    """Each pretraining variant: its config, reconstruction loss, and its encoder's validation
    macro-F1 after a 1 %-label fine-tune and under a linear probe (mean, std over seeds)."""
    out = []
    for variant in sorted((runs / "abl").glob("*")):
        pre = checkpoint_metrics(variant / "pretrain" / "checkpoint.pt")
        if pre is None:
            continue
        row: dict = {"variant": variant.name}
        model = pre["_model"] or {}
        for key in ("patch_samples", "mask_ratio", "token_mode", "target"):
            if key in model:
                row[key] = model[key]
        row["pretrain_steps"] = pre.get("steps")
        row["test_reconstruction_loss"] = round(pre["test_reconstruction_loss"], 4)
        for kind in ("ft1pct", "probe"):
            vals, tests = [], []
            for run in sorted(variant.glob(f"{kind}-s*")):
                r = _run_result(run, "mae")
                if r is not None:
                    vals.append(r["val_macro_f1"])
                    tests.append(r["macro_f1"])
            if vals:
                row[f"{kind}_val_macro_f1"] = [round(v, 4) for v in _mean_std(vals)]
                row[f"{kind}_test_macro_f1"] = [round(v, 4) for v in _mean_std(tests)]
                row[f"{kind}_seeds"] = len(vals)
        out.append(row)
    return out


def sisfall_folds(runs: Path) -> list[dict]:
    """Trial-level fall detection per SisFall subject fold (held-out and validation)."""
    out = []
    for run in sorted((runs / "sisfall").glob("fold*")):
        m = checkpoint_metrics(run / "checkpoint.pt")
        if m is None or "fall" not in m.get("test", {}):
            continue
        test, val = m["test"]["fall"], m.get("val", {}).get("fall", {})
        out.append(
            {
                "fold": int(run.name.removeprefix("fold")),
                "sensitivity": test["trial_sensitivity"],
                "specificity": test["trial_specificity"],
                "threshold": test.get("threshold"),
                "val_sensitivity": val.get("trial_sensitivity"),
                "val_specificity": val.get("trial_specificity"),
                "trials_fall_adl": [test["n_fall_trials"], test["n_adl_trials"]],
            }
        )
    return sorted(out, key=lambda r: r["fold"])


def _activity_test(runs: Path, name: str) -> dict | None:
    m = checkpoint_metrics(runs / name / "checkpoint.pt")
    if m is None or "activity" not in m.get("test", {}):
        return None
    return {"test": m["test"]["activity"], "val": m.get("val", {}).get("activity", {})}


def bundle_figures(bundle: Path) -> dict:
    """The shipped bundle's held-out figures, written into its contract at release."""
    if not bundle.exists():
        return {}
    from gaitedge.bundle import read_contract

    contract = read_contract(bundle)
    m = contract.metrics or {}
    return {
        "bundle": str(bundle),
        "version": contract.model_version,
        "hapt": m.get("hapt", {}),
        "sisfall": m.get("sisfall", {}),
        "evaluated_with": m.get("evaluated_with"),
    }


def student_figures(bundle: Path) -> dict:
    """One shipped bundle as a point on the accuracy/cost front: its size, its cost per window
    and the held-out figures written into its contract at release."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from export.flops import count_cost
    from gaitedge.bundle import read_contract

    contract = read_contract(bundle)
    fp32 = bundle.with_name(f"{bundle.stem}-fp32.onnx")
    cost = count_cost(fp32 if fp32.exists() else bundle)  # the float graph counts every weight
    int8 = [numpy_helper.to_array(t) for t in onnx.load(str(bundle)).graph.initializer]
    m = contract.metrics or {}
    training = contract.training or {}
    return {
        "name": contract.name.removeprefix("gaitedge-"),
        "version": contract.model_version,
        "bundle": str(bundle),
        "channels": list(contract.chain.channels),
        "params": cost.params,
        "macs": cost.flops // 2,
        "int8_bytes": sum(a.nbytes for a in int8 if a.dtype == np.int8),
        "hapt6_macro_f1": m.get("hapt", {}).get("macro_f1"),
        "sisfall_sensitivity": m.get("sisfall", {}).get("sensitivity"),
        "sisfall_specificity": m.get("sisfall", {}).get("specificity"),
        "distilled": training.get("distillation") is not None,
    }


def shipped_students(models: Path) -> list[dict]:
    """Every bundle in the package's models folder (FP32 references are their bundles' own)."""
    return [
        student_figures(b) for b in sorted(models.glob("*.onnx")) if not b.stem.endswith("-fp32")
    ]


def teacher_figures(bundle: Path) -> dict | None:
    """The teacher the shipped bundle was distilled from, as its contract records it (None when
    it was trained on labels alone)."""
    if not bundle.exists():
        return None
    from gaitedge.bundle import read_contract

    contract = read_contract(bundle)
    teacher = (contract.training or {}).get("teacher") or {}
    if not teacher.get("checkpoint"):
        return None
    held_out = (contract.metrics or {}).get("teacher_held_out", {})
    return {
        "variant": teacher.get("variant"),
        "steps": teacher.get("pretrain_steps"),
        "corpus_hours": teacher.get("corpus_hours"),
        "hapt6_macro_f1": held_out.get("hapt", {}).get("macro_f1"),
    }


def collect(runs: Path, bundle: Path) -> dict:
    """The summary object (``--json``; ``train/results.json``)."""
    shipped = bundle_figures(bundle)
    hapt12 = _activity_test(runs, "hapt12")
    hapt6_run = _activity_test(runs, "hapt6")
    le = label_efficiency(runs)
    folds = sisfall_folds(runs)
    hapt6 = shipped.get("hapt", {}).get("macro_f1")
    if hapt6 is None and hapt6_run is not None:
        hapt6 = hapt6_run["test"]["macro_f1"]
    summary = {
        "hapt6_macro_f1": hapt6,
        "hapt12_macro_f1": hapt12["test"]["macro_f1"] if hapt12 else None,
        "sisfall_folds": folds,
        "label_efficiency": [
            {k: r[k] for k in ("init", "labels", "seed", "macro_f1", "val_macro_f1")} for r in le
        ],
        "label_efficiency_summary": label_efficiency_table(le),
        "ablations": ablations(runs),
        "shipped": shipped,
        "students": shipped_students(bundle.parent) if bundle.exists() else [],
        "teacher": teacher_figures(bundle),
    }
    if hapt12:
        summary["hapt12_val_macro_f1"] = hapt12["val"].get("macro_f1")
        summary["hapt12_per_class_f1"] = hapt12["test"]["per_class_f1"]
    if hapt6_run:
        summary["hapt6_run_macro_f1"] = hapt6_run["test"]["macro_f1"]
    if folds:
        summary["sisfall_folds_mean"] = {
            k: round(statistics.fmean(f[k] for f in folds), 4)
            for k in ("sensitivity", "specificity")
        }
    return summary


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def print_tables(s: dict) -> None:
    print("| labels | init | seeds | held-out macro-F1 (mean ± std) | validation | windows |")
    print("|---|---|---|---|---|---|")
    for r in s["label_efficiency_summary"]:
        print(
            f"| {r['labels']} | {r['init']} | {r['seeds']} | {r['macro_f1_mean']:.4f} ± "
            f"{r['macro_f1_std']:.4f} | {r['val_macro_f1_mean']:.4f} ± {r['val_macro_f1_std']:.4f}"
            f" | {r['train_windows']} |"
        )
    print("\n| variant | patch | mask | tokens | target | steps | recon. loss | 1 % fine-tune val"
          " | linear probe val |\n|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in s["ablations"]:
        ft, probe = r.get("ft1pct_val_macro_f1"), r.get("probe_val_macro_f1")
        print(
            f"| {r['variant']} | {r.get('patch_samples')} | {r.get('mask_ratio')} | "
            f"{r.get('token_mode', 'mixed')} | {r.get('target', 'chain')} | "
            f"{r['pretrain_steps']} | {r['test_reconstruction_loss']:.4f} | "
            f"{f'{ft[0]:.4f} ± {ft[1]:.4f}' if ft else '-'} | "
            f"{f'{probe[0]:.4f} ± {probe[1]:.4f}' if probe else '-'} |"
        )
    print("\n| SisFall fold | threshold | sensitivity | specificity | val sens. | val spec. |")
    print("|---|---|---|---|---|---|")
    for f in s["sisfall_folds"]:
        print(
            f"| {f['fold']} | {fmt(f['threshold'])} | {f['sensitivity']:.4f} | "
            f"{f['specificity']:.4f} | {fmt(f['val_sensitivity'])} | {fmt(f['val_specificity'])} |"
        )

    print(
        f"\nHAPT 6 (shipped bundle): {fmt(s['hapt6_macro_f1'])}; "
        f"12 labels: {fmt(s['hapt12_macro_f1'])}"
    )


def plot(s: dict, runs: Path, fig: Path) -> None:
    from train.plots import plot_label_efficiency

    fig.mkdir(parents=True, exist_ok=True)
    fractions = {"1%": 0.01, "5%": 0.05, "10%": 0.1, "100%": 1.0}
    curve: dict[str, dict[float, float]] = {}
    for r in s["label_efficiency_summary"]:
        if r["labels"] in fractions:
            curve.setdefault(r["init"], {})[fractions[r["labels"]]] = r["macro_f1_mean"]
    if curve:
        plot_label_efficiency(curve, fig / "label_efficiency.png", "HAPT 6-class macro-F1")
    copies = {
        "abl/main/pretrain/reconstruction.png": "reconstruction.png",
        "abl/main/pretrain/curves.png": "pretrain_curves.png",
        "hapt12/confusion_activity.png": "confusion_activity12.png",
    }
    for src, dst in copies.items():
        if (runs / src).exists():
            shutil.copyfile(runs / src, fig / dst)


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs"), help="the runs folder")
    p.add_argument("--figures", type=Path, default=None, help="copy/draw PNGs here")
    p.add_argument(
        "--bundle",
        type=Path,
        default=Path("gaitedge/models/gaitedge-default.onnx"),
        help="the shipped bundle whose held-out figures give hapt6_macro_f1",
    )
    p.add_argument("--json", action="store_true", help="end with the summary as one JSON line")
    p.add_argument("--write", type=Path, default=None, help="also write the JSON object here")
    args = p.parse_args(argv)
    summary = collect(args.runs, args.bundle)
    print_tables(summary)
    if args.figures is not None:
        plot(summary, args.runs, args.figures)
    if args.write is not None:
        args.write.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    entry.run(main)
