"""Parameters and FLOPs of an ONNX graph, counted from its shapes (batch 1).

Convention: 1 multiply-accumulate = 2 FLOPs, counted for Conv, ConvInteger, QLinearConv, Gemm,
MatMul (and their integer forms); element-wise ops, pooling and softmax are not counted (they
are well under 1 % of a convolutional network's work). Parameters are the elements of the
float initializers with more than one element (weights and biases; quantisation scales and
zero points are not parameters), so count them on the FP32 bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference

_CONV = {"Conv", "ConvInteger", "QLinearConv"}
_MATMUL = {"Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"}


@dataclass(frozen=True)
class GraphCost:
    params: int
    flops: int

    @property
    def mflops(self) -> float:
        return self.flops / 1e6


def _with_batch_one(model: onnx.ModelProto) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for inp in model.graph.input:
        dim = inp.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_param")
        dim.dim_value = 1
    try:  # propagates Shape -> Reshape constants, which transformer exports need
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # ORT raises its own types; ONNX inference is the fallback
        return shape_inference.infer_shapes(model)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for vi in [*model.graph.value_info, *model.graph.input, *model.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = tuple(d.dim_value for d in dims)
    for init in model.graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _weight_index(op: str) -> int:
    return 3 if op.startswith("QLinear") else 1


def count_cost(path: str | Path) -> GraphCost:
    """Parameters and FLOPs (2 per MAC) of one window through the graph at ``path``."""
    model = _with_batch_one(onnx.load(str(path)))
    shapes = _shapes(model)
    macs = 0
    for node in model.graph.node:
        if node.op_type in _CONV | _MATMUL and 0 in shapes.get(node.output[0], (0,)):
            raise ValueError(f"{path}: shape of {node.output[0]} unknown; cannot count FLOPs")
        if node.op_type in _CONV:
            out = shapes[node.output[0]]  # [N, C_out, L_out]
            w = shapes[node.input[_weight_index(node.op_type)]]  # [C_out, C_in/g, k]
            macs += int(np.prod(out)) * int(np.prod(w[1:]))
        elif node.op_type in _MATMUL:
            a = shapes[node.input[0]]
            out = shapes[node.output[0]]
            k = a[-1]
            for attr in node.attribute:
                if attr.name == "transA" and attr.i:
                    k = a[-2]
            macs += int(np.prod(out)) * int(k)
    params = sum(
        int(np.prod(i.dims))
        for i in model.graph.initializer
        if np.prod(i.dims) > 1 and numpy_helper.to_array(i).dtype.kind == "f"
    )
    return GraphCost(params=params, flops=2 * macs)
