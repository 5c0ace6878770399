"""The shipped model's held-out figures as a device lives them: cold, stored estimate, look-ahead.

    python bench/evaluate_starts.py --json [--out bench/results/evaluate.json]

Scores the bundle (default: the shipped ``gaitedge/models/gaitedge-default.onnx``) on its
held-out subjects through ``gaitedge evaluate``'s own path (the chain, ONNX Runtime, the
bundle's hop; ``gaitedge.evaluate``) under three starts of the automatic mounting:

* ``cold``: what a new device has, nothing: it calibrates online while each recording streams;
  activity windows before it reports calibrated count as no output (``gaitedge evaluate``).
* ``stored``: each recording starts from a stored estimate of its subject's device, calibrated
  on that subject's OTHER recordings (never the one scored), then calibrates online as
  ``listen`` does (``gaitedge evaluate --mount-file``): HAPT, each experiment from the
  subject's other experiment (as the demo plays experiment 18 of subject 9 from experiment 17);
  SisFall, the walking trials (D01-D04) from the subject's other trials and every other trial
  from the subject's walking trials (D01-D04). Scores of the two folds are pooled (confusion
  matrices and trial counts), not averaged.
* ``calibrate_first``: each subject's device calibrated on all of its recordings first
  (look-ahead: no live device can; ``gaitedge evaluate --calibrate-first``), for comparison with
  the figures quoted before issue 22.

``cold`` and ``calibrate_first`` run the ``gaitedge evaluate --json`` command recorded with
them; ``stored`` runs the same scoring functions in-process on each fold's recordings with the
fold's mount file (``gaitedge evaluate`` scores all of a subject's recordings and so cannot
leave the calibrating ones out). MobiFall: ``gaitedge evaluate`` does not score it (its fall
alerts from a cold start are in ``bench/devices.py``).

Last line (and ``--out``): ``{"hapt": {start: {"macro_f1", ...}}, "sisfall": {start:
{"sensitivity", "specificity", ...}}, "model_sha256", "date", "machine", ...}``. README and the
model card quote ``bench/results/evaluate.json`` (``export.model_card.evaluate_results``;
checked by ``tests/test_honest_figures.py``).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaitedge import datasets as ds
from gaitedge.engine import DEFAULT_MODEL, OnnxEngine
from gaitedge.evaluate import EvalOptions, evaluate_hapt, evaluate_sisfall, held_out_subjects
from gaitedge.metrics import accuracy, f1_per_class, macro_f1
from gaitedge.mounting import MountStore

STARTS = ("cold", "stored", "calibrate_first")
STORED_FROM = {
    "hapt": "each experiment from an estimate calibrated on the subject's other experiment(s)",
    "sisfall": "walking trials D01-D04 from an estimate calibrated on the subject's other "
    "trials; every other trial from one calibrated on the subject's D01-D04",
}
SISFALL_WALKING = ("D01", "D02", "D03", "D04")  # walking slowly / quickly, jogging slowly / quickly


def _cli(model: Path, dataset: str, root: Path, extra: list[str]) -> tuple[str, dict]:
    """Run ``gaitedge evaluate --json``; (the command as a user types it, its JSON)."""
    exe = Path(sys.executable).with_name("gaitedge")
    args = ["--dataset", dataset, *extra, "--json"]
    if model.resolve() != DEFAULT_MODEL.resolve():
        args = ["--model", str(model), *args]
    out = subprocess.run(
        [str(exe), "evaluate", *args, "--data-root", str(root)],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode:
        raise SystemExit(f"gaitedge evaluate {' '.join(args)} failed: {out.stderr.strip()}")
    return "gaitedge evaluate " + " ".join(args), json.loads(out.stdout.splitlines()[-1])


def _folds(dataset: str, recs: list) -> list[tuple[list, list]]:
    """[(scored recordings, calibrating recordings)]: every recording is scored once, from an
    estimate calibrated on recordings of the same subject that are not scored in that fold."""
    if dataset == "hapt":
        by_subject: dict[str, list] = {}
        for rec in recs:
            by_subject.setdefault(rec.subject, []).append(rec)
        n = max(len(v) for v in by_subject.values())
        folds = []
        for k in range(n):  # fold k: each subject's k-th experiment, from the others
            scored = [v[k] for v in by_subject.values() if len(v) > k]
            ids, who = {id(r) for r in scored}, {r.subject for r in scored}
            folds.append((scored, [r for r in recs if id(r) not in ids and r.subject in who]))
        return folds
    walking = [r for r in recs if r.activity in SISFALL_WALKING]
    rest = [r for r in recs if r.activity not in SISFALL_WALKING]
    return [(walking, rest), (rest, walking)]


def _stored(engine, dataset: str, recs: list, threshold: float) -> dict:
    """Scores with each fold's stored estimates (one mount file per fold), pooled."""
    auto = engine.contract.chain
    results, calibrated = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (scored, calibrating) in enumerate(_folds(dataset, recs)):
            store = MountStore(Path(tmp) / f"fold{i}.json")
            for subject, est in ds.subject_estimates(auto, calibrating).items():
                store.put(subject, est)
                calibrated.append(bool(est.calibrated))
            store.save()
            options = EvalOptions(dataset, mount_file=str(store.path))
            if dataset == "hapt":
                results.append(evaluate_hapt(engine, scored, None, options=options))
            else:
                results.append(evaluate_sisfall(engine, scored, threshold, options=options))
    pooled = _pool(results)
    pooled["stored_from"] = STORED_FROM[dataset]
    pooled["stored_estimates_calibrated"] = f"{sum(calibrated)} of {len(calibrated)}"
    return pooled


