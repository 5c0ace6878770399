"""The model bundle's contract: what an exported model expects and produces.

An exported ONNX model carries its contract as JSON in ``metadata_props`` under
:data:`CONTRACT_KEY`, so the runtime configures its signal chain from the model itself and refuses
input that does not match. The ONNX graph takes ``input_name`` as float32
[batch, window_samples, n_channels] (the chain's normalised windows) and gives, per head, the
class probabilities [batch, n_classes] as output ``<head>_probs``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gaitedge.preprocess import ChainConfig

CONTRACT_KEY = "gaitedge.contract"
# Bundles with a newer major format than this are refused; minor additions are read.
CONTRACT_FORMAT = 1


class ContractError(ValueError):
    """A model bundle without a usable contract, or input that does not match it."""


@dataclass(frozen=True)
class ModelContract:
    """Everything the runtime needs to feed a model and read its outputs."""

    chain: ChainConfig
    heads: dict[str, tuple[str, ...]]
    input_name: str = "windows"
    model_version: str = "0.0.0"
    name: str = "gaitedge-model"
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    format: int = CONTRACT_FORMAT

    def output_name(self, head: str) -> str:
        return f"{head}_probs"

    def to_json(self) -> str:
        data = asdict(self)
        data["chain"] = self.chain.to_dict()
        data["heads"] = {k: list(v) for k, v in self.heads.items()}
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelContract:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"model contract is not valid JSON: {exc}") from exc
        if int(data.get("format", 0)) > CONTRACT_FORMAT:
            raise ContractError(
                f"model contract format {data['format']} is newer than this gaitedge reads "
                f"({CONTRACT_FORMAT}); upgrade gaitedge"
            )
        try:
            data["chain"] = ChainConfig.from_dict(data["chain"])
            data["heads"] = {k: tuple(v) for k, v in data["heads"].items()}
            return cls(**data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ContractError(f"model contract is incomplete or invalid: {exc}") from exc


def read_contract(model_path: str | os.PathLike) -> ModelContract:
    """Read the contract from an ONNX bundle (or a ``.json`` contract next to an engine file).

    A TensorRT engine has no metadata of its own; ``model.engine`` reads ``model.engine.json``.
    """
    path = Path(model_path)
    if not path.exists():
        raise ContractError(f"{path}: no such model file")
    if path.suffix != ".onnx":
        sidecar = path.with_name(path.name + ".json")
        if not sidecar.exists():
            raise ContractError(f"{path}: not an ONNX bundle and no contract file {sidecar}")
        return ModelContract.from_json(sidecar.read_text())
    import onnxruntime as ort

    try:
        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ContractError(f"{path}: not a loadable ONNX model: {exc}") from exc
    text = meta.custom_metadata_map.get(CONTRACT_KEY)
    if text is None:
        raise ContractError(
            f"{path}: has no gaitedge contract (metadata key {CONTRACT_KEY!r}); export it with "
            "`python -m export.onnx`"
        )
    return ModelContract.from_json(text)
