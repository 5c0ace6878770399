"""The one training loop: pretraining, fine-tuning and distillation (``export.distill``).

``fit`` takes an *objective* (``train.objectives``, ``train.pretrain.MAEObjective``): an
``nn.Module`` whose ``forward(x, **targets)`` returns ``(loss, metrics)``, so
DistributedDataParallel wraps the whole loss computation. Everything random in a step
(augmentation, masking, dropout, a weighted draw of the batch) is seeded from
``(seed, step, rank)`` and the window order from ``(seed, epoch)``, so a resumed run repeats the
uninterrupted one exactly.

Under ``torchrun`` (``WORLD_SIZE`` > 1) the objective is wrapped in DDP and a
``DistributedSampler`` deals each process its share of every epoch; only rank 0 writes files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

# Before any process group exists: DDP's first use imports torch.distributed.nn, whose functions
# take ``group=group.WORLD`` as a default argument, evaluated at import. Imported after init,
# ten defaults pin the world group for the life of the process, so destroy_process_group()
# left gloo's three threads running into interpreter shutdown, where a rank aborted ("terminate
# called without an active exception", CI of stop 35) as its peer exited. Imported here, first,
# the defaults are None.
import torch.distributed.nn
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from train.config import AmpMode, TrainConfig

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the batch."""


