"""Collect the held-out metrics of the runs in ``train/run_results.sh`` into Markdown tables.

    python -m train.summarize --runs runs --figures train/figures

Prints the tables that ``train/RESULTS.md`` quotes and draws the label-efficiency curve.
"""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from train.plots import plot_label_efficiency

FRACTIONS = {"1": 0.01, "10": 0.1, "100": 1.0}


def _metrics(path: Path) -> dict | None:
    if not path.exists():
        return None
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt["metrics"]


def _activity_row(name: str, m: dict) -> str:
    r = m["test"]["activity"]
    per = ", ".join(f"{k} {v:.3f}" for k, v in r["per_class_f1"].items())
    return f"| {name} | {r['macro_f1']:.4f} | {r['accuracy']:.4f} | {r['n_windows']} | {per} |"


def _fall_row(name: str, m: dict) -> str:
    r = m["test"]["fall"]
    return (
        f"| {name} | {r['trial_sensitivity']:.4f} | {r['trial_specificity']:.4f} | "
        f"{r['impact_window_sensitivity']:.4f} | {r['n_fall_trials']} / {r['n_adl_trials']} |"
    )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=Path, default=Path("runs"), help="the runs folder")
    p.add_argument("--figures", type=Path, default=Path("train/figures"), help="PNG output")
    args = p.parse_args(argv)
    runs, fig = args.runs, args.figures
    fig.mkdir(parents=True, exist_ok=True)
    print("| run | macro-F1 | accuracy | windows | per-class F1 |\n|---|---|---|---|---|")
    for name, path in (("default (multi-task)", "default/finetune"), ("12 labels", "hapt12")):
        m = _metrics(runs / path / "checkpoint.pt")
        if m and "activity" in m.get("test", {}):
            print(_activity_row(name, m))
    print("\n| run | trial sensitivity | trial specificity | impact-window sens. | trials F/ADL |")
    print("|---|---|---|---|---|")
    fall_runs = [("default (fixed split)", runs / "default/finetune")]
    fall_runs += [(f.name, f) for f in sorted((runs / "sisfall").glob("fold*"))]
    for name, path in fall_runs:
        m = _metrics(path / "checkpoint.pt")
        if m and "fall" in m.get("test", {}):
            print(_fall_row(name, m))
    curve: dict[str, dict[float, float]] = {}
    print("\n| init | labelled | macro-F1 | train windows |\n|---|---|---|---|")
    for init in ("mae", "scratch"):
        for pct, frac in FRACTIONS.items():
            path = runs / "le" / f"{init}-{pct}" / "checkpoint.pt"
            m = _metrics(path)
            if not m:
                continue
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
            f1 = m["test"]["activity"]["macro_f1"]
            curve.setdefault(init, {})[frac] = f1
            print(f"| {init} | {pct} % | {f1:.4f} | {ckpt['train_windows']} |")
    if curve:
        plot_label_efficiency(curve, fig / "label_efficiency.png", "HAPT 6-class macro-F1")
    copies = {
        "default/pretrain/reconstruction.png": "reconstruction.png",
        "default/pretrain/curves.png": "pretrain_curves.png",
        "default/finetune/curves.png": "finetune_curves.png",
        "default/finetune/confusion_activity.png": "confusion_activity6.png",
        "default/finetune/confusion_fall.png": "confusion_fall.png",
        "hapt12/confusion_activity.png": "confusion_activity12.png",
    }
    for src, dst in copies.items():
        if (runs / src).exists():
            shutil.copyfile(runs / src, fig / dst)


if __name__ == "__main__":
    main()
