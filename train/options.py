"""Command-line options shared by ``train.pretrain`` and ``train.finetune`` (parsing only); their
entry point and number types are ``gaitedge.entry``'s (the export scripts' too)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from gaitedge.entry import at_least, positive
from train.augment import AugmentConfig
from train.config import AmpMode, TrainConfig
from train.data import default_data_root


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data-root",
        type=Path,
        default=default_data_root(),
        help="folder holding hapt/, sisfall/ and recording folders "
        "(default: $GAITEDGE_DATA_ROOT or ../shared/data)",
    )
    g.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("runs/cache"),
        help="where chain windows are cached as .npz (keyed by chain config hash)",
    )
    g.add_argument(
        "--chain",
        type=Path,
        default=None,
        help="chain JSON (e.g. mounting auto, as the shipped bundle); default: ChainConfig()",
    )
    g.add_argument(
        "--hop-samples",
        type=int,
        default=None,
        help="hop between training windows in samples (default: chain default 64)",
    )
    g.add_argument(
        "--sisfall-fold",
        type=int,
        default=None,
        help="SisFall subject fold held out (default: the fixed test subjects)",
    )
    g.add_argument("--folds", type=int, default=5, help="number of SisFall subject folds")


def add_label_args(p: argparse.ArgumentParser) -> None:
    """Which labels a supervised run learns from (train.finetune and train.baseline alike)."""
    g = p.add_argument_group("labels")
    g.add_argument(
        "--activity-classes",
        type=int,
        choices=[6, 12],
        default=6,
        help="HAPT: 6 basic activities or 12 labels with transitions",
    )
    g.add_argument(
        "--label-fraction",
        type=float,
        default=1.0,
        help="fraction of labelled training windows used (stratified by class)",
    )
    g.add_argument(
        "--label-subjects",
        type=int,
        default=None,
        help="use the labels of only this many fitting subjects (seeded draw), all others unused",
    )


def add_train_args(p: argparse.ArgumentParser, *, lr: float, epochs: float) -> None:
    d = TrainConfig()
    g = p.add_argument_group("optimisation")
    g.add_argument("--out", type=Path, required=True, help="output folder (checkpoint, metrics)")
    g.add_argument("--lr", type=positive, default=lr, help="peak learning rate")
    g.add_argument("--min-lr", type=float, default=d.min_lr, help="learning rate at the end")
    g.add_argument("--weight-decay", type=float, default=d.weight_decay, help="AdamW decay")
    g.add_argument("--warmup-steps", type=at_least(0), default=d.warmup_steps, help="linear warmup")
    g.add_argument("--epochs", type=positive, default=epochs, help="passes over the data")
    g.add_argument("--max-steps", type=at_least(1), default=None, help="stop after this many steps")
    g.add_argument(
        "--batch-size", type=at_least(1), default=d.batch_size, help="windows per process"
    )
    g.add_argument("--clip-grad-norm", type=float, default=d.clip_grad_norm, help="max norm")
    g.add_argument("--seed", type=int, default=d.seed, help="seed for order, masks, init")
    g.add_argument(
        "--amp",
        choices=[m.value for m in AmpMode],
        default=d.amp.value,
        help="mixed precision on CUDA (ignored on CPU)",
    )
    g.add_argument("--threads", type=at_least(1), default=d.num_threads, help="torch CPU threads")
    g.add_argument("--log-every", type=at_least(1), default=d.log_every_steps, help="steps per log")
    g.add_argument(
        "--checkpoint-every",
        type=at_least(1),
        default=d.checkpoint_every_steps,
        help="steps between checkpoints",
    )
    g.add_argument("--resume", action="store_true", help="continue from --out/checkpoint.pt")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def add_augment_args(p: argparse.ArgumentParser, defaults: AugmentConfig) -> None:
    g = p.add_argument_group("augmentation (physical units, body and gravity alike)")
    g.add_argument(
        "--rotate-max-deg",
        type=float,
        default=defaults.rotate_max_deg,
        help="random rotation of the sensor frame, max angle in degrees",
    )
    g.add_argument(
        "--scale-fraction",
        type=float,
        default=defaults.scale_fraction,
        help="random amplitude scaling by up to this fraction",
    )
    g.add_argument(
        "--jitter-std",
        type=float,
        default=defaults.jitter_std,
        help="Gaussian jitter in units of the channel std",
    )
    g.add_argument(
        "--time-warp-fraction",
        type=float,
        default=defaults.time_warp_fraction,
        help="smooth random time warp, max local speed change",
    )
    g.add_argument(
        "--mount-prob",
        type=float,
        default=defaults.mount_prob,
        help="probability that a window is turned by a uniformly random rotation instead "
        "(any orientation, as an uncalibrated device; for pretraining)",
    )


def base_chain(args: argparse.Namespace):
    """The chain of ``--chain`` (default ``ChainConfig()``) with ``--hop-samples`` applied."""
    from dataclasses import replace

    from gaitedge.preprocess import ChainConfig

    chain = ChainConfig.from_json(args.chain.read_text()) if args.chain else ChainConfig()
    if args.hop_samples:
        chain = replace(chain, hop_samples=args.hop_samples)
    return chain


def prepared_data(names: list[str], chain, args: argparse.Namespace, **kwargs):
    """``train.data.prepare`` with the data options of :func:`add_data_args`."""
    from train.data import prepare

    return prepare(
        names, chain, args.data_root, args.cache_dir,
        sisfall_fold=args.sisfall_fold, sisfall_folds=args.folds, **kwargs,
    )  # fmt: skip


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        lr=args.lr,
        min_lr=args.min_lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        epochs=args.epochs,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        clip_grad_norm=args.clip_grad_norm,
        seed=args.seed,
        amp=args.amp,
        log_every_steps=args.log_every,
        checkpoint_every_steps=args.checkpoint_every,
        num_threads=args.threads,
    )


def augment_config(args: argparse.Namespace) -> AugmentConfig:
    return AugmentConfig(
        rotate_max_deg=args.rotate_max_deg,
        scale_fraction=args.scale_fraction,
        jitter_std=args.jitter_std,
        time_warp_fraction=args.time_warp_fraction,
        mount_prob=args.mount_prob,
    )


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
