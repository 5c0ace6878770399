"""Export a model (MAE teacher or CNN student) to a self-describing ONNX bundle.

The graph takes ``windows`` float32 [batch, W, C] (dynamic batch) and returns one softmax tensor
``<head>_probs`` [batch, n_classes] per head. The bundle's contract
(:class:`gaitedge.bundle.ModelContract`: chain, normalisation, window and hop, class names,
version, training record, metrics) is written into ``metadata_props``. Every export is checked
with ``onnx.checker`` and compared with PyTorch on real windows (:data:`FP32_TOLERANCE`).

    python -m export.onnx --checkpoint runs/default/finetune/checkpoint.pt --out model.onnx
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from gaitedge.bundle import CONTRACT_KEY, ModelContract
from gaitedge.entry import at_least, run
from gaitedge.preprocess import ChainConfig

log = logging.getLogger(__name__)

OPSET = 18
# Max |p_torch - p_onnx| over every probability of every real window: float32 kernels differ in
# summation order, which moves softmax outputs by ~1e-6; 1e-4 still catches any real mismatch.
FP32_TOLERANCE = 1e-4


class ProbabilityWrapper(nn.Module):
    """[N, W, C] windows -> one softmax tensor per head, in ``head_names`` order.

    Wraps any model with ``classify(x) -> {head: logits}`` and ``head_names``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.head_names = tuple(model.head_names)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.model.classify(x)
        return tuple(torch.softmax(logits[name], dim=-1) for name in self.head_names)


@dataclass(frozen=True)
class ParityReport:
    """PyTorch vs ONNX Runtime on the same real windows."""

    n_windows: int
    max_abs_diff: float
    tolerance: float
    argmax_agreement: float

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def to_dict(self) -> dict:
        return {
            "n_windows": self.n_windows,
            "max_abs_diff": float(f"{self.max_abs_diff:.3g}"),
            "tolerance": self.tolerance,
            "argmax_agreement": round(self.argmax_agreement, 6),
        }


class ParityError(RuntimeError):
    """An exported artifact that disagrees with its source beyond the stated tolerance."""


def attach_contract(model: onnx.ModelProto, contract: ModelContract) -> onnx.ModelProto:
    """Write ``contract`` into ``metadata_props`` (replacing an older one) and the doc string."""
    keep = [p for p in model.metadata_props if p.key != CONTRACT_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    model.metadata_props.add(key=CONTRACT_KEY, value=contract.to_json())
    model.doc_string = f"{contract.name} {contract.model_version}: gaitedge IMU model bundle"
    model.producer_name = "gaitedge-export"
    return model


def save_bundle(model: onnx.ModelProto, contract: ModelContract, out: Path) -> Path:
    """Attach the contract, check the graph and save it as one self-contained file."""
    attach_contract(model, contract)
    onnx.checker.check_model(model, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(out))
    return out


def torch_probs(model: nn.Module, windows: np.ndarray, batch: int = 256) -> list[np.ndarray]:
    """Per head [K, n_classes] probabilities from the PyTorch wrapper."""
    outs: list[list[np.ndarray]] = []
    with torch.no_grad():
        for i in range(0, len(windows), batch):
            res = model(torch.from_numpy(np.ascontiguousarray(windows[i : i + batch])))
            outs.append([r.numpy() for r in res])
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]


