"""Read a bundle's INT8 QDQ graph into the few layers the C network runs, with ONNX Runtime's
integer arithmetic made explicit.

The shipped INT8 bundle (``export.quantize``, symmetric scheme) is, after the input transpose:

    Conv (float, the first layer) -> Relu -> Q
    { DQ -> Conv (int8 weights per channel) -> Q -> DQ -> Relu -> Q } x 3
    DQ -> ReduceMean (time) -> Q -> DQ -> { Gemm (int8 weights) -> Q -> DQ -> Softmax } per head

What ONNX Runtime (1.17+ on the CPU) executes for it, and so what the C code reproduces:

* Float biases of a Conv/Gemm fed by two DequantizeLinear nodes are quantised by ORT's
  ``BiasQuantization`` transformer: ``scale = x_scale * w_scale`` and ``round(bias / scale)``
  (float32, half to even) as int32. The int8 Convs then fuse into QLinearConv: int32
  accumulation plus that bias, requantised as ``float(acc) * (x_scale * w_scale / y_scale)``,
  rounded half to even (MLAS ``MlasRequantizeOutput``).
* DQ -> Relu -> Q with the same scale on both sides is ``max(q, 0)``, exactly.
* The float first Conv, the ReduceMean and the Gemm heads stay float (MLAS SGEMM: a fused
  multiply-add chain along K; Eigen's packet sum for the mean); QuantizeLinear is
  ``round_half_even(x / scale)`` saturated to int8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from gaitedge.bundle import ModelContract, read_contract


class GraphError(ValueError):
    """A graph this generator cannot turn into C (an op or pattern it does not know)."""


@dataclass(frozen=True)
class FloatConv:
    """The float first layer: [T, C] float -> [T', O] int8 at ``out_scale``."""

    weight: np.ndarray  # [O, C, K] float32
    bias: np.ndarray  # [O] float32
    stride: int
    pad: int
    relu: bool
    out_scale: np.float32


@dataclass(frozen=True)
class Int8Conv:
    """QLinearConv: [T, C] int8 -> [T', O] int8, int32 accumulators."""

    weight: np.ndarray  # [O, C, K] int8
    bias: np.ndarray  # [O] int32 (ORT's BiasQuantization)
    requant: np.ndarray  # [O] float32: x_scale * w_scale / y_scale
    stride: int
    pad: int
    relu: bool
    in_scale: np.float32
    out_scale: np.float32


@dataclass(frozen=True)
class MeanPool:
    """ReduceMean over time of the int8 activations, requantised to ``out_scale``."""

    in_scale: np.float32
    out_scale: np.float32


@dataclass(frozen=True)
class Head:
    """Gemm (transB) over the pooled features -> int8 logits -> softmax probabilities."""

    name: str
    output: str  # the ONNX output holding the probabilities
    logits: str  # the ONNX tensor holding the int8 logits (QuantizeLinear output)
    weight: np.ndarray  # [N, K] int8
    w_scale: np.ndarray  # [N] float32
    bias: np.ndarray  # [N] int32
    bias_scale: np.ndarray  # [N] float32: in_scale * w_scale
    in_scale: np.float32
    out_scale: np.float32


@dataclass(frozen=True)
class QuantNet:
    contract: ModelContract
    first: FloatConv
    convs: tuple[Int8Conv, ...]
    pool: MeanPool
    heads: tuple[Head, ...]

    @property
    def macs(self) -> int:
        """Multiply-accumulates per window (convolutions and heads)."""
        t = self.contract.chain.window_samples
        total = 0
        for layer in (self.first, *self.convs):
            o, c, k = layer.weight.shape
            t = (t + 2 * layer.pad - k) // layer.stride + 1
            total += t * o * c * k
        return total + sum(h.weight.size for h in self.heads)


def quantize_bias(bias: np.ndarray, x_scale: np.float32, w_scale: np.ndarray):
    """ORT's BiasQuantization: (int32 bias, float32 scale) with ``scale = x_scale * w_scale``."""
    scale = (np.float32(x_scale) * w_scale.astype(np.float32)).astype(np.float32)
    q = np.round((bias.astype(np.float32) / scale).astype(np.float32))  # half to even
    return q.astype(np.int32), scale


class _Graph:
    def __init__(self, model: onnx.ModelProto) -> None:
        self.inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in model.graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.outputs = {o.name for o in model.graph.output}

    def attrs(self, node: onnx.NodeProto) -> dict:
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def only(self, tensor: str, op: str) -> onnx.NodeProto:
        nodes = self.consumers.get(tensor, [])
        if len(nodes) != 1 or nodes[0].op_type != op:
            found = [n.op_type for n in nodes]
            raise GraphError(f"expected one {op} after {tensor!r}, found {found}")
        return nodes[0]

    def scale(self, node: onnx.NodeProto) -> np.float32:
        """The per-tensor scale of a Q/DQ node, with its zero point required to be 0."""
        zp = self.inits.get(node.input[2]) if len(node.input) > 2 else None
        if zp is None or zp.dtype != np.int8 or np.any(zp != 0):
            raise GraphError(f"{node.name}: only symmetric int8 (zero point 0) is supported")
        scale = self.inits[node.input[1]]
        if scale.size != 1:
            raise GraphError(f"{node.name}: per-channel activation scale")
        return np.float32(scale.reshape(()))

    def dq_weight(self, tensor: str) -> tuple[np.ndarray, np.ndarray]:
        """(int8 weight, float32 per-output-channel scale) behind a weight's DequantizeLinear."""
        node = next((n for n in self._all if tensor in n.output), None)
        if node is None or node.op_type != "DequantizeLinear":
            raise GraphError(f"weight {tensor!r} is not int8 (no DequantizeLinear)")
        w, s = self.inits[node.input[0]], self.inits[node.input[1]]
        zp = self.inits[node.input[2]]
        if w.dtype != np.int8 or np.any(zp != 0):
            raise GraphError(f"{node.name}: weights must be int8 with zero point 0")
        return w, np.broadcast_to(s.astype(np.float32), (w.shape[0],)).copy()


def _conv_geometry(g: _Graph, node: onnx.NodeProto) -> tuple[int, int]:
    a = g.attrs(node)
    pads, strides = list(a.get("pads", [0, 0])), list(a.get("strides", [1]))
    if a.get("group", 1) != 1 or list(a.get("dilations", [1])) != [1] or pads[0] != pads[-1]:
        raise GraphError(f"{node.name}: only 1-D, ungrouped, undilated, symmetric-pad Conv")
    return int(strides[0]), int(pads[0])


def _relu_after(g: _Graph, q_out: str, scale: np.float32) -> tuple[bool, str]:
    """After a Q: ``DQ -> Relu -> Q`` at the same scale is max(q, 0). Returns (relu, tensor)."""
    dq = g.only(q_out, "DequantizeLinear")
    nxt = g.consumers.get(dq.output[0], [])
    if len(nxt) == 1 and nxt[0].op_type == "Relu":
        q2 = g.only(nxt[0].output[0], "QuantizeLinear")
        if g.scale(q2) != scale:
            raise GraphError(f"{q2.name}: a Relu between two different scales")
        return True, q2.output[0]
    return False, q_out


def read_quant_net(path: str | Path) -> QuantNet:
    """The bundle at ``path`` as a :class:`QuantNet`; GraphError names what is not supported."""
    contract = read_contract(path)
    model = onnx.load(str(path))
    g = _Graph(model)
    g._all = list(model.graph.node)
    if not any(n.op_type == "QuantizeLinear" for n in g._all):
        raise GraphError(
            f"{path}: no QuantizeLinear nodes, so not an INT8 QDQ bundle; quantise it first "
            "(python -m export.quantize --int8-static)"
        )
    tr = g.only(contract.input_name, "Transpose")
    if list(g.attrs(tr)["perm"]) != [0, 2, 1]:
        raise GraphError("the graph must start by transposing [B, T, C] to [B, C, T]")
    conv = g.only(tr.output[0], "Conv")
    if conv.input[1] not in g.inits:
        raise GraphError("the first Conv must be float (export.quantize keeps it so)")
    stride, pad = _conv_geometry(g, conv)
    relu = g.only(conv.output[0], "Relu")
    q = g.only(relu.output[0], "QuantizeLinear")
    scale = g.scale(q)
    first = FloatConv(
        g.inits[conv.input[1]].astype(np.float32),
        g.inits[conv.input[2]].astype(np.float32),
        stride, pad, True, scale,
    )  # fmt: skip
    tensor, convs = q.output[0], []
    while True:
        dq = g.only(tensor, "DequantizeLinear")
        users = g.consumers.get(dq.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv":
            break
        conv = users[0]
        w, w_scale = g.dq_weight(conv.input[1])
        bias, _ = quantize_bias(g.inits[conv.input[2]], scale, w_scale)
        q = g.only(conv.output[0], "QuantizeLinear")
        out_scale = g.scale(q)
        requant = (scale * w_scale / out_scale).astype(np.float32)
        relu, tensor = _relu_after(g, q.output[0], out_scale)
        stride, pad = _conv_geometry(g, conv)
        convs.append(Int8Conv(w, bias, requant, stride, pad, relu, scale, out_scale))
        scale = out_scale
    mean = g.only(dq.output[0], "ReduceMean")
    axes = g.inits.get(mean.input[1]) if len(mean.input) > 1 else g.attrs(mean).get("axes")
    if list(np.ravel(axes)) != [2] or g.attrs(mean).get("keepdims", 1) != 0:
        raise GraphError("the pooling must be ReduceMean over time without keepdims")
    q = g.only(mean.output[0], "QuantizeLinear")
    pool = MeanPool(scale, g.scale(q))
    heads = []
    gemms = [n for dq in g.consumers[q.output[0]] for n in g.consumers.get(dq.output[0], [])]
    for gemm in gemms:
        if gemm.op_type != "Gemm":
            raise GraphError(f"expected Gemm heads after the pooling, found {gemm.op_type}")
        a = g.attrs(gemm)
        if a.get("transB", 0) != 1 or a.get("transA", 0) != 0 or a.get("alpha", 1.0) != 1.0:
            raise GraphError(f"{gemm.name}: only Gemm with transB=1, alpha=1")
        w, w_scale = g.dq_weight(gemm.input[1])
        bias, bias_scale = quantize_bias(g.inits[gemm.input[2]], pool.out_scale, w_scale)
        q_out = g.only(gemm.output[0], "QuantizeLinear")
        softmax = g.only(g.only(q_out.output[0], "DequantizeLinear").output[0], "Softmax")
        output = softmax.output[0]
        head = next((h for h in contract.heads if contract.output_name(h) == output), None)
        if head is None:
            raise GraphError(f"softmax output {output!r} is not a head of the contract")
        heads.append(
            Head(head, output, q_out.output[0], w, w_scale, bias, bias_scale,
                 pool.out_scale, g.scale(q_out))
        )  # fmt: skip
    order = list(contract.heads)
    heads.sort(key=lambda h: order.index(h.name))
    if [h.name for h in heads] != order:
        raise GraphError(f"heads {[h.name for h in heads]} differ from the contract's {order}")
    return QuantNet(contract, first, tuple(convs), pool, tuple(heads))
