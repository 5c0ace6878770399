"""Small exported bundles for the export, evaluate and info tests (a tiny CNN student)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.onnx import export_onnx
from export.student import CNNStudent, StudentConfig, fold_batchnorm
from gaitedge.bundle import ModelContract
from gaitedge.datasets import FALL_CLASSES, HAPT_BASIC_LABELS
from gaitedge.preprocess import ChainConfig

TINY = StudentConfig(widths=(8, 16), kernels=(5, 3), strides=(2, 2))
HEADS = {"activity": HAPT_BASIC_LABELS, "fall": FALL_CLASSES}


def tiny_contract(heads: dict | None = None, hop_samples: int = 25) -> ModelContract:
    """A contract with plausible normalisation statistics (body acc, gravity, gyro)."""
    chain = ChainConfig(hop_samples=hop_samples).with_normalization(
        np.array([0, 0, 0, 8.0, -1.0, 0.5, 0, 0, 0]), np.array([1.5] * 3 + [3.0] * 3 + [0.5] * 3)
    )
    return ModelContract(
        chain=chain,
        heads=dict(heads or HEADS),
        name="tiny-test",
        model_version="0.0.1",
        training={"datasets": {"hapt": {"test_subjects": ["hapt:2", "hapt:4"]}}},
        metrics={"hapt": {"macro_f1": 0.5}},
    )


def tiny_student(contract: ModelContract, seed: int = 0) -> CNNStudent:
    torch.manual_seed(seed)
    cfg = StudentConfig(
        widths=TINY.widths, kernels=TINY.kernels, strides=TINY.strides,
        heads=tuple((h, len(c)) for h, c in contract.heads.items()),
    )  # fmt: skip
    model = CNNStudent(cfg)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def export_tiny(path: Path, windows: np.ndarray, heads: dict | None = None) -> Path:
    contract = tiny_contract(heads)
    export_onnx(fold_batchnorm(tiny_student(contract)), contract, path, windows)
    return path
