# ruff: noqa: N801, N802, N815 - the CUDA and TensorRT names, as the real modules spell them
"""Thin fakes of ``tensorrt`` (10.x Python API) and ``cuda.bindings.runtime``, for machines
without an NVIDIA GPU.

They stand in at the hardware boundary only, and only where the real libraries are absent (the
tests that use them skip where TensorRT is installed; the real path runs in
``deploy/gpu_check.sh``). They behave as the real ones do where gaitedge depends on it:

* CUDA calls return ``(cudaError_t, *results)``; "device" memory is host memory from ctypes, so
  copies are ``memmove`` and a wrong pointer or size corrupts results as it would on a GPU;
  every allocation is tracked so a test can see that all of it is freed.
* The TensorRT parser applies TensorRT's explicit-quantisation rules
  (``export.quantize.qdq_violations``) and fails ``parse`` on an asymmetric QDQ graph; the
  "serialised engine" is the ONNX graph plus its optimisation profile, and ``execute_async_v3``
  runs that graph with ONNX Runtime on the tensors at the bound addresses; ``set_input_shape``
  returns False outside the profile, as TensorRT does.
"""

from __future__ import annotations

import ctypes
import enum
import importlib.util
import json
import struct
import subprocess
import sys
from types import ModuleType, SimpleNamespace

import numpy as np
import onnx
import pytest

# Tests of the fakes run only where the real TensorRT is absent.
no_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)

__version__ = "10.3.0"


