"""The model bundle's contract: what an exported model expects and produces.

An exported ONNX model carries its contract as JSON in ``metadata_props`` under
:data:`CONTRACT_KEY`, so the runtime configures its signal chain from the model itself and refuses
input that does not match. The ONNX graph takes ``input_name`` as float32
[batch, window_samples, n_channels] (the chain's normalised windows) and gives, per head, the
class probabilities [batch, n_classes] as output ``<head>_probs``.

This module imports neither numpy nor ONNX Runtime until a contract is parsed or a model loaded:
:func:`contract_metadata` reads a bundle's contract for ``gaitedge version`` in milliseconds.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from gaitedge.preprocess import ChainConfig

CONTRACT_KEY = "gaitedge.contract"
# Bundles with a newer major format than this are refused; minor additions are read.
CONTRACT_FORMAT = 1
# The model shipped inside the package (``gaitedge.engine.DEFAULT_MODEL`` is the same file).
SHIPPED_MODEL = Path(__file__).resolve().parent / "models" / "gaitedge-default.onnx"
# Field numbers in onnx.proto: ModelProto.metadata_props, StringStringEntryProto.key / .value.
_METADATA_PROPS, _KEY, _VALUE = 14, 1, 2


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
        from gaitedge.preprocess import ChainConfig

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


def contract_metadata(model_path: str | os.PathLike) -> dict:
    """A bundle's contract as plain JSON data, read without ONNX Runtime or numpy.

    For what needs names and versions only: the ``.onnx`` file's ``metadata_props`` are read
    straight from its protobuf fields, the graph skipped unread; an engine's ``.json`` sidecar as
    it is. :func:`read_contract` is the full check (the model loads, the contract is whole).
    """
    path = Path(model_path)
    try:
        if path.suffix != ".onnx":
            return json.loads(path.with_name(path.name + ".json").read_text())
        with path.open("rb") as f:
            try:
                props = dict(_metadata_props(f, os.fstat(f.fileno()).st_size))
            except ContractError as exc:
                raise ContractError(f"{path}: {exc}") from exc
        text = props.get(CONTRACT_KEY)
        if text is None:
            raise ContractError(f"{path}: has no gaitedge contract (metadata key {CONTRACT_KEY!r})")
        return json.loads(text)
    except OSError as exc:
        raise ContractError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: model contract is not valid JSON: {exc}") from exc


def shipped_model() -> str:
    """``<name> <model_version>`` of the model shipped inside the package, read the light way."""
    meta = contract_metadata(SHIPPED_MODEL)
    return f"{meta.get('name', '?')} {meta.get('model_version', '?')}"


def _metadata_props(f: BinaryIO, end: int) -> Iterator[tuple[str, str]]:
    """(key, value) of each ``metadata_props`` entry of a serialised ``ModelProto``."""
    for _, entry in _fields(f, end, {_METADATA_PROPS}):
        parts = dict(_fields(io.BytesIO(entry), len(entry), {_KEY, _VALUE}))
        yield parts.get(_KEY, b"").decode(), parts.get(_VALUE, b"").decode()


def _fields(f: BinaryIO, end: int, wanted: set[int]) -> Iterator[tuple[int, bytes]]:
    """The payloads of the length-delimited fields numbered ``wanted`` in protobuf bytes from
    ``f``'s position to ``end``; every other field is skipped unread (protobuf's wire format)."""
    while f.tell() < end:
        tag = _varint(f)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            _varint(f)
            continue
        if wire_type == 2:
            size = _varint(f)
        elif wire_type in (1, 5):  # fixed 64 and 32 bits
            size = 8 if wire_type == 1 else 4
        else:
            raise ContractError(f"not an ONNX model (protobuf wire type {wire_type})")
        if f.tell() + size > end:
            raise ContractError("not an ONNX model, or a truncated one")
        if wire_type == 2 and number in wanted:
            yield number, f.read(size)
        else:
            f.seek(size, io.SEEK_CUR)


def _varint(f: BinaryIO) -> int:
    value = 0
    for shift in range(0, 70, 7):  # a varint is at most 10 bytes
        byte = f.read(1)
        if not byte:
            raise ContractError("not an ONNX model, or a truncated one")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    raise ContractError("not an ONNX model (a varint longer than 10 bytes)")
