"""Timestamp repair: the same under any chunking, the array path bit for bit the per-sample loop."""

from __future__ import annotations

import csv
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaitedge.preprocess import TimestampRepair, repair_timestamps

RESET_S = TimestampRepair().reset_s
GAP_S = TimestampRepair().segment_gap_s


@st.composite
def device_streams(draw) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Stamps as devices send them: [N] stamps, [N, C] samples (6: the chain; 3: one sensor of
    an export), how many clock resets, how many lone outliers."""
    n = draw(st.integers(2, 300))
    rate_hz = draw(st.sampled_from([12.5, 50.0, 100.0, 104.0, 200.0]))
    start_s = draw(st.sampled_from([0.0, 3.7, 86_400.123, 1_659_731_173.153]))  # last: epoch
    style = draw(st.sampled_from(["clean", "ms", "10ms", "batches"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    t = start_s + np.arange(n) / rate_hz
    if style == "ms":  # a phone app's stamp resolution
        t = np.floor(t * 1e3) / 1e3
    elif style == "10ms":
        t = np.floor(t * 1e2) / 1e2
    elif style == "batches":  # Android: a delivery's samples all carry its arrival time
        size = draw(st.integers(2, 8))
        t = np.maximum.accumulate(t[np.minimum(np.arange(n) // size * size + size - 1, n - 1)])
    jitter = draw(st.floats(0.0, 0.3))  # share of samples stamped early, up to 0.8 reset_s
    early = rng.random(n) < jitter
    t[early] -= rng.uniform(0.0, 0.8 * RESET_S, int(early.sum()))
    opening = draw(st.integers(0, min(8, n)))  # an opening run of samples sharing one stamp
    t[:opening] = t[0]
    resets = draw(st.lists(st.tuples(st.integers(1, n - 1), st.floats(2.0, 500.0)), max_size=3))
    for at, jump_s in resets:  # the device clock restarts: every later stamp jumps back
        t[at:] -= jump_s
    # One stamp glitched far ahead or back (a sample between others, away from resets and
    # from jittered or opening samples, whose next sample goes on from before it).
    outliers = 0
    at = draw(st.integers(1, n - 2)) if n >= 3 else 0
    far = {at - 1, at, at + 1} & ({a for a, _ in resets} | set(np.flatnonzero(early).tolist()))
    goes_on = at and t[at + 1] > t[at - 1]  # the stream moves on across the outlier
    if at and draw(st.booleans()) and not far and at > opening and goes_on:
        t[at] += draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(2.0, 5000.0))
        outliers = 1
    x = rng.standard_normal((n, draw(st.sampled_from([6, 3]))))
    return t, x, len({at for at, _ in resets}), outliers


def chunked(rep: TimestampRepair, t, x, sizes, *, loop: bool = False):
    """Feed ``rep`` chunk by chunk (sizes cycled), flush, join; ``loop``: the reference path."""
    feed = rep._loop if loop else rep.process
    parts, i, k = [], 0, 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        parts.append(feed(t[i : i + n], x[i : i + n]))
        i, k = i + n, k + 1
    parts.append(rep.flush())
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


chunk_sizes = st.lists(st.integers(1, 60), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stream=device_streams(),
    sizes=chunk_sizes,
    block=st.sampled_from([1, 3, 64, 4096]),
    loop_below=st.sampled_from([0, 16]),
)
def test_any_chunking_gives_the_one_pass_stamps_and_stats(stream, sizes, block, loop_below):
    t, x, n_resets, n_outliers = stream
    whole_t, whole_x, whole_stats = repair_timestamps(t, x)
    np.testing.assert_array_equal(whole_x, x)  # nothing lost, nothing reordered
    assert (np.diff(whole_t) > 0).all()
    assert whole_stats.clock_resets == n_resets
    assert whole_stats.outliers == n_outliers
    for cut in (sizes, [1]):
        rep = TimestampRepair()
        rep.BLOCK_SAMPLES = block  # also cuts chunks inside process()
        rep.LOOP_SAMPLES = loop_below
        got_t, got_x = chunked(rep, t, x, cut)
        np.testing.assert_array_equal(got_t, whole_t)
        np.testing.assert_array_equal(got_x, whole_x)
        assert asdict(rep.stats) == asdict(whole_stats)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=device_streams(), sizes=chunk_sizes)
def test_the_array_path_is_the_per_sample_loop_bit_for_bit(stream, sizes):
    t, x, _, _ = stream
    fast, slow = TimestampRepair(), TimestampRepair()
    fast.LOOP_SAMPLES = 0  # short chunks too through the array path
    fast_t, fast_x = chunked(fast, t, x, sizes)
    slow_t, slow_x = chunked(slow, t, x, sizes, loop=True)
    np.testing.assert_array_equal(fast_t, slow_t)
    np.testing.assert_array_equal(fast_x, slow_x)
    assert asdict(fast.stats) == asdict(slow.stats)


def _repair_every_way(t: list[float]) -> np.ndarray:
    """Repaired stamps of ``t``, checked to be the same fed whole and one sample at a time."""
    t = np.asarray(t)
    x = np.arange(6 * len(t), dtype=np.float64).reshape(-1, 6)
    whole, _, _ = repair_timestamps(t, x)
    singles, _ = chunked(TimestampRepair(), t, x, [1])
    np.testing.assert_array_equal(singles, whole)
    return whole


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        # 3 tied at 1.0, then 1.3: interval 0.3 / 3, the run spread back to 1.0 - 0.3
        ([1.0, 1.0, 1.0, 1.3, 1.4], [0.8, 0.9, 1.0, 1.3, 1.4]),
        # a clock reset: stream time carries on segment_gap_s + one interval (0.01) after 10.02
        ([10.0, 10.01, 10.02, 2.0, 2.01], [10.0, 10.01, 10.02, 10.02 + GAP_S + 0.01, 11.04]),
        # the interval comes from the opening run of 2 at 5.0 and 5.1, used at the reset
        ([5.0, 5.0, 5.1, 0.0], [4.95, 5.0, 5.1, 5.1 + GAP_S + 0.05]),
        # a reset before any second stamp: the default interval, for both the run and the reset
        (
            [10.0, 10.0, 2.0, 2.01],
            [9.98, 10.0, 10.0 + GAP_S + TimestampRepair.DEFAULT_INTERVAL_S, 11.03],
        ),
        # backward jitter joins the newest run: 0.98 is spread between 0.9 and 1.0
        ([0.9, 1.0, 0.98, 1.1], [0.9, 0.95, 1.0, 1.1]),
        # one stamp glitched far ahead: it joins its next sample's run (no gap, no shift)
        ([1.0, 1.1, 1000.0, 1.3, 1.4], [1.0, 1.1, 1.2, 1.3, 1.4]),
        # one stamp glitched back (a reset, had the next not gone on from before it): it
        # joins the run before it; the stream time is not moved
        ([1.0, 1.1, 1.2, 0.0, 1.3, 1.4], [1.0, 1.1, 1.15, 1.2, 1.3, 1.4]),
        # glitched back at the stream's end: nothing tells, so a reset
        ([10.0, 10.01, 10.02, 2.0], [10.0, 10.01, 10.02, 10.02 + GAP_S + 0.01]),
    ],
    ids=[
        "opening-tie", "clock-reset", "opening-tie-then-reset", "reset-before-interval",
        "jitter", "outlier-ahead", "outlier-back", "back-at-the-end",
    ],
)  # fmt: skip
def test_worked_examples(stamps, expected):
    np.testing.assert_allclose(_repair_every_way(stamps), expected, rtol=0, atol=1e-9)


def test_real_metabase_stamps_packed_three_to_a_notification(wild_exports):
    """MetaBase iOS's real stamps (100.2 Hz, steps of 10-11 ms), stamped three to a BLE packet
    with the packet's last time, as a device packing samples does: the repair recovers every
    real stamp within 2 ms (a fifth of the interval; the real steps vary by 3 ms, which even
    spreading cannot know), the opening packet exactly here, in any chunking."""
    path = wild_exports / "metabase_ios-gait-lowback-acconly" / "Accelerometer.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    true_t = np.array([float(r["epoc (ms)"]) for r in rows]) / 1e3
    x = np.array([[float(r[k]) for k in list(r)[3:6]] + [0.0] * 3 for r in rows])
    n = len(true_t) // 3 * 3
    true_t, x = true_t[:n], x[:n]
    packed = np.repeat(true_t[2::3], 3)
    fixed, xx, stats = repair_timestamps(packed, x)
    assert stats.tied == 2 * n // 3 and stats.clock_resets == 0
    np.testing.assert_array_equal(xx, x)
    assert np.abs(fixed - true_t).max() < 2e-3
    np.testing.assert_allclose(fixed[:3], true_t[:3], rtol=0, atol=1e-6)
    got, _ = chunked(TimestampRepair(), packed, x, [1, 2, 5, 64, 1000])
    np.testing.assert_array_equal(got, fixed)
