"""The array paths that make long replays fast give what the per-block and per-window
reference paths give: the mounting estimator's ``feed`` against ``update`` fed block by block
(a real HAPT recording with a slip, any chunking), and the engine's split batches against one
call."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from gaitedge.engine import load_engine
from gaitedge.mounting import MountingEstimator


def _slipped(hapt_experiment) -> np.ndarray:
    """[N, 3] low-pass-free acceleration of a real recording, re-clipped 90 deg half-way."""
    _, x, _ = hapt_experiment
    acc = np.concatenate([x[:, :3], x[:, :3]])
    half = len(acc) // 2
    acc[half:] = acc[half:] @ np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]).T
    return acc


def _by_blocks(acc: np.ndarray) -> tuple[MountingEstimator, np.ndarray]:
    est, rot, i = MountingEstimator(50.0), np.empty((len(acc), 3, 3)), 0
    while i < len(acc):
        j = min(len(acc), i + est.boundary())
        rot[i:j] = est.rotation
        est.update(acc[i:j])
        i = j
    return est, rot


def _fed(acc: np.ndarray, cuts: list[int]) -> tuple[MountingEstimator, np.ndarray]:
    est, rot = MountingEstimator(50.0), np.empty((len(acc), 3, 3))
    for a, b in itertools.pairwise(cuts):
        starts, rots = est.feed(acc[a:b])
        rot[a:b] = rots[np.repeat(np.arange(len(starts)), np.diff([*starts, b - a]))]
    return est, rot


@pytest.mark.parametrize("pieces", [1, 7, 300])
def test_feed_is_update_block_by_block(hapt_experiment, pieces):
    acc = _slipped(hapt_experiment)
    want_est, want = _by_blocks(acc)
    rng = np.random.default_rng(pieces)
    cuts = [0, *sorted(rng.choice(np.arange(1, len(acc)), pieces - 1, replace=False)), len(acc)]
    got_est, got = _fed(acc, cuts)
    assert want_est.walking_s > 60 and want_est.realignments == 1  # it walked and slipped
    np.testing.assert_allclose(got, want, atol=1e-9)
    assert got_est.realignments == want_est.realignments
    assert got_est.walking_s == want_est.walking_s
    assert got_est._short_blocks == want_est._short_blocks
    np.testing.assert_allclose(got_est.short.m3, want_est.short.m3, rtol=1e-9, atol=1e-9)


def test_split_engine_batches_are_one_call():
    engine = load_engine()
    cfg = engine.contract.chain
    x = np.random.default_rng(0).normal(
        size=(engine.MAX_BATCH + 37, *(cfg.window_samples, cfg.n_channels))
    )
    whole = engine.predict(x)
    for head, p in whole.items():
        assert p.shape == (len(x), len(engine.contract.heads[head]))
        single = np.concatenate([engine.predict(x[i : i + 1])[head] for i in (0, len(x) - 1)])
        np.testing.assert_allclose(p[[0, -1]], single, atol=1e-6)
