"""Streaming signal chain vs a bare ``scipy.signal.sosfilt`` call, on real HAPT data.

    python bench/preprocess.py --json

Last line: ``{"chunk_samples", "chain_vs_sosfilt", "stream_offline_max_abs_diff", "samples_per_s",
...}``. ``chain_vs_sosfilt`` is the chain's time per chunk (resample + filter + gravity + normalise
+ window) over one bare order-4 ``sosfilt`` call with ``zi`` on the same [chunk, 6] array, both
measured in this run.

``repair_samples_per_s``: ``repair_timestamps`` on one hour at 100 Hz packed three samples to a
stamp (two thirds of the rows tied, as a MetaBase export); ``repair_loop_samples_per_s`` is the
per-sample loop that repaired every chunk with a tie before, on the same stream in this run, and
``repair_identical`` says both gave the same stamps bit for bit.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import hapt_signal
from gaitedge.preprocess import (
    ChainConfig,
    StreamingChain,
    TimestampRepair,
    repair_timestamps,
    run_offline,
)

REPAIR_RATE_HZ = 100.0
REPAIR_PACKET_SAMPLES = 3  # one stamp per packet of three: two thirds of the rows tied


def time_chain(cfg: ChainConfig, t: np.ndarray, x: np.ndarray, chunk: int) -> float:
    """Seconds per chunk of the streaming chain over the whole signal."""
    chain = StreamingChain(cfg)
    n = len(t) // chunk
    start = time.perf_counter()
    for i in range(n):
        chain.process(t[i * chunk : (i + 1) * chunk], x[i * chunk : (i + 1) * chunk])
    return (time.perf_counter() - start) / n


def time_sosfilt(x: np.ndarray, chunk: int, repeats: int) -> float:
    sos = signal.butter(4, 20.0, fs=50.0, output="sos")
    zi = np.zeros((sos.shape[0], 2, 6))
    block = x[:chunk]
    start = time.perf_counter()
    for _ in range(repeats):
        _, zi = signal.sosfilt(sos, block, axis=0, zi=zi)
    return (time.perf_counter() - start) / repeats


def max_stream_offline_diff(cfg: ChainConfig, t: np.ndarray, x: np.ndarray, seed: int) -> float:
    offline = run_offline(cfg, t, x).data
    chain, parts, i = StreamingChain(cfg), [], 0
    rng = np.random.default_rng(seed)
    while i < len(t):
        n = int(rng.integers(1, 64))
        parts.append(chain.process(t[i : i + n], x[i : i + n]).data)
        i += n
    streamed = np.concatenate(parts)
    if streamed.shape != offline.shape:
        return float("inf")
    return float(np.abs(streamed - offline).max())


class _LoopRepair(TimestampRepair):
    """The baseline: every chunk that is not strictly increasing repaired one sample at a time."""

    def _block(self, t_raw: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = t_raw + self._offset
        newest = -np.inf if self._held_t is None else self._held_t
        if t[0] > newest and (len(t) == 1 or (np.diff(t) > 0).all()):
            return self._increasing(t, x)
        return self._loop(t_raw, x)


def packed_hour(x: np.ndarray) -> np.ndarray:
    """Stamps of one hour at ``REPAIR_RATE_HZ``, each packet stamped with its last sample's time."""
    k = REPAIR_PACKET_SAMPLES
    t = np.arange(len(x) // k * k) / REPAIR_RATE_HZ
    return np.repeat(t[k - 1 :: k], k)


def time_repair(t: np.ndarray, x: np.ndarray) -> dict:
    """Samples/s of ``repair_timestamps`` vs the per-sample loop, best of 3, interleaved."""

    def loop() -> np.ndarray:
        rep = _LoopRepair()
        return np.concatenate([rep.process(t, x)[0], rep.flush()[0]])

    fast_s, loop_s = [], []
    for _ in range(3):
        start = time.perf_counter()
        fast_t, _, _ = repair_timestamps(t, x)
        fast_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        loop_t = loop()
        loop_s.append(time.perf_counter() - start)
    return {
        "repair_samples_per_s": round(len(t) / min(fast_s)),
        "repair_loop_samples_per_s": round(len(t) / min(loop_s)),
        "repair_speedup": round(min(loop_s) / min(fast_s), 1),
        "repair_identical": bool(np.array_equal(fast_t, loop_t)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--chunk-samples", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200_000)
    args = parser.parse_args()
    t, x = hapt_signal(args.samples)
    _, hour_x = hapt_signal(int(3600 * REPAIR_RATE_HZ))  # real values; stamps made 100 Hz
    n_ch = len(ChainConfig().channels)
    cfg = ChainConfig(norm_mean=(0.1,) * n_ch, norm_std=(2.0,) * n_ch)
    # Interleave the two measurements so both see the same machine load.
    chain_s, sos_s = [], []
    for _ in range(3):
        sos_s.append(time_sosfilt(x, args.chunk_samples, 5000))
        chain_s.append(time_chain(cfg, t, x, args.chunk_samples))
    chain_best, sos_best = min(chain_s), min(sos_s)
    result = {
        "chunk_samples": args.chunk_samples,
        "chain_vs_sosfilt": round(chain_best / sos_best, 3),
        "stream_offline_max_abs_diff": max_stream_offline_diff(cfg, t[:50_000], x[:50_000], 0),
        "samples_per_s": round(args.chunk_samples / chain_best),
        "chain_us_per_chunk": round(chain_best * 1e6, 2),
        "sosfilt_us_per_call": round(sos_best * 1e6, 2),
        "offline_samples_per_s": round(len(t) / _time_offline(cfg, t, x)),
        **time_repair(packed_hour(hour_x), hour_x),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
    }
    if not args.json:
        for key, value in result.items():
            print(f"{key:>30}: {value}")
    print(json.dumps(result))


def _time_offline(cfg: ChainConfig, t: np.ndarray, x: np.ndarray) -> float:
    start = time.perf_counter()
    run_offline(cfg, t, x)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
