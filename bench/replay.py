"""One hour of real 50 Hz data through ``gaitedge replay --fast`` with the shipped model.

    python bench/replay.py --json [--model path.onnx]

Builds one hour from UCI HAPT (experiments back to back, timestamps continuous at 50 Hz), writes
it as a recording CSV, and replays it with the same library calls as ``gaitedge replay --fast``
(CSV parse, chain, batched engine, alerts, sinks), in the shipped chunks
(``FAST_CHUNK_SAMPLES``) with a large engine call's batches on ``batch_threads`` threads
(``gaitedge.runner.fast_batch_threads``: the cores there are, at most 4) and, as baselines in
the same run, in the 4096-sample chunks of before and with the engine on one thread
(``realtime_factor_one_thread``) (``--rounds`` runs of each, interleaved; the best of each is
reported). Last line: ``{"realtime_factor", "realtime_factor_cpu", "windows",
"rss_growth_mb", ...}`` (``realtime_factor``: recording time over wall time; ``_cpu``: over the
process's CPU time, all threads); RSS growth is measured between 10 % of the stream and its
end, so it shows growth over time, not start-up.

Also measures live cost, as frames arrive from devices (4-sample frames, one tick per frame):
one device (``sensors_per_core_live``), and ``--devices`` devices side by side, each tick's
frames through one ``Pipeline.process_many`` (one engine call: ``sensors_per_core_live_batched``,
what ``listen`` does with several devices) against one ``Pipeline.process`` per frame in the
same run (``sensors_per_core_live_per_device``). These start cold: over their first minutes
each device's mounting calibrates and the cold-start model runs beside it (two models). The
steady state, ``sensors_per_core_live_stored``: the ``--devices`` devices batched, each
restored from the estimate a first calibration stored (what the service runs after a device's
first walk). Sensors per core = 1 / CPU per sensor-second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import hapt_signal, rss_mb
from gaitedge.recording import Recording, read_recording, write_recording
from gaitedge.runner import fast_batch_threads, measure_live, open_pipeline
from gaitedge.sources import ReplaySource
from gaitedge.sources.replay import FAST_CHUNK_SAMPLES

RATE_HZ = 50.0
BEFORE_CHUNK_SAMPLES = 4096  # replay --fast's chunks before (the baseline)


def replay_fast(
    model: Path | None, csv: Path, n: int, chunk_samples: int, batch_threads: int | None = None
) -> dict:
    """The `replay --fast` session of ``csv`` (``n`` samples), with RSS sampled during it: its
    engine calls on ``batch_threads`` (default: as `gaitedge replay --fast` runs them)."""
    import asyncio

    threads = fast_batch_threads() if batch_threads is None else batch_threads
    pipeline = open_pipeline(model, None, batch_threads=threads)
    start, cpu = time.perf_counter(), time.process_time()
    source = ReplaySource(csv, fast=True, fast_chunk_samples=chunk_samples)
    rss = []

    async def run() -> None:
        async with source:
            async for chunk in source.chunks():
                pipeline.process(chunk)
                rss.append((float(chunk.t_s[-1]) * RATE_HZ / n, rss_mb()))

    asyncio.run(run())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    at_10 = next(m for frac, m in rss if frac >= 0.1)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "windows": pipeline.stats.windows,
        "rss_growth_mb": rss[-1][1] - at_10,
    }


def live_cost(
    model: Path | None,
    t: np.ndarray,
    x: np.ndarray,
    devices: int = 1,
    batched: bool = True,
    mount_file: Path | None = None,
) -> dict:
    """CPU cost of live 50 Hz sensors: 4-sample frames, one tick per frame; each device from
    a cold start, or from ``mount_file``'s stored estimate (:func:`stored_estimates`)."""
    # no sinks: the pipeline's own cost
    with open_pipeline(model, None, mount_file=mount_file) as pipeline:
        cost = measure_live(pipeline, t, x, chunk_samples=4, devices=devices, batched=batched)
        return cost.to_dict()


