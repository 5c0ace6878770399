"""Fine-tuning (full or linear probe) of a pretrained MAE encoder, or training from scratch.

    python -m train.finetune --from runs/x/checkpoint.pt --task activity --out runs/y
    python -m train.finetune --task activity,fall --out runs/default/finetune   # both heads

Each window carries a label for at most one head; a head's loss is the class-weighted mean over
the windows labelled for it, so HAPT windows train ``activity`` and SisFall windows ``fall``.
The last step is kept (no checkpoint is picked by a score). At the end the validation subjects
are scored into the checkpoint's ``metrics["val"]`` (what runs and settings are compared on) and
the held-out test subjects into ``metrics["test"]``, ``report.json`` and confusion matrices.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gaitedge.entry import ScriptError, run
from gaitedge.preprocess import ChainConfig
from train.augment import AugmentConfig, Augmenter
from train.data import IGNORE, WindowSet
from train.engine import METRICS_NAME, FitResult, fit, is_main_process
from train.evaluate import (
    choose_fall_threshold,
    evaluate_windows,
    predict_probs,
    subject_windows,
    write_report,
)
from train.model import (
    PRESETS,
    IMUMaskedAutoencoder,
    load_checkpoint,
    preset_config,
    read_checkpoint,
    with_heads,
)
from train.objectives import ClassifierObjective, class_weights
from train.options import (
    add_augment_args,
    add_data_args,
    add_label_args,
    add_train_args,
    augment_config,
    base_chain,
    prepared_data,
    setup_logging,
    train_config,
)
from train.plots import plot_curves

log = logging.getLogger(__name__)

FINETUNE_AUGMENT = AugmentConfig(rotate_max_deg=15.0, scale_fraction=0.1, jitter_std=0.02)
DEFAULT_DATA = {"activity": "hapt", "fall": "sisfall"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_argument_group("model")
    g.add_argument(
        "--from",
        dest="init",
        type=Path,
        default=None,
        help="pretrained checkpoint.pt (default: train from scratch)",
    )
    g.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="tiny",
        help="model size when training from scratch",
    )
    g.add_argument("--patch-samples", type=int, default=4, help="patch size (from scratch)")
    g.add_argument(
        "--task", default="activity", help="heads to train: activity, fall, or activity,fall"
    )
    g.add_argument(
        "--mode",
        choices=["full", "linear"],
        default="full",
        help="full fine-tune, or linear probe on the frozen encoder",
    )
    p.add_argument(
        "--data",
        default=None,
        help="comma-separated datasets (default: hapt for activity, sisfall for fall)",
    )
    add_label_args(p)
    p.add_argument(
        "--fall-threshold",
        default="0.5",
        help="fall probability at which a trial counts as detected, or 'val': the most "
        "specific one that still detects 99 %% of the validation subjects' fall trials",
    )
    p.add_argument(
        "--eval-hop",
        type=int,
        default=None,
        help="score validation and test windows cut at this hop (e.g. 10, the runtime's "
        "streaming hop) instead of the training hop",
    )
    add_data_args(p)
    add_train_args(p, lr=1e-3, epochs=10)
    add_augment_args(p, FINETUNE_AUGMENT)
    return p.parse_args(argv)


def label_subset(ws: WindowSet, heads: Sequence[str], fraction: float, seed: int) -> WindowSet:
    """Windows labelled for some head, keeping ``fraction`` of each (head, class), at least one."""
    rng = np.random.default_rng(seed)
    keep = np.zeros(len(ws), bool)
    for head in heads:
        y = ws.labels[head]
        for c in np.unique(y[y != IGNORE]):
            idx = np.flatnonzero(y == c)
            n = max(1, round(fraction * len(idx)))
            keep[rng.choice(idx, size=n, replace=False)] = True
    return ws.take(keep)


def subject_subset(ws: WindowSet, n_subjects: int, seed: int) -> WindowSet:
    """The windows of ``n_subjects`` subjects drawn (seeded) from those in ``ws``."""
    subjects = sorted(set(ws.subject.tolist()))
    if not 1 <= n_subjects <= len(subjects):
        raise ValueError(f"--label-subjects must lie in 1..{len(subjects)}")
    pick = np.random.default_rng(seed).choice(len(subjects), size=n_subjects, replace=False)
    return ws.take(np.isin(ws.subject, [subjects[i] for i in pick]))


def build_model(
    args: argparse.Namespace, chain: ChainConfig, heads: dict[str, int]
) -> IMUMaskedAutoencoder:
    if args.init is None:
        return IMUMaskedAutoencoder(
            preset_config(
                args.preset,
                window_samples=chain.window_samples,
                n_channels=chain.n_channels,
                patch_samples=args.patch_samples,
                heads=tuple(heads.items()),
            )
        )
    pretrained, _ = load_checkpoint(args.init)
    return with_heads(pretrained, heads)


def freeze(model: IMUMaskedAutoencoder, linear_probe: bool) -> None:
    """The decoder is unused when classifying; a linear probe also freezes the encoder."""
    decoder = [model.decoder_embed, model.decoder_blocks, model.decoder_norm, model.decoder_pred]
    for p in [model.mask_token] + [p for m in decoder for p in m.parameters()]:
        p.requires_grad_(False)
    if linear_probe:
        for p in model.encoder_parameters():
            p.requires_grad_(False)


def initial_chain(args: argparse.Namespace) -> tuple[ChainConfig, dict | None]:
    """The pretrained checkpoint's chain (its normalisation included) or a fresh one."""
    if args.init is None:
        return base_chain(args), None
    ckpt = read_checkpoint(args.init)
    if "chain" not in ckpt or "split" not in ckpt:
        raise ScriptError(f"{args.init}: not a train.pretrain checkpoint (no chain or split)")
    chain = ChainConfig.from_dict(ckpt["chain"])
    if args.hop_samples:
        chain = replace(chain, hop_samples=args.hop_samples)
    return chain, ckpt["split"]


