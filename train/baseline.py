"""The best non-deep baseline: gradient boosting on hand-made window features.

    python -m train.baseline --chain train/chain.json --label-fraction 0.01 --seed 0 \\
        --activity-classes 6 --out runs/le/gbm-1pct-s0

It sees exactly what ``train.finetune`` sees: the windows of ``train.data.prepare`` (same chain,
same subject split), the same label subsets (``finetune.subject_subset`` then
``finetune.label_subset``, same seed), the same class-weight rule (``finetune.class_weights``,
as sample weights) and the one scoring (``train.evaluate.classification_report``). The
hyper-parameters (learning rate, leaf count, leaf size, number of boosting rounds) are chosen
by macro-F1 on the validation subjects alone; the test subjects are scored once, with the
chosen model.

Writes ``result.json`` (the label-efficiency record), ``report.json`` and the confusion matrix
of the test subjects (``train.evaluate.write_report``), and ``search.json`` (every setting
tried with its validation macro-F1).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from gaitedge.alerts import denormalize
from train import options
from train.data import IGNORE, WindowSet
from train.evaluate import classification_report, write_report
from train.finetune import class_weights, label_subset, subject_subset

log = logging.getLogger(__name__)

HEAD = "activity"
PERCENTILES = (10, 25, 50, 75, 90)
# Band edges in Hz: posture (< 0.5), walking cadence (1-3) and its harmonics, up to the chain's
# 20 Hz low-pass; the gravity channels are already below 0.3 Hz.
BAND_EDGES_HZ = (0.0, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 20.0)
# Sensor groups whose axes are correlated and whose magnitude is taken, by channel name prefix.
VECTOR_GROUPS = ("body_acc", "gyro", "acc")


@dataclass(frozen=True)
class BaselineConfig:
    """The hyper-parameter grid searched on the validation subjects.

    Every (learning rate, (max leaf nodes, min samples per leaf)) is boosted for ``max_rounds``
    rounds; the round count is chosen among multiples of ``round_step`` from the staged
    validation predictions (the truncated model is exactly the model boosted that long: no
    early stopping, no subsampling, so boosting is deterministic).
    """

    learning_rates: tuple[float, ...] = (0.05, 0.1)
    # Small trees that may split a few windows (1 % of labels is ~70 windows), larger ones.
    trees: tuple[tuple[int, int], ...] = ((15, 5), (31, 20))
    l2_regularization: float = 1.0
    max_rounds: int = 200
    round_step: int = 10
    # One OpenMP thread: on the shared 2-core sandbox two threads fitted 13x slower (wall)
    # than one (30 rounds on HAPT 100 %: 80 s vs 6 s), the threads spinning at each barrier.
    threads: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def _series_features(x: np.ndarray, rate_hz: float) -> tuple[np.ndarray, list[str]]:
    """Statistics of [K, W, S] series along W -> ([K, S, F], F names)."""
    centred = x - x.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(centred, axis=1)) ** 2 / x.shape[1]  # [K, W//2+1, S]
    freqs = np.fft.rfftfreq(x.shape[1], 1.0 / rate_hz)
    bands = [
        np.log1p(power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1))
        for lo, hi in itertools.pairwise(BAND_EDGES_HZ)
    ]
    stats = [
        x.mean(axis=1),
        x.std(axis=1),
        x.min(axis=1),
        x.max(axis=1),
        *np.percentile(x, PERCENTILES, axis=1),
        (x**2).mean(axis=1),
        np.abs(np.diff(x, axis=1)).mean(axis=1),
        freqs[1:][power[:, 1:].argmax(axis=1)],  # dominant frequency, DC left out
        *bands,
    ]
    names = ["mean", "std", "min", "max", *(f"p{q}" for q in PERCENTILES)]
    names += ["energy", "mean_abs_diff", "dominant_hz"]
    names += [f"band_{lo:g}_{hi:g}hz" for lo, hi in itertools.pairwise(BAND_EDGES_HZ)]
    return np.stack(stats, axis=-1), names


def _axis_correlations(v: np.ndarray) -> np.ndarray:
    """[K, W, 3] -> [K, 3] Pearson correlations of the axis pairs xy, xz, yz (0 if flat)."""
    z = v - v.mean(axis=1, keepdims=True)
    sd = z.std(axis=1)  # [K, 3]
    pairs = [(0, 1), (0, 2), (1, 2)]
    cov = np.stack([(z[..., i] * z[..., j]).mean(axis=1) for i, j in pairs], axis=1)
    denom = np.stack([sd[:, i] * sd[:, j] for i, j in pairs], axis=1)
    return np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 1e-9)


def window_features(
    data: np.ndarray, channels: Sequence[str], rate_hz: float
) -> tuple[np.ndarray, list[str]]:
    """Features of windows [K, W, C] in physical units -> ([K, F] float32, F names).

    Per channel: mean, std, min, max, percentiles, energy, mean absolute difference, dominant
    frequency and band energies. Per 3-axis sensor (body acc, gyro, raw acc; by channel name):
    the axis correlations and the same statistics of its magnitude.
    """
    per_channel, stat_names = _series_features(data, rate_hz)  # [K, C, S]
    blocks = [per_channel.reshape(len(data), -1)]
    names = [f"{c}.{s}" for c in channels for s in stat_names]
    for group in VECTOR_GROUPS:
        axes = [i for i, c in enumerate(channels) if c in {f"{group}_{a}" for a in "xyz"}]
        if len(axes) != 3:
            continue
        v = data[..., axes]  # [K, W, 3]
        blocks.append(_axis_correlations(v))
        names += [f"{group}.corr_{p}" for p in ("xy", "xz", "yz")]
        magnitude, _ = _series_features(np.linalg.norm(v, axis=-1, keepdims=True), rate_hz)
        blocks.append(magnitude[:, 0])
        names += [f"{group}_mag.{s}" for s in stat_names]
    return np.concatenate(blocks, axis=1).astype(np.float32), names


def _labelled(ws: WindowSet) -> WindowSet:
    return ws.take(ws.labels[HEAD] != IGNORE)


def _full_probs(staged: np.ndarray, seen: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities over the seen classes -> [K, n_classes] (classes never seen get 0)."""
    probs = np.zeros((len(staged), n_classes))
    probs[:, seen] = staged
    return probs


