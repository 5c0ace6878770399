"""Check that a deployment image holds what it promises; one line per problem, exit 1 if any.

    python3 deploy/image_check.py [--no-tensorrt]

Promises (deploy/Dockerfile): ONNX Runtime is the GPU build (``onnxruntime-gpu`` installed,
the CPU-only ``onnxruntime`` distribution not, CUDA execution provider compiled in); torch is
absent; TensorRT's Python bindings and cuda-python import. Nothing here needs a GPU.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import sys


def distributions() -> set[str]:
    return {(d.metadata["Name"] or "").lower() for d in md.distributions()}


def problems(
    dists: set[str], modules: set[str], providers: list[str], *, tensorrt: bool = True
) -> list[str]:
    """What is wrong with an environment holding ``dists`` (distribution names), importable
    top-level ``modules`` and ONNX Runtime ``providers``."""
    found = []
    if "onnxruntime" in dists:
        found.append("the CPU-only onnxruntime wheel is installed (over the GPU build?)")
    if "onnxruntime-gpu" not in dists:
        found.append("onnxruntime-gpu is not installed")
    if "CUDAExecutionProvider" not in providers:
        found.append(f"ONNX Runtime has no CUDA execution provider ({providers})")
    if "torch" in modules:
        found.append("torch is importable: the runtime image must stay without it")
    for needed in ("tensorrt", "cuda") if tensorrt else ():
        if needed not in modules:
            found.append(f"{needed} does not import (TensorRT engines need it)")
    return found


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--no-tensorrt", action="store_true", help="an image without TensorRT")
    args = p.parse_args()
    modules = {m for m in ("torch", "tensorrt", "cuda") if importlib.util.find_spec(m)}
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
    except ImportError:
        providers = []
    found = problems(distributions(), modules, providers, tensorrt=not args.no_tensorrt)
    for line in found:
        print(f"error: {line}", file=sys.stderr)
    if not found:
        print(f"ok: onnxruntime-gpu with {providers}; no torch")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
