"""Parity and held-out accuracy of every exported artifact, on real windows.

Windows come from the bundle's own chain over real recordings (``gaitedge.datasets``):
held-out subjects for parity and accuracy, training subjects for INT8 calibration. Tolerances:

* PyTorch vs ONNX FP32: max |Δp| ≤ 1e-4 (``export.onnx.FP32_TOLERANCE``);
* FP16 vs FP32: max |Δp| ≤ 1e-2 (half precision keeps ~3 significant digits);
* INT8 vs FP32: argmax agreement ≥ 0.97 on the windows, and held-out macro-F1 within 1 point;
  per-probability differences of a few 1e-2 are expected from 8-bit activations.
* TensorRT engine (FP16 or INT8) vs ONNX Runtime FP32: argmax agreement ≥ 0.99; max |Δp| is
  reported (TensorRT picks its own kernels and precisions per layer).

    python -m export.parity --reference model.onnx --candidate model.int8.onnx
"""

from __future__ import annotations

import argparse
import enum
import json
import logging
from pathlib import Path

import numpy as np

from gaitedge import datasets as ds
from gaitedge.bundle import ModelContract, read_contract
from gaitedge.engine import Engine, OnnxEngine
from gaitedge.entry import at_least, run
from gaitedge.evaluate import EvalOptions, evaluate
from gaitedge.preprocess import run_offline

log = logging.getLogger(__name__)


class ArtifactKind(str, enum.Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"
    TENSORRT = "tensorrt"


# Max |Δp| (FP32, FP16) and minimum argmax agreement against the FP32 reference.
MAX_ABS_DIFF = {ArtifactKind.FP32: 1e-4, ArtifactKind.FP16: 1e-2, ArtifactKind.INT8: 1.0,
                ArtifactKind.TENSORRT: 1.0}  # fmt: skip
MIN_AGREEMENT = {ArtifactKind.FP32: 0.999, ArtifactKind.FP16: 0.99, ArtifactKind.INT8: 0.97,
                 ArtifactKind.TENSORRT: 0.99}  # fmt: skip
MAX_F1_DROP = 0.01


def real_windows(
    contract: ModelContract,
    root: Path | None = None,
    *,
    n: int = 512,
    part: str = "test",
    max_subjects: int = 3,
    seed: int = 0,
) -> np.ndarray:
    """[n, W, C] real windows from the contract's chain: HAPT, plus SisFall for a fall head.

    ``part="test"`` takes held-out subjects (parity), ``"train"`` training subjects
    (calibration). Windows are drawn evenly from each dataset, seeded.
    """
    root = Path(root) if root is not None else ds.default_data_root()
    names = [d for d in ds.DATASETS if ds.DATASET_HEAD[d] in contract.heads] or ["hapt"]
    rng = np.random.default_rng(seed)
    parts = []
    for name in names:
        subjects = list(ds.dataset_split(name, root).subjects(part))
        picked = [subjects[i] for i in rng.permutation(len(subjects))[:max_subjects]]
        windows = [
            run_offline(contract.chain, rec.timestamp_s, rec.imu).data
            for rec in ds.recordings(name, root, picked)
        ]
        data = np.concatenate(windows)
        take = rng.choice(len(data), size=min(len(data), n // len(names)), replace=False)
        parts.append(data[np.sort(take)])
    return np.ascontiguousarray(np.concatenate(parts), dtype=np.float32)


def compare_artifacts(
    reference: Path, candidate: Path, windows: np.ndarray, kind: ArtifactKind
) -> dict:
    """Max |Δp| and argmax agreement of ``candidate`` against ``reference``, per head."""
    return compare_engines(OnnxEngine(reference), OnnxEngine(candidate), windows, kind)


def compare_engines(ref: Engine, cand: Engine, windows: np.ndarray, kind: ArtifactKind) -> dict:
    """:func:`compare_artifacts` for engines already open (ONNX Runtime, TensorRT)."""
    p_ref, p_cand = ref.predict(windows), cand.predict(windows)
    heads = {}
    for head in ref.contract.heads:
        diff = float(np.abs(p_ref[head] - p_cand[head]).max())
        agree = float((p_ref[head].argmax(1) == p_cand[head].argmax(1)).mean())
        heads[head] = {"max_abs_diff": float(f"{diff:.3g}"), "argmax_agreement": round(agree, 4)}
    worst_diff = max(h["max_abs_diff"] for h in heads.values())
    worst_agree = min(h["argmax_agreement"] for h in heads.values())
    return {
        "kind": kind.value,
        "n_windows": len(windows),
        "heads": heads,
        "max_abs_diff": worst_diff,
        "argmax_agreement": worst_agree,
        "tolerance": {"max_abs_diff": MAX_ABS_DIFF[kind], "min_agreement": MIN_AGREEMENT[kind]},
        "ok": worst_diff <= MAX_ABS_DIFF[kind] and worst_agree >= MIN_AGREEMENT[kind],
    }


def held_out_scores(
    path: Path, root: Path | None = None, part: str = "test", calibrate_first: bool = True
) -> dict:
    """Figures of a bundle through ``gaitedge.evaluate`` (no torch): HAPT macro-F1 and SisFall
    macro-F1, sensitivity and specificity, for whichever heads it has, on the subjects of split
    ``part``: ``test`` (held out, for the card) or ``val`` (validation, for choices).

    ``calibrate_first``: each subject's mounting calibrated on its recordings first (the
    artifacts compared on what the network does, as the release table says); False: cold, as
    ``gaitedge evaluate`` does by default (``bench/evaluate_starts.py`` reports every start)."""
    root = Path(root) if root is not None else ds.default_data_root()
    engine = OnnxEngine(path)
    scores = {}
    for name in ds.DATASETS:
        if ds.DATASET_HEAD[name] not in engine.contract.heads:
            continue
        options = EvalOptions(dataset=name, split=part, calibrate_first=calibrate_first)
        res = evaluate(engine, root, options)
        keys = ("macro_f1", "n_windows", "n_classes", "sensitivity", "specificity",
                "peak_window_sensitivity", "peak_window_specificity", "per_class_f1")  # fmt: skip
        scores[name] = {k: res[k] for k in keys if k in res}
    return scores


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.parity", description=__doc__.split("\n")[0])
    p.add_argument("--reference", type=Path, required=True, help="FP32 ONNX bundle")
    p.add_argument("--candidate", type=Path, required=True)
    p.add_argument("--kind", choices=[k.value for k in ArtifactKind], default="int8")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--windows", type=at_least(1), default=1024)
    p.add_argument("--accuracy", action="store_true", help="also score both on held-out data")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    contract = read_contract(args.reference)
    windows = real_windows(contract, args.data_root, n=args.windows)
    result = compare_artifacts(args.reference, args.candidate, windows, ArtifactKind(args.kind))
    if args.accuracy:
        result["reference_scores"] = held_out_scores(args.reference, args.data_root)
        result["candidate_scores"] = held_out_scores(args.candidate, args.data_root)
    print(json.dumps(result))
    if not result["ok"]:
        raise SystemExit(1)


if __name__ == "__main__":
    run(main)
