"""Pretraining step time of the MAE variants: tokens (mixed / sensor) x target (chain / raw).

    python bench/mae_variants.py --json

Last line: ``{"threads", "batch", "variants": {name: {"step_ms_p50", "step_ms_p90", "tokens",
"params", "vs_mixed_chain"}}, "copy_mse": {sensor: mse}}``. One step = forward, backward,
gradient clipping and an AdamW update (``train.engine.build_optimizer``), the ``tiny`` preset
at batch 256, on real windows (HAPT through the default chain, normalised on themselves). The
variants take turns step by step so that load from other processes falls on all alike;
``vs_mixed_chain`` is each median over today's model's median in the same run.

``copy_mse`` backs the choice to leave gravity out of the loss of sensor tokens: with 24 of 32
patches of a sensor masked at random, the error of copying the mean of its 8 visible patches
into the masked ones, per normalised channel (variance 1), on every 7th window.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._data import hapt_signal
from gaitedge.preprocess import ChainConfig, fit_normalization, run_offline
from train.config import TrainConfig
from train.engine import build_optimizer
from train.model import SENSORS, IMUMaskedAutoencoder, ModelConfig, preset_config

VARIANTS = {
    "mixed-chain": dict(),
    "mixed-raw": dict(target="raw"),
    "sensor-chain": dict(token_mode="sensor", gravity_loss=False),
    "sensor-raw": dict(token_mode="sensor", target="raw"),
    "mixed-chain-p16": dict(patch_samples=16),
    "sensor-chain-p16": dict(token_mode="sensor", gravity_loss=False, patch_samples=16),
}


def real_windows(n: int) -> tuple[np.ndarray, ChainConfig]:
    """[n, W, 9] normalised chain windows of HAPT (hop 32 to get enough from little signal)."""
    chain = ChainConfig(hop_samples=32)
    t, imu = hapt_signal(n * 32 + 256)
    raw = run_offline(chain, t, imu).data
    chain = chain.with_normalization(*fit_normalization(raw))
    return run_offline(chain, t, imu).data[:n], chain


def build(overrides: dict, chain: ChainConfig) -> ModelConfig:
    if overrides.get("target") == "raw":
        overrides = overrides | dict(norm_mean=chain.norm_mean, norm_std=chain.norm_std)
    return preset_config("tiny", **overrides)


def copy_mse(windows: np.ndarray, patch_samples: int = 4, masked: int = 24) -> dict:
    """Per sensor triplet, MSE of predicting masked patches by the mean of the visible ones."""
    k, w, _ = windows.shape
    length = w // patch_samples
    patches = windows.reshape(k, length, patch_samples, len(SENSORS), 3)
    rng = np.random.default_rng(0)
    errs: dict[str, list[float]] = {name: [] for name in SENSORS}
    for i in range(0, k, 7):
        order = rng.permutation(length)
        hidden, seen = order[:masked], order[masked:]
        for s, name in enumerate(SENSORS):
            guess = patches[i, seen, :, s].mean(axis=(0, 1))  # [3]
            errs[name].append(float(((patches[i, hidden, :, s] - guess) ** 2).mean()))
    return {name: round(float(np.mean(e)), 4) for name, e in errs.items()}


def measure(batch: int, steps: int, warmup: int) -> dict:
    windows, chain = real_windows(batch * 4)
    x_all = torch.from_numpy(windows)
    runs = {}
    for name, overrides in VARIANTS.items():
        torch.manual_seed(0)
        model = IMUMaskedAutoencoder(build(overrides, chain))
        runs[name] = (model, build_optimizer(model, TrainConfig()), [])
    for step in range(warmup + steps):
        x = x_all[(step % 4) * batch : (step % 4 + 1) * batch]
        for model, optimizer, times in runs.values():
            t0 = time.perf_counter()
            loss, _, _ = model(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if step >= warmup:
                times.append(time.perf_counter() - t0)
    base = float(np.median(runs["mixed-chain"][2]))
    out = {}
    for name, (model, _, times) in runs.items():
        ms = np.array(times) * 1e3
        out[name] = {
            "step_ms_p50": round(float(np.median(ms)), 1),
            "step_ms_p90": round(float(np.percentile(ms, 90)), 1),
            "tokens": model.cfg.n_tokens,
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "vs_mixed_chain": round(float(np.median(times)) / base, 2),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="print one JSON line at the end")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    variants = measure(args.batch, args.steps, args.warmup)
    copy = copy_mse(real_windows(6000)[0])
    print(f"copying visible patches into masked ones leaves an MSE of {copy}")
    for name, v in variants.items():
        print(f"{name:18s} {v['step_ms_p50']:8.1f} ms/step (p90 {v['step_ms_p90']:.1f}), "
              f"{v['tokens']} tokens, {v['vs_mixed_chain']:.2f}x")  # fmt: skip
    if args.json:
        result = {"threads": args.threads, "batch": args.batch, "variants": variants}
        result["copy_mse"] = copy
        result["machine"] = f"{platform.machine()} {platform.python_version()}"
        print(json.dumps(result))


if __name__ == "__main__":
    main()
