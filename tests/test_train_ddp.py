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
