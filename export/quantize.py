"""Quantise an FP32 ONNX bundle: INT8 static (QDQ), INT8 dynamic, FP16.

* **INT8 static, QDQ format** (the one shipped): ``quant_pre_process`` (shape inference and
  graph optimisation: BatchNorm folded, Conv + ReLU fused), then ``quantize_static`` with
  MinMax calibration over real *training* windows from the bundle's own chain (the extremes
  averaged over calibration batches for the symmetric scheme). The default
  :attr:`QuantScheme.SYMMETRIC` is TensorRT's explicit-quantisation form: signed INT8
  activations per tensor and weights per output channel, every zero point 0, biases left float
  (TensorRT's QDQ parser takes no INT32 DequantizeLinear); :func:`qdq_violations` checks it.
  :attr:`QuantScheme.ASYMMETRIC` (UINT8 activations with a zero point) is the earlier form,
  kept for comparison; ONNX Runtime runs both, TensorRT only the first. The first convolution
  stays float (see :func:`quantize_int8_static`). QuantizeLinear/DequantizeLinear pairs around
  each Conv/Gemm are what ONNX Runtime fuses into integer kernels and what TensorRT reads as
  explicit quantisation. The softmax outputs stay float, so probabilities are not rounded.
* **INT8 dynamic** (for comparison): weights INT8, activations quantised per call.
* **FP16**: weights and activations in half precision, float32 input and outputs kept
  (``keep_io_types``) so the contract's input type does not change.

Every output carries the source bundle's contract, with the artifact kind added to its name.

    python -m export.quantize --onnx model.onnx --int8-static model.int8.onnx
"""

from __future__ import annotations

import argparse
import enum
import logging
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from gaitedge.bundle import ModelContract, read_contract
from gaitedge.entry import ScriptError, at_least, run

log = logging.getLogger(__name__)

# Integer kernels exist for these; everything else (Softmax in particular) stays float.
STATIC_OPS = ("Conv", "Gemm", "MatMul", "Relu", "GlobalAveragePool", "ReduceMean", "Transpose")
CALIBRATION_BATCH = 64


class QuantScheme(str, enum.Enum):
    """How activations are mapped to 8 bits (weights are signed, symmetric, per channel in both)."""

    SYMMETRIC = "symmetric"  # int8, zero point 0: TensorRT and ONNX Runtime
    ASYMMETRIC = "asymmetric"  # uint8 with a zero point: ONNX Runtime only


