"""Distil the MAE teacher into the small CNN student (``export.student``).

The student learns on every training-subject window of HAPT and SisFall, labelled or not
(transitions, unlabelled stretches, the lying after a fall): the targets are the teacher's
softened probabilities on **both** heads (temperature ``temperature``, KL divergence scaled by
T²), plus, where a window has a label, the class-weighted cross-entropy on it (``hard_weight``).
The teacher sees the clean window; the student a rotated, scaled, jittered copy (the same
``train.augment`` the teacher was fine-tuned with), so it learns orientation robustness against
targets that do not move. Batches draw half HAPT and half SisFall windows, with the rare fall
windows oversampled. Without a teacher (``--teacher`` omitted) it trains on the labels alone.

The loss is ``train.objectives.DistillObjective`` and the loop ``train.engine.fit``, the one
that pretrains and fine-tunes: seeded steps, exact ``--resume`` from ``<out>/checkpoint.pt``,
DDP, AMP, ``metrics.jsonl``; the validation subjects are scored at the end. ``<out>/student.pt``
is the checkpoint ``export.onnx`` and ``export.release`` read.

    python -m export.distill --teacher runs/default/finetune/checkpoint.pt --out runs/student
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.student import STUDENT_PRESETS, CNNStudent, StudentConfig, count_macs
from gaitedge.entry import run
from gaitedge.preprocess import ChainConfig
from train import options
from train.augment import AugmentConfig, Augmenter
from train.config import TrainConfig
from train.data import PreparedData
from train.engine import FitResult, fit, is_main_process
from train.objectives import DistillObjective, class_weights, teacher_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistillConfig:
    """Student size, objective and augmentation; saved in the student checkpoint and the bundle.

    The optimisation (steps, batch, learning rate, schedule, seed) is a ``TrainConfig``
    (``DISTILL_TRAIN`` holds distillation's defaults) for ``train.engine.fit``, the one loop.
    """

    preset: str = "micro"
    temperature: float = 2.0
    # Labels weigh 4x the soft targets: the MAE teacher is weaker than the labels on sitting vs
    # standing (measured: 0.5 gave HAPT macro-F1 0.928, 4.0 gave 0.945; see the model card).
    hard_weight: float = 4.0  # 0 = soft targets only
    fall_oversample: float = 8.0  # sampling weight of a fall-labelled window vs another
    # Sitting and standing differ by a gravity tilt of ~10-20 degrees; 30 blurred them.
    rotate_max_deg: float = 15.0
    scale_fraction: float = 0.1
    jitter_std: float = 0.02
    # Uniform heading about the vertical (180: any); for chains with mounting "vertical".
    spin_deg: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def warmup_steps_for(steps: int) -> int:
    """Distillation warms up over 3 % of its steps (at least one)."""
    return max(1, steps // 33)


# 2500 steps of 256 windows, peak LR 3e-3 decaying to 3e-5, light weight decay (a small model).
DISTILL_TRAIN = TrainConfig(
    lr=3e-3,
    min_lr=3e-5,
    weight_decay=1e-4,
    max_steps=2500,
    warmup_steps=warmup_steps_for(2500),
    batch_size=256,
    log_every_steps=50,
)


def sampling_weights(subject: np.ndarray, fall_label: np.ndarray, oversample: float) -> np.ndarray:
    """[K] probabilities: half the mass on HAPT windows, half on SisFall, fall windows boosted."""
    is_sisfall = np.char.startswith(subject.astype(str), "sisfall:")
    w = np.where(fall_label == 1, oversample, 1.0)
    p = np.zeros(len(subject))
    for part in (is_sisfall, ~is_sisfall):
        if part.any():
            p[part] = w[part] / w[part].sum()
    return p / p.sum()


@torch.no_grad()
def teacher_logits(
    teacher: nn.Module, windows: np.ndarray, heads: tuple[str, ...], batch: int = 512
) -> dict[str, np.ndarray]:
    """{head: [K, n_classes] float32 logits} of the teacher on clean windows."""
    out: dict[str, list[np.ndarray]] = {h: [] for h in heads}
    device = next(teacher.parameters()).device
    t0 = time.perf_counter()
    for i in range(0, len(windows), batch):
        x = torch.from_numpy(np.ascontiguousarray(windows[i : i + batch])).to(device)
        logits = teacher.classify(x)
        for h in heads:
            out[h].append(logits[h].float().cpu().numpy())
    log.info("teacher targets for %d windows in %.0f s", len(windows), time.perf_counter() - t0)
    return {h: np.concatenate(v) for h, v in out.items()}


def train_student(
    cfg: DistillConfig,
    train_cfg: TrainConfig,
    data: PreparedData,
    heads: dict[str, tuple[str, ...]],
    soft_targets: dict[str, np.ndarray] | None,
    out_dir: Path,
    *,
    meta: dict,
    resume: bool = False,
) -> tuple[CNNStudent, FitResult]:
    """Train a student on ``data.train`` through ``train.engine.fit`` (checkpoints in
    ``out_dir``); the validation subjects are scored into the result's ``metrics["val"]``."""
    from train.evaluate import evaluate_windows

    chain, train = data.chain, data.train
    student_cfg = StudentConfig(
        window_samples=chain.window_samples,
        n_channels=chain.n_channels,
        heads=tuple((h, len(c)) for h, c in heads.items()),
        **STUDENT_PRESETS[cfg.preset],
    )
    torch.manual_seed(train_cfg.seed)
    student = CNNStudent(student_cfg)
    augment = Augmenter(
        chain,
        AugmentConfig(
            cfg.rotate_max_deg, cfg.scale_fraction, cfg.jitter_std, spin_deg=cfg.spin_deg
        ),
    )
    labels = {h: train.labels[h] for h in heads}
    weights = {h: class_weights(labels[h], len(c)) for h, c in heads.items()}
    fall = labels.get("fall", np.full(len(train), -1))
    targets = {h: torch.from_numpy(y) for h, y in labels.items()}
    if soft_targets is not None:
        targets |= {teacher_key(h): torch.from_numpy(soft_targets[h]) for h in heads}
    objective = DistillObjective(
        student, weights, temperature=cfg.temperature, hard_weight=cfg.hard_weight
    )
    log.info(
        "student %s: %d parameters, %.2f MFLOPs/window; %d training windows",
        cfg.preset, sum(q.numel() for q in student.parameters()),
        2 * count_macs(student_cfg) / 1e6, len(train),
    )  # fmt: skip

    def evaluate() -> dict:
        if data.val is None or not len(data.val):
            return {}
        return {"val": evaluate_windows(student, data.val, heads)}

    result = fit(
        objective,
        torch.from_numpy(train.data),
        targets,
        train_cfg,
        out_dir,
        meta=meta | {"student_config": student_cfg.to_dict()},
        augment=augment,
        evaluate=evaluate,
        resume=resume,
        sample_weights=sampling_weights(train.subject, fall, cfg.fall_oversample),
    )
    return student.cpu().eval(), result


def save_student(
    path: Path, student: CNNStudent, chain: ChainConfig, heads: dict, meta: dict
) -> Path:
    """A checkpoint ``export.onnx`` reads: config, weights, chain, heads and the record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "student_config": student.cfg.to_dict(),
        "state_dict": student.state_dict(),
        "chain": chain.to_dict(),
        "heads": {h: list(c) for h, c in heads.items()},
    } | meta
    torch.save(ckpt, path)
    return path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.distill", description=__doc__.split("\n")[0])
    p.add_argument("--teacher", type=Path, default=None, help="MAE checkpoint (train/)")
    p.add_argument(
        "--render-rates",
        default="",
        help="also train on the datasets re-rendered at these rates (Hz, comma-separated): "
        "devices at other rates, brought back by the chain",
    )
    options.add_data_args(p)
    d = DISTILL_TRAIN
    options.add_train_args(p, lr=d.lr, epochs=d.epochs)
    # Distillation's defaults; --warmup-steps defaults to 3 % of the steps.
    p.set_defaults(min_lr=d.min_lr, weight_decay=d.weight_decay, max_steps=d.max_steps,
                   warmup_steps=None, log_every=d.log_every_steps)  # fmt: skip
    p.add_argument("--steps", dest="max_steps", type=int, help="same as --max-steps")
    p.add_argument("--num-threads", dest="threads", type=int, help="same as --threads")
    for name, value in DistillConfig().to_dict().items():
        p.add_argument(
            f"--{name.replace('_', '-')}", type=type(value), default=value, help=f"({value})"
        )
    return p.parse_args(argv)


def _load_teacher(path: Path | None) -> tuple[nn.Module | None, dict]:
    if path is None:
        return None, {}
    from train.model import load_checkpoint

    teacher, ckpt = load_checkpoint(path)
    return teacher.eval(), ckpt


def _chain(args: argparse.Namespace, teacher_ckpt: dict) -> ChainConfig:
    """The teacher's chain (its normalisation included), else ``--chain``; ``--hop-samples``."""
    if not teacher_ckpt:
        return options.base_chain(args)
    chain = ChainConfig.from_dict(teacher_ckpt["chain"])
    return replace(chain, hop_samples=args.hop_samples) if args.hop_samples else chain


def main(argv: list[str] | None = None) -> FitResult:
    args = _parse(argv)
    options.setup_logging(args.verbose)
    cfg = DistillConfig(**{k: getattr(args, k) for k in DistillConfig().to_dict()})
    if args.warmup_steps is None:
        args.warmup_steps = warmup_steps_for(args.max_steps)
    train_cfg = options.train_config(args)
    torch.set_num_threads(train_cfg.num_threads)
    teacher, ckpt = _load_teacher(args.teacher)
    # Training windows at the chain's training hop; the bundle's streaming hop is set at export.
    rates = [r.strip() for r in args.render_rates.split(",") if r.strip()]
    names = ["hapt", "sisfall"] + [f"{d}@{r}" for r in rates for d in ("hapt", "sisfall")]
    data = options.prepared_data(names, _chain(args, ckpt), args)
    heads = {h: tuple(c) for h, c in data.train.classes.items()}
    soft = None
    if teacher is not None:
        heads = {h: tuple(c) for h, c in ckpt["heads"].items()}
        device = "cuda" if torch.cuda.is_available() else "cpu"
        soft = teacher_logits(teacher.to(device), data.train.data, tuple(heads))
        del teacher
    meta = {
        "kind": "distill",
        "distill_config": cfg.to_dict(),
        "chain": data.chain.to_dict(),
        "heads": {h: list(c) for h, c in heads.items()},
        "split": data.split.to_dict(),
        "teacher": str(args.teacher) if args.teacher else None,
        "render_rates_hz": [float(r) for r in rates],
        "teacher_model_config": ckpt.get("model_config"),
        "teacher_metrics": ckpt.get("metrics"),
    }
    student, result = train_student(
        cfg, train_cfg, data, heads, soft, args.out, meta=meta, resume=args.resume
    )
    if is_main_process():
        record = meta | {"train_config": train_cfg.to_dict(), "metrics": result.metrics}
        path = save_student(args.out / "student.pt", student, data.chain, heads, record)
        (args.out / "distill_config.json").write_text(json.dumps(record, indent=2, default=str))
        log.info("student checkpoint -> %s; validation %s", path, _val_summary(result.metrics))
    return result


def _val_summary(metrics: dict) -> dict:
    return {h: r.get("macro_f1") for h, r in metrics.get("val", {}).items()}


if __name__ == "__main__":
    run(main)