def main(argv: Sequence[str] | None = None) -> FitResult:
    args = parse_args(argv)
    setup_logging(args.verbose)
    torch.set_num_threads(args.threads)
    cfg = train_config(args)
    tasks = [t.strip() for t in args.task.split(",") if t.strip()]
    names = (args.data or ",".join(DEFAULT_DATA[t] for t in tasks)).split(",")
    chain, pretrain_split = initial_chain(args)
    prepared = prepared_data(names, chain, args, activity_classes=args.activity_classes)
    leaked = sorted(set(prepared.split.test) & set((pretrain_split or {}).get("train", [])))
    if leaked:
        log.warning("pretraining saw (unlabelled) windows of %d test subjects", len(leaked))
    train = prepared.train
    if args.label_subjects is not None:
        train = subject_subset(train, args.label_subjects, cfg.seed)
    train = label_subset(train, tasks, args.label_fraction, cfg.seed)
    heads = {t: prepared.train.classes[t] for t in tasks}
    torch.manual_seed(cfg.seed)
    model = build_model(args, prepared.chain, {h: len(c) for h, c in heads.items()})
    freeze(model, args.mode == "linear")
    weights = {h: class_weights(train.labels[h], len(c)) for h, c in heads.items()}
    log.info("fine-tuning %s on %d windows (%s)", tasks, len(train), args.mode)
    augment = augment_config(args)
    meta = {
        "kind": "finetune",
        "chain": prepared.chain.to_dict(),
        "heads": {h: list(c) for h, c in heads.items()},
        "split": prepared.split.to_dict(),
        "datasets": names,
        "augment": augment.to_dict(),
        "init": str(args.init) if args.init else None,
        "mode": args.mode,
        "label_fraction": args.label_fraction,
        "label_subjects": sorted(set(train.subject.tolist())),
        "train_windows": len(train),
        "pretrain_test_overlap": leaked,
    }

    def evaluate() -> dict:
        # Validation figures are the ones to choose runs and settings by; test ones go on the card.
        val_ws, test_ws = prepared.val, prepared.test
        if args.eval_hop:
            chain = replace(prepared.chain, hop_samples=args.eval_hop)
            split = prepared.split
            val_ws, test_ws = (
                subject_windows(names, chain, heads, subjects, args.data_root, args.cache_dir)
                for subjects in (split.val, split.test)
            )
        # One pass of the model over the validation windows serves the threshold and the report.
        val_probs = None
        if val_ws is not None and len(val_ws):
            val_probs = predict_probs(model, val_ws.data)
        threshold = 0.5
        if args.fall_threshold == "val":
            threshold = choose_fall_threshold(model, val_ws, probs=val_probs)
            log.info("fall threshold %.4f, chosen on the validation subjects", threshold)
        elif args.fall_threshold:
            threshold = float(args.fall_threshold)
        val = {}
        if val_probs is not None:
            val = evaluate_windows(model, val_ws, heads, threshold, probs=val_probs)
        report = evaluate_windows(model, test_ws, heads, threshold)
        write_report(report, args.out)
        return {"val": val, "test": report, "eval_hop_samples": args.eval_hop}

    result = fit(
        ClassifierObjective(model, weights),
        torch.from_numpy(train.data),
        {h: torch.from_numpy(train.labels[h]) for h in tasks},
        cfg,
        args.out,
        meta=meta,
        augment=Augmenter(prepared.chain, augment),
        evaluate=evaluate,
        resume=args.resume,
    )
    if is_main_process():
        plot_curves(args.out / METRICS_NAME, args.out / "curves.png")
        for head, r in result.metrics.get("test", {}).items():
            log.info("%s: held-out macro-F1 %.4f", head, r["macro_f1"])
    return result


if __name__ == "__main__":
    run(main)
