"""GPU check: the paths this repository cannot run without an NVIDIA GPU, in one go.

    deploy/gpu_check.sh            (under 8 minutes; prints one JSON line on stdout)

Parts, each reported with ``ok`` and its figures (or ``error``, or ``skipped`` with why):

* ``cuda_memory_stream``: ``gaitedge.engine.CudaRuntime`` through ``cuda.bindings`` (device
  and page-locked buffers, async copies both ways on a stream, bytes compared).
* ``pretrain_bf16``: 200 steps of MAE pretraining (``train.pretrain``, preset tiny, AMP bf16) on
  real HAPT windows: loss finite and falling, steps/s, against the same run's steps/s on the
  CPU (20 steps, ``CUDA_VISIBLE_DEVICES=``) as ``speedup_vs_cpu``.
* ``ddp_nccl``: torch DDP with the NCCL backend, one process: a step, an all-reduce.
* ``tensorrt_fp16`` / ``tensorrt_int8``: ``python -m export.trt`` on the shipped bundles (build,
  parity against ONNX Runtime FP32 on held-out windows, batch 1/64 latency), where TensorRT
  imports.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PRETRAIN_STEPS = 200
CPU_STEPS = 20
MODELS = REPO / "gaitedge" / "models"


def cuda_memory_stream() -> dict:
    import numpy as np

    from gaitedge.engine import CudaRuntime

    cuda = CudaRuntime()
    n = 1 << 18
    device = cuda.malloc(n * 4)
    src_ptr, src = cuda.host_array((n,))
    dst_ptr, dst = cuda.host_array((n,))
    stream = cuda.stream()
    try:
        src[:] = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
        dst[:] = 0
        t0 = time.perf_counter()
        cuda.copy(device, src_ptr, n * 4, "HostToDevice", stream)
        cuda.copy(dst_ptr, device, n * 4, "DeviceToHost", stream)
        cuda.synchronize(stream)
        ms = (time.perf_counter() - t0) * 1e3
        same = bool(np.array_equal(src, dst))
    finally:
        cuda.free([device], [src_ptr, dst_ptr], stream)
    return {"ok": same, "bytes": n * 4, "round_trip_ms": round(ms, 3)}


def _pretrain(data_root: Path, steps: int, env: dict, out: Path) -> dict:
    cmd = [sys.executable, "-m", "train.pretrain", "--preset", "tiny", "--data", "hapt",
           "--data-root", str(data_root), "--cache-dir", str(out / "cache"), "--out", str(out),
           "--max-steps", str(steps), "--amp", "bf16", "--log-every", "10",
           "--checkpoint-every", "100000", "--threads", "8"]  # fmt: skip
    subprocess.run(cmd, cwd=REPO, env=env, check=True, timeout=300, stdout=subprocess.DEVNULL)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    final = next(r["final"] for r in records if "final" in r)
    return {"losses": losses, "steps_per_s": round(steps / final["train_time_s"], 2)}


def pretrain_bf16(data_root: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        gpu = _pretrain(data_root, PRETRAIN_STEPS, dict(os.environ), Path(tmp) / "gpu")
        cpu_env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
        cpu = _pretrain(data_root, CPU_STEPS, cpu_env, Path(tmp) / "cpu")
    losses = gpu["losses"]
    finite = all(math.isfinite(x) for x in losses)
    falling = finite and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    return {
        "ok": finite and falling,
        "steps": PRETRAIN_STEPS,
        "loss_first": round(losses[0], 4),
        "loss_last": round(losses[-1], 4),
        "finite": finite,
        "falling": falling,
        "steps_per_s": gpu["steps_per_s"],
        "cpu_steps_per_s": cpu["steps_per_s"],
        "speedup_vs_cpu": round(gpu["steps_per_s"] / cpu["steps_per_s"], 1),
    }


def ddp_nccl() -> dict:
    import torch
    import torch.distributed as dist
    from torch import nn

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29531")
    dist.init_process_group("nccl", rank=0, world_size=1)
    try:
        model = nn.parallel.DistributedDataParallel(nn.Linear(16, 4).cuda(), device_ids=[0])
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        loss = model(torch.randn(32, 16, device="cuda")).square().mean()
        loss.backward()
        opt.step()
        t = torch.full((4,), 3.0, device="cuda")
        dist.all_reduce(t)
        torch.cuda.synchronize()
        ok = bool(torch.equal(t.cpu(), torch.full((4,), 3.0))) and math.isfinite(loss.item())
        return {"ok": ok, "backend": dist.get_backend(), "nccl": ".".join(
            map(str, torch.cuda.nccl.version()))}  # fmt: skip
    finally:
        dist.destroy_process_group()


def tensorrt_build(precision: str, data_root: Path) -> dict:
    import importlib.util

    if importlib.util.find_spec("tensorrt") is None:
        return {"ok": None, "skipped": "tensorrt does not import here"}
    onnx_path = MODELS / ("gaitedge-default.onnx" if precision == "int8" else
                          "gaitedge-default-fp32.onnx")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "export.trt", "--onnx", str(onnx_path), "--fp16",
               "--out", str(Path(tmp) / "m.engine"), "--data-root", str(data_root)]  # fmt: skip
        if precision == "int8":
            cmd.append("--int8")
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    lines = done.stdout.strip().splitlines()
    if not lines:
        return {"ok": False, "exit": done.returncode, "error": done.stderr.strip()[-400:]}
    return {"exit": done.returncode} | json.loads(lines[-1])


def run_part(name: str, fn, *args) -> dict:
    t0 = time.perf_counter()
    try:
        result = fn(*args)
    except Exception as exc:  # a part that fails is reported, the others still run
        traceback.print_exc(file=sys.stderr)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:400]}
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    print(f"{name}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def main() -> int:
    data_root = Path(os.environ.get("GAITEDGE_DATA_ROOT", REPO.parent / "shared" / "data"))
    report: dict = {}
    try:
        import torch

        report["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        report["torch"] = torch.__version__
    except ImportError:
        report["gpu"], report["torch"] = None, None
    report["cuda_memory_stream"] = run_part("cuda_memory_stream", cuda_memory_stream)
    report["pretrain_bf16"] = run_part("pretrain_bf16", pretrain_bf16, data_root)
    report["ddp_nccl"] = run_part("ddp_nccl", ddp_nccl)
    for precision in ("fp16", "int8"):
        report[f"tensorrt_{precision}"] = run_part(
            f"tensorrt_{precision}", tensorrt_build, precision, data_root
        )
    parts = [v for v in report.values() if isinstance(v, dict)]
    report["ok"] = all(p.get("ok") is not False for p in parts)
    print(json.dumps(report))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
