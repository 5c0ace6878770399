"""Streaming signal chain vs a bare ``scipy.signal.sosfilt`` call, on real HAPT data.

    python bench/preprocess.py --json

Last line: ``{"chunk_samples", "chain_vs_sosfilt", "stream_offline_max_abs_diff", "samples_per_s",
...}``. ``chain_vs_sosfilt`` is the chain's time per chunk (resample + filter + gravity + normalise
+ window) over one bare order-4 ``sosfilt`` call with ``zi`` on the same [chunk, 6] array, both
measured in this run.
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
from gaitedge.preprocess import ChainConfig, StreamingChain, run_offline


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.add_argument("--chunk-samples", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200_000)
    args = parser.parse_args()
    t, x = hapt_signal(args.samples)
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
