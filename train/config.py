"""Training configuration: one frozen dataclass, saved inside every checkpoint."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, fields


class AmpMode(str, enum.Enum):
    """Mixed precision on CUDA; ignored (full float32) on CPU."""

    OFF = "off"
    BF16 = "bf16"
    FP16 = "fp16"


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, schedule and loop settings.

    ``max_steps`` wins over ``epochs`` when given. ``batch_size`` is per process (per GPU).
    """

    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_steps: int = 100
    epochs: float = 10.0
    max_steps: int | None = None
    batch_size: int = 256
    clip_grad_norm: float = 1.0
    seed: int = 0
    amp: AmpMode = AmpMode.BF16
    log_every_steps: int = 20
    checkpoint_every_steps: int = 500
    num_threads: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "amp", AmpMode(self.amp))
        if self.batch_size < 1 or self.lr <= 0 or self.warmup_steps < 0:
            raise ValueError("batch_size >= 1, lr > 0 and warmup_steps >= 0 needed")
        if not self.epochs > 0 or (self.max_steps is not None and self.max_steps < 1):
            # 0 steps read as "no limit" (a full run); -1 epochs as one step
            raise ValueError(
                f"epochs > 0 and max_steps >= 1 needed, not {self.epochs}, {self.max_steps}"
            )

    def to_dict(self) -> dict:
        return asdict(self) | {"amp": self.amp.value}

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
