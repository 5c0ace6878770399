"""Quantisation: static INT8 in QDQ format, dynamic INT8 and FP16 keep the contract and agree
with FP32 on real windows; the symmetric INT8 and every shipped INT8 bundle follow TensorRT's
QDQ rules."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from export.parity import ArtifactKind, compare_artifacts, real_windows
from export.quantize import (
    QuantScheme,
    convert_fp16,
    op_counts,
    qdq_violations,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from gaitedge.bundle import read_contract
from gaitedge.engine import MODELS_DIR
from tests.bundles import make_bundle, tiny_contract


@pytest.fixture(scope="module")
def windows(hapt_dir) -> np.ndarray:
    return real_windows(tiny_contract(), hapt_dir.parent, n=128, max_subjects=1)


@pytest.fixture(scope="module")
def fp32(tmp_path_factory, windows):
    return make_bundle(tmp_path_factory.mktemp("q") / "fp32.onnx", windows)


def _same_contract(path, fp32_path, artifact):
    got, ref = read_contract(path), read_contract(fp32_path)
    assert got.chain == ref.chain and got.heads == ref.heads
    assert got.training["artifact"] == artifact


@pytest.fixture(scope="module")
def calib(hapt_dir) -> np.ndarray:
    return real_windows(tiny_contract(), hapt_dir.parent, n=128, part="train", max_subjects=1)


@pytest.fixture(scope="module")
def symmetric(fp32, calib, tmp_path_factory):
    return quantize_int8_static(fp32, tmp_path_factory.mktemp("sym") / "int8.onnx", calib)


def test_static_int8_is_qdq_with_float_softmax(fp32, windows, symmetric):
    out = symmetric
    ops = op_counts(out)
    assert ops["QuantizeLinear"] >= 1 and ops["DequantizeLinear"] >= 3
    assert ops["Conv"] == 2 and ops["Softmax"] == 2
    model = onnx.load(str(out))
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    # The first convolution stays float (its weight is a plain initializer); the next is QDQ.
    assert convs[0].input[1] not in producers
    assert producers[convs[1].input[0]] == producers[convs[1].input[1]] == "DequantizeLinear"
    softmax_inputs = {n.input[0] for n in model.graph.node if n.op_type == "Softmax"}
    assert {producers[i] for i in softmax_inputs} != {"QuantizeLinear"}
    _same_contract(out, fp32, "int8-static-qdq-symmetric")
    result = compare_artifacts(fp32, out, windows, ArtifactKind.INT8)
    assert result["argmax_agreement"] >= 0.9 and result["max_abs_diff"] < 0.2


def _qdq_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]


def test_symmetric_int8_follows_tensorrt_qdq_rules(symmetric):
    model = onnx.load(str(symmetric))
    inits = {i.name: i for i in model.graph.initializer}
    zero_points = [inits[n.input[2]] for n in _qdq_nodes(model)]
    assert zero_points and {z.data_type for z in zero_points} == {TensorProto.INT8}
    assert qdq_violations(model) == []


def test_asymmetric_int8_breaks_them_and_the_check_says_where(fp32, calib, tmp_path):
    out = quantize_int8_static(fp32, tmp_path / "a.onnx", calib, scheme=QuantScheme.ASYMMETRIC)
    problems = qdq_violations(onnx.load(str(out)))
    assert any("zero point is UINT8, not INT8" in p for p in problems), problems
    assert any("zero point is INT32, not INT8" in p for p in problems), problems  # int32 bias
    _same_contract(out, fp32, "int8-static-qdq")


def test_qdq_check_catches_a_wrong_weight_axis_and_a_per_channel_activation(symmetric):
    model = onnx.load(str(symmetric))
    inits = {i.name for i in model.graph.initializer}
    weight_dq = next(n for n in _qdq_nodes(model) if n.input[0] in inits)
    axis = next(a for a in weight_dq.attribute if a.name == "axis")
    axis.i = 1
    assert any("per-channel axis 1, output channels at 0" in p for p in qdq_violations(model))
    axis.i = 0
    activation_q = next(n for n in _qdq_nodes(model) if n.op_type == "QuantizeLinear"
                        and n.input[0] not in inits)  # fmt: skip
    activation_q.input[1] = weight_dq.input[1]  # a per-channel scale on an activation
    assert any("activation quantised per channel" in p for p in qdq_violations(model))


SHIPPED_INT8 = [
    p for p in sorted(MODELS_DIR.glob("*.onnx"))
    if any(n.op_type == "QuantizeLinear" for n in onnx.load(str(p)).graph.node)
]  # fmt: skip


def test_a_shipped_int8_bundle_exists():
    assert MODELS_DIR / "gaitedge-default.onnx" in SHIPPED_INT8


@pytest.mark.parametrize("path", SHIPPED_INT8, ids=lambda p: p.name)
def test_shipped_int8_follows_tensorrt_qdq_rules(path):
    assert qdq_violations(onnx.load(str(path))) == []


def test_dynamic_int8_uses_integer_convolutions(fp32, windows, tmp_path):
    out = quantize_int8_dynamic(fp32, tmp_path / "dyn.onnx")
    ops = op_counts(out)
    assert ops.get("ConvInteger", 0) + ops.get("MatMulInteger", 0) >= 1
    _same_contract(out, fp32, "int8-dynamic")
    assert compare_artifacts(fp32, out, windows, ArtifactKind.INT8)["argmax_agreement"] >= 0.9


def test_fp16_keeps_float32_io_and_parity(fp32, windows, tmp_path):
    out = convert_fp16(fp32, tmp_path / "fp16.onnx")
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
    _same_contract(out, fp32, "fp16")
    result = compare_artifacts(fp32, out, windows, ArtifactKind.FP16)
    assert result["ok"], result