def lr_at(
    step: int, *, base_lr: float, min_lr: float, warmup_steps: int, total_steps: int
) -> float:
    """Linear warmup from 0 to ``base_lr``, then cosine decay to ``min_lr`` at ``total_steps``.

    Not ``torch.optim.lr_scheduler``: the same schedule as SequentialLR(LinearLR,
    CosineAnnealingLR) agrees to 6e-15 (bench/libraries.py), but a pure function of the step
    needs no scheduler state in the checkpoint, resumes bit-identically at any step, and is what
    the plots and the house style (nanoGPT's ``get_lr``) use.
    """
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_lr + 0.5 * (base_lr - min_lr) * (1 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class Dist:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank = dist.get_rank() if dist.is_initialized() else 0
    return Dist(rank=rank, world_size=world, device=device)


def is_main_process() -> bool:
    """True outside a distributed run and on rank 0 inside one."""
    return int(os.environ.get("RANK", "0")) == 0


def step_seed(seed: int, step: int, rank: int) -> int:
    return (seed * 1_000_003 + step * 1009 + rank) % (2**63)


def parameter_digest(model: nn.Module) -> str:
    """A hash of every parameter's bytes: equal on all ranks when DDP kept them in sync."""
    h = hashlib.sha1()
    for p in model.state_dict().values():
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass
class FitResult:
    step: int
    history: list[dict]
    metrics: dict


class _Batches:
    """Window indices for a step: epoch order from (seed, epoch), this rank's share."""

    def __init__(self, n_windows: int, batch_size: int, seed: int, ctx: Dist) -> None:
        self.sampler = DistributedSampler(
            range(n_windows),
            num_replicas=ctx.world_size,
            rank=ctx.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        self.batch_size = batch_size
        self.steps_per_epoch = max(1, len(self.sampler) // batch_size)
        self._epoch, self._order = -1, np.zeros(0, np.int64)

    def indices(self, step: int) -> tuple[int, int, np.ndarray]:
        epoch, batch = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._order = epoch, np.fromiter(iter(self.sampler), np.int64)
        b = self.batch_size
        return epoch, batch, self._order[batch * b : (batch + 1) * b]


class _WeightedBatches:
    """Window indices for a step drawn with replacement by ``weights`` [K] (probabilities).

    Each step's draw comes from a generator seeded by (seed, step, rank), so a resumed run draws
    the same batches; an "epoch" is ``K`` windows' worth of steps over all ranks.
    """

    def __init__(self, weights: np.ndarray, batch_size: int, seed: int, ctx: Dist) -> None:
        p = np.asarray(weights, np.float64)
        if p.ndim != 1 or (p < 0).any() or not p.sum() > 0:
            raise ValueError("sampling weights must be one non-negative number per window")
        self.p = p / p.sum()
        self.batch_size, self.seed, self.rank = batch_size, seed, ctx.rank
        self.steps_per_epoch = max(1, len(p) // (batch_size * ctx.world_size))

    def indices(self, step: int) -> tuple[int, int, np.ndarray]:
        epoch, batch = divmod(step, self.steps_per_epoch)
        rng = np.random.default_rng(step_seed(self.seed, step, self.rank))
        return epoch, batch, rng.choice(len(self.p), size=self.batch_size, p=self.p)


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; biases, norms and embeddings (parameters with < 2 dims) get no weight decay."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95))


def _autocast(cfg: TrainConfig, device: torch.device):
    if device.type != "cuda" or cfg.amp is AmpMode.OFF:
        return nullcontext()
    dtype = torch.bfloat16 if cfg.amp is AmpMode.BF16 else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def fit(
    objective: nn.Module,
    data: torch.Tensor,
    targets: dict[str, torch.Tensor],
    cfg: TrainConfig,
    out_dir: Path,
    *,
    meta: dict,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    evaluate: Callable[[], dict] | None = None,
    resume: bool = False,
    sample_weights: np.ndarray | None = None,
) -> FitResult:
    """Train ``objective`` on windows ``data`` [K, W, C] with per-window ``targets`` [K, ...].

    Args:
        objective: module with ``.model`` (the network saved in checkpoints) whose forward
            ``(x, **targets)`` returns ``(loss, metrics)``.
        meta: stored in the checkpoint beside the weights (``chain``, ``heads``, ``split``...).
        augment: applied to each batch before the objective.
        evaluate: called on rank 0 after training; its dict goes to the checkpoint ``metrics``.
        resume: continue from ``out_dir/checkpoint.pt`` if it exists.
        sample_weights: [K] relative probabilities: batches are drawn with replacement by them
            (seeded per step) instead of epochs of shuffled windows.
    """
    torch.set_num_threads(cfg.num_threads)
    ctx = setup_distributed()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    objective.to(ctx.device)
    model = objective.model
    optimizer = build_optimizer(objective, cfg)
    scaler = torch.amp.GradScaler(
        "cuda", enabled=ctx.device.type == "cuda" and cfg.amp is AmpMode.FP16
    )
    if sample_weights is None:
        batches = _Batches(len(data), cfg.batch_size, cfg.seed, ctx)
    elif len(sample_weights) != len(data):
        raise ValueError(f"{len(sample_weights)} sampling weights for {len(data)} windows")
    else:
        batches = _WeightedBatches(sample_weights, cfg.batch_size, cfg.seed, ctx)
    total = cfg.max_steps or max(1, round(cfg.epochs * batches.steps_per_epoch))
    start = _maybe_resume(out_dir, model, optimizer, scaler) if resume else 0
    runner = objective
    if ctx.world_size > 1:
        runner = nn.parallel.DistributedDataParallel(objective, find_unused_parameters=True)
    history: list[dict] = []
    log_file = (out_dir / METRICS_NAME).open("a") if ctx.is_main else None
    t0 = time.perf_counter()
    with _Progress(ctx.is_main, total, start) as advance:
        for step in range(start, total):
            record = _train_step(
                runner, optimizer, scaler, data, targets, batches, step, total, cfg, ctx, augment
            )
            advance(record["loss"])
            if ctx.is_main and (step % cfg.log_every_steps == 0 or step == total - 1):
                record["time_s"] = round(time.perf_counter() - t0, 3)
                history.append(record)
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
            if ctx.is_main and (step + 1) % cfg.checkpoint_every_steps == 0 and step + 1 < total:
                save_checkpoint(out_dir, model, optimizer, scaler, step + 1, cfg, meta, {})
    metrics = {"train_loss": history[-1]["loss"] if history else None, "steps": total}
    metrics["train_time_s"] = round(time.perf_counter() - t0, 2)
    if ctx.device.type == "cuda":  # this process's peak, for the recipe's record (train/recipe.sh)
        metrics["peak_cuda_memory_mb"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**20)
    metrics |= _rank_digests(model, ctx)
    if ctx.is_main:
        if evaluate is not None:
            model.eval()
            metrics |= evaluate()
        save_checkpoint(out_dir, model, optimizer, scaler, total, cfg, meta, metrics)
        log_file.write(json.dumps({"step": total, "final": metrics}) + "\n")
        log_file.close()
    if ctx.world_size > 1:
        del runner  # DDP holds the group: released first, the group ends in destroy
        leave_distributed()
    return FitResult(step=total, history=history, metrics=metrics)


def leave_distributed() -> None:
    """Leave the process group together, after rank 0 has saved, and end its threads now.

    A rank that reaches interpreter shutdown with the group alive can abort in gloo's threads
    ("terminate called without an active exception") as its peer exits; destroyed here, with
    nothing else holding it (see the import of ``torch.distributed.nn``), the group joins its
    threads before ``fit`` returns.
    """
    dist.barrier()
    dist.destroy_process_group()


def _train_step(
    runner: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    data: torch.Tensor,
    targets: dict[str, torch.Tensor],
    batches: _Batches | _WeightedBatches,
    step: int,
    total: int,
    cfg: TrainConfig,
    ctx: Dist,
    augment: Callable[[torch.Tensor], torch.Tensor] | None,
) -> dict:
    torch.manual_seed(step_seed(cfg.seed, step, ctx.rank))
    epoch, batch, idx = batches.indices(step)
    lr = lr_at(
        step, base_lr=cfg.lr, min_lr=cfg.min_lr, warmup_steps=cfg.warmup_steps, total_steps=total
    )
    for group in optimizer.param_groups:
        group["lr"] = lr
    index = torch.from_numpy(idx)
    x = data[index].to(ctx.device, non_blocking=True)  # [B, W, C]
    tb = {k: v[index].to(ctx.device, non_blocking=True) for k, v in targets.items()}
    if augment is not None:
        x = augment(x)
    runner.train()
    with _autocast(cfg, ctx.device):
        loss, metrics = runner(x, **tb)
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"non-finite loss {loss.item()} at step {step} (epoch {epoch}, batch {batch}, "
            f"rank {ctx.rank}, windows {idx[:8].tolist()}...)"
        )
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(runner.parameters(), cfg.clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    record = {"step": step, "epoch": epoch, "lr": lr, "loss": float(loss.detach())}
    record["grad_norm"] = float(grad_norm)
    return record | {k: float(v) for k, v in metrics.items()}


class _Progress:
    """A rich progress bar on the main process; a no-op elsewhere or when disabled."""

    def __init__(self, enabled: bool, total: int, start: int) -> None:
        self.enabled = enabled and os.environ.get("GAITEDGE_NO_PROGRESS") != "1"
        self.total, self.start = total, start

    def __enter__(self) -> Callable[[float], None]:
        if not self.enabled:
            return lambda loss: None
        from rich.progress import Progress

        self.bar = Progress(transient=False)
        self.bar.start()
        task = self.bar.add_task("training", total=self.total, completed=self.start)
        return lambda loss: self.bar.update(
            task, advance=1, description=f"training loss {loss:.4f}"
        )

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self.bar.stop()


def _rank_digests(model: nn.Module, ctx: Dist) -> dict:
    if ctx.world_size == 1:
        return {}
    digests: list[str | None] = [None] * ctx.world_size
    dist.all_gather_object(digests, parameter_digest(model))
    if len(set(digests)) != 1:
        log.error("ranks disagree on the parameters: %s", digests)
    return {"rank_parameter_digests": digests, "world_size": ctx.world_size}


def save_checkpoint(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    step: int,
    cfg: TrainConfig,
    meta: dict,
    metrics: dict,
) -> Path:
    """Write ``checkpoint.pt`` atomically: weights, configs, metrics and the optimiser state."""
    ckpt = {
        "model_config": model.cfg.to_dict(),
        "state_dict": model.state_dict(),
        "train_config": cfg.to_dict(),
        "metrics": metrics,
        "step": step,
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "torch_version": torch.__version__,
    } | meta
    path = Path(out_dir) / CHECKPOINT_NAME
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(path)
    return path


def _maybe_resume(
    out_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler
) -> int:
    path = out_dir / CHECKPOINT_NAME
    if not path.exists():
        log.info("no checkpoint in %s; starting from step 0", out_dir)
        return 0
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["state_dict"])
    optimizer.load_state_dict(ckpt["optimizer"])
    scaler.load_state_dict(ckpt["scaler"])
    log.info("resumed from %s at step %d", path, ckpt["step"])
    return int(ckpt["step"])
