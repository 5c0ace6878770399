"""Our small implementations against the libraries that could replace them (issue 14, item 6).

    python bench/libraries.py --json

* Latency histogram: the 161 fixed log-spaced bins ``gaitedge.pipeline.LatencyHistogram`` had
  (:class:`FixedLogBins`, kept here as the baseline) vs ``LatencyHistogram`` now, on HdrHistogram
  (1 µs .. 100 s, 2 significant figures), per ``add``, on the same 100 000 latencies drawn like
  the pipeline's (log-normal around 0.1 ms), and their p50/p99 against the exact values.
* LR schedule: ``train.engine.lr_at`` (linear warmup, cosine decay) vs the same schedule built
  from ``torch.optim.lr_scheduler`` (LinearLR then CosineAnnealingLR in a SequentialLR), max
  relative difference over a 2000-step run with 100 warmup steps.
* Webhook retry: import time of urllib3 and tenacity in a fresh interpreter (the sink uses the
  standard library only).

Last line: ``{"hist_bins_us", "hist_hdr_us", "hist_p99_bins_ms", "hist_p99_hdr_ms",
"lr_max_rel_diff", "urllib3_import_s", "tenacity_import_s"}``. Needs hdrhistogram, urllib3 and
tenacity installed (hdrhistogram is a dependency of gaitedge; urllib3 and tenacity are not).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gaitedge.pipeline import LatencyHistogram


class FixedLogBins:
    """The histogram LatencyHistogram replaced: fixed log-spaced bins, upper edges reported."""

    EDGES_S = np.logspace(-6, 2, 161)

    def __init__(self) -> None:
        self.counts = np.zeros(len(self.EDGES_S) + 1, np.int64)
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[np.searchsorted(self.EDGES_S, seconds)] += 1
        self.total += 1

    def percentile_ms(self, q: float) -> float:
        i = int(np.searchsorted(np.cumsum(self.counts), q / 100 * self.total))
        return float(self.EDGES_S[min(i, len(self.EDGES_S) - 1)] * 1e3)


def per_call_us(fn, values) -> float:
    start = time.perf_counter()
    for v in values:
        fn(v)
    return (time.perf_counter() - start) / len(values) * 1e6


def histograms(n: int = 100_000) -> dict:
    latencies_s = np.random.default_rng(0).lognormal(np.log(1e-4), 0.6, n).tolist()
    bins_us = min(per_call_us(FixedLogBins().add, latencies_s) for _ in range(3))
    hdr_us = min(per_call_us(LatencyHistogram().add, latencies_s) for _ in range(3))
    bins, hdr = FixedLogBins(), LatencyHistogram()
    for v in latencies_s:
        bins.add(v)
        hdr.add(v)
    return {
        "hist_bins_us": round(bins_us, 3),
        "hist_hdr_us": round(hdr_us, 3),
        "hist_p50_exact_ms": round(float(np.percentile(latencies_s, 50)) * 1e3, 4),
        "hist_p50_bins_ms": round(bins.percentile_ms(50), 4),
        "hist_p50_hdr_ms": round(hdr.percentile_ms(50), 4),
        "hist_p99_exact_ms": round(float(np.percentile(latencies_s, 99)) * 1e3, 4),
        "hist_p99_bins_ms": round(bins.percentile_ms(99), 4),
        "hist_p99_hdr_ms": round(hdr.percentile_ms(99), 4),
    }


def lr_schedules(steps: int = 2000, warmup: int = 100, base: float = 1e-3, floor: float = 1e-5):
    import torch

    from train.engine import lr_at

    ours = [lr_at(s, base_lr=base, min_lr=floor, warmup_steps=warmup, total_steps=steps)
            for s in range(steps)]  # fmt: skip
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
    sched = torch.optim.lr_scheduler.SequentialLR(
        opt,
        [
            torch.optim.lr_scheduler.LinearLR(opt, 1 / warmup, 1.0, total_iters=warmup - 1),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps - warmup, eta_min=floor),
        ],
        milestones=[warmup],
    )
    theirs = []
    for _ in range(steps):
        theirs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    rel = np.abs(np.array(ours) - np.array(theirs)) / np.array(ours)
    return {"lr_max_rel_diff": float(f"{rel.max():.3g}"), "lr_worst_step": int(rel.argmax())}


def import_s(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.check_output([sys.executable, "-c", code])) for _ in range(5)]
    return round(float(np.median(runs)), 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    parser.parse_args()
    result = histograms() | lr_schedules()
    result |= {"urllib3_import_s": import_s("urllib3"), "tenacity_import_s": import_s("tenacity")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
