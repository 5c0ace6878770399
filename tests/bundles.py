"""The one factory of test bundles: a tiny CNN student (export.student), exported by the real
export path (export.onnx: graph check, contract in the metadata, parity against PyTorch).

It is not a trained model: BatchNorm statistics and weights are random (seeded), so outputs
vary with the input and everything around the model is exercised. Runtime tests that need a
trained model use the shipped one (``gaitedge.engine.DEFAULT_MODEL``) on real data.
"""

from __future__ import annotations

import shutil
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
# Plausible normalisation statistics of the default channels (body acc, gravity, gyro).
NORM_MEAN = (0, 0, 0, 8.0, -1.0, 0.5, 0, 0, 0)
NORM_STD = (1.5,) * 3 + (3.0,) * 3 + (0.5,) * 3

_made: dict[str, Path] = {}  # one export per distinct bundle per test session


def tiny_contract(heads: dict | None = None, chain: ChainConfig | None = None) -> ModelContract:
    """A contract for the tiny student: the default chain (hop 25) unless ``chain`` is given."""
    if chain is None:
        chain = ChainConfig(hop_samples=25).with_normalization(
            np.array(NORM_MEAN), np.array(NORM_STD)
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
        n_channels=contract.chain.n_channels,
        heads=tuple((h, len(c)) for h, c in contract.heads.items()),
    )  # fmt: skip
    model = CNNStudent(cfg)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def make_bundle(
    path: Path,
    windows: np.ndarray | None = None,
    *,
    heads: dict | None = None,
    chain: ChainConfig | None = None,
    seed: int = 0,
) -> Path:
    """Export the tiny student to ``path``; parity is checked on ``windows`` ([K, W, C]
    normalised), or on seeded random ones."""
    contract = tiny_contract(heads, chain)
    if windows is None:
        shape = (8, contract.chain.window_samples, contract.chain.n_channels)
        windows = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    key = f"{contract.to_json()}|{seed}|{windows.shape}|{hash(windows.tobytes())}"
    if key in _made and _made[key].exists():
        shutil.copyfile(_made[key], path)
        return path
    export_onnx(fold_batchnorm(tiny_student(contract, seed)), contract, path, windows)
    _made[key] = path
    return path