class WindowReader:
    """``CalibrationDataReader`` over [K, W, C] windows, in batches."""

    def __init__(self, windows: np.ndarray, input_name: str, batch: int = CALIBRATION_BATCH):
        self._batches = iter(
            {input_name: np.ascontiguousarray(windows[i : i + batch], dtype=np.float32)}
            for i in range(0, len(windows), batch)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - calibration reads the data once
        raise NotImplementedError


def _finish(path: Path, contract: ModelContract, kind: str) -> Path:
    """Re-attach the contract (tools may drop metadata), check and save in place."""
    from export.onnx import save_bundle

    named = replace(contract, training=contract.training | {"artifact": kind})
    return save_bundle(onnx.load(str(path)), named, path)


def preprocess(fp32: Path, out: Path) -> Path:
    """Shape inference and ORT graph optimisation, as the quantiser expects its input."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=False, auto_merge=True)
    return out


def first_conv(path: Path, input_name: str) -> str:
    """Name of the first Conv node downstream of the graph input."""
    graph = onnx.load(str(path)).graph
    reached, pending = set(), [input_name]
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    while pending:
        for node in consumers.get(pending.pop(0), []):
            if node.op_type == "Conv":
                return node.name
            if node.name not in reached:
                reached.add(node.name)
                pending.extend(node.output)
    raise ValueError(f"{path}: no Conv node after input {input_name!r}")


def quantize_int8_static(
    fp32: Path,
    out: Path,
    calibration: np.ndarray,
    *,
    float_first_layer: bool = True,
    scheme: QuantScheme = QuantScheme.SYMMETRIC,
) -> Path:
    """Static INT8 in QDQ format, calibrated on ``calibration`` windows [K, W, C].

    ``float_first_layer`` keeps the first convolution in float: one 8-bit scale for the whole
    input would have to span the largest body acceleration (falls) and so resolve the gravity
    direction, which separates sitting from standing, too coarsely (measured: HAPT sitting F1
    0.57 with the input quantised vs 0.88 without; the layer is ~5 % of the MACs).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    symmetric = QuantScheme(scheme) is QuantScheme.SYMMETRIC
    extra = {"WeightSymmetric": True}
    if symmetric:
        # Zero point 0 leaves a ReLU output only 7 of the 8 bits, so the range is the mean of
        # the per-batch extremes rather than the single extreme: argmax agreement with FP32 on
        # held-out windows 0.965 -> 0.992 (BENCHMARKS.md, "Symmetric INT8").
        extra |= {"ActivationSymmetric": True, "QuantizeBias": False, "CalibMovingAverage": True}
    contract = read_contract(fp32)
    with tempfile.TemporaryDirectory() as tmp:
        pre = preprocess(fp32, Path(tmp) / "pre.onnx")
        quantize_static(
            str(pre),
            str(out),
            WindowReader(calibration, contract.input_name),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(STATIC_OPS),
            nodes_to_exclude=[first_conv(pre, contract.input_name)] if float_first_layer else [],
            per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options=extra,
        )
    log.info(
        "INT8 static QDQ (%s) -> %s, %d calibration windows", scheme.value, out, len(calibration)
    )
    kind = "int8-static-qdq" + ("-symmetric" if symmetric else "")
    return _finish(out, contract, kind)


def quantize_int8_dynamic(fp32: Path, out: Path) -> Path:
    """Dynamic INT8: INT8 weights, activations quantised at run time."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    contract = read_contract(fp32)
    with tempfile.TemporaryDirectory() as tmp:
        pre = preprocess(fp32, Path(tmp) / "pre.onnx")
        quantize_dynamic(str(pre), str(out), weight_type=QuantType.QInt8, per_channel=True)
    log.info("INT8 dynamic -> %s", out)
    return _finish(out, contract, "int8-dynamic")


def convert_fp16(fp32: Path, out: Path) -> Path:
    """FP16 weights and compute with float32 input/outputs."""
    from onnxconverter_common.float16 import convert_float_to_float16

    contract = read_contract(fp32)
    model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
    onnx.save_model(model, str(out))
    log.info("FP16 -> %s", out)
    return _finish(out, contract, "fp16")


def _weight_axis(consumer: onnx.NodeProto, slot: int) -> int | None:
    """The output-channel axis of a weight fed to ``consumer`` at input ``slot``, else None."""
    if consumer.op_type in ("Conv", "ConvTranspose") and slot == 1:
        return 0 if consumer.op_type == "Conv" else 1
    if consumer.op_type == "Gemm" and slot == 1:
        trans_b = next((a.i for a in consumer.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    if consumer.op_type == "MatMul" and slot == 1:
        return -1
    return None


def qdq_violations(model: onnx.ModelProto) -> list[str]:
    """Where ``model``'s QDQ nodes break TensorRT's explicit-quantisation rules (empty: none).

    Every QuantizeLinear/DequantizeLinear must carry an INT8 zero point that is 0 (a missing
    zero point means UINT8) and a positive float scale; a per-tensor scale on activations; on a
    constant weight feeding Conv/Gemm/MatMul, one scale per output channel along that axis.
    """
    from onnx import TensorProto, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in model.graph.node:
        for slot, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, slot))
    problems = []
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        where = f"{node.op_type} {node.name or node.output[0]!r}"
        if len(node.input) < 3 or node.input[2] not in inits:
            problems.append(f"{where}: no constant zero point (defaults to uint8)")
            continue
        zp = inits[node.input[2]]
        if zp.data_type != TensorProto.INT8:
            dtype = TensorProto.DataType.Name(zp.data_type)
            problems.append(f"{where}: zero point is {dtype}, not INT8")
        elif np.any(numpy_helper.to_array(zp) != 0):
            problems.append(f"{where}: zero point is not 0 (asymmetric)")
        scale = numpy_helper.to_array(inits[node.input[1]]) if node.input[1] in inits else None
        if scale is None or scale.dtype != np.float32 or np.any(scale <= 0):
            problems.append(f"{where}: scale is not a positive float32 constant")
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        source = node.input[0]
        is_weight = source in inits or (
            source in producers and producers[source].op_type == "QuantizeLinear"
            and producers[source].input[0] in inits
        )  # fmt: skip
        if not is_weight:
            if scale.size != 1:
                problems.append(f"{where}: activation quantised per channel, not per tensor")
            continue
        if node.op_type == "QuantizeLinear":
            continue  # a weight's Q is folded by TensorRT; its DQ carries the rules below
        for consumer, slot in consumers.get(node.output[0], []):
            want = _weight_axis(consumer, slot)
            if want is None:
                continue
            dims = list(inits[source].dims) if source in inits else None
            rank = len(dims) if dims else 0
            channels = dims[want] if dims else 0
            if channels > 1 and scale.size != channels:
                problems.append(f"{where}: weight of {consumer.op_type} not per channel")
            elif scale.size > 1 and axis % rank != want % rank:
                problems.append(f"{where}: per-channel axis {axis}, output channels at {want}")
    return problems


def op_counts(path: Path) -> dict[str, int]:
    """Node count per op type (to check what a quantiser produced)."""
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m export.quantize", description=__doc__.split("\n")[0]
    )
    p.add_argument("--onnx", type=Path, required=True, help="FP32 bundle")
    p.add_argument("--int8-static", type=Path, default=None)
    p.add_argument("--int8-dynamic", type=Path, default=None)
    p.add_argument("--fp16", type=Path, default=None)
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--calibration-windows", type=at_least(1), default=1024)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    from export.parity import real_windows

    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.int8_static or args.int8_dynamic or args.fp16):
        raise ScriptError("nothing to write: give --int8-static, --int8-dynamic or --fp16 PATH")
    contract = read_contract(args.onnx)  # a bundle not there or not one: said before any work
    if args.int8_static:
        calib = real_windows(
            contract, args.data_root, n=args.calibration_windows, part="train", max_subjects=8
        )
        quantize_int8_static(args.onnx, args.int8_static, calib)
    if args.int8_dynamic:
        quantize_int8_dynamic(args.onnx, args.int8_dynamic)
    if args.fp16:
        convert_fp16(args.onnx, args.fp16)


if __name__ == "__main__":
    run(main)
