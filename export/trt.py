"""Build a TensorRT engine from an ONNX bundle, for NVIDIA GPUs and Jetsons, and check it.

    python -m export.trt --onnx model.onnx --fp16 [--int8] --out model.engine

Writes ``model.engine`` and ``model.engine.json`` (the bundle's contract, which
``gaitedge.bundle.read_contract`` reads for an engine, so ``gaitedge info`` and ``listen
--model model.engine`` configure themselves). One optimisation profile covers batch
``1..max_batch`` (optimised for 1, the streaming case; the default 256 covers ``replay --fast``
and ``bench/falls.py``, and ``gaitedge.engine.TensorRTEngine`` slices anything larger). Then the
engine is run through the runtime's own ``TensorRTEngine`` against ONNX Runtime FP32 on real
held-out windows (max |Δp| and argmax agreement; exit 1 below
``export.parity.MIN_AGREEMENT[TENSORRT]`` = 0.99), timed at batch 1 and 64, and the result
printed as one JSON line. The windows come from the datasets' held-out subjects
(``--data-root``); where no datasets are found and no ``--data-root`` is given (a Jetson container
mounts none), from the three minutes of a held-out HAPT subject that the package carries
(``gaitedge/assets/demo_hapt.csv``) through the bundle's chain; ``parity_windows`` in the JSON
says which. ``--int8`` takes the symmetric INT8 QDQ bundle
(``export.quantize``, the shipped ``gaitedge-default.onnx``), compared with its FP32 reference
(``--reference``, default ``<stem>-fp32.onnx`` beside it).

TensorRT versions differ in how precision is chosen (:func:`plan_build`):

* **TensorRT 10** (JetPack 6.x ships 10.3): explicit batch is the default; reduced precision is
  allowed with ``BuilderFlag.FP16``; INT8 comes from the QDQ nodes of the static INT8 bundle
  (explicit quantisation) with ``BuilderFlag.INT8`` set.
* **TensorRT 11**: the FP16/INT8 builder flags are gone and networks are strongly typed: the
  types in the graph decide. FP16 therefore builds from an FP16 copy of the ONNX
  (``export.quantize.convert_fp16``, float32 inputs and outputs kept) and INT8 from the QDQ
  bundle, with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``.

Without TensorRT (or cuda-python, or a GPU) the command exits with status 2 and one line
saying what is missing. Neither torch nor TensorRT is imported for ``--help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx

from gaitedge.bundle import ContractError, ModelContract, read_contract
from gaitedge.engine import EngineUnavailableError, import_tensorrt

log = logging.getLogger(__name__)

EXIT_NO_TENSORRT = 2
EXIT_PARITY = 1
LATENCY_BATCHES = (1, 64)
PACKAGED_WINDOWS = "gaitedge/assets/demo_hapt.csv"  # parity_windows without the datasets


class TrtBuildError(RuntimeError):
    """The ONNX graph could not be parsed or the engine could not be built."""


@dataclass(frozen=True)
class TrtOptions:
    fp16: bool = True
    int8: bool = False
    max_batch: int = 256
    workspace_mib: int = 256


@dataclass(frozen=True)
class BuildPlan:
    """What the installed TensorRT needs: network flags, builder flags, FP16 copy or not."""

    major: int
    strongly_typed: bool
    builder_flags: tuple[str, ...]
    convert_to_fp16: bool


def trt_major(trt: ModuleType) -> int:
    return int(str(trt.__version__).split(".")[0])


def plan_build(trt: ModuleType, opts: TrtOptions) -> BuildPlan:
    """Choose how to ask ``trt`` for the requested precision (see the module docstring)."""
    major = trt_major(trt)
    if major < 10:
        raise TrtBuildError(f"TensorRT {trt.__version__} is too old; 10 or newer is supported")
    if major >= 11 or not hasattr(trt.BuilderFlag, "FP16"):
        return BuildPlan(major, True, (), convert_to_fp16=opts.fp16)
    flags = tuple(f for f, on in (("FP16", opts.fp16), ("INT8", opts.int8)) if on)
    return BuildPlan(major, False, flags, convert_to_fp16=False)


def network_flags(trt: ModuleType, plan: BuildPlan) -> int:
    """Bit mask for ``builder.create_network`` (explicit batch is TensorRT 10's default)."""
    if not plan.strongly_typed:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def is_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type == "QuantizeLinear" for n in model.graph.node)


