"""Latency of the shipped model: FP32 vs INT8, batch 1, one ONNX Runtime thread.

    python bench/engine.py --json [--out bench/results/engine.json]

Last line: ``{"fp32_p50_ms", "fp32_p99_ms", "int8_p50_ms", "int8_p99_ms", "int8_speedup",
"params", "mflops", ...}``. Both bundles shipped in ``gaitedge/models`` (the INT8 default and
its FP32 reference) run the same real windows (the bundled HAPT demo recording through the
model's own chain), one window per call, in interleaved blocks so that load from other
processes falls on both alike. ``int8_speedup`` = FP32 p50 / INT8 p50 over all calls (medians:
robust to load bursts; the p99s are not, so ``*_p99_block_median_ms`` gives the median over
blocks of each block's p99, and ``int8_speedup_blocks`` the min / median / max over blocks of
the per-block p50 ratio; ``*_cpu_p50_ms`` / ``*_cpu_p99_ms`` / ``int8_cpu_speedup``: the same
from the calling thread's CPU time, which time descheduled under load does not count).
``mflops`` counts 2 FLOPs per multiply-accumulate (``export.flops``); ``seed_flops_fraction``
compares it with the seed's ~16 GFLOPs encoder.
``int8_sha256`` / ``fp32_sha256`` name the files measured, ``load_avg_1min`` / ``cpus`` the
machine's state. ``--out`` also writes the JSON to a file: ``bench/results/engine.json`` is the
one run that README and the model card quote (``export.model_card.engine_results``; checked by
``tests/test_honest_figures.py``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
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
RESULTS = Path(__file__).resolve().parent / "results" / "engine.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def demo_windows(engine: OnnxEngine) -> np.ndarray:
    rec = read_recording(DEMO_RECORDING)
    return run_offline(engine.contract.chain, rec.timestamp_s, rec.imu).data


def time_block(engine: OnnxEngine, windows: np.ndarray, start: int, n: int) -> np.ndarray:
    """[n, 2] seconds per call for ``n`` single-window calls (the engine's own predict path):
    wall time, and the calling thread's CPU time (ONNX Runtime with one intra-op thread runs on
    it), which time spent descheduled by other processes' load does not inflate."""
    out = np.empty((n, 2))
    for i in range(n):
        x = windows[(start + i) % len(windows)][None]
        c0, t0 = time.thread_time(), time.perf_counter()
        engine.predict(x)
        out[i] = time.perf_counter() - t0, time.thread_time() - c0
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
        stats[f"{name}_p50_ms"] = round(float(np.percentile(ms[:, 0], 50)), 4)
        stats[f"{name}_p99_ms"] = round(float(np.percentile(ms[:, 0], 99)), 4)
        p99s = [np.percentile(block[:, 0], 99) * 1e3 for block in parts]
        stats[f"{name}_p99_block_median_ms"] = round(float(np.median(p99s)), 4)
        stats[f"{name}_cpu_p50_ms"] = round(float(np.percentile(ms[:, 1], 50)), 4)
        stats[f"{name}_cpu_p99_ms"] = round(float(np.percentile(ms[:, 1], 99)), 4)
    stats["int8_speedup"] = round(stats["fp32_p50_ms"] / stats["int8_p50_ms"], 2)
    stats["int8_cpu_speedup"] = round(stats["fp32_cpu_p50_ms"] / stats["int8_cpu_p50_ms"], 2)
    pairs = zip(times["fp32"], times["int8"], strict=True)
    ratios = [np.median(f[:, 0]) / np.median(i[:, 0]) for f, i in pairs]
    stats["int8_speedup_blocks"] = [round(float(v), 2) for v in np.percentile(ratios, [0, 50, 100])]
    stats["calls_per_model"] = blocks * per_block
    return stats


