"""Build a TensorRT engine from an ONNX bundle, for NVIDIA GPUs and Jetsons.

    python -m export.trt --onnx model.onnx --fp16 [--int8] --out model.engine

Writes ``model.engine`` and ``model.engine.json`` (the bundle's contract, which
``gaitedge.bundle.read_contract`` reads for an engine). One optimisation profile covers batch
``1..max_batch`` (optimised for 1, the streaming case).

TensorRT versions differ in how precision is chosen (:func:`plan_build`):

* **TensorRT 10** (JetPack 6.x ships 10.3): explicit batch is the default; reduced precision is
  allowed with ``BuilderFlag.FP16``; INT8 comes from the QDQ nodes of the static INT8 bundle
  (explicit quantisation) with ``BuilderFlag.INT8`` set.
* **TensorRT 11**: the FP16/INT8 builder flags are gone and networks are strongly typed: the
  types in the graph decide. FP16 therefore builds from an FP16 copy of the ONNX
  (``export.quantize.convert_fp16``, float32 inputs and outputs kept) and INT8 from the QDQ
  bundle, with ``NetworkDefinitionCreationFlag.STRONGLY_TYPED``.

Without TensorRT the command exits with status 2 and says how to get it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

import onnx

from gaitedge.bundle import read_contract

log = logging.getLogger(__name__)

EXIT_NO_TENSORRT = 2
NO_TENSORRT = (
    "TensorRT is not installed here. Build engines on the target: on a Jetson, JetPack 6 ships "
    "TensorRT 10 (python3 -c 'import tensorrt'); on an x86 NVIDIA GPU, `pip install tensorrt`. "
    "The .onnx bundle runs everywhere with ONNX Runtime meanwhile."
)


class TensorRTUnavailableError(RuntimeError):
    """TensorRT (the Python API) cannot be imported."""


class TrtBuildError(RuntimeError):
    """The ONNX graph could not be parsed or the engine could not be built."""


@dataclass(frozen=True)
class TrtOptions:
    fp16: bool = True
    int8: bool = False
    max_batch: int = 64
    workspace_mib: int = 256


@dataclass(frozen=True)
class BuildPlan:
    """What the installed TensorRT needs: network flags, builder flags, FP16 copy or not."""

    major: int
    strongly_typed: bool
    builder_flags: tuple[str, ...]
    convert_to_fp16: bool


def import_tensorrt() -> ModuleType:
    try:
        import tensorrt
    except ImportError as exc:
        raise TensorRTUnavailableError(NO_TENSORRT) from exc
    return tensorrt


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


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m export.trt", description=__doc__.split("\n")[0])
    p.add_argument("--onnx", type=Path, required=True, help="bundle (the QDQ one for --int8)")
    p.add_argument("--out", type=Path, required=True, help="model.engine")
    p.add_argument("--fp16", action="store_true", help="allow / build FP16")
    p.add_argument("--int8", action="store_true", help="INT8 from the bundle's QDQ nodes")
    p.add_argument("--max-batch", type=int, default=64)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    opts = TrtOptions(fp16=args.fp16, int8=args.int8, max_batch=args.max_batch)
    try:
        trt = import_tensorrt()
    except TensorRTUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_TENSORRT
    try:
        build_engine(args.onnx, args.out, opts, trt)
    except (TrtBuildError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out} (+ {args.out.name}.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