def _source_onnx(onnx_path: Path, plan: BuildPlan, opts: TrtOptions, tmp: Path) -> Path:
    """The ONNX file to parse: the bundle, or its FP16 copy for a strongly typed FP16 build."""
    if opts.int8 and not is_qdq(onnx.load(str(onnx_path))):
        raise TrtBuildError(
            f"{onnx_path} has no QuantizeLinear nodes: --int8 needs the static INT8 (QDQ) bundle "
            "from `python -m export.quantize --int8-static`"
        )
    if plan.convert_to_fp16 and not opts.int8:
        from export.quantize import convert_fp16

        return convert_fp16(onnx_path, tmp / "fp16.onnx")
    return onnx_path


def build_engine(
    onnx_path: Path, out: Path, opts: TrtOptions, trt: ModuleType | None = None
) -> Path:
    """Build and serialise the engine, and write its contract next to it."""
    trt = trt or import_tensorrt()
    plan = plan_build(trt, opts)
    contract = read_contract(onnx_path)
    cfg = contract.chain
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, plan))
    parser = trt.OnnxParser(network, logger)
    with tempfile.TemporaryDirectory() as tmp:
        source = _source_onnx(onnx_path, plan, opts, Path(tmp))
        if not parser.parse(source.read_bytes()):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise TrtBuildError(f"TensorRT could not parse {source}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mib << 20)
    for flag in plan.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    shape = (cfg.window_samples, cfg.n_channels)
    profile.set_shape(contract.input_name, (1, *shape), (1, *shape), (opts.max_batch, *shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TrtBuildError("TensorRT failed to build the engine (see its log above)")
    out.write_bytes(bytes(serialized))
    precision = "int8" if opts.int8 else ("fp16" if opts.fp16 else "fp32")
    record = contract.training | {"artifact": f"tensorrt-{trt.__version__}-{precision}"}
    sidecar = out.with_name(out.name + ".json")
    sidecar.write_text(replace(contract, training=record).to_json())
    log.info("TensorRT %s engine (%s) -> %s, contract -> %s", trt.__version__, plan, out, sidecar)
    return out


def reference_onnx(onnx_path: Path, reference: Path | None) -> Path:
    """The FP32 bundle to compare against: given, the input itself, or its ``-fp32`` sibling."""
    if reference is not None:
        return reference
    if not is_qdq(onnx.load(str(onnx_path))):
        return onnx_path
    sibling = onnx_path.with_name(f"{onnx_path.stem}-fp32.onnx")
    if not sibling.exists():
        raise ValueError(f"{onnx_path} is INT8: give its FP32 bundle with --reference")
    return sibling


def latency_ms(engine, windows: np.ndarray, batch: int, calls: int) -> dict[str, float]:
    """p50/p99 of ``engine.predict`` on ``batch`` real windows per call (host to host)."""
    x = np.resize(windows, (batch, *windows.shape[1:]))
    for _ in range(min(calls, 20)):
        engine.predict(x)  # warm-up: lazy CUDA/TensorRT initialisation
    times = np.empty(calls)
    for i in range(calls):
        t0 = time.perf_counter()
        engine.predict(x)
        times[i] = time.perf_counter() - t0
    ms = times * 1e3
    return {
        f"batch{batch}_p50_ms": round(float(np.percentile(ms, 50)), 4),
        f"batch{batch}_p99_ms": round(float(np.percentile(ms, 99)), 4),
    }


def verify_engine(
    engine_path: Path,
    reference: Path,
    windows: np.ndarray,
    *,
    calls: int = 1000,
    trt: ModuleType | None = None,
    cudart: ModuleType | None = None,
) -> dict:
    """Parity of the engine (through the runtime's ``TensorRTEngine``) with ONNX Runtime FP32
    on ``windows``, and its latency at batch 1 and 64."""
    from export.parity import ArtifactKind, compare_engines
    from gaitedge.engine import OnnxEngine, TensorRTEngine

    engine = TensorRTEngine(engine_path, trt=trt, cudart=cudart)
    try:
        parity = compare_engines(OnnxEngine(reference), engine, windows, ArtifactKind.TENSORRT)
        result = {"engine": str(engine_path), "max_batch": engine.max_batch}
        result |= {k: parity[k] for k in ("n_windows", "max_abs_diff", "argmax_agreement", "ok")}
        for batch in LATENCY_BATCHES:
            result |= latency_ms(engine, windows, batch, calls if batch == 1 else calls // 4)
    finally:
        engine.close()
    return result


def parity_windows(
    contract: ModelContract, data_root: Path | None, n: int
) -> tuple[np.ndarray, str]:
    """[n, W, C] held-out windows for the parity check, and where they came from: the datasets
    (``export.parity.real_windows``), else, with no ``data_root`` asked for, the package's own
    real recording (:func:`packaged_windows`)."""
    from export.parity import real_windows
    from gaitedge.datasets import DatasetError

    try:
        return real_windows(contract, data_root, n=n), "datasets"
    except DatasetError as exc:
        if data_root is not None:
            raise
        log.warning("%s: parity on the recording the package carries instead", exc)
    return packaged_windows(contract, n), PACKAGED_WINDOWS


def packaged_windows(contract: ModelContract, n: int, seed: int = 0) -> np.ndarray:
    """Up to ``n`` windows (drawn evenly, seeded) of ``gaitedge/assets/demo_hapt.csv``, a HAPT
    test subject the shipped model never trained on, through the contract's chain."""
    from gaitedge.demo import DEMO_RECORDING
    from gaitedge.preprocess import run_offline
    from gaitedge.recording import read_recording

    rec = read_recording(DEMO_RECORDING)
    data = run_offline(contract.chain, rec.timestamp_s, rec.imu).data  # [N, W, C]
    take = np.random.default_rng(seed).choice(len(data), size=min(len(data), n), replace=False)
    return np.ascontiguousarray(data[np.sort(take)], dtype=np.float32)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.trt", description=__doc__.split("\n")[0])
    p.add_argument("--onnx", type=Path, required=True, help="bundle (the QDQ one for --int8)")
    p.add_argument("--out", type=Path, required=True, help="model.engine")
    p.add_argument("--fp16", action="store_true", help="allow / build FP16")
    p.add_argument("--int8", action="store_true", help="INT8 from the bundle's QDQ nodes")
    p.add_argument("--max-batch", type=int, default=TrtOptions.max_batch)
    p.add_argument("--reference", type=Path, default=None, help="FP32 bundle for the parity check")
    p.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="hapt/ and sisfall/ folder (default: GAITEDGE_DATA_ROOT or ../shared/data, else "
        "the package's demo recording)",
    )
    p.add_argument("--windows", type=int, default=1024, help="held-out windows for parity")
    p.add_argument("--calls", type=int, default=1000, help="timed calls at batch 1")
    return p.parse_args(argv)


def run(args: argparse.Namespace, trt: ModuleType, cudart: ModuleType | None = None) -> dict:
    """Build, then verify; the one JSON record that ``main`` prints."""
    opts = TrtOptions(fp16=args.fp16, int8=args.int8, max_batch=args.max_batch)
    reference = reference_onnx(args.onnx, args.reference)
    build_engine(args.onnx, args.out, opts, trt)
    windows, source = parity_windows(read_contract(reference), args.data_root, args.windows)
    result = verify_engine(args.out, reference, windows, calls=args.calls, trt=trt, cudart=cudart)
    precision = "int8" if opts.int8 else ("fp16" if opts.fp16 else "fp32")
    record = {"tensorrt": str(trt.__version__), "precision": precision, "parity_windows": source}
    return record | result


def main(argv: list[str] | None = None, *, cudart: ModuleType | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run(args, import_tensorrt(), cudart)
    except EngineUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_TENSORRT
    except (TrtBuildError, ContractError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0 if result["ok"] else EXIT_PARITY


if __name__ == "__main__":
    sys.exit(main())
