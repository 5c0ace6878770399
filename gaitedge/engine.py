"""Inference engines: windows in, per-head class probabilities out.

:class:`OnnxEngine` runs an ONNX bundle with ONNX Runtime (one intra-op thread by default, so
several sensors can share a core each) on the CPU, or on the GPU through ONNX Runtime's CUDA or
TensorRT execution providers where onnxruntime-gpu is installed (:class:`Provider`).
:class:`TensorRTEngine` runs a serialised TensorRT engine (Jetson, NVIDIA GPUs) with CUDA memory
and a stream from ``cuda-python`` (:class:`CudaRuntime`), never torch. TensorRT and
``cuda-python`` are imported lazily; without them the engine raises
:class:`EngineUnavailableError` with one line saying what to install. All engines read the
model's contract (``gaitedge.bundle``) and refuse windows that do not match it.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import functools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Protocol

import numpy as np

from gaitedge.bundle import SHIPPED_MODEL, ContractError, ModelContract, read_contract

log = logging.getLogger(__name__)

DEFAULT_MODEL = SHIPPED_MODEL  # one home: gaitedge.bundle (read light by `gaitedge version`)
MODELS_DIR = DEFAULT_MODEL.parent
ENGINE_SUFFIXES = (".engine", ".plan")

NO_TENSORRT = (
    "TensorRT is not installed: use the .onnx bundle with ONNX Runtime, or install TensorRT "
    "(JetPack on a Jetson, `pip install tensorrt` with an NVIDIA GPU)"
)
NO_CUDA_PYTHON = (
    "cuda-python is not installed (TensorRT engines need it for GPU memory): `pip install "
    "'gaitedge[jetson]'` on a Jetson, `pip install 'gaitedge[tensorrt]'` elsewhere"
)
NO_ONNXRUNTIME = (
    "ONNX Runtime is not installed: `pip install 'gaitedge[cpu]'`, or `gaitedge[gpu]` with an "
    "NVIDIA GPU; on a Jetson, JetPack's onnxruntime-gpu wheel first (README)"
)


class EngineUnavailableError(RuntimeError):
    """The requested engine or execution provider cannot run here (library or GPU missing)."""


class Provider(str, enum.Enum):
    """Where ONNX Runtime runs a ``.onnx`` bundle."""

    AUTO = "auto"  # CUDA when onnxruntime-gpu sees a GPU, else the CPU
    CPU = "cpu"
    CUDA = "cuda"
    TENSORRT = "tensorrt"  # ONNX Runtime's TensorRT execution provider (CUDA, CPU as fallback)


_ORT_PROVIDERS = {
    Provider.CPU: ["CPUExecutionProvider"],
    Provider.CUDA: ["CUDAExecutionProvider", "CPUExecutionProvider"],
    Provider.TENSORRT: [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ],
}


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


def model_path(path: str | os.PathLike | None) -> Path:
    """The bundle a ``--model`` value names: the shipped default model when None; a bare file
    name that is not in the working directory names a shipped bundle (the model cards say
    ``gaitedge info gaitedge-acc.onnx``); any other path as given."""
    if path is None:
        return default_model_path()
    if not str(path).strip() or Path(path) == Path("."):  # Path("") is the working directory
        raise ContractError(
            f"the model path is empty ({str(path)!r}: the working directory); give a bundle "
            "(.onnx) or leave it out"
        )
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and (MODELS_DIR / path.name).exists():
        return MODELS_DIR / path.name
    return path


def accelerometer_only_model(models_dir: Path | None = None) -> Path | None:
    """The shipped bundle for sources without a gyroscope: the one in ``models_dir`` (default:
    the package's models) whose contract's channels need none (:func:`shipped_bundle`)."""
    from gaitedge.preprocess import needs_gyroscope

    def wanted(chain: dict) -> bool:
        channels = chain.get("channels", ())
        return bool(channels) and not needs_gyroscope(channels)

    return shipped_bundle(wanted, models_dir)


def cold_start_model(models_dir: Path | None = None) -> Path | None:
    """The shipped cold-start bundle: the one in ``models_dir`` (default: the package's models)
    whose contract's chain mounting is ``vertical`` (heading-free: it decides once the vertical
    is known, while an automatic mounting still calibrates) and whose channels need the
    gyroscope (it stands in for the 6-axis model) (:func:`shipped_bundle`)."""
    from gaitedge.preprocess import needs_gyroscope

    def wanted(chain: dict) -> bool:
        return chain.get("mounting") == "vertical" and needs_gyroscope(chain.get("channels", ()))

    return shipped_bundle(wanted, models_dir)


def shipped_bundle(wanted: Callable[[dict], bool], models_dir: Path | None = None) -> Path | None:
    """The bundle in ``models_dir`` (default: the package's models) whose contract's chain
    (as JSON) ``wanted`` accepts, found by the contract alone, never by its name: the newest
    ``model_version`` if several; ``*-fp32.onnx`` (a shipped INT8 bundle's FP32 reference)
    left out; a bundle whose contract does not read is logged and skipped. None: none ships.
    Each file's contract is read once per process while it is unchanged (a session asks for
    several kinds of bundle at start-up)."""
    found = []
    for path in sorted(Path(models_dir or MODELS_DIR).glob("*.onnx")):
        if path.stem.endswith("-fp32"):
            continue
        st = path.stat()
        try:
            meta = _contract_metadata(str(path), st.st_mtime_ns, st.st_size)
        except ContractError as exc:
            log.warning("%s", exc)
            continue
        if wanted(meta.get("chain", {})):
            found.append((str(meta.get("model_version", "")), path))
    return max(found, key=lambda f: _version_key(f[0]))[1] if found else None


@functools.lru_cache(maxsize=64)
def _contract_metadata(path: str, mtime_ns: int, size: int) -> dict:
    """``bundle.contract_metadata`` of a file as it is now (keyed by its mtime and size)."""
    from gaitedge.bundle import contract_metadata

    return contract_metadata(Path(path))


def _version_key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else -1 for p in version.split("."))


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
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if not np.isfinite(windows.sum()):  # a NaN or inf anywhere shows in it (4 ms an hour)
        bad = int((~np.isfinite(windows).reshape(len(windows), -1).all(axis=1)).sum())
        if not bad:  # only the float32 sum overflowed
            return windows
        raise ContractError(
            f"model {contract.name}: {bad} of {len(windows)} windows hold a NaN or infinite "
            "value (the chain drops such samples; a window made elsewhere must too)"
        )
    return windows


def ort_providers(provider: Provider | str, available: list[str]) -> list[str]:
    """ONNX Runtime's provider list for ``provider``, given the ones this build has.

    Raises EngineUnavailableError when a GPU provider is asked for and this onnxruntime lacks it
    (the CPU-only wheel, or a GPU wheel overwritten by it).
    """
    try:
        provider = Provider(provider)
    except ValueError:
        choices = ", ".join(p.value for p in Provider)
        raise EngineUnavailableError(
            f"unknown provider {provider!r}; choose one of {choices}"
        ) from None
    if provider is Provider.AUTO:
        provider = Provider.CUDA if "CUDAExecutionProvider" in available else Provider.CPU
    wanted = _ORT_PROVIDERS[provider]
    if wanted[0] not in available:
        raise EngineUnavailableError(
            f"ONNX Runtime here has no {wanted[0]} (it has {', '.join(available)}): install "
            "onnxruntime-gpu (on a Jetson, JetPack's wheel; see README) or use --provider cpu"
        )
    return wanted


class OnnxEngine:
    """An ONNX bundle run by ONNX Runtime on the CPU or, with ``provider``, the GPU."""

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        intra_op_threads: int = 1,
        provider: Provider | str = Provider.CPU,
        batch_threads: int = 1,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EngineUnavailableError(NO_ONNXRUNTIME) from exc

        self.path = Path(path)
        self.contract = read_contract(self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = ort_providers(provider, ort.get_available_providers())
        self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        # ONNX Runtime falls back to the CPU with only a warning when a GPU provider fails to
        # load (no CUDA driver, missing libcudnn): refuse instead of running slowly unnoticed.
        if providers[0] not in self.session.get_providers():
            raise EngineUnavailableError(
                f"ONNX Runtime could not start {providers[0]} (CUDA driver or libraries "
                "missing?); use --provider cpu"
            )
        self.providers = self.session.get_providers()
        inputs = [i.name for i in self.session.get_inputs()]
        if inputs != [self.contract.input_name]:
            raise ContractError(
                f"{self.path}: graph inputs {inputs} differ from the contract's "
                f"{self.contract.input_name!r}"
            )
        # The graph's fixed window shape is the contract's (an edited contract made every
        # engine call an ONNX Runtime traceback).
        cfg, shape = self.contract.chain, self.session.get_inputs()[0].shape
        want = (cfg.window_samples, cfg.n_channels)
        if len(shape) != 3 or any(
            isinstance(g, int) and g != w for g, w in zip(shape[1:], want, strict=True)
        ):
            raise ContractError(
                f"{self.path}: the graph takes windows of shape {list(shape)}, its contract "
                f"says {want[0]} samples x {want[1]} channels: a mismatched bundle"
            )
        self.heads = list(self.contract.heads)
        self._outputs = [self.contract.output_name(h) for h in self.heads]
        self.batch_threads = max(1, int(batch_threads))
        self._pool = None
        missing = set(self._outputs) - {o.name for o in self.session.get_outputs()}
        if missing:
            raise ContractError(f"{self.path}: graph lacks outputs {sorted(missing)}")

    # Windows per ONNX Runtime call: larger batches run slower per window on one core (their
    # activations outgrow the cache; bench/engine.py --batches measures it).
    MAX_BATCH = 256

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        x = check_windows(self.contract, windows)
        name, step = self.contract.input_name, self.MAX_BATCH
        if len(x) <= step:
            return dict(zip(self.heads, self.session.run(self._outputs, {name: x}), strict=True))

        if self.batch_threads > 1:  # batches of one size, a whole number of rounds
            rounds = -(-len(x) // (step * self.batch_threads))
            step = -(-len(x) // (rounds * self.batch_threads))

        def run(i: int) -> list[np.ndarray]:
            return self.session.run(self._outputs, {name: x[i : i + step]})

        starts = range(0, len(x), step)
        pool = self._threads()
        parts = list(pool.map(run, starts)) if pool else [run(i) for i in starts]
        return {h: np.concatenate([p[k] for p in parts]) for k, h in enumerate(self.heads)}

    def _threads(self):
        """With ``batch_threads`` > 1, the threads a large call's batches run on, that many at
        once (ONNX Runtime releases the GIL while it runs one; ``replay --fast``); else None."""
        if self._pool is None and self.batch_threads > 1:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(
                self.batch_threads, thread_name_prefix="gaitedge-engine"
            )
        return self._pool


def import_cudart() -> ModuleType:
    """The CUDA runtime bindings of ``cuda-python`` (``cuda.bindings.runtime``; 12.x before
    12.6 named it ``cuda.cudart``)."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError as exc:
            raise EngineUnavailableError(NO_CUDA_PYTHON) from exc
    return runtime


class CudaRuntime:
    """The few CUDA runtime calls the TensorRT engine needs, with errors checked.

    ``cuda-python`` returns ``(cudaError_t, *results)`` from every call; a non-success code
    becomes an :class:`EngineUnavailableError` naming the call (no device, driver too old).
    """

    def __init__(self, cudart: ModuleType | None = None) -> None:
        self.rt = cudart or import_cudart()
        err, count = self.rt.cudaGetDeviceCount()
        if err != self.rt.cudaError_t.cudaSuccess or count < 1:
            raise EngineUnavailableError(
                f"CUDA sees no GPU ({getattr(err, 'name', err)}): TensorRT engines need one and "
                "its driver (on a Jetson, run in the JetPack image with --runtime nvidia)"
            )

    def call(self, name: str, *args: object) -> tuple:
        err, *out = getattr(self.rt, name)(*args)
        if err != self.rt.cudaError_t.cudaSuccess:
            raise EngineUnavailableError(f"CUDA {name} failed: {getattr(err, 'name', err)}")
        return tuple(out)

    def malloc(self, nbytes: int) -> int:
        return int(self.call("cudaMalloc", nbytes)[0])

    def host_array(self, shape: tuple[int, ...]) -> tuple[int, np.ndarray]:
        """Page-locked float32 host memory (async copies need it) and a numpy view of it."""
        n = int(np.prod(shape))
        ptr = int(self.call("cudaMallocHost", n * 4)[0])
        view = np.ctypeslib.as_array((ctypes.c_float * n).from_address(ptr)).reshape(shape)
        return ptr, view

    def copy(self, dst: int, src: int, nbytes: int, kind: str, stream: object) -> None:
        """Asynchronous copy; ``kind`` is ``"HostToDevice"`` or ``"DeviceToHost"``."""
        direction = getattr(self.rt.cudaMemcpyKind, f"cudaMemcpy{kind}")
        self.call("cudaMemcpyAsync", dst, src, nbytes, direction, stream)

    def stream(self) -> object:
        return self.call("cudaStreamCreate")[0]

    def synchronize(self, stream: object) -> None:
        self.call("cudaStreamSynchronize", stream)

    def free(self, device: list[int], host: list[int], stream: object | None) -> None:
        for ptr in device:
            self.call("cudaFree", ptr)
        for ptr in host:
            self.call("cudaFreeHost", ptr)
        if stream is not None:
            self.call("cudaStreamDestroy", stream)


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError as exc:
        raise EngineUnavailableError(NO_TENSORRT) from exc
    return tensorrt


def engine_io(engine: object, trt: ModuleType) -> dict[str, tuple[str, str, tuple[int, ...]]]:
    """``{name: (mode, dtype, shape)}`` of a deserialised engine's I/O tensors (TensorRT 10)."""
    io = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        mode = "input" if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else "output"
        dtype = str(engine.get_tensor_dtype(name)).rsplit(".", 1)[-1].lower()
        io[name] = (mode, dtype, tuple(engine.get_tensor_shape(name)))
    return io


def check_engine_io(
    contract: ModelContract, io: dict[str, tuple[str, str, tuple[int, ...]]]
) -> None:
    """Raise ContractError unless the engine takes and gives exactly what the contract says."""
    cfg = contract.chain
    expected = {contract.input_name: ("input", "float", (-1, cfg.window_samples, cfg.n_channels))}
    for head, classes in contract.heads.items():
        expected[contract.output_name(head)] = ("output", "float", (-1, len(classes)))
    problems = []
    for name in sorted(set(expected) | set(io)):
        want, got = expected.get(name), io.get(name)
        if want is None or got is None:
            side = "engine" if want is None else "contract"
            problems.append(f"{name!r} only in the {side}")
        elif got[:2] != want[:2] or len(got[2]) != 3 - (want[0] == "output"):
            problems.append(f"{name!r} is {got[0]} {got[1]} {list(got[2])}, want {want}")
        elif got[2][1:] != want[2][1:] or got[2][0] not in (-1, 0):
            problems.append(f"{name!r} has shape {list(got[2])}, want [batch, *{want[2][1:]}]")
    if problems:
        raise ContractError(f"engine and contract disagree: {'; '.join(problems)}")


class TensorRTEngine:
    """A serialised TensorRT engine (``model.engine``, contract in ``model.engine.json``).

    Device and page-locked host buffers are allocated once, for the optimisation profile's
    largest batch; a larger batch runs in slices of that size. On load the engine's I/O names,
    dtypes and shapes are checked against the contract.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        trt: ModuleType | None = None,
        cudart: ModuleType | None = None,
    ) -> None:
        trt = trt or import_tensorrt()
        self.cuda = CudaRuntime(cudart)
        self.path = Path(path)
        self.contract = read_contract(self.path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self._engine is None:
            raise ContractError(f"{self.path}: TensorRT could not deserialise this engine")
        check_engine_io(self.contract, engine_io(self._engine, trt))
        name = self.contract.input_name
        self.max_batch = int(self._engine.get_tensor_profile_shape(name, 0)[2][0])
        self._context = self._engine.create_execution_context()
        self.heads = list(self.contract.heads)
        self._device: list[int] = []
        self._host: list[int] = []
        self._stream = None
        try:
            self._allocate()
        except Exception:
            self.close()
            raise

    def _allocate(self) -> None:
        cfg = self.contract.chain
        shapes = {self.contract.input_name: (self.max_batch, cfg.window_samples, cfg.n_channels)}
        for head, classes in self.contract.heads.items():
            shapes[self.contract.output_name(head)] = (self.max_batch, len(classes))
        self._buffers: dict[str, tuple[int, np.ndarray]] = {}
        for name, shape in shapes.items():
            device = self.cuda.malloc(int(np.prod(shape)) * 4)
            self._device.append(device)
            host, view = self.cuda.host_array(shape)
            self._host.append(host)
            self._buffers[name] = (device, view)
            if not self._context.set_tensor_address(name, device):
                raise ContractError(f"{self.path}: TensorRT refused an address for {name!r}")
        self._stream = self.cuda.stream()

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """One slice of at most ``max_batch`` windows."""
        batch, name = len(x), self.contract.input_name
        device, host = self._buffers[name]
        host[:batch] = x
        self.cuda.copy(device, host.ctypes.data, x.nbytes, "HostToDevice", self._stream)
        if not self._context.set_input_shape(name, x.shape):
            raise ContractError(f"TensorRT refused input shape {x.shape} (profile up to "
                                f"{self.max_batch})")  # fmt: skip
        if not self._context.execute_async_v3(int(self._stream)):
            raise RuntimeError("TensorRT inference failed")
        outputs = {}
        for head in self.heads:
            device, host = self._buffers[self.contract.output_name(head)]
            nbytes = batch * host.shape[1] * 4
            self.cuda.copy(host.ctypes.data, device, nbytes, "DeviceToHost", self._stream)
            outputs[head] = host
        self.cuda.synchronize(self._stream)
        return {h: out[:batch].copy() for h, out in outputs.items()}

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        x = check_windows(self.contract, windows)
        if not len(x):
            return {h: np.zeros((0, len(c)), np.float32) for h, c in self.contract.heads.items()}
        parts = [self._run(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
        if len(parts) == 1:
            return parts[0]
        return {h: np.concatenate([p[h] for p in parts]) for h in self.heads}

    def close(self) -> None:
        """Free the GPU buffers and the stream (also on garbage collection)."""
        device, host, stream = self._device, self._host, self._stream
        self._device, self._host, self._stream = [], [], None
        if device or host or stream is not None:
            self.cuda.free(device, host, stream)

    def __del__(self) -> None:
        # At interpreter exit the CUDA bindings may already be gone; the driver frees it all.
        with contextlib.suppress(Exception):
            self.close()


def load_engine(
    path: str | os.PathLike | None = None,
    *,
    intra_op_threads: int = 1,
    provider: Provider | str = Provider.CPU,
    batch_threads: int = 1,
) -> Engine:
    """Open a model: ``.onnx`` with ONNX Runtime on ``provider``, ``.engine``/``.plan`` with
    TensorRT; a bare file name that is not in the working directory names a shipped bundle
    (``gaitedge-tiny.onnx``). Raises ContractError (bad bundle) or EngineUnavailableError
    (library/GPU missing). ``batch_threads``: a call of more than ``OnnxEngine.MAX_BATCH``
    windows runs its batches that many at once (``replay --fast``)."""
    path = model_path(path)
    if path.suffix in ENGINE_SUFFIXES:
        if not path.exists():  # said before that TensorRT may be missing here
            raise ContractError(f"{path}: no such model file")
        return TensorRTEngine(path)
    return OnnxEngine(
        path, intra_op_threads=intra_op_threads, provider=provider, batch_threads=batch_threads
    )