def stored_estimates(model: Path | None, t, x, devices: int, path: Path) -> Path:
    """A mount file as the service keeps one after each device's first calibration: the
    estimate the shipped pipeline reaches on the recording's first 10 minutes (postures, then
    walking), stored under every device name ``measure_live`` gives (``bench``, ``bench0``...)."""
    from gaitedge.sources.base import SampleChunk

    with open_pipeline(model, None, mount_file=path) as pipeline:
        for a in range(0, 30_000, 4096):
            chunk = SampleChunk(
                "calib", t[a : a + 4096], x[a : a + 4096], 0.0, new_connection=a == 0
            )
            pipeline.process(chunk)
        if not pipeline.devices["calib"].chain.mounting.calibrated:
            raise SystemExit("the first 10 minutes did not calibrate the mounting")
    entry = json.loads(path.read_text())["calib"]
    names = ["bench"] if devices == 1 else [f"bench{d}" for d in range(devices)]
    path.write_text(json.dumps(dict.fromkeys(names, entry)))
    return path


def best(runs: list[dict], key: str) -> dict:
    return min(runs, key=lambda r: r[key])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--model", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each, interleaved")
    parser.add_argument("--devices", type=int, default=50, help="live devices side by side")
    parser.add_argument("--live-minutes", type=float, default=2.0, help="of each device")
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
        # (chunk samples, engine threads): as shipped, the chunks of before, one engine thread
        shipped, one_thread = (FAST_CHUNK_SAMPLES, None), (FAST_CHUNK_SAMPLES, 1)
        runs: dict[tuple, list[dict]] = {
            shipped: [],
            (BEFORE_CHUNK_SAMPLES, None): [],
            one_thread: [],
        }
        for _ in range(args.rounds):
            for (chunk_samples, threads), done in runs.items():
                done.append(replay_fast(args.model, csv, len(t), chunk_samples, threads))
    fast = best(runs[shipped], "wall_s")
    before = best(runs[(BEFORE_CHUNK_SAMPLES, None)], "cpu_s")
    single = best(runs[one_thread], "wall_s")
    m = int(args.live_minutes * 60 * RATE_HZ)
    live = live_cost(args.model, t[: 10 * 60 * 50], x[: 10 * 60 * 50])
    many: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(args.rounds):
        for batched, done in many.items():
            done.append(live_cost(args.model, t[:m], x[:m], args.devices, batched))
    per_device = best(many[False], "cpu_ms_per_sensor_second")
    batched = best(many[True], "cpu_ms_per_sensor_second")
    # The steady state: every device restored from its stored estimate (no cold-start model).
    with tempfile.TemporaryDirectory() as tmp:
        stored = stored_estimates(args.model, t, x, args.devices, Path(tmp) / "mount.json")
        kept = [live_cost(args.model, t[:m], x[:m], args.devices, True, stored)
                for _ in range(args.rounds)]  # fmt: skip
    kept_best = best(kept, "cpu_ms_per_sensor_second")
    hour_s = len(t) / RATE_HZ
    result = {
        "realtime_factor": round(hour_s / fast["wall_s"], 1),
        "realtime_factor_cpu": round(hour_s / fast["cpu_s"], 1),
        "fast_chunk_samples": FAST_CHUNK_SAMPLES,
        "realtime_factor_cpu_4096": round(hour_s / before["cpu_s"], 1),
        "batch_threads": fast_batch_threads(),
        "realtime_factor_one_thread": round(hour_s / single["wall_s"], 1),
        "realtime_factor_cpu_one_thread": round(hour_s / single["cpu_s"], 1),
        "windows": fast["windows"],
        "rss_growth_mb": round(fast["rss_growth_mb"], 2),
        "wall_s": round(fast["wall_s"], 3),
        "csv_parse_s": round(parse_s, 3),
        "live_cpu_per_sensor_second_ms": live["cpu_ms_per_sensor_second"],
        "sensors_per_core_live": live["sensors_per_core"],
        "live_devices": args.devices,
        "sensors_per_core_live_per_device": per_device["sensors_per_core"],
        "sensors_per_core_live_batched": batched["sensors_per_core"],
        "live_batching_gain": round(
            per_device["cpu_ms_per_sensor_second"] / batched["cpu_ms_per_sensor_second"], 2
        ),
        "sensors_per_core_live_stored": kept_best["sensors_per_core"],
        "live_latency": live["latency"],
        "live_latency_batched": batched["latency"],
        "model": str(args.model or "shipped"),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "load": round(os.getloadavg()[0], 1),
    }
    if not args.json:
        for key, value in result.items():
            print(f"{key:>32}: {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
