"""One hour of real 50 Hz data through ``gaitedge replay --fast`` with the shipped model.

    python bench/replay.py --json [--model path.onnx]

Builds one hour from UCI HAPT (experiments back to back, timestamps continuous at 50 Hz), writes
it as a recording CSV, and replays it with the same library calls as ``gaitedge replay --fast``
(CSV parse, chain, batched engine, alerts, sinks). Last line:
``{"realtime_factor", "windows", "rss_growth_mb", ...}``; RSS growth is measured between 10 % of
the stream and its end, so it shows growth over time, not start-up. Also measures live cost:
4-sample chunks one window at a time, as frames arrive from a device, giving how many 50 Hz
sensors one core can serve.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import hapt_signal, rss_mb
from gaitedge.recording import Recording, read_recording, write_recording
from gaitedge.runner import measure_live, open_pipeline
from gaitedge.sources import ReplaySource

RATE_HZ = 50.0


def replay_fast(model: Path | None, csv: Path) -> dict:
    """The `replay --fast` session, with RSS sampled during the stream."""
    import asyncio

    pipeline = open_pipeline(model, None)
    start = time.perf_counter()
    source = ReplaySource(csv, fast=True)
    rss = []

    async def run() -> None:
        async with source:
            n = len(source.recording)
            async for chunk in source.chunks():
                pipeline.process(chunk)
                rss.append((float(chunk.t_s[-1]) * RATE_HZ / n, rss_mb()))

    asyncio.run(run())
    wall = time.perf_counter() - start
    at_10 = next(m for frac, m in rss if frac >= 0.1)
    return {"wall_s": wall, "windows": pipeline.stats.windows, "rss_growth_mb": rss[-1][1] - at_10}


def live_cost(model: Path | None, t: np.ndarray, x: np.ndarray) -> dict:
    """CPU cost of one live 50 Hz sensor: 4-sample chunks, windows one at a time."""
    with open_pipeline(model, None) as pipeline:  # no sinks: the pipeline's own cost
        return measure_live(pipeline, t, x, chunk_samples=4).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--model", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    n = int(args.hours * 3600 * RATE_HZ)
    t, x = hapt_signal(n)
    if len(t) < n:  # HAPT holds 6.2 h; repeat only if asked for more
        reps = -(-n // len(t))
        x = np.tile(x, (reps, 1))[:n]
        t = np.arange(n) / RATE_HZ
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "hour.csv"
        write_recording(csv, Recording(t, x))
        parse_start = time.perf_counter()
        read_recording(csv)
        parse_s = time.perf_counter() - parse_start
        fast = replay_fast(args.model, csv)
    live = live_cost(args.model, t[: 10 * 60 * 50], x[: 10 * 60 * 50])
    result = {
        "realtime_factor": round(len(t) / RATE_HZ / fast["wall_s"], 1),
        "windows": fast["windows"],
        "rss_growth_mb": round(fast["rss_growth_mb"], 2),
        "wall_s": round(fast["wall_s"], 3),
        "csv_parse_s": round(parse_s, 3),
        "live_cpu_per_sensor_second_ms": live["cpu_ms_per_sensor_second"],
        "sensors_per_core_live": live["sensors_per_core"],
        "live_latency": live["latency"],
        "model": str(args.model or "shipped"),
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    if not args.json:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
