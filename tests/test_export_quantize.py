"""Quantisation: static INT8 in QDQ format, dynamic INT8 and FP16 keep the contract and agree
with FP32 on real windows."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from export.parity import ArtifactKind, compare_artifacts, real_windows
from export.quantize import convert_fp16, op_counts, quantize_int8_dynamic, quantize_int8_static
from gaitedge.bundle import read_contract
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


def test_static_int8_is_qdq_with_float_softmax(fp32, windows, tmp_path, hapt_dir):
    calib = real_windows(tiny_contract(), hapt_dir.parent, n=128, part="train", max_subjects=1)
    out = quantize_int8_static(fp32, tmp_path / "int8.onnx", calib)
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
    _same_contract(out, fp32, "int8-static-qdq")
    result = compare_artifacts(fp32, out, windows, ArtifactKind.INT8)
    assert result["argmax_agreement"] >= 0.9 and result["max_abs_diff"] < 0.2


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