def search(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    classes: Sequence[str],
    cfg: BaselineConfig,
    seed: int,
) -> tuple[object, int, list[dict], dict]:
    """Fit every grid setting; (best model, its round count, all trials, the best trial),
    best by validation macro-F1."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    weight = class_weights(y_train, len(classes)).numpy()[y_train]
    trials, best = [], (-1.0, None, 0, {})
    for lr, (leaves, leaf_size) in itertools.product(cfg.learning_rates, cfg.trees):
        clf = HistGradientBoostingClassifier(
            learning_rate=lr,
            max_leaf_nodes=leaves,
            min_samples_leaf=leaf_size,
            l2_regularization=cfg.l2_regularization,
            max_iter=cfg.max_rounds,
            early_stopping=False,
            random_state=seed,
        )
        clf.fit(x_train, y_train, sample_weight=weight)
        scores = {}
        for rounds, staged in enumerate(clf.staged_predict_proba(x_val), start=1):
            if rounds % cfg.round_step == 0 or rounds == clf.n_iter_:
                probs = _full_probs(staged, clf.classes_, len(classes))
                scores[rounds] = classification_report(y_val, probs, classes)["macro_f1"]
        rounds = max(scores, key=lambda r: (scores[r], -r))  # the fewest rounds among ties
        trial = {"learning_rate": lr, "max_leaf_nodes": leaves, "min_samples_leaf": leaf_size}
        trials.append(trial | {"rounds": rounds, "val_macro_f1": round(scores[rounds], 4)})
        log.info("%s: val macro-F1 %.4f", trials[-1], scores[rounds])
        if scores[rounds] > best[0]:
            best = (scores[rounds], clf, rounds, trials[-1])
    return best[1], best[2], trials, best[3]


def predict_probs(clf, x: np.ndarray, rounds: int, n_classes: int) -> np.ndarray:
    """[K, n_classes] probabilities of ``clf`` truncated to its first ``rounds`` rounds."""
    for r, staged in enumerate(clf.staged_predict_proba(x), start=1):
        if r == rounds:
            return _full_probs(staged, clf.classes_, n_classes)
    raise ValueError(f"the model has fewer than {rounds} rounds")


def run(args: argparse.Namespace, cfg: BaselineConfig = BaselineConfig()) -> dict:
    """Prepare, subset, search on validation, score test once; write the outputs."""
    t0 = time.perf_counter()
    if not 0 < args.label_fraction <= 1:
        raise ValueError("--label-fraction must lie in (0, 1]")
    names = [n.strip() for n in args.data.split(",") if n.strip()]
    prepared = options.prepared_data(
        names, options.base_chain(args), args, activity_classes=args.activity_classes
    )
    if prepared.val is None or not (prepared.val.labels[HEAD] != IGNORE).any():
        raise ValueError("the split has no labelled validation windows to choose settings on")
    train = prepared.train
    if args.label_subjects is not None:
        train = subject_subset(train, args.label_subjects, args.seed)
    train = label_subset(train, [HEAD], args.label_fraction, args.seed)
    if len(np.unique(train.labels[HEAD])) < 2:
        raise ValueError("the labelled training windows hold a single class: nothing to learn")
    chain, classes = prepared.chain, prepared.train.classes[HEAD]
    val, test = _labelled(prepared.val), _labelled(prepared.test)

    def features(ws: WindowSet) -> np.ndarray:
        x = denormalize(ws.data, chain)  # features in m/s² and rad/s
        return window_features(x, chain.channels, chain.sample_rate_hz)[0]

    log.info("gbm on %d labelled windows (%d subjects)", len(train), len(set(train.subject)))
    x_val, x_test = features(val), features(test)
    with threadpool_limits(cfg.threads):
        clf, rounds, trials, chosen = search(
            features(train), train.labels[HEAD], x_val, val.labels[HEAD], classes, cfg, args.seed
        )
        val_probs = predict_probs(clf, x_val, rounds, len(classes))
        test_probs = predict_probs(clf, x_test, rounds, len(classes))  # the one look at test
    val_report = classification_report(val.labels[HEAD], val_probs, classes)
    test_report = classification_report(test.labels[HEAD], test_probs, classes)
    result = {
        "init": "gbm",
        "labels": {
            "fraction": args.label_fraction,
            "subjects": args.label_subjects,
            "activity_classes": args.activity_classes,
        },
        "seed": args.seed,
        "val_macro_f1": round(val_report["macro_f1"], 4),
        "test_macro_f1": round(test_report["macro_f1"], 4),
        "train_windows": len(train),
        "per_class_f1": test_report["per_class_f1"],
    }
    out: Path = args.out
    write_report({HEAD: test_report}, out, title="gbm")
    search_record = {
        "grid": cfg.to_dict(),
        "trials": trials,
        "chosen": chosen,
        "label_subjects": sorted(set(train.subject.tolist())),
        "time_s": round(time.perf_counter() - t0, 1),
    }
    (out / "search.json").write_text(json.dumps(search_record, indent=2))
    (out / "result.json").write_text(json.dumps(result, indent=2))
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="hapt", help="datasets with activity labels (default hapt)")
    options.add_label_args(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the label draws and the model")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    options.add_data_args(p)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = parse_args(argv)
    options.setup_logging(args.verbose)
    try:
        result = run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(json.dumps({k: result[k] for k in ("val_macro_f1", "test_macro_f1", "train_windows")}))
    return result


if __name__ == "__main__":
    main()
