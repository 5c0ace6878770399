"""Latency of the shipped model: FP32 vs INT8, batch 1, one ONNX Runtime thread.

    python bench/engine.py --json

Last line: ``{"fp32_p50_ms", "fp32_p99_ms", "int8_p50_ms", "int8_p99_ms", "int8_speedup",
"params", "mflops", ...}``. Both bundles shipped in ``gaitedge/models`` (the INT8 default and
its FP32 reference) run the same real windows (the bundled HAPT demo recording through the
model's own chain), one window per call, in interleaved blocks so that load from other
processes falls on both alike. ``int8_speedup`` = FP32 p50 / INT8 p50. ``mflops`` counts 2
FLOPs per multiply-accumulate (``export.flops``); ``seed_flops_fraction`` compares it with the
seed's ~16 GFLOPs encoder.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from export.flops import count_cost
from gaitedge.demo import DEMO_RECORDING
from gaitedge.engine import DEFAULT_MODEL, OnnxEngine
from gaitedge.preprocess import run_offline
from gaitedge.recording import read_recording

FP32_REFERENCE = DEFAULT_MODEL.with_name("gaitedge-default-fp32.onnx")
SEED_ENCODER_FLOPS = 16e9


def demo_windows(engine: OnnxEngine) -> np.ndarray:
    rec = read_recording(DEMO_RECORDING)
    return run_offline(engine.contract.chain, rec.timestamp_s, rec.imu).data


def time_block(engine: OnnxEngine, windows: np.ndarray, start: int, n: int) -> np.ndarray:
    """Seconds per call for ``n`` single-window calls (the engine's own predict path)."""
    out = np.empty(n)
    for i in range(n):
        x = windows[(start + i) % len(windows)][None]
        t0 = time.perf_counter()
        engine.predict(x)
        out[i] = time.perf_counter() - t0
    return out


def measure(int8_path: Path, fp32_path: Path, blocks: int, per_block: int) -> dict:
    engines = {"int8": OnnxEngine(int8_path), "fp32": OnnxEngine(fp32_path)}
    windows = demo_windows(engines["int8"])
    times: dict[str, list[np.ndarray]] = {k: [] for k in engines}
    for engine in engines.values():
        time_block(engine, windows, 0, 300)  # warm-up
    for b in range(blocks):
        for name, engine in engines.items():
            times[name].append(time_block(engine, windows, b * per_block, per_block))
    stats = {}
    for name, parts in times.items():
        ms = np.concatenate(parts) * 1e3
        stats[f"{name}_p50_ms"] = round(float(np.percentile(ms, 50)), 4)
        stats[f"{name}_p99_ms"] = round(float(np.percentile(ms, 99)), 4)
    stats["int8_speedup"] = round(stats["fp32_p50_ms"] / stats["int8_p50_ms"], 2)
    stats["calls_per_model"] = blocks * per_block
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="INT8 bundle")
    p.add_argument("--fp32", type=Path, default=FP32_REFERENCE, help="its FP32 reference")
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--per-block", type=int, default=500)
    args = p.parse_args()
    result = measure(args.model, args.fp32, args.blocks, args.per_block)
    cost = count_cost(args.fp32)
    result |= {
        "params": cost.params,
        "mflops": round(cost.mflops, 3),
        "seed_flops_fraction": round(cost.flops / SEED_ENCODER_FLOPS, 6),
        "batch": 1,
        "intra_op_threads": 1,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
    }
    if not args.json:
        for k, v in result.items():
            print(f"{k:<22} {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