# ``--batches``: the shipped INT8 model in batches (``OnnxEngine.predict``, which splits a batch
# into ONNX Runtime calls of at most ``OnnxEngine.MAX_BATCH``): CPU µs per window at each batch
# size, and ONNX Runtime session options against the engine's own (graph optimisation level,
# the CPU memory arena, memory patterns) at MAX_BATCH, in interleaved rounds, the best kept.
BATCHES = (1, 16, 64, 256, 1024, 4096)
SESSION_VARIANTS = ("engine", "optimisation_basic", "optimisation_extended", "no_memory_arena",
                    "no_memory_pattern")  # fmt: skip


def _session(path: Path, variant: str):
    """An ONNX Runtime session as ``OnnxEngine`` opens it, with one option changed."""
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads = 1, 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    level = ort.GraphOptimizationLevel
    if variant == "optimisation_basic":
        o.graph_optimization_level = level.ORT_ENABLE_BASIC
    elif variant == "optimisation_extended":
        o.graph_optimization_level = level.ORT_ENABLE_EXTENDED
    elif variant == "no_memory_arena":
        o.enable_cpu_mem_arena = False
    elif variant == "no_memory_pattern":
        o.enable_mem_pattern = False
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def us_per_window(engine: OnnxEngine, x: np.ndarray, batch: int) -> float:
    """CPU µs per window for ``x`` scored ``batch`` windows per ``predict``."""
    start = time.process_time()
    for i in range(0, len(x), batch):
        engine.predict(x[i : i + batch])
    return (time.process_time() - start) / len(x) * 1e6


def measure_batches(path: Path, rounds: int, n: int = 8192) -> dict:
    engine = OnnxEngine(path)
    w = demo_windows(engine)
    x = np.ascontiguousarray(np.resize(w, (n, *w.shape[1:])))
    sessions = {v: engine.session if v == "engine" else _session(path, v) for v in SESSION_VARIANTS}
    by_batch: dict[int, list[float]] = {b: [] for b in BATCHES}
    by_variant: dict[str, list[float]] = {v: [] for v in SESSION_VARIANTS}
    us_per_window(engine, x[:2048], 256)  # warm-up
    for _ in range(rounds):
        for b in BATCHES:
            by_batch[b].append(us_per_window(engine, x[: n // 4] if b == 1 else x, b))
        for v, session in sessions.items():
            engine.session = session
            by_variant[v].append(us_per_window(engine, x, engine.MAX_BATCH))
        engine.session = sessions["engine"]
    return {
        "us_per_window": {str(b): round(min(v), 1) for b, v in by_batch.items()},
        "session_options_us_per_window": {k: round(min(v), 1) for k, v in by_variant.items()},
        "max_batch": engine.MAX_BATCH,
        "windows_per_run": n,
        "rounds": rounds,
        "intra_op_threads": 1,
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="INT8 bundle")
    p.add_argument("--fp32", type=Path, default=FP32_REFERENCE, help="its FP32 reference")
    p.add_argument("--blocks", type=int, default=20)
    p.add_argument("--per-block", type=int, default=500)
    p.add_argument("--out", type=Path, default=None, help=f"also write the JSON here ({RESULTS})")
    p.add_argument("--batches", action="store_true", help="batch sizes and session options")
    p.add_argument("--rounds", type=int, default=3, help="--batches: interleaved rounds")
    args = p.parse_args()
    if args.batches:
        print(json.dumps(measure_batches(args.model, args.rounds)))
        return
    load = os.getloadavg()[0]
    result = measure(args.model, args.fp32, args.blocks, args.per_block)
    cost = count_cost(args.fp32)
    result |= {
        "params": cost.params,
        "mflops": round(cost.mflops, 3),
        "seed_flops_fraction": round(cost.flops / SEED_ENCODER_FLOPS, 6),
        "batch": 1,
        "intra_op_threads": 1,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "cpus": os.cpu_count(),
        "load_avg_1min": round(load, 2),
        "int8_model": args.model.name,
        "int8_sha256": sha256(args.model),
        "fp32_model": args.fp32.name,
        "fp32_sha256": sha256(args.fp32),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if not args.json:
        for k, v in result.items():
            print(f"{k:<22} {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