def _pool(results: list[dict]) -> dict:
    """One result from per-fold results: summed confusion matrices and trial counts."""
    first = results[0]
    cm = np.sum([np.asarray(r["confusion"]) for r in results], axis=0)
    out = {
        "n_windows": sum(r["n_windows"] for r in results),
        "macro_f1": round(macro_f1(cm), 4),
        "per_class_f1": dict(
            zip(first["per_class_f1"], np.round(f1_per_class(cm), 4).tolist(), strict=True)
        ),
        "confusion": cm.tolist(),
        "mounting_start": first["mounting_start"],
    }
    if first["head"] == "activity":
        out["accuracy"] = round(accuracy(cm), 4)
        out["windows_held_back"] = sum(r["windows_held_back"] for r in results)
        return out
    for prefix in ("", "peak_window_"):
        # Trial counts back from each fold's rates (4 decimals: exact for < 5000 trials; a
        # fold without falls or without ADLs has a NaN rate and no trials of that kind).
        fall = sum(_count(r[f"{prefix}sensitivity"], r["n_fall_trials"]) for r in results)
        adl = sum(_count(r[f"{prefix}specificity"], r["n_trials"] - r["n_fall_trials"])
                  for r in results)  # fmt: skip
        n_fall = sum(r["n_fall_trials"] for r in results)
        n_adl = sum(r["n_trials"] - r["n_fall_trials"] for r in results)
        out[f"{prefix}sensitivity"] = round(fall / n_fall, 4)
        out[f"{prefix}specificity"] = round(adl / n_adl, 4)
    out["n_trials"] = sum(r["n_trials"] for r in results)
    out["n_fall_trials"] = sum(r["n_fall_trials"] for r in results)
    out["windows_before_calibrated"] = sum(r["windows_before_calibrated"] for r in results)
    return out


def _count(rate: float, n: int) -> int:
    return 0 if n == 0 else round(rate * n)


KEEP = ("macro_f1", "accuracy", "per_class_f1", "sensitivity", "specificity",
        "peak_window_sensitivity", "peak_window_specificity", "n_windows", "n_trials",
        "n_fall_trials", "windows_held_back", "windows_before_calibrated", "mounting_start",
        "stored_from", "stored_estimates_calibrated")  # fmt: skip


def measure(model: Path, root: Path, threshold: float = 0.5) -> dict:
    engine = OnnxEngine(model, provider="cpu")
    report: dict = {}
    for dataset in ("hapt", "sisfall"):
        subjects = held_out_subjects(engine.contract, dataset, root, "test")
        recs = list(ds.recordings(dataset, root, subjects))
        rows: dict = {"subjects": subjects, "n_recordings": len(recs)}
        for start in STARTS:
            t0 = time.perf_counter()
            if start == "stored":
                result = _stored(engine, dataset, recs, threshold)
                result["command"] = (
                    f"gaitedge evaluate --dataset {dataset} --mount-file FOLD.json --json, per "
                    "fold (bench/evaluate_starts.py: the estimate from the subject's other "
                    "recordings)"
                )
            else:
                extra = ["--calibrate-first"] if start == "calibrate_first" else []
                command, result = _cli(model, dataset, root, extra)
                result["command"] = command
            rows[start] = {k: result[k] for k in (*KEEP, "command") if k in result}
            rows[start]["seconds"] = round(time.perf_counter() - t0, 1)
        report[dataset] = rows
    return report | {
        "model": model.name,
        "model_version": engine.contract.model_version,
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "hop_samples": engine.contract.chain.hop_samples,
        "threshold": threshold,
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    p.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = p.parse_args(argv)
    root = args.data_root or ds.default_data_root()
    report = measure(args.model.resolve(), Path(root).resolve(), args.threshold)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        for dataset in ("hapt", "sisfall"):
            for start in STARTS:
                r = report[dataset][start]
                figs = (f"macro-F1 {r['macro_f1']}" if dataset == "hapt"
                        else f"sens {r['sensitivity']} spec {r['specificity']}")  # fmt: skip
                print(f"{dataset:<8} {start:<16} {figs}")


if __name__ == "__main__":
    main()
