"""Inference engines: windows in, per-head class probabilities out.

:class:`OnnxEngine` runs an ONNX bundle with ONNX Runtime (one intra-op thread by default, so
several sensors can share a core each). :class:`TensorRTEngine` runs a serialised TensorRT
engine where TensorRT is installed (Jetson, NVIDIA GPUs); it is imported lazily and fails with a
clear message elsewhere. Both read the model's contract (``gaitedge.bundle``) and refuse windows
that do not match it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Protocol

import numpy as np

from gaitedge.bundle import ContractError, ModelContract, read_contract

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "gaitedge-default.onnx"


class Engine(Protocol):
    contract: ModelContract

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """[B, W, C] float32 normalised windows -> {head: [B, n_classes] probabilities}."""
        ...


def default_model_path() -> Path:
    """The model shipped inside the package."""
    if not DEFAULT_MODEL.exists():
        raise ContractError(
            f"the shipped default model is missing ({DEFAULT_MODEL}); reinstall gaitedge or "
            "pass --model"
        )
    return DEFAULT_MODEL


def check_windows(contract: ModelContract, windows: np.ndarray) -> np.ndarray:
    """Return ``windows`` as float32 [B, W, C], or raise ContractError saying what differs."""
    cfg = contract.chain
    windows = np.asarray(windows)
    if windows.ndim == 2:
        windows = windows[None]
    expected = (cfg.window_samples, cfg.n_channels)
    if windows.ndim != 3 or windows.shape[1:] != expected:
        raise ContractError(
            f"model {contract.name} expects windows of {expected[0]} samples x {expected[1]} "
            f"channels {list(cfg.channels)}, got shape {windows.shape}"
        )
    return np.ascontiguousarray(windows, dtype=np.float32)


class OnnxEngine:
    """An ONNX bundle run by ONNX Runtime on the CPU (or a given execution provider)."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        intra_op_threads: int = 1,
        providers: list[str] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        self.contract = read_contract(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(
            str(self.path), options, providers=providers or ["CPUExecutionProvider"]
        )
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != [self.contract.input_name]:
            raise ContractError(
                f"{self.path}: graph inputs {inputs} differ from the contract's "
                f"{self.contract.input_name!r}"
            )
        self.heads = list(self.contract.heads)
        self._outputs = [self.contract.output_name(h) for h in self.heads]
        missing = set(self._outputs) - {o.name for o in self.session.get_outputs()}
        if missing:
            raise ContractError(f"{self.path}: graph lacks outputs {sorted(missing)}")

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        x = check_windows(self.contract, windows)
        results = self.session.run(self._outputs, {self.contract.input_name: x})
        return dict(zip(self.heads, results, strict=True))


class TensorRTEngine:
    """A serialised TensorRT engine (``model.engine`` with its contract in ``model.engine.json``).

    Thin on purpose: it needs TensorRT and a CUDA device, which CI machines lack; parity with
    ONNX Runtime is checked where a GPU is available (see ``export/trt.py``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        try:
            import tensorrt as trt
        except ImportError as exc:
            raise RuntimeError(
                "TensorRT is not installed: use the .onnx bundle with ONNX Runtime, or install "
                "TensorRT (JetPack on a Jetson, `pip install tensorrt` with an NVIDIA GPU)"
            ) from exc
        import torch  # TensorRT's Python API needs device buffers; torch provides them.

        self.path = Path(path)
        self.contract = read_contract(self.path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ContractError(f"{self.path}: TensorRT could not deserialise this engine")
        self._context = self._engine.create_execution_context()
        self._torch = torch
        self.heads = list(self.contract.heads)

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        x = torch.from_numpy(check_windows(self.contract, windows)).cuda()
        self._context.set_input_shape(self.contract.input_name, tuple(x.shape))
        self._context.set_tensor_address(self.contract.input_name, x.data_ptr())
        outputs = {}
        for head in self.heads:
            name = self.contract.output_name(head)
            out = torch.empty((x.shape[0], len(self.contract.heads[head])), device="cuda")
            self._context.set_tensor_address(name, out.data_ptr())
            outputs[head] = out
        stream = torch.cuda.current_stream()
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT inference failed")
        stream.synchronize()
        return {h: o.cpu().numpy() for h, o in outputs.items()}


def load_engine(path: str | os.PathLike | None = None, *, intra_op_threads: int = 1) -> Engine:
    """Open a model: ``.onnx`` with ONNX Runtime, ``.engine``/``.plan`` with TensorRT."""
    path = Path(path) if path is not None else default_model_path()
    if path.suffix in (".engine", ".plan"):
        return TensorRTEngine(path)
    return OnnxEngine(path, intra_op_threads=intra_op_threads)
