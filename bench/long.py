"""A week of wear: a 7-day Axivity AX6 recording summarised in bounded memory.

The recording is built as an AX6 writes its ``.cwa`` (``firmware_bridge.exports.axivity``,
100 Hz, int16), piece by piece and never whole in memory: held-out subjects' real signals
(HAPT test experiments and SisFall test trials of daily activities, resampled to the AX6's
100 Hz) cycled through each day's wear, one held-out SisFall fall trial a day (15:45), and
non-wear stretches (a night off every day, two daytime breaks) of a device resting on a
table: 1 g along a random tilt with the AX6's noise (BMI160 data sheet: 180 µg/√Hz,
0.007 °/s/√Hz: about 1.3 mg and 0.05 °/s rms at 50 Hz bandwidth). The non-wear stretches are
synthetic (no real week-long recording with its wear log is public); every worn second is real.

A child process pinned to one core then runs what ``gaitedge summarize`` runs (calibration
pass, then the ``replay --fast`` pipeline with the non-wear detector), and reports its wall
time, peak RSS and RSS growth per hour of data (a linear fit of RSS sampled once a second,
after the first tenth), and the non-wear minutes found against those inserted.

    python bench/long.py --days 0.25        # six hours first
    python bench/long.py --json             # the week
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import data_root, rss_mb
from firmware_bridge.exports import axivity as ax6
from firmware_bridge.exports._common import resample
from gaitedge.units import STANDARD_GRAVITY_M_S2 as G

RATE_HZ = ax6.RATE_HZ
DAY_S = 86400.0
SECTORS_PER_WRITE = 4000  # 160 000 samples (26 min) per write
FALL_EVERY = 17  # fall trials taken: one in 17 of the held-out subjects' (35 of 600)
FALL_AT_S = 6.5 * 3600  # a fall every day at 15:45
NOISE_ACC_MG = 1.3
NOISE_GYRO_DPS = 0.05
# Non-wear, in seconds from the recording's start (09:15 device-local): every night
# 23:00-06:30, and two daytime breaks (day 2 13:15-15:15, day 4 17:15-18:45).
NIGHT_START_S, NIGHT_S = 13.75 * 3600, 7.5 * 3600
BREAKS = [(1 * DAY_S + 4 * 3600, 2 * 3600), (3 * DAY_S + 8 * 3600, 1.5 * 3600)]


def nonwear_schedule(days: float) -> list[tuple[float, float]]:
    """The inserted non-wear stretches ``(start_s, end_s)``, within ``days``."""
    total = days * DAY_S
    spans = [(d * DAY_S + NIGHT_START_S, d * DAY_S + NIGHT_START_S + NIGHT_S) for d in range(8)]
    spans += [(a, a + n) for a, n in BREAKS]
    return sorted((a, min(b, total)) for a, b in spans if a < total)


def worn_clips(root: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Held-out subjects' recordings at 100 Hz, float32 [N, 6] each: HAPT experiments
    interleaved with runs of SisFall trials of daily activities (cycled through the wear), and
    SisFall fall trials (one inserted a day)."""
    from gaitedge.datasets import dataset_split, hapt_recordings, sisfall_recordings

    def at_rate(rec) -> np.ndarray:
        _, x = resample(rec.timestamp_s, rec.imu, RATE_HZ)
        return x.astype(np.float32)

    hapt = [at_rate(r) for r in hapt_recordings(root, dataset_split("hapt", root).test)]
    trials = list(sisfall_recordings(root, dataset_split("sisfall", root).test))
    sis = [at_rate(r) for r in trials if not r.is_fall]
    falls = [at_rate(r) for r in trials if r.is_fall][::FALL_EVERY]
    clips, per = [], max(1, len(sis) // max(1, len(hapt)))
    for i, h in enumerate(hapt):
        clips.append(h)
        clips.extend(sis[i * per : (i + 1) * per])
    return clips, falls


def still_device(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 6] a device at rest on a table, tilted at random."""
    up = rng.normal(size=3)
    up /= np.linalg.norm(up)
    x = np.empty((n, 6))
    x[:, :3] = G * (up + rng.normal(0, NOISE_ACC_MG / 1000.0, (n, 3)))
    x[:, 3:] = np.deg2rad(rng.normal(0, NOISE_GYRO_DPS, (n, 3)))
    return x


def build(path: Path, days: float, root: Path, seed: int = 0) -> dict:
    """Write the recording to ``path`` piece by piece; returns what was inserted."""
    rng = np.random.default_rng(seed)
    clips, falls = worn_clips(root)
    n_total = int(days * DAY_S * RATE_HZ) // ax6.AX6_PER_SECTOR * ax6.AX6_PER_SECTOR
    nonwear = nonwear_schedule(days)
    fall_at = {
        int((d * DAY_S + FALL_AT_S) * RATE_HZ): falls[d % len(falls)]
        for d in range(int(np.ceil(days)))
        if (d * DAY_S + FALL_AT_S) * RATE_HZ + len(falls[d % len(falls)]) < n_total
    }
    marks = {0, n_total} | {int(a * RATE_HZ) for s in nonwear for a in s}
    marks = sorted(marks | set(fall_at) | {a + len(x) for a, x in fall_at.items()})
    off = {int(a * RATE_HZ) for a, _ in nonwear}
    clip, at, sector, pending = 0, 0, 0, np.zeros((0, 6))
    step = SECTORS_PER_WRITE * ax6.AX6_PER_SECTOR
    with path.open("wb") as f:
        f.write(ax6.ax6_header())
        for a, b in itertools.pairwise(marks):
            for lo in range(a, b, step):
                n = min(step, b - lo)
                if a in off:
                    x = still_device(n, rng)
                elif a in fall_at:
                    x = fall_at[a][lo - a : lo - a + n].astype(np.float64)
                else:
                    parts = []
                    while n > 0:
                        piece = clips[clip][at : at + n]
                        parts.append(piece)
                        n -= len(piece)
                        at += len(piece)
                        if at >= len(clips[clip]):
                            clip, at = (clip + 1) % len(clips), 0
                    x = np.concatenate(parts).astype(np.float64)
                x = np.concatenate([pending, x])
                whole = len(x) // ax6.AX6_PER_SECTOR * ax6.AX6_PER_SECTOR
                f.write(ax6.ax6_sectors(x[:whole], first=sector))
                sector += whole // ax6.AX6_PER_SECTOR
                pending = x[whole:]
    minutes = sum(b - a for a, b in nonwear) / 60.0
    spans = [(a / RATE_HZ, (a + len(x)) / RATE_HZ) for a, x in sorted(fall_at.items())]
    return {
        "samples": sector * ax6.AX6_PER_SECTOR,
        "nonwear": nonwear,
        "nonwear_min": minutes,
        "falls": spans,
    }


def measure(path: Path, png: Path | None, calibrate_first: bool = False) -> dict:
    """What ``gaitedge summarize`` runs, in this process (pinned to one core by the caller):
    from a cold start, the mounting calibrated online (``calibrate_first``: a first pass over
    the whole file calibrates it, as ``summarize --calibrate-first`` does: look-ahead)."""
    from gaitedge.formats import open_chunks
    from gaitedge.runner import calibrate_chunks, open_pipeline
    from gaitedge.summary import WallClock, summarize

    rss, done = [], threading.Event()

    def sample() -> None:
        while not done.wait(1.0):
            rss.append((time.perf_counter(), rss_mb()))

    watcher = threading.Thread(target=sample, daemon=True)
    start, cpu = time.perf_counter(), time.process_time()
    watcher.start()
    with open_pipeline(None, None) as pipe:
        calibrated = "online, from a cold start (as summarize runs by default)"
        if calibrate_first:
            pairs = ((c.timestamp_s, c.imu) for c in open_chunks(path))
            calibrated = calibrate_chunks(pipe, path.name, pairs)
        stream = open_chunks(path)
        clock = WallClock.of(float(stream.first.timestamp_s[0]), local_clock=stream.local_clock)
        summary = summarize(
            pipe, stream, name="a week of wear (bench/long.py)", clock=clock, device=path.name
        )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    done.set()
    if png is not None:
        from gaitedge.summary import plot_week

        png.parent.mkdir(parents=True, exist_ok=True)
        plot_week(summary, png)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "calibration": calibrated,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "rss": [(t - start, m) for t, m in rss],
        "duration_s": summary.duration_s,
        "nonwear": summary.nonwear,
        "totals_min": summary.totals(),
        "falls": [f["t_s"] for f in summary.falls],
    }


def overlap_s(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(y1, z1) - max(y0, z0)) for y0, y1 in a for z0, z1 in b)


def report(days: float, built: dict, run: dict, build_s: float, file_mb: float) -> dict:
    wall = run["wall_s"]
    rtf = run["duration_s"] / wall
    # RSS growth per hour of data: a line through RSS against data time, after the first 10 %.
    pts = [(t * rtf / 3600.0, m) for t, m in run["rss"] if t >= 0.1 * wall]
    slope = float(np.polyfit(*zip(*pts, strict=True), 1)[0]) if len(pts) >= 3 else float("nan")
    found = sum(b - a for a, b in run["nonwear"]) / 60.0
    hit = overlap_s(run["nonwear"], built["nonwear"]) / 60.0
    inserted = built["nonwear_min"]
    return {
        "days": days,
        "samples": built["samples"],
        "wall_s": round(wall, 1),
        "realtime_factor": round(rtf, 1),
        "peak_rss_mb": round(run["peak_rss_mb"], 1),
        "rss_per_hour_mb": round(slope, 4),
        "nonwear_minutes_error": round(abs(found - inserted) / inserted, 4) if inserted else None,
        "nonwear_inserted_min": round(inserted, 1),
        "nonwear_found_min": round(found, 1),
        "nonwear_false_min": round(found - hit, 1),  # found where the device was worn
        "falls_inserted": len(built["falls"]),
        "falls_found": sum(any(a <= t <= b for t in run["falls"]) for a, b in built["falls"]),
        "falls_elsewhere": sum(
            not any(a <= t <= b for a, b in built["falls"]) for t in run["falls"]
        ),
        "totals_min": run["totals_min"],
        "calibration": run["calibration"],
        "file_mb": round(file_mb, 1),
        "build_s": round(build_s, 1),
        "cpu_s": round(run["cpu_s"], 1),
        "realtime_factor_cpu": round(run["duration_s"] / run["cpu_s"], 1),
        "machine": f"{os.cpu_count()} cores, one used, load {os.getloadavg()[0]:.1f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--png", type=Path, help="also draw the week's picture here")
    parser.add_argument("--keep", type=Path, help="keep the .cwa here instead of a temp file")
    parser.add_argument(
        "--calibrate-first",
        action="store_true",
        help="calibrate on a first pass over the file (summarize --calibrate-first: look-ahead; "
        "the figures before 2026-12-07 were taken so)",
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args()
    if args.measure is not None:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        run = measure(args.measure, args.png, args.calibrate_first)
        print(json.dumps(run))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "week.cwa"
        start = time.perf_counter()
        built = build(path, args.days, data_root())
        build_s = time.perf_counter() - start
        env = os.environ | {
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        cmd = [sys.executable, __file__, "--measure", str(path)]
        if args.calibrate_first:
            cmd.append("--calibrate-first")
        if args.png is not None:
            cmd += ["--png", str(args.png)]
        child = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if child.returncode:
            sys.exit(f"the measured run failed:\n{child.stderr}")
        run = json.loads(child.stdout.strip().splitlines()[-1])
        out = report(args.days, built, run, build_s, path.stat().st_size / 2**20)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:<24} {value}")


if __name__ == "__main__":
    main()
