"""Distributed data parallel: two CPU processes (gloo) under torchrun end with equal weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gaitedge.preprocess import ChainConfig
from train.data import prepare

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_two_gloo_ranks_agree(
    hapt_dir: Path, data_root: Path, train_cache_dir: Path, tmp_path: Path
) -> None:
    cache = train_cache_dir
    prepare(["hapt"], ChainConfig(), data_root, cache)  # warm the cache: ranks only read it
    out = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "train.pretrain", "--preset", "tiny", "--data", "hapt", "--patch-samples", "16",
        "--max-steps", "4", "--batch-size", "32", "--log-every", "1", "--threads", "1",
        "--data-root", str(data_root), "--cache-dir", str(cache), "--out", str(out),
    ]  # fmt: skip
    env = os.environ | {"GAITEDGE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["final"]
    assert final["world_size"] == 2
    digests = final["rank_parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert (out / "checkpoint.pt").exists()


PROBE = """
import json, os, sys
from pathlib import Path
import torch
from torch import nn
from train.config import TrainConfig
from train.engine import fit


class Config:
    def to_dict(self):
        return {}


class Objective(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = nn.Linear(6, 1)
        self.model.cfg = Config()

    def forward(self, x):
        return self.model(x).square().mean(), {}


torch.manual_seed(0)
data = torch.randn(64, 8, 6)
cfg = TrainConfig(max_steps=3, batch_size=8, warmup_steps=1, log_every_steps=1, num_threads=1)
result = fit(Objective(), data, {}, cfg, Path(sys.argv[1]), meta={})
tasks = Path("/proc/self/task")
threads = sorted((t / "comm").read_text().strip() for t in tasks.iterdir())
# A file per rank: two ranks printing at once interleave on the shared stdout.
rank = os.environ["RANK"]
report = json.dumps({"rank": rank, "threads": threads})
(Path(sys.argv[1]).parent / f"rank{rank}.json").write_text(report)
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="thread names from Linux's /proc")
def test_fit_ends_the_gloo_threads_before_it_returns(tmp_path: Path) -> None:
    # A group that outlives fit reaches interpreter shutdown with gloo's threads running, where a
    # rank aborted as its peer exited (CI of stop 35: "terminate called without an active
    # exception"). Ended inside fit, nothing is left to race the shutdown.
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        str(probe), str(tmp_path / "out"),
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("rank*.json"))]
    assert sorted(r["rank"] for r in ranks) == ["0", "1"]
    for r in ranks:
        assert not [t for t in r["threads"] if "gloo" in t], r
