"""The causal signal chain: streaming == offline, resampling, gaps, bad input, filters."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from gaitedge import preprocess
from gaitedge.datasets import hapt_recordings
from gaitedge.preprocess import (
    BadSamplePolicy,
    ChainConfig,
    ChainInputError,
    SosFilter,
    StreamingChain,
    fit_normalization,
    run_offline,
)

CFG = ChainConfig(window_samples=32, hop_samples=8)


def stream(cfg: ChainConfig, t: np.ndarray, x: np.ndarray, sizes: list[int], **kw):
    """Feed the chain chunk by chunk (sizes cycled) and join what comes out."""
    chain, parts, i, k = StreamingChain(cfg, **kw), [], 0, 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        parts.append(chain.process(t[i : i + n], x[i : i + n]))
        i, k = i + n, k + 1
    parts.append(chain.flush())  # the end of the stream releases what timestamp repair held
    return chain, preprocess.Windows.concat([p for p in parts if len(p)] or parts[:1])


def synthetic(n: int, rate_hz: float, seed: int = 0, jitter: float = 0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate_hz + rng.uniform(0, jitter, n) / rate_hz
    t = np.maximum.accumulate(t) + np.arange(n) * 1e-9
    phase = 2 * np.pi * 1.7 * t
    x = np.column_stack(
        [
            np.sin(phase),
            9.81 + 0.5 * np.cos(phase),
            0.3 * np.sin(2 * phase),
            0.2 * np.cos(phase),
            0.1 * np.sin(3 * phase),
            0.05 * t,
        ]
    )
    return t, x + 0.01 * rng.standard_normal(x.shape)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 200), min_size=1, max_size=12))
def test_any_chunking_of_real_hapt_gives_the_offline_windows(hapt_experiment, sizes):
    t, x, _ = hapt_experiment
    t, x = t[:3000], x[:3000]
    offline = run_offline(CFG, t, x)
    _, streamed = stream(CFG, t, x, sizes)
    assert streamed.data.shape == offline.data.shape
    np.testing.assert_allclose(streamed.data, offline.data, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(streamed.t_end_s, offline.t_end_s)


def test_one_sample_at_a_time_equals_offline(hapt_experiment):
    t, x, _ = hapt_experiment
    t, x = t[:600], x[:600]
    offline = run_offline(CFG, t, x)
    _, streamed = stream(CFG, t, x, [1])
    np.testing.assert_allclose(streamed.data, offline.data, atol=1e-5, rtol=0)


@settings(max_examples=30, deadline=None)
@given(
    rate_hz=st.sampled_from([52.0, 99.84, 104.0, 119.0, 200.0]),
    jitter=st.floats(0.0, 0.4),
    sizes=st.lists(st.integers(1, 50), min_size=1, max_size=6),
    gap_at=st.integers(50, 400),
)
def test_irregular_rates_with_gaps_stream_like_offline(rate_hz, jitter, sizes, gap_at):
    t, x = synthetic(600, rate_hz, jitter=jitter)
    t[gap_at:] += 2.0  # a gap longer than max_gap_s
    offline = run_offline(CFG, t, x)
    _, streamed = stream(CFG, t, x, sizes)
    assert streamed.data.shape == offline.data.shape
    np.testing.assert_allclose(streamed.data, offline.data, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(streamed.segment, offline.segment)


@pytest.mark.parametrize("rate_hz", [52.0, 99.84, 104.0, 119.0, 200.0], ids=lambda r: f"{r}Hz")
def test_resampling_recovers_the_signal_at_50hz(rate_hz):
    """A slow signal sampled at another rate (with jitter) lands on the 50 Hz grid."""
    rng = np.random.default_rng(1)
    t = np.arange(int(rate_hz * 10)) / rate_hz
    t[1:-1] += rng.uniform(-0.2, 0.2, len(t) - 2) / rate_hz
    f = lambda tt: np.column_stack([np.sin(2 * np.pi * 0.5 * tt + k) for k in range(6)])  # noqa: E731
    resampler = preprocess.Resampler(50.0, 0.2)
    (piece,) = resampler.process(t, f(t))
    np.testing.assert_allclose(np.diff(piece.t), 0.02, atol=1e-9)
    np.testing.assert_allclose(piece.x, f(piece.t), atol=2e-3)
    assert piece.t[-1] <= t[-1] + 1e-9


def test_gap_starts_a_new_segment_and_no_window_spans_it():
    t, x = synthetic(1000, 50.0)
    t[500:] += 1.5
    out = run_offline(CFG, t, x)
    chain = StreamingChain(CFG)
    chain.process(t, x)
    assert chain.stats.segments == 2 and len(chain.stats.gaps) == 1
    for start, end in zip(out.t_start_s, out.t_end_s, strict=True):
        assert not (start < t[500] - 0.1 < end), "a window spans the gap"
    assert set(out.segment) == {1, 2}


def test_short_gap_is_interpolated_not_a_new_segment():
    t, x = synthetic(400, 50.0)
    t[200:] += 0.3  # shorter than max_gap_s = 1.0: a few lost BLE notifications
    chain = StreamingChain(CFG)
    chain.process(t, x)
    assert chain.stats.segments == 1
    assert chain.stats.bridged_gaps == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [("nan", "not finite"), ("inf", "not finite"), ("back", "must increase"), ("dup", "increase")],
)
def test_bad_samples_raise_and_leave_the_state_untouched(bad, message):
    t, x = synthetic(300, 50.0)
    chain, reference = StreamingChain(CFG, strict=True), StreamingChain(CFG, strict=True)
    chain.process(t[:100], x[:100])
    reference.process(t[:100], x[:100])
    tb, xb = t[100:150].copy(), x[100:150].copy()
    if bad == "nan":
        xb[7, 2] = np.nan
    elif bad == "inf":
        tb[7] = np.inf
    elif bad == "back":
        tb[7] = tb[3]
    else:
        tb[7] = tb[6]
    with pytest.raises(ChainInputError, match=message):
        chain.process(tb, xb)
    a, b = chain.process(t[100:], x[100:]), reference.process(t[100:], x[100:])
    np.testing.assert_array_equal(a.data, b.data)


def test_drop_policy_drops_and_counts_bad_samples():
    t, x = synthetic(300, 50.0)
    x[10, 0] = np.nan
    t[20] = t[18]  # out of order
    chain = StreamingChain(CFG, policy=BadSamplePolicy.DROP, strict=True)
    out = chain.process(t, x)
    assert chain.stats.dropped_nonfinite == 1
    assert chain.stats.dropped_out_of_order == 1
    assert len(out) > 0 and np.isfinite(out.data).all()


@pytest.mark.parametrize("value", [1e300, -2e5, np.inf])
def test_a_corrupted_value_is_dropped_as_a_non_finite_one(hapt_dir, value):
    """One value no IMU can report (a corrupted cell or frame) is dropped and counted: the
    chain's output is that of the stream without that sample, bit for bit (kept, it filled the
    filters' state with garbage for the rest of the segment). Under RAISE it is refused; a
    high-g impact (1000 m/s²) is a sample like any other."""
    rec = next(hapt_recordings(hapt_dir.parent))
    t, x = rec.timestamp_s[:3000], rec.imu[:3000].copy()
    bad = x.copy()
    bad[1234, 4] = value
    chain = StreamingChain(CFG, policy=BadSamplePolicy.DROP)
    out = chain.process(t, bad)
    assert chain.stats.dropped_nonfinite == 1
    keep = np.arange(len(t)) != 1234
    expected = StreamingChain(CFG, policy=BadSamplePolicy.DROP).process(t[keep], x[keep])
    np.testing.assert_array_equal(out.data, expected.data)
    np.testing.assert_array_equal(out.t_end_s, expected.t_end_s)
    with pytest.raises(ChainInputError, match="sample 1234 of the chunk"):
        StreamingChain(CFG, policy=BadSamplePolicy.RAISE).process(t, bad)
    impact = x.copy()
    impact[1234, 0] = 1000.0
    chain = StreamingChain(CFG, policy=BadSamplePolicy.DROP)
    chain.process(t, impact)
    assert chain.stats.dropped_nonfinite == 0


def test_chunk_starting_before_the_previous_one_raises():
    t, x = synthetic(100, 50.0)
    chain = StreamingChain(CFG, strict=True)
    chain.process(t[50:], x[50:])
    with pytest.raises(ChainInputError, match="must increase"):
        chain.process(t[:10], x[:10])


def test_wrong_shape_is_refused():
    with pytest.raises(ChainInputError, match=r"\[N, 6\]"):
        StreamingChain(CFG).process(np.arange(5.0), np.zeros((5, 4)))
    # acceleration alone, to a chain that needs the gyroscope: named, never padded
    with pytest.raises(ChainInputError, match=r"no gyroscope.*gyro_x, gyro_y, gyro_z"):
        StreamingChain(CFG).process(np.arange(5.0), np.zeros((5, 3)))


def test_sos_kernel_matches_public_sosfilt():
    sos = signal.butter(4, 20.0, fs=50.0, output="sos")
    x = np.random.default_rng(0).standard_normal((500, 6))
    f = SosFilter(sos, 6)
    y = np.concatenate([f.process(x[:123]), f.process(x[123:])])
    zi = signal.sosfilt_zi(sos)[:, :, None] * x[0]
    expected, _ = signal.sosfilt(sos, x, axis=0, zi=zi)
    np.testing.assert_allclose(y, expected, atol=1e-12)


def test_sos_fallback_path_matches_kernel(monkeypatch):
    sos = signal.butter(2, 0.3, fs=50.0, output="sos")
    x = np.random.default_rng(2).standard_normal((300, 3)) + 9.0
    fast = SosFilter(sos, 3)
    expected = np.concatenate([fast.process(x[:77]), fast.process(x[77:])])
    monkeypatch.setattr(preprocess, "_sosfilt_kernel", None)
    slow = SosFilter(sos, 3)
    got = np.concatenate([slow.process(x[:77]), slow.process(x[77:])])
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_gravity_split_keeps_posture_direction(hapt_experiment):
    """HAPT standing vs sitting differ in the gravity direction, which the chain keeps."""
    t, x, label = hapt_experiment
    cfg = ChainConfig(channels=("gravity_x", "gravity_y", "gravity_z", "body_acc_x"))
    out = run_offline(cfg, t, x)
    mid = ((out.t_start_s + out.t_end_s) / 2 * 50).astype(int)
    lab = label[mid]
    standing = out.data[lab == 5][:, :, :3].mean(axis=(0, 1))
    sitting = out.data[lab == 4][:, :, :3].mean(axis=(0, 1))
    np.testing.assert_allclose(np.linalg.norm(standing), 9.8, atol=0.4)
    assert abs(standing[1] - sitting[1]) > 2.0, (standing, sitting)
    assert abs(out.data[lab == 5][:, :, 3].mean()) < 0.1  # body part has no gravity left


def test_normalisation_uses_dataset_stats_not_per_window(hapt_experiment):
    t, x, _ = hapt_experiment
    raw = run_offline(CFG, t, x).data
    mean, std = fit_normalization(raw)
    normed = run_offline(CFG.with_normalization(mean, std), t, x).data
    np.testing.assert_allclose(normed, (raw - mean) / std, atol=1e-4)
    assert abs(normed.reshape(-1, CFG.n_channels).mean(0)).max() < 1e-3
    # Windows keep their offsets (gravity direction) rather than being centred one by one.
    assert abs(normed.mean(axis=1)).max() > 0.5


def test_config_round_trips_through_json():
    cfg = ChainConfig(channels=("acc_x", "acc_norm"), norm_mean=(1.0, 2.0), norm_std=(3.0, 4.0))
    again = ChainConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(cfg.to_json())["sample_rate_hz"] == 50.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": ("acc_w",)}, "unknown channels"),
        ({"lowpass_cutoff_hz": 30.0}, "lowpass_cutoff_hz"),
        ({"norm_mean": (0.0,) * 9}, "go together"),
        ({"norm_mean": (0.0,), "norm_std": (1.0,)}, "9 values"),
        ({"norm_mean": (0.0,) * 9, "norm_std": (0.0,) * 9}, "positive"),
    ],
)
def test_invalid_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChainConfig(**kwargs)


def test_newer_config_version_is_refused():
    data = ChainConfig().to_dict() | {"version": 99}
    with pytest.raises(ValueError, match="newer"):
        ChainConfig.from_dict(data)


def test_streaming_memory_does_not_grow():
    t, x = synthetic(20000, 50.0)
    chain = StreamingChain(ChainConfig())
    for i in range(0, 5000, 10):
        chain.process(t[i : i + 10], x[i : i + 10])
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(5000, 20000, 10):
        chain.process(t[i : i + 10], x[i : i + 10])
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 50_000, f"memory grew by {grown} bytes over 15000 samples"


@pytest.mark.parametrize("sizes", [[4], [1, 7, 50], [333]])
def test_a_following_chain_makes_the_windows_of_its_own_front(hapt_experiment, sizes):
    """A chain that takes another's filtered pieces (``follow``: the cold-start model beside
    its device) gives, bit for bit, the windows it makes filtering the same samples itself: a
    real recording at 104 Hz in an unaligned mounting, with a gap that starts a new segment and
    a run of tied stamps, in live and large chunks; each with its own mounting estimate
    (automatic and vertical) and normalisation."""
    t, x, _ = hapt_experiment
    r = np.linalg.qr(np.arange(9.0).reshape(3, 3) + np.eye(3))[0]  # an unaligned mounting
    t, x = t[:4000], np.concatenate([x[:4000, :3] @ r.T, x[:4000, 3:] @ r.T], axis=1)
    t = t * (50.0 / 104.0)  # the same samples, stamped as a 104 Hz device sends them
    t[2000:] += 3.0  # a gap past max_gap_s: a new segment
    t[500:505] = t[500]  # tied stamps (a batched delivery)
    leader_cfg = ChainConfig(window_samples=64, hop_samples=10, mounting="auto")
    own_cfg = ChainConfig(window_samples=64, hop_samples=10, mounting="vertical")
    own_cfg = own_cfg.with_normalization(np.full(9, 0.1), np.full(9, 2.0))
    leader, follower, alone = (StreamingChain(c) for c in (leader_cfg, own_cfg, own_cfg))
    assert follower.shares_front_with(leader)
    leader.keep_front = True
    got, want, i, k = [], [], 0, 0
    while i < len(t):
        n = sizes[k % len(sizes)]
        leader.process(t[i : i + n], x[i : i + n])
        got.append(follower.follow(leader))
        want.append(alone.process(t[i : i + n], x[i : i + n]))
        i, k = i + n, k + 1
    got, want = (preprocess.Windows.concat([p for p in w if len(p)]) for w in (got, want))
    assert len(want) > 150 and len(set(want.segment)) == 2  # both sides of the gap
    np.testing.assert_array_equal(got.data, want.data)
    np.testing.assert_array_equal(got.t_end_s, want.t_end_s)
    np.testing.assert_array_equal(got.segment, want.segment)
    assert follower.mounting.calibrated == alone.mounting.calibrated
    assert (follower.stats.samples_in, follower.stats.samples_out, follower.stats.windows) == (
        alone.stats.samples_in,
        alone.stats.samples_out,
        alone.stats.windows,
    )
    assert follower.stats.segments == alone.stats.segments == 2


def test_chains_with_other_filters_do_not_share_a_front():
    base = StreamingChain(ChainConfig())
    assert base.shares_front_with(StreamingChain(ChainConfig(mounting="vertical")))
    assert not base.shares_front_with(StreamingChain(ChainConfig(lowpass_cutoff_hz=15.0)))
    assert not base.shares_front_with(StreamingChain(ChainConfig(), BadSamplePolicy.DROP))
    assert not base.shares_front_with(StreamingChain(ChainConfig(), strict=True))


@pytest.mark.parametrize(
    "channels",
    [
        preprocess.DEFAULT_CHANNELS,
        preprocess.AVAILABLE_CHANNELS,
        ("acc_x", "acc_y", "acc_z", "acc_norm"),
        ("gravity_x", "gravity_y", "gravity_z", "gyro_x", "gyro_y", "gyro_z", "gyro_norm"),
        ("gyro_norm", "body_acc_x", "body_acc_y", "body_acc_z"),  # blocks out of order
        ("body_acc_y", "body_acc_x", "body_acc_z", "gravity_x"),  # within a block: reordered
        ("gravity_z", "acc_norm"),  # part of a block
    ],
)
def test_features_of_whole_blocks_are_the_selection_of_all_channels(hapt_experiment, channels):
    """Channels that are whole blocks of the available ones (acc, body_acc, gravity, gyro, the
    norms) are made alone; the windows equal those of every channel made and then selected."""
    t, x, _ = hapt_experiment
    t, x = t[:3000], x[:3000]
    cfg = ChainConfig(window_samples=32, hop_samples=8, channels=channels, mounting="none")
    blocks = StreamingChain(cfg)._blocks
    assert (blocks is not None) == (channels[0] not in ("body_acc_y", "gravity_z"))
    _, fast = stream(cfg, t, x, [7, 50, 1])
    chain = StreamingChain(cfg)
    chain._blocks = None  # every channel, then the selection
    parts = [chain.process(t[i : i + 50], x[i : i + 50]) for i in range(0, len(t), 50)]
    slow = preprocess.Windows.concat([p for p in [*parts, chain.flush()] if len(p)])
    assert len(fast) > 300
    np.testing.assert_array_equal(fast.data, slow.data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    rate=st.sampled_from([20.0, 50.0, 51.2, 100.0]),
    jitter=st.sampled_from([0.0, 0.2, 0.45]),
    sizes=st.lists(st.integers(1, 20), min_size=1, max_size=6),
    start=st.sampled_from([0.0, 1.7e9 + 0.123]),
)
def test_resampling_a_live_frame_on_python_floats_is_the_array_path(
    seed, rate, jitter, sizes, start
):
    """A live frame's grid (few samples, few grid points) is made on Python floats: the same
    grid, weights and samples bit for bit as the array path (forced by a zero threshold)."""
    rng = np.random.default_rng(seed)
    n = 600
    dt = 1.0 / rate * (1 + jitter * rng.uniform(-1, 1, n))
    dt[rng.integers(0, n, 2)] = 1.5  # gaps: a new segment each
    t = start + np.cumsum(dt)
    x = rng.standard_normal((n, 6))

    def feed() -> list:
        r, out, i, k = preprocess.Resampler(50.0, 1.0), [], 0, 0
        while i < n:
            m = sizes[k % len(sizes)]
            out += [(p.new_segment, p.t, p.x) for p in r.process(t[i : i + m], x[i : i + m])]
            i, k = i + m, k + 1
        return out

    few = feed()
    saved, preprocess.FEW_SAMPLES = preprocess.FEW_SAMPLES, 0
    try:
        arrays = feed()
    finally:
        preprocess.FEW_SAMPLES = saved
    assert len(few) == len(arrays) and sum(len(p[1]) for p in few) > 250
    for (new_a, t_a, x_a), (new_b, t_b, x_b) in zip(few, arrays, strict=True):
        assert new_a == new_b
        np.testing.assert_array_equal(t_a, t_b)
        np.testing.assert_array_equal(x_a, x_b)
