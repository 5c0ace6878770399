"""deploy/gpu_check: every part that can run here runs up to the GPU boundary (the CUDA path
through the fake runtime of ``tests/fake_gpu.py``, the pretraining command on the CPU); the
real check runs on a lent GPU."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys

import pytest

from tests import fake_gpu
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "deploy"))
import gpu_check  # deploy/ holds scripts, not a package

no_cuda = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None or os.path.exists("/dev/nvidiactl"),
    reason="a GPU stack is here: run deploy/gpu_check.sh itself",
)


@no_cuda
def test_cuda_memory_stream_part_round_trips_through_the_runtime(monkeypatch):
    cudart = fake_gpu.FakeCudart()
    monkeypatch.setattr("gaitedge.engine.import_cudart", lambda: cudart)
    result = gpu_check.cuda_memory_stream()
    assert result["ok"] and result["bytes"] == 1 << 20
    assert cudart.copies == 2 and cudart.live == {} and cudart.streams == set()


def test_pretrain_part_runs_the_real_command_on_real_windows(data_root, tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", PYTHONPATH=str(REPO))
    result = gpu_check._pretrain(data_root, 3, env, tmp_path)
    assert len(result["losses"]) >= 1 and all(math.isfinite(x) for x in result["losses"])
    assert result["steps_per_s"] > 0


@no_cuda
def test_tensorrt_parts_say_they_were_skipped(data_root):
    assert gpu_check.tensorrt_build("fp16", data_root) == {
        "ok": None, "skipped": "tensorrt does not import here",
    }  # fmt: skip


@no_cuda
def test_the_script_without_a_gpu_exits_2_in_one_line():
    done = subprocess.run(
        [str(REPO / "deploy" / "gpu_check.sh")], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, PYTHON=sys.executable),
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: no CUDA GPU") and done.stderr.count("\n") == 1