class cudaError_t(enum.IntEnum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorNoDevice = 100


class cudaMemcpyKind(enum.IntEnum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class FakeCudart(ModuleType):
    """``cuda.bindings.runtime`` subset: malloc/free, pinned host memory, streams, copies."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind

    def __init__(self, devices: int = 1) -> None:
        super().__init__("cuda.bindings.runtime")
        self.devices = devices
        self.live: dict[int, ctypes.Array] = {}
        self.streams: set[int] = set()
        self.copies = 0

    def _alloc(self, nbytes: int):
        buf = (ctypes.c_char * nbytes)()
        self.live[ctypes.addressof(buf)] = buf
        return cudaError_t.cudaSuccess, ctypes.addressof(buf)

    def cudaGetDeviceCount(self):
        if not self.devices:
            return cudaError_t.cudaErrorNoDevice, 0
        return cudaError_t.cudaSuccess, self.devices

    def cudaMalloc(self, nbytes):
        return self._alloc(nbytes)

    def cudaMallocHost(self, nbytes):
        return self._alloc(nbytes)

    def _free(self, ptr):
        if self.live.pop(ptr, None) is None:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (cudaError_t.cudaSuccess,)

    def cudaFree(self, ptr):
        return self._free(ptr)

    def cudaFreeHost(self, ptr):
        return self._free(ptr)

    def cudaStreamCreate(self):
        handle = 0x1000 + len(self.streams) + 1
        self.streams.add(handle)
        return cudaError_t.cudaSuccess, handle

    def cudaStreamDestroy(self, stream):
        self.streams.discard(int(stream))
        return (cudaError_t.cudaSuccess,)

    def cudaStreamSynchronize(self, stream):
        ok = int(stream) in self.streams
        return (cudaError_t.cudaSuccess if ok else cudaError_t.cudaErrorInvalidValue,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        if int(stream) not in self.streams or not isinstance(kind, cudaMemcpyKind):
            return (cudaError_t.cudaErrorInvalidValue,)
        ctypes.memmove(int(dst), int(src), int(nbytes))
        self.copies += 1
        return (cudaError_t.cudaSuccess,)


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class Logger:
    WARNING = 2

    def __init__(self, severity: int = WARNING) -> None:
        self.severity = severity


class _Network:
    def __init__(self) -> None:
        self.onnx_bytes: bytes | None = None


class OnnxParser:
    def __init__(self, network: _Network, logger: Logger) -> None:
        self.network, self.errors = network, []

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]

    def parse(self, data: bytes) -> bool:
        from export.quantize import qdq_violations

        self.errors = qdq_violations(onnx.load_from_string(data))
        if not self.errors:
            self.network.onnx_bytes = data
        return not self.errors


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, list[tuple[int, ...]]] = {}

    def set_shape(self, name, lo, opt, hi) -> None:
        self.shapes[name] = [tuple(lo), tuple(opt), tuple(hi)]


class _Config:
    def __init__(self) -> None:
        self.profiles, self.flags = [], set()

    def set_memory_pool_limit(self, pool, nbytes) -> None:
        pass

    def set_flag(self, flag) -> None:
        self.flags.add(flag)

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


class Builder:
    def __init__(self, logger: Logger) -> None:
        pass

    def create_network(self, flags: int = 0) -> _Network:
        return _Network()

    def create_builder_config(self) -> _Config:
        return _Config()

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
        if network.onnx_bytes is None or len(config.profiles) != 1:
            return None
        header = json.dumps({"profile": config.profiles[0].shapes}).encode()
        return struct.pack("<I", len(header)) + header + network.onnx_bytes


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine, self.shapes, self.addresses = engine, {}, {}

    def set_input_shape(self, name, shape) -> bool:
        lo, _, hi = self.engine.profile[name]
        shape = tuple(shape)
        if len(shape) != len(lo) or any(
            not a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)
        ):
            return False
        self.shapes[name] = shape
        return True

    def set_tensor_address(self, name, ptr) -> bool:
        if name not in self.engine.io:
            return False
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream: int) -> bool:
        io = self.engine.io
        if set(self.addresses) != set(io) or set(self.shapes) != set(self.engine.profile):
            return False
        feeds = {}
        for name, shape in self.shapes.items():
            n = int(np.prod(shape))
            buf = (ctypes.c_float * n).from_address(self.addresses[name])
            feeds[name] = np.ctypeslib.as_array(buf).reshape(shape).copy()
        outputs = [n for n, (mode, _) in io.items() if mode is TensorIOMode.OUTPUT]
        for name, value in zip(outputs, self.engine.session.run(outputs, feeds), strict=True):
            value = np.ascontiguousarray(value, dtype=np.float32)
            ctypes.memmove(self.addresses[name], value.ctypes.data, value.nbytes)
        return True


class _Engine:
    def __init__(self, blob: bytes) -> None:
        import onnxruntime as ort

        (size,) = struct.unpack_from("<I", blob)
        self.profile = {
            k: [tuple(s) for s in v] for k, v in json.loads(blob[4 : 4 + size])["profile"].items()
        }
        model = onnx.load_from_string(blob[4 + size :])
        cpu = ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(model.SerializeToString(), providers=cpu)
        self.io: dict[str, tuple[TensorIOMode, tuple[int, ...]]] = {}
        for value, mode in [(v, TensorIOMode.INPUT) for v in self.session.get_inputs()] + [
            (v, TensorIOMode.OUTPUT) for v in self.session.get_outputs()
        ]:
            shape = tuple(d if isinstance(d, int) else -1 for d in value.shape)
            self.io[value.name] = (mode, shape)

    @property
    def num_io_tensors(self) -> int:
        return len(self.io)

    def get_tensor_name(self, i: int) -> str:
        return list(self.io)[i]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self.io[name][0]

    def get_tensor_dtype(self, name: str) -> DataType:
        return DataType.FLOAT

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self.io[name][1]

    def get_tensor_profile_shape(self, name: str, index: int) -> list[tuple[int, ...]]:
        if index != 0:
            raise IndexError(index)
        return self.profile[name]

    def create_execution_context(self) -> _Context:
        return _Context(self)


class Runtime:
    def __init__(self, logger: Logger) -> None:
        pass

    def deserialize_cuda_engine(self, blob: bytes) -> _Engine | None:
        try:
            return _Engine(blob)
        except Exception:  # TensorRT returns None (and logs) for a blob it cannot read
            return None


MemoryPoolType = SimpleNamespace(WORKSPACE=0)
BuilderFlag = SimpleNamespace(FP16=0, INT8=1)
NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=5)


BLOCKER = """import sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"{{name}} is blocked in this test")
sys.meta_path.insert(0, Blocked())
"""


def run_blocked(code: str, blocked: tuple[str, ...]) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where importing ``blocked`` modules fails (as if they
    were not installed; ``sys.modules[name] = None`` would trip scipy's torch probe)."""
    prelude = BLOCKER.format(blocked=set(blocked))
    return subprocess.run(
        [sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120
    )
