"""``recipe.json`` of a ``train/recipe.sh`` run: the machine, each stage, the held-out figures.

    python -m train.recipe_report --out runs/recipe

Reads ``stages.jsonl`` (name, run folder, status, wall time per stage, written by the recipe)
and each stage's checkpoint: steps, training-loop time (steps/s is over the loop alone, data
preparation left out), the peak CUDA memory the loop reports (``train.engine.fit``, CUDA only)
and the held-out figures of the checkpoint's ``metrics["test"]``. ``summary.json`` (from
``python -m train.summarize --json``) is embedded when that stage wrote it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path

import torch

from gaitedge.entry import ScriptError, run

RECIPE_NAME = "recipe.json"
# Checkpoint names by run kind: train's loop, export.distill's student.
CHECKPOINTS = ("checkpoint.pt", "student.pt")


def machine() -> dict:
    """The GPU(s) by nvidia-smi (None without one), torch / CUDA versions, CPU and Python."""
    gpus = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        gpus = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "gpus": gpus,
        "cuda_devices": torch.cuda.device_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
    }


def _finite(value: float | int) -> float | int | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def held_out(metrics: dict) -> dict:
    """The headline test figures of a checkpoint's metrics (per head; MAE: reconstruction)."""
    figures = {}
    for head, r in metrics.get("test", {}).items():
        keep = ("macro_f1", "accuracy", "n_windows", "trial_sensitivity", "trial_specificity")
        keep += ("n_fall_trials", "n_adl_trials")
        # NaN (no trial of a kind among the held-out subjects) is written as null.
        figures[head] = {k: _finite(r[k]) for k in keep if k in r}
    if "test_reconstruction_loss" in metrics:
        figures["reconstruction_loss"] = metrics["test_reconstruction_loss"]
    return figures


def stage_record(stage: dict) -> dict:
    """A stage line of ``stages.jsonl`` with its checkpoint's steps, speed, memory, figures."""
    record = dict(stage)
    folder = Path(stage["dir"])
    path = next((folder / n for n in CHECKPOINTS if (folder / n).exists()), None)
    if path is None:
        return record
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    metrics = ckpt.get("metrics") or {}
    steps = metrics.get("steps") or (ckpt.get("distill_config") or {}).get("steps")
    loop_s = metrics.get("train_time_s")
    record["steps"] = steps
    if steps and loop_s:
        record["loop_s"] = loop_s
        record["steps_per_s"] = round(steps / loop_s, 2)
    elif steps and stage["wall_s"]:  # the student checkpoint has no loop time: whole stage
        record["steps_per_s_wall"] = round(steps / stage["wall_s"], 2)
    record["peak_cuda_memory_mb"] = metrics.get("peak_cuda_memory_mb")
    record["held_out"] = held_out(metrics)
    return record


def build(out: Path, smoke: bool) -> dict:
    lines = (out / "stages.jsonl").read_text().splitlines()
    stages = [stage_record(json.loads(line)) for line in lines if line.strip()]
    summary = out / "summary.json"
    return {
        "smoke": smoke,
        "machine": machine(),
        "stages": stages,
        "total_wall_s": round(sum(s["wall_s"] for s in stages), 1),
        "all_ok": all(s["status"] == "ok" for s in stages),
        "summary": json.loads(summary.read_text()) if summary.exists() else None,
    }


def main(argv: Sequence[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="the recipe's output folder")
    p.add_argument("--smoke", type=int, choices=[0, 1], default=0, help="a SMOKE=1 run")
    args = p.parse_args(argv)
    if not (args.out / "stages.jsonl").is_file():
        raise ScriptError(
            f"{args.out}: no recipe run here (no stages.jsonl; train/recipe.sh writes it)"
        )
    report = build(args.out, bool(args.smoke))
    (args.out / RECIPE_NAME).write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    run(main)
