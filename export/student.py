"""The edge student: a small 1-D CNN over chain windows with one softmax head per task.

    [N, W, C] windows -> [N, C, W] -> (Conv1d + BatchNorm + ReLU) x len(widths), strided
    -> global average pool [N, D] -> one Linear head per task -> softmax

Convolutions with folded BatchNorm and ReLU are what INT8 kernels do best (ONNX Runtime fuses
each QDQ Conv + ReLU into one ``QLinearConv``; TensorRT likewise), and the network has no
data-dependent control flow, so it exports to ONNX as is.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@dataclass(frozen=True)
class StudentConfig:
    """Sizes of the student; saved in its checkpoint and in the bundle's ``training`` record."""

    window_samples: int = 128
    n_channels: int = 9
    widths: tuple[int, ...] = (32, 64, 64, 96)
    kernels: tuple[int, ...] = (5, 5, 5, 3)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    dropout: float = 0.1
    # Head name -> number of classes, as (name, n) pairs so the config stays hashable.
    heads: tuple[tuple[str, int], ...] = (("activity", 6), ("fall", 2))

    def __post_init__(self) -> None:
        for name in ("widths", "kernels", "strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        object.__setattr__(self, "heads", tuple((str(h), int(n)) for h, n in self.heads))
        if not len(self.widths) == len(self.kernels) == len(self.strides):
            raise ValueError("widths, kernels and strides need one entry per layer")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["heads"] = [list(h) for h in self.heads]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> StudentConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


STUDENT_PRESETS: dict[str, dict] = {
    # For a microcontroller (issue 21): 247 k MACs, 13.7 k weights (the first layer strided).
    "tiny": dict(widths=(16, 32, 32, 48), kernels=(5, 5, 5, 3), strides=(2, 2, 2, 2)),
    "nano": dict(widths=(16, 32, 32, 48), kernels=(5, 5, 5, 3), strides=(1, 2, 2, 2)),
    "micro": dict(widths=(32, 64, 64, 96), kernels=(5, 5, 5, 3), strides=(1, 2, 2, 2)),
    "mini": dict(widths=(48, 96, 128, 128), kernels=(7, 5, 5, 3), strides=(1, 2, 2, 2)),
}


class CNNStudent(nn.Module):
    """1-D CNN student: [N, W, C] windows -> {head: logits [N, n_classes]}."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = cfg.n_channels
        for width, kernel, stride in zip(cfg.widths, cfg.kernels, cfg.strides, strict=True):
            layers += [
                nn.Conv1d(c_in, width, kernel, stride=stride, padding=kernel // 2, bias=False),
                nn.BatchNorm1d(width),
                nn.ReLU(),
            ]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.heads = nn.ModuleDict({name: nn.Linear(c_in, n) for name, n in cfg.heads})

    @property
    def head_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.cfg.heads)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[N, W, C] -> pooled features [N, D]."""
        return self.features(x.transpose(1, 2)).mean(dim=2)  # [N, D, W'] -> [N, D]

    def classify(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats = self.dropout(self.forward_features(x))
        return {name: head(feats) for name, head in self.heads.items()}


def fold_batchnorm(model: CNNStudent) -> CNNStudent:
    """An eval-mode copy whose Conv1d layers carry their BatchNorm (BN replaced by Identity)."""
    folded = copy.deepcopy(model).eval()
    mods = list(folded.features)
    for i, m in enumerate(mods[:-1]):
        if isinstance(m, nn.Conv1d) and isinstance(mods[i + 1], nn.BatchNorm1d):
            mods[i] = fuse_conv_bn_eval(m, mods[i + 1])
            mods[i + 1] = nn.Identity()
    folded.features = nn.Sequential(*(m for m in mods if not isinstance(m, nn.Identity)))
    return folded


def count_macs(cfg: StudentConfig) -> int:
    """Multiply-accumulates of one window through the student (convolutions and heads)."""
    macs, length, c_in = 0, cfg.window_samples, cfg.n_channels
    for width, kernel, stride in zip(cfg.widths, cfg.kernels, cfg.strides, strict=True):
        length = (length + 2 * (kernel // 2) - kernel) // stride + 1
        macs += length * width * c_in * kernel
        c_in = width
    return macs + sum(c_in * n for _, n in cfg.heads)
