"""Masked-autoencoder pretraining on IMU windows from the runtime's signal chain.

    python -m train.pretrain --preset tiny --data hapt,sisfall --out runs/x

Trains on every window (labelled or not) of the training subjects only; the held-out subjects'
windows give the test reconstruction loss and the reconstruction figure.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gaitedge.entry import run
from gaitedge.preprocess import DEFAULT_CHANNELS, ChainConfig
from train import options
from train.augment import AugmentConfig, Augmenter
from train.data import PreparedData
from train.engine import METRICS_NAME, FitResult, fit, is_main_process
from train.model import (
    PRESETS,
    IMUMaskedAutoencoder,
    MaskMode,
    ModelConfig,
    PosEmbed,
    Target,
    TokenMode,
    preset_config,
)
from train.plots import plot_curves, plot_reconstruction

log = logging.getLogger(__name__)

# Mild by default: MAE learns the signal's structure; heavy rotation is for fine-tuning.
PRETRAIN_AUGMENT = AugmentConfig(rotate_max_deg=15.0, scale_fraction=0.1)


class MAEObjective(nn.Module):
    """Reconstruction loss of the masked patches (for ``train.engine.fit``)."""

    def __init__(self, model: IMUMaskedAutoencoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, _, _ = self.model(x)
        return loss, {}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = p.add_argument_group("model")
    g.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="model size")
    g.add_argument("--patch-samples", type=int, default=4, help="samples per patch token")
    g.add_argument("--mask-ratio", type=float, default=0.75, help="fraction masked")
    g.add_argument(
        "--mask-mode",
        choices=[m.value for m in MaskMode],
        default="random",
        help="random patches, contiguous spans, or whole sensor channels",
    )
    g.add_argument(
        "--pos-embed",
        choices=[m.value for m in PosEmbed],
        default="sinusoidal",
        help="time embedding of the patch tokens",
    )
    g.add_argument(
        "--token-mode",
        choices=[m.value for m in TokenMode],
        default="mixed",
        help="one token per patch (all channels) or per patch and sensor (body acc, gravity, gyro)",
    )
    g.add_argument(
        "--target",
        choices=[m.value for m in Target],
        default="chain",
        help="reconstruct the chain channels or the raw acc (body + gravity) and gyro",
    )
    g.add_argument(
        "--gravity-loss",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score gravity in the loss (chain target; default: on for mixed, off for sensor)",
    )
    p.add_argument(
        "--data",
        default="hapt,sisfall",
        help="comma-separated datasets: hapt, sisfall, mobifall, any of them re-rendered at "
        "another rate (hapt@20), or folders under --data-root",
    )
    options.add_data_args(p)
    options.add_train_args(p, lr=1.5e-3, epochs=10)
    options.add_augment_args(p, PRETRAIN_AUGMENT)
    return p.parse_args(argv)


def model_config(args: argparse.Namespace, chain: ChainConfig) -> ModelConfig:
    """The MAE of the model options for windows of ``chain`` (normalised: ``raw`` undoes it)."""
    token_mode, target = TokenMode(args.token_mode), Target(args.target)
    gravity_loss = args.gravity_loss
    if gravity_loss is None:  # a sensor token of gravity is a copy task (train.model docstring)
        gravity_loss = token_mode is TokenMode.MIXED or target is Target.RAW
    raw = target is Target.RAW
    return preset_config(
        args.preset,
        window_samples=chain.window_samples,
        n_channels=chain.n_channels,
        patch_samples=args.patch_samples,
        mask_ratio=args.mask_ratio,
        mask_mode=args.mask_mode,
        pos_embed=args.pos_embed,
        token_mode=token_mode,
        target=target,
        gravity_loss=gravity_loss,
        norm_mean=chain.norm_mean if raw else None,
        norm_std=chain.norm_std if raw else None,
    )


def check_channels(args: argparse.Namespace, chain: ChainConfig) -> None:
    """Fail before loading data where a model option needs the default body acc / gravity /
    gyro channels and the chain has others."""
    layout = args.token_mode != "mixed" or args.target != "chain" or args.gravity_loss is False
    if layout and chain.channels != DEFAULT_CHANNELS:
        raise SystemExit(
            "pretrain: --token-mode sensor, --target raw and --no-gravity-loss need the chain "
            f"channels {','.join(DEFAULT_CHANNELS)}, not {','.join(chain.channels)}"
        )


def test_reconstruction(
    model: IMUMaskedAutoencoder, prepared: PreparedData, out_dir: Path, seed: int
) -> dict:
    """Masked-reconstruction loss on held-out windows, and the figure of one of them."""
    test = prepared.test.data
    if not len(test):
        return {}
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(test), size=min(2048, len(test)), replace=False))
    x = torch.from_numpy(test[pick])
    torch.manual_seed(seed)
    with torch.no_grad():
        losses = [model(x[i : i + 512])[0].item() for i in range(0, len(x), 512)]
        # A window of typical activity (70th percentile of its spread) makes a readable figure.
        spread = x.std(dim=(1, 2))
        k = int(torch.argsort(spread)[int(0.7 * (len(spread) - 1))])
        _, pred, mask = model(x[k : k + 1])
    plot_reconstruction(
        model.reconstruction_target(x[k : k + 1])[0].numpy(),
        pred[0].numpy(),
        mask[0].numpy(),
        model.cfg.target_channels(prepared.chain.channels),
        out_dir / "reconstruction.png",
        prepared.chain.sample_rate_hz,
    )
    return {"test_reconstruction_loss": float(np.mean(losses)), "test_windows": len(pick)}


def log_corpus(corpus: dict) -> None:
    """The pretraining corpus in hours and subjects, per dataset and in total."""
    for row in corpus["datasets"]:
        log.info(
            "corpus %s: %.2f h, %d subjects (%d new), %d recordings, %d windows",
            row["name"], row["hours"], row["subjects"], row["new_subjects"],
            row["recordings"], row["windows"],
        )  # fmt: skip
    log.info(
        "pretraining corpus: %.2f h of %d subjects (fitting subjects only; a re-rendered copy "
        "adds hours, not subjects)", corpus["hours"], corpus["subjects"],
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> FitResult:
    args = parse_args(argv)
    options.setup_logging(args.verbose)
    torch.set_num_threads(args.threads)
    cfg = options.train_config(args)
    chain = options.base_chain(args)
    check_channels(args, chain)
    names = [n.strip() for n in args.data.split(",") if n.strip()]
    prepared = options.prepared_data(names, chain, args)
    log_corpus(prepared.corpus)
    torch.manual_seed(cfg.seed)
    model = IMUMaskedAutoencoder(model_config(args, prepared.chain))
    augment = options.augment_config(args)
    meta = {
        "kind": "pretrain",
        "preset": args.preset,
        "chain": prepared.chain.to_dict(),
        "heads": {},
        "split": prepared.split.to_dict(),
        "datasets": names,
        "corpus": prepared.corpus,
        "augment": augment.to_dict(),
    }
    result = fit(
        MAEObjective(model),
        torch.from_numpy(prepared.train.data),
        {},
        cfg,
        args.out,
        meta=meta,
        augment=Augmenter(prepared.chain, augment),
        evaluate=lambda: test_reconstruction(model, prepared, args.out, cfg.seed),
        resume=args.resume,
    )
    if is_main_process():
        plot_curves(args.out / METRICS_NAME, args.out / "curves.png")
    log.info("pretraining done: %s", {k: v for k, v in result.metrics.items()})
    return result


if __name__ == "__main__":
    run(main)