def onnx_probs(path: Path, windows: np.ndarray, heads: tuple[str, ...]) -> list[np.ndarray]:
    """Per head probabilities from ONNX Runtime (one thread, CPU)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [f"{h}_probs" for h in heads]
    return session.run(names, {"windows": np.ascontiguousarray(windows, dtype=np.float32)})


def compare(
    reference: list[np.ndarray], candidate: list[np.ndarray], tolerance: float
) -> ParityReport:
    """Max abs difference of probabilities and argmax agreement, over all heads."""
    diff = max(float(np.abs(r - c).max()) for r, c in zip(reference, candidate, strict=True))
    agree = np.mean(
        [(r.argmax(1) == c.argmax(1)).mean() for r, c in zip(reference, candidate, strict=True)]
    )
    return ParityReport(len(reference[0]), diff, tolerance, float(agree))


def to_onnx(wrapper: ProbabilityWrapper, contract: ModelContract, opset: int) -> onnx.ModelProto:
    """Trace ``wrapper`` with the torch.export-based exporter; batch is a dynamic dimension."""
    cfg = contract.chain
    example = torch.zeros(2, cfg.window_samples, cfg.n_channels)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.onnx.export(
        wrapper.eval(),
        (example,),
        input_names=[contract.input_name],
        output_names=[contract.output_name(h) for h in wrapper.head_names],
        dynamic_shapes={"x": {0: batch}},
        opset_version=opset,
        dynamo=True,
        optimize=True,
        verbose=False,
    )
    return program.model_proto


def export_onnx(
    model: nn.Module,
    contract: ModelContract,
    out: Path,
    windows: np.ndarray,
    *,
    opset: int = OPSET,
    tolerance: float = FP32_TOLERANCE,
) -> ParityReport:
    """Export ``model`` with its contract to ``out``; check it and compare it with PyTorch.

    Args:
        model: ``classify(x) -> {head: logits}`` with ``head_names`` matching the contract.
        windows: [K, W, C] real normalised windows from the contract's chain.
    Raises:
        ParityError: ONNX Runtime differs from PyTorch by more than ``tolerance``.
    """
    wrapper = ProbabilityWrapper(model).eval()
    if tuple(wrapper.head_names) != tuple(contract.heads):
        raise ValueError(f"model heads {wrapper.head_names} differ from the contract's")
    proto = to_onnx(wrapper, contract, opset)
    save_bundle(proto, contract, out)
    report = compare(
        torch_probs(wrapper, windows), onnx_probs(out, windows, wrapper.head_names), tolerance
    )
    log.info("exported %s: parity vs torch %s", out, report.to_dict())
    if not report.ok:
        raise ParityError(
            f"{out}: ONNX Runtime differs from PyTorch by {report.max_abs_diff:.2e} "
            f"(tolerance {tolerance:.0e})"
        )
    return report


def load_for_export(checkpoint: Path) -> tuple[nn.Module, dict]:
    """(model in eval mode, checkpoint dict) for a student (``export.distill``) or an MAE
    checkpoint (``train``)."""
    from train.model import model_from_checkpoint, read_checkpoint

    ckpt = read_checkpoint(checkpoint)
    if "student_config" in ckpt:
        from export.student import CNNStudent, StudentConfig, fold_batchnorm

        model = CNNStudent(StudentConfig.from_dict(ckpt["student_config"]))
        model.load_state_dict(ckpt["state_dict"])
        return fold_batchnorm(model.eval()), ckpt
    return model_from_checkpoint(ckpt, checkpoint), ckpt  # the file read once


def contract_from_checkpoint(
    ckpt: dict,
    *,
    name: str = "gaitedge-model",
    version: str = "0.0.0",
    hop_samples: int | None = None,
    training: dict | None = None,
    metrics: dict | None = None,
) -> ModelContract:
    """The bundle contract of a checkpoint (chain with its normalisation stats, class names)."""
    chain = ChainConfig.from_dict(dict(ckpt["chain"]))
    if hop_samples is not None:
        chain = replace(chain, hop_samples=hop_samples)
    if chain.norm_mean is None:
        raise ValueError("the checkpoint's chain has no normalisation statistics")
    heads = {h: tuple(c) for h, c in ckpt["heads"].items()}
    record = dict(ckpt.get("training", {})) | dict(training or {})
    record.setdefault("split", ckpt.get("split"))
    return ModelContract(
        chain=chain,
        heads=heads,
        model_version=version,
        name=name,
        training=record,
        metrics=dict(metrics if metrics is not None else ckpt.get("metrics", {})),
    )


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.onnx", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", default="gaitedge-model")
    p.add_argument("--version", default="0.0.0")
    p.add_argument("--hop-samples", type=int, default=None, help="streaming hop for the bundle")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--parity-windows", type=at_least(1), default=512)
    p.add_argument("--opset", type=int, default=OPSET)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from export.parity import real_windows

    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    model, ckpt = load_for_export(args.checkpoint)
    contract = contract_from_checkpoint(
        ckpt, name=args.name, version=args.version, hop_samples=args.hop_samples
    )
    windows = real_windows(contract, args.data_root, n=args.parity_windows)
    report = export_onnx(model, contract, args.out, windows, opset=args.opset)
    print(f"{args.out}: parity vs PyTorch {report.to_dict()}")


if __name__ == "__main__":
    run(main)
