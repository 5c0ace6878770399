"""A small real ONNX bundle for runtime tests, built with onnx.helper (no torch needed).

It is not a trained model: activity = softmax of a linear map of each window's channel means,
fall = softmax of a linear map of the channel max-abs values. ONNX Runtime runs it for real,
with a real contract in its metadata, so everything around the model is exercised.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gaitedge.bundle import CONTRACT_KEY, ModelContract
from gaitedge.preprocess import ChainConfig

ACTIVITIES = ("walking", "upstairs", "downstairs", "sitting", "standing", "lying")


def make_bundle(
    path: Path,
    chain: ChainConfig | None = None,
    heads: dict[str, tuple[str, ...]] | None = None,
    seed: int = 0,
) -> Path:
    chain = chain or ChainConfig(hop_samples=25, norm_mean=(0.0,) * 9, norm_std=(1.0,) * 9)
    heads = heads or {"activity": ACTIVITIES, "fall": ("no_fall", "fall")}
    rng = np.random.default_rng(seed)
    c = chain.n_channels
    nodes = [
        helper.make_node("ReduceMean", ["windows"], ["mean"], axes=[1], keepdims=0),
        helper.make_node("Abs", ["windows"], ["abs"]),
        helper.make_node("ReduceMax", ["abs"], ["maxabs"], axes=[1], keepdims=0),
    ]
    inits, outputs = [], []
    for head, classes in heads.items():
        feature = "mean" if head == "activity" else "maxabs"
        w = numpy_helper.from_array(
            rng.standard_normal((c, len(classes))).astype(np.float32), f"{head}_w"
        )
        inits.append(w)
        nodes += [
            helper.make_node("MatMul", [feature, f"{head}_w"], [f"{head}_logits"]),
            helper.make_node("Softmax", [f"{head}_logits"], [f"{head}_probs"], axis=-1),
        ]
        outputs.append(
            helper.make_tensor_value_info(
                f"{head}_probs", TensorProto.FLOAT, ["batch", len(classes)]
            )
        )
    graph = helper.make_graph(
        nodes,
        "test-bundle",
        [
            helper.make_tensor_value_info(
                "windows", TensorProto.FLOAT, ["batch", chain.window_samples, c]
            )
        ],
        outputs,
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = ModelContract(chain=chain, heads=heads, name="test-bundle", model_version="0.0.1")
    helper.set_model_props(model, {CONTRACT_KEY: contract.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path
